# Every config key does what it says: each key of the schema is read by the firmware and named here with the test
# that would fail if the phone ignored it. A key added to the schema without a line in KEY_TESTS fails this file.
# The tests below cover the keys no other test pins down (phones on the in-memory loopback net, the real Phone).
import os
import re

import pytest

from uphone import config as C
from uphone import table as T
from tests.phone_rig import Rig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# key -> "file::test" that fails when the phone ignores the key (containers and the required account list are
# covered by the validator's own tests)
KEY_TESTS = {
    "accounts.user": "test_phones.py::test_call_audio_both_ways_hold_resume_dtmf_hangup",
    "accounts.domain": "test_config_keys.py::test_display_name_user_agent_and_domain_are_in_what_the_phone_sends",
    "accounts.display_name": "test_config_keys.py::test_display_name_user_agent_and_domain_are_in_what_the_phone_sends",
    "accounts.auth_user": "test_config_keys.py::test_auth_user_is_the_digest_username",
    "accounts.password": "test_heap.py::test_register_call_hold_resume_dtmf_hangup_in_an_esp32_heap",
    "accounts.ha1": "test_interop_sip.py::test_kamailio_registers_a_phone_that_keeps_only_ha1",
    "accounts.registrar": "test_keepalive.py::test_udp_crlf_keepalives_on_schedule",
    "accounts.proxy": "test_interop_sip.py::test_kamailio_register_refresh_and_call_through_proxy",
    "accounts.presence": "test_presence.py::test_publish_refresh_412_failures_and_removal_against_a_sipp_presence_server",
    "accounts.expires": "test_config_keys.py::test_expires_is_asked_for_in_register",
    "accounts.register": "test_config_keys.py::test_expires_is_asked_for_in_register",
    "sip.local_ip": "test_network_change.py::test_an_active_call_sends_a_reinvite_with_the_new_address",
    "sip.local_port": "test_phones.py::test_call_audio_both_ways_hold_resume_dtmf_hangup",
    "sip.transport": "test_sip_tcp.py::test_two_phones_call_over_tcp",
    "sip.t1_ms": "test_config_keys.py::test_t1_and_t2_pace_retransmissions",
    "sip.t2_ms": "test_config_keys.py::test_t1_and_t2_pace_retransmissions",
    "sip.t4_ms": "test_config_keys.py::test_t4_is_how_long_an_answered_request_absorbs_repeats",
    "sip.register_retry_s": "test_sip_tcp.py::test_registrar_down_backs_off",
    "sip.keepalive": "test_keepalive.py::test_udp_crlf_keepalives_on_schedule",
    "sip.keepalive_s": "test_keepalive.py::test_udp_crlf_keepalives_on_schedule",
    "sip.accept_from": "test_gate.py::test_a_registered_phone_takes_calls_from_its_proxy_only",
    "sip.rate_limit": "test_gate.py::test_a_scanner_sweep_never_rings_and_one_loud_source_is_held_to_its_rate",
    "sip.100rel": "test_prack.py::test_100rel_off_refuses_an_invite_that_requires_it",
    "sip.session_expires_s": "test_session_timer.py::test_phone_as_uac_retries_a_422_and_refreshes_by_update",
    "sip.min_se_s": "test_session_timer.py::test_phone_as_uas_refreshes_by_reinvite_and_refuses_a_small_interval",
    "sip.tls_ca": "test_tls.py::test_missing_ca_file_is_reported",
    "sip.user_agent": "test_config_keys.py::test_display_name_user_agent_and_domain_are_in_what_the_phone_sends",
    "media.codecs": "test_heap.py::test_register_call_hold_resume_dtmf_hangup_in_an_esp32_heap",
    "media.dtmf": "test_phones.py::test_dtmf_three_ways",
    "media.srtp": "test_srtp_calls.py::test_mandatory_srtp_and_plain_rtp_do_not_connect",
    "media.ptime": "test_config_keys.py::test_ptime_is_offered",
    "media.rtp_port_min": "test_config_keys.py::test_rtp_ports_come_from_the_range",
    "media.rtp_port_max": "test_config_keys.py::test_rtp_ports_come_from_the_range",
    "media.rtp_timeout_s": "test_config_keys.py::test_rtp_timeout_ends_a_silent_call",
    "media.jitter_min_ms": "test_config_keys.py::test_jitter_bounds_size_the_buffer",
    "media.jitter_max_ms": "test_config_keys.py::test_jitter_bounds_size_the_buffer",
    "audio.rate": "test_heap.py::test_register_call_hold_resume_dtmf_hangup_in_an_esp32_heap",
    "audio.source": "test_phones.py::test_call_audio_both_ways_hold_resume_dtmf_hangup",
    "audio.sink": "test_phones.py::test_call_audio_both_ways_hold_resume_dtmf_hangup",
    "audio.volume_speaker": "test_config_keys.py::test_volume_speaker_sets_the_codecs_dac",
    "audio.volume_mic": "test_config_keys.py::test_volume_mic_sets_the_level_the_far_end_hears",
    "audio.aec": "test_aec.py::test_key_aec_and_aec_delay_ms",
    "audio.aec_delay_ms": "test_aec.py::test_key_aec_and_aec_delay_ms",
    "audio.aec_tail_ms": "test_aec.py::test_key_aec_tail_ms",
    "audio.agc": "test_aec.py::test_keys_agc_and_noise_gate",
    "audio.noise_gate": "test_aec.py::test_keys_agc_and_noise_gate",
    "features.auto_answer": "test_phones.py::test_call_audio_both_ways_hold_resume_dtmf_hangup",
    "features.auto_answer_delay_ms": "test_config_keys.py::test_auto_answer_waits_its_delay",
    "features.call_waiting": "test_config_keys.py::test_call_waiting_off_and_dnd_answer_busy",
    "features.lines": "test_phone_loopback.py::test_a_call_past_the_lines_gets_486_without_a_session",
    "features.dnd": "test_config_keys.py::test_call_waiting_off_and_dnd_answer_busy",
    "features.ring_timeout_s": "test_config_keys.py::test_ring_timeout_ends_an_unanswered_call",
    "features.tones_country": "test_config_keys.py::test_ringback_is_the_countrys",
    "features.voicemail_uri": "test_phone_features.py::test_voicemail_light_from_a_subscription",
    "wifi.ssid": "test_boot.py::test_station_power_save_off_and_retries_with_backoff_forever",
    "wifi.password": "test_boot.py::test_station_power_save_off_and_retries_with_backoff_forever",
    "wifi.hostname": "test_boot.py::test_station_power_save_off_and_retries_with_backoff_forever",
    "time.ntp_host": "test_boot.py::test_set_clock_asks_time_ntp_host_only_on_the_phone",
    "provisioning.url": "test_provision_https.py::test_right_ca_fetches_and_saves",
    "provisioning.ca": "test_provision_https.py::test_bad_server_certificate_is_refused_and_old_config_kept",
}


def _leaves():
    return [r[0] for r in C.SCHEMA if r[1] != "object" and r[0] != "accounts"]


def test_every_key_names_a_test_that_exists():
    assert sorted(KEY_TESTS) == sorted(_leaves()), set(KEY_TESTS) ^ set(_leaves())
    missing = []
    for key, ref in KEY_TESTS.items():
        path, _, name = ref.partition("::")
        with open(os.path.join(ROOT, "tests", path)) as f:
            if not re.search(r"^def %s\(" % re.escape(name), f.read(), re.M):
                missing.append((key, ref))
    assert not missing, missing


def test_every_key_is_read_by_the_firmware():
    src = ""
    for root, _dirs, files in os.walk(os.path.join(ROOT, "firmware", "uphone")):
        for f in files:
            if f.endswith(".py") and f != "config.py":
                with open(os.path.join(root, f)) as fh:
                    src += fh.read()
    unread = [k for k in _leaves() if not re.search(r"[\"']%s[\"']" % re.escape(k.rpartition(".")[2]), src)]
    assert not unread, unread


# -- the keys' own tests -------------------------------------------------------------------------------------------
def _tap(rig):
    """Every datagram on the loopback net, as (data, src, dst)."""
    seen = []
    rig.net.loss = lambda data, src, dst: seen.append((data, src, dst)) and False
    return seen


def _sip(seen, start):
    return [d for d, _s, _t in seen if d.startswith(start)]


def test_display_name_user_agent_and_domain_are_in_what_the_phone_sends():
    rig = Rig()
    seen = _tap(rig)
    rig.add("alice", 5062, 21000, account={"display_name": "Alice Liddell", "domain": "wonder.land"},
            sip={"user_agent": "DeskPhone/9"})
    rig.add("bob", 5064, 21100)
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(2000, until=lambda: rig.state("bob") == "Ringing")
    inv = _sip(seen, b"INVITE ")[0]
    assert b'From: "Alice Liddell" <sip:alice@wonder.land>' in inv, inv
    assert b"User-Agent: DeskPhone/9\r\n" in inv, inv


def test_auth_user_is_the_digest_username():
    from uphone.sip import parse as P
    from uphone.sip import message as M
    rig = Rig()
    seen = _tap(rig)

    def registrar(data, src):
        req = P.parse(data)
        if req.get("Authorization") is None:
            resp = M.make_response(req, 401, "Unauthorized", to_tag="r1", headers=[
                ("WWW-Authenticate", 'Digest realm="pbx", nonce="abc", algorithm=MD5, qop="auth"')])
        else:
            resp = M.make_response(req, 200, "OK", to_tag="r1", headers=[("Contact", req.get("Contact")),
                                                                          ("Expires", "600")])
        rig.net.queue.append((rig.net.t + 1, resp.to_bytes(), ("127.0.0.1", 5060), src))
    rig.net.socks[("127.0.0.1", 5060)] = registrar
    rig.add("alice", 5062, 21000, account={"registrar": "sip:127.0.0.1:5060", "password": "pw",
                                          "auth_user": "ext-1001"})
    assert rig.run(3000, until=lambda: any(b"Authorization:" in d for d in _sip(seen, b"REGISTER ")))
    auth = [d for d in _sip(seen, b"REGISTER ") if b"Authorization:" in d][0]
    assert b'username="ext-1001"' in auth, auth


def test_expires_is_asked_for_in_register():
    rig = Rig()
    seen = _tap(rig)
    rig.net.socks[("127.0.0.1", 5060)] = lambda data, src: None          # a registrar that never answers
    rig.add("alice", 5062, 21000, account={"registrar": "sip:127.0.0.1:5060", "expires": 1234})
    rig.add("bob", 5064, 21100, account={"registrar": "sip:127.0.0.1:5060", "register": False})
    rig.run(1000)
    regs = _sip(seen, b"REGISTER ")
    assert regs and all(b"sip:alice@" in r for r in regs), regs            # bob, told not to, never registers
    assert b"Expires: 1234\r\n" in regs[0] or b"expires=1234" in regs[0], regs[0]


def _retransmit_gaps(t1, t2):
    rig = Rig()
    times = []
    rig.net.socks[("127.0.0.1", 5090)] = lambda data, src: times.append(rig.net.t)    # a black hole
    rig.add("alice", 5062, 21000, sip={"t1_ms": t1, "t2_ms": t2})
    p = rig.phones["alice"]
    s = p.new_session(T.K_registration)
    from uphone.ua import request
    req, dest = request.out_of_dialog(p, s, "OPTIONS", "sip:x@127.0.0.1:5090")
    p.send_request(s, req, dest, "options")
    rig.run(64 * t1 + 100)
    return [b - a for a, b in zip(times, times[1:])]


def test_t1_and_t2_pace_retransmissions():
    gaps = _retransmit_gaps(250, 1000)          # Timer E: T1, doubling, capped at T2 (RFC 3261 17.1.2.2)
    assert [round(g, -1) for g in gaps[:5]] == [250, 500, 1000, 1000, 1000], gaps
    gaps = _retransmit_gaps(500, 1500)
    assert [round(g, -1) for g in gaps[:4]] == [500, 1000, 1500, 1500], gaps


def test_t4_is_how_long_an_answered_request_absorbs_repeats():
    for t4 in (1000, 3000):
        rig = Rig()
        rig.add("alice", 5062, 21000, sip={"t4_ms": t4})
        rig.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 0})
        p = rig.phones["alice"]
        s = p.new_session(T.K_registration)
        from uphone.ua import request
        req, dest = request.out_of_dialog(p, s, "OPTIONS", "sip:bob@127.0.0.1:5064")
        p.send_request(s, req, dest, "options")
        rig.run(50)
        assert p.txl.counts()[0] == 1                   # answered: Completed, Timer K running (17.1.2.2)
        rig.run(t4 - 100)
        assert p.txl.counts()[0] == 1, t4
        rig.run(200)
        assert p.txl.counts()[0] == 0, t4


def test_ptime_is_offered():
    rig = Rig()
    seen = _tap(rig)
    rig.add("alice", 5062, 21000, media={"ptime": 40})
    rig.add("bob", 5064, 21100)
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    rig.run(500)
    assert b"a=ptime:40\r\n" in _sip(seen, b"INVITE ")[0]


def test_rtp_ports_come_from_the_range():
    rig = Rig()
    rig.add("alice", 5062, 21000, media={"rtp_port_min": 31000, "rtp_port_max": 31010})
    rig.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(2000, until=lambda: rig.state("alice") == "Active")
    assert 31000 <= rig.call("alice").ctx.rtp_port <= 31010


def _call(rig, **over):
    rig.add("alice", 5062, 21000, **over)
    rig.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(2000, until=lambda: rig.state("alice") == "Active")


@pytest.mark.parametrize("timeout_s", [2, 0])
def test_rtp_timeout_ends_a_silent_call(timeout_s):
    rig = Rig()
    _call(rig, media={"rtp_timeout_s": timeout_s})
    bob = rig.phones["bob"]
    for s in bob.sessions():                     # bob goes quiet: his RTP stops, signalling stays
        s.ctx.flowing = False
    rig.run(timeout_s * 1000 + 1500 if timeout_s else 5000)
    ended = "Active RTPTimeout Terminating" in " ".join(rig.tr("alice"))
    assert ended == bool(timeout_s), rig.tr("alice")


def test_jitter_bounds_size_the_buffer():
    rig = Rig()
    _call(rig, media={"jitter_min_ms": 60, "jitter_max_ms": 300})
    jb = rig.call("alice").ctx.media.jb
    assert jb.min_ms == 60 and jb.max_ms == 300 and jb.nslots == 300 // 20 + 2


def test_auto_answer_waits_its_delay():
    for delay in (0, 1500):
        rig = Rig()
        rig.add("alice", 5062, 21000)
        rig.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": delay})
        rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
        rig.run(delay + 100 if not delay else delay - 200)
        assert rig.state("bob") == ("Ringing" if delay else "Active"), delay
        rig.run(400)
        assert rig.state("bob") == "Active"


def test_call_waiting_off_and_dnd_answer_busy():
    for feats, first in (({"call_waiting": False}, True), ({"dnd": True}, False), ({}, True)):
        rig = Rig()
        seen = _tap(rig)
        rig.add("bob", 5064, 21100, features=dict(feats, auto_answer=True, auto_answer_delay_ms=0))
        rig.add("alice", 5062, 21000)
        rig.add("carol", 5066, 21200)
        rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
        rig.run(1000)
        assert (rig.state("bob") == "Active") == first, feats
        rig.ev("carol", "MakeCall", target="sip:bob@127.0.0.1:5064")
        rig.run(1000)
        busy = [d for d in seen if d[0].startswith(b"SIP/2.0 486") and d[2] == ("127.0.0.1", 5066)]
        assert bool(busy) == bool(feats), (feats, rig.tr("bob"))


def test_ring_timeout_ends_an_unanswered_call():
    rig = Rig()
    rig.add("alice", 5062, 21000)
    rig.add("bob", 5064, 21100, features={"ring_timeout_s": 5})
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    rig.run(4500)
    assert rig.state("bob") == "Ringing"
    rig.run(1000)
    assert "Ringing DialogTimeout" in " ".join(rig.tr("bob")), rig.tr("bob")


@pytest.mark.parametrize("country,hz", [("us", 440), ("eu", 425), ("uk", 400)])
def test_ringback_is_the_countrys(country, hz):
    from uphone.media import tones
    rig = Rig()
    rig.add("alice", 5062, 21000, features={"tones_country": country})
    rig.add("bob", 5064, 21100)
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(2000, until=lambda: rig.state("alice") == "Ringing")
    tone = rig.call("alice").ctx.tone
    assert tone is not None and (tone.country, tone.name) == (country, "ringback")
    assert tones.lookup(country, "ringback")[0] == hz


def test_volume_speaker_sets_the_codecs_dac():
    import json
    from uphone import boards
    from uphone.drivers import es8311, volume
    from uphone.hal import codec, duplex
    from tests.test_drivers import I2C
    with open(os.path.join(ROOT, "board", "korvo2_es8311", "board.json")) as f:
        board = boards._merge(boards.DEFAULT, json.load(f))
    layout = duplex.Layout.from_board(board["audio"]["duplex"])
    dac = {}
    for pct in (30, 90):
        i2c = I2C()
        codec.init_codecs(i2c, board, {"volume_speaker": pct}, 16000, layout)
        dac[pct] = i2c.regs[(0x18, 0x32)]                 # ES8311 DAC volume (REG32)
    hw = volume.hw_gain_db(**board["audio"]["dac"]["hw_gain"])
    assert dac == {30: es8311.volume_reg(30, hw), 90: es8311.volume_reg(90, hw)} and dac[30] < dac[90], dac


def test_volume_mic_sets_the_level_the_far_end_hears():
    from uphone.media import gain
    assert gain.percent_to_q12(70) == gain.UNITY and gain.percent_to_q12(0) == 0
    assert gain.percent_to_q12(30) == int(4096 * 10 ** (-20 / 20) + 0.5)            # -20 dB
    rig = Rig()
    _call(rig, audio={"volume_mic": 30})
    alice = rig.phones["alice"]
    buf = bytearray(b"\x10\x27" * 160)                          # 10000
    from uphone.ua import audio
    audio.mic_frame(alice, buf)
    assert buf[:2] == (1000).to_bytes(2, "little"), buf[:4]     # 10000 at -20 dB


@pytest.mark.parametrize("bits", [32, 64])
def test_mic_gain_viper_twin_matches_the_plain_one_on_micropython(mp, bits):
    import random
    from uphone.media import gain
    rng = random.Random(7)
    pcm = bytes(rng.randrange(256) for _ in range(320)) + b"\xff\x7f\x00\x80\x01\x00\xff\xff"
    for pct in (0, 1, 30, 69, 71, 100):
        want = bytearray(pcm)
        gain.apply_py(want, len(want) >> 1, gain.percent_to_q12(pct))
        out = mp("from uphone.media import gain\nb = bytearray(%r)\ng = gain.percent_to_q12(%d)\n"
                 "gain.apply(b, len(b) >> 1, g)\nprint(gain.IMPL, g, bytes(b).hex())" % (pcm, pct), bits=bits)
        impl, g, hx = out.split()
        assert impl == "viper" and int(g) == gain.percent_to_q12(pct), out    # the same Q12 on both runtimes
        assert bytes.fromhex(hx) == bytes(want), (pct, bits)
