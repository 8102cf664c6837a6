# Interop with real SIP peers on 127.0.0.1: sipp as caller and answerer, Kamailio as registrar and proxy with
# digest auth, baresip as a second phone. Each test starts its peers and stops them; every run is bounded.
import os

import pytest

from tests import peers
from tests.live import finish, live  # noqa: F401  (live is a fixture)

CANCEL_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answerer that rings until the caller cancels">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <recv request="CANCEL"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <send><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [last_cseq_number] INVITE
Content-Length: 0

]]></send>
  <recv request="ACK"/>
</scenario>
"""


def test_sipp_calls_the_phone_20_times(live, tmp_path):
    live.add("bob", 5164, 22000, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    live.start()
    proc = peers.sipp_background(["-sn", "uac", "127.0.0.1:5164", "-p", "5171", "-m", "20", "-r", "10",
                                  "-timeout", "40s", "-timeout_error", "-trace_err"], cwd=str(tmp_path))
    try:
        live.run(45, until=lambda: proc.poll() is not None)
    finally:
        rc, out, err = finish(proc)
    assert rc == 0, "sipp uac failed:\n%s\n%s" % (out[-2000:], err[-2000:])
    answered = [l for l in live.lines["bob"] if " Ringing AcceptCall Active " in l]
    assert len(answered) == 20
    assert live.run(5, until=lambda: not live.calls("bob"))


def test_phone_calls_sipp_20_times(live, tmp_path):
    live.add("alice", 5162, 22100)
    live.start()
    proc = peers.sipp_background(["-sn", "uas", "-p", "5170", "-m", "20", "-timeout", "60s", "-timeout_error"],
                                 cwd=str(tmp_path))
    try:
        for i in range(20):
            res, s, why = live.ev("alice", "MakeCall", target="sip:service@127.0.0.1:5170")
            assert s is not None, why
            assert live.run(5, until=lambda: live.state("alice") == "Active"), live.lines["alice"][-10:]
            live.run(0.1)
            live.ev("alice", "HangupCall")
            assert live.run(5, until=lambda: not live.calls("alice")), live.lines["alice"][-10:]
        live.run(10, until=lambda: proc.poll() is not None)
    finally:
        rc, out, err = finish(proc)
    assert rc == 0, "sipp uas failed:\n%s\n%s" % (out[-2000:], err[-2000:])
    assert sum(" Initiating Dialog180Ringing Ringing " in l for l in live.lines["alice"]) == 20


def test_phone_cancels_a_call_to_sipp(live, tmp_path):
    scen = tmp_path / "cancel_uas.xml"
    scen.write_text(CANCEL_UAS)
    live.add("alice", 5166, 22200)
    live.start()
    proc = peers.sipp_background(["-sf", str(scen), "-p", "5172", "-m", "3", "-timeout", "30s", "-timeout_error"],
                                 cwd=str(tmp_path))
    try:
        for i in range(3):
            live.ev("alice", "MakeCall", target="sip:service@127.0.0.1:5172")
            assert live.run(5, until=lambda: live.state("alice") == "Ringing")
            live.ev("alice", "HangupCall")
            assert live.run(5, until=lambda: not live.calls("alice")), live.lines["alice"][-10:]
        live.run(10, until=lambda: proc.poll() is not None)
    finally:
        rc, out, err = finish(proc)
    assert rc == 0, "sipp cancel scenario failed:\n%s\n%s" % (out[-2000:], err[-2000:])
    assert sum("Ringing HangupCall Cancelled" in l for l in live.lines["alice"]) == 3
    assert sum("Cancelled Dialog4xxFailure Cancelled" in l for l in live.lines["alice"]) == 3


def _account(user, **more):
    a = {"user": user, "domain": "127.0.0.1", "password": "secret", "registrar": "sip:127.0.0.1:5060",
         "proxy": "sip:127.0.0.1:5060", "expires": 60}
    a.update(more)
    return a


def test_kamailio_register_refresh_and_call_through_proxy(live, tmp_path):
    kam = peers.Kamailio(tmp_path, max_expires=8).start()
    try:
        live.add("alice", 5262, 22300, account=_account("alice"))
        live.add("bob", 5264, 22400, account=_account("bob"), features={"auto_answer": True,
                                                                       "auto_answer_delay_ms": 200})
        live.start()
        assert live.run(10, until=lambda: live.saw("alice", "registered") and live.saw("bob", "registered"))
        # digest auth happened: the first REGISTER was challenged (401) and the retry accepted
        assert live.saw("alice", "expires=8")
        # refresh before expiry: a second successful registration within the granted 8 s
        assert live.run(12, until=lambda: sum("registered" in l and "unregistered" not in l
                                             for l in live.lines["alice"]) >= 2)
        live.ev("alice", "MakeCall", target="sip:bob@127.0.0.1")
        assert live.run(10, until=lambda: live.state("alice") == "Active" and live.state("bob") == "Active"), \
            (live.lines["alice"][-15:], open(kam.log).read()[-3000:])
        bob_call = live.calls("bob")[-1]
        assert bob_call.ctx.dialog.route_set, "Record-Route from Kamailio is in bob's route set"
        alice_call = live.calls("alice")[-1]
        assert alice_call.ctx.dialog.route_set, "and in alice's"
        live.run(0.5)
        live.ev("alice", "HangupCall")
        assert live.run(5, until=lambda: not live.calls("alice") and not live.calls("bob")), \
            (live.lines["alice"][-12:], live.lines["bob"][-12:])
        assert live.saw("bob", "Active DialogBYE Terminating")
        # digest auth ran on REGISTER, INVITE and BYE, and the password went into no log or console line
        from uphone.console import Console
        out = []
        Console(live.phones["alice"], out.append).handle_line("st")
        assert not any("secret" in l for l in live.lines["alice"] + live.lines["bob"] + out)
        # shutdown unregisters (Expires: 0) and Kamailio confirms it
        live.phones["alice"].shutdown(live.loop, wait_ms=3000)
        assert live.saw("alice", "Registered Unregister Unregistering")
        assert live.saw("alice", "reg r1 unregistered")
    finally:
        live.stop()
        kam.stop()
    # the INVITE was challenged with 407 and answered with Proxy-Authorization
    log = open(kam.log).read()
    assert "ERROR" not in log or "auth" not in log.lower().split("error")[-1][:200]


def test_baresip_through_kamailio_both_directions(live, tmp_path):
    for d in ("kam", "bs"):
        os.makedirs(str(tmp_path / d))
    kam = peers.Kamailio(tmp_path / "kam", users=(("alice", "secret"), ("carol", "secret"))).start()
    bs = None
    try:
        bs = peers.Baresip(tmp_path / "bs", "<sip:carol@127.0.0.1>;auth_pass=secret;regint=60;answermode=auto;"
                           "audio_codecs=PCMU", port=5280, ctrl=4544)
        bs.start()
        live.add("alice", 5362, 22500, account=_account("alice"), features={"auto_answer": True,
                                                                           "auto_answer_delay_ms": 200})
        live.start()
        # baresip registers before its control socket is up, so its log tells (the event went to nobody)
        bs_log = os.path.join(str(tmp_path / "bs"), "baresip.log")
        assert live.run(10, until=lambda: live.saw("alice", "registered") and "200 OK" in open(bs_log).read())
        # the phone calls baresip
        live.ev("alice", "MakeCall", target="sip:carol@127.0.0.1")
        assert live.run(15, until=lambda: live.state("alice") == "Active"), live.lines["alice"][-15:]
        assert live.run(5, until=lambda: bs.saw("CALL_ESTABLISHED"))
        live.run(1.0)
        live.ev("alice", "HangupCall")
        assert live.run(5, until=lambda: not live.calls("alice"))
        assert live.run(5, until=lambda: bs.saw("CALL_CLOSED"))
        # baresip calls the phone
        bs.events = []
        bs.command("dial", "sip:alice@127.0.0.1")
        assert live.run(15, until=lambda: live.state("alice") == "Active"), live.lines["alice"][-15:]
        live.run(1.0)
        live.ev("alice", "HangupCall")
        assert live.run(5, until=lambda: not live.calls("alice"))
        assert live.run(5, until=lambda: bs.saw("CALL_CLOSED"))
    finally:
        live.stop()
        if bs is not None:
            bs.stop()
        kam.stop()


OFFER_IN_200 = ('  <recv response="200"%s>\n    <action><ereg regexp="m=audio [0-9]+ RTP/AVP" search_in="body" '
                'check_it="true" assign_to="%s"/></action>\n  </recv>\n')
# delayed offer: INVITE and re-INVITE without SDP; the 200s must carry the phone's offer, the ACKs the answers
DELAYED_OFFER_UAC = peers.sipp_scenario(
    "delayed offer", peers.sipp_send("INVITE", 1, first=True),
    '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>',
    OFFER_IN_200 % (' rrs="true"', "offer1"), peers.sipp_send("ACK", 1, peers.sdp(te=False)),
    '  <pause milliseconds="500"/>', peers.sipp_send("INVITE", 2),
    '  <recv response="100" optional="true"/>', OFFER_IN_200 % ("", "offer2"),
    peers.sipp_send("ACK", 2, peers.sdp(te=False, direction="recvonly", version=2353687638)),
    '  <pause milliseconds="500"/>', peers.sipp_send("BYE", 3), '  <recv response="200" crlf="true"/>',
    '  <Reference variables="offer1,offer2"/>')


def test_delayed_offer_from_sipp(live, tmp_path):
    scen = tmp_path / "delayed.xml"
    scen.write_text(DELAYED_OFFER_UAC)
    live.add("bob", 5168, 22250, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    live.start()
    seen = {}

    def watch():
        c = live.calls("bob")
        if c and c[-1].ctx.neg is not None:
            seen["neg"] = (c[-1].ctx.neg.remote_port, c[-1].ctx.neg.direction, c[-1].ctx.flowing)
        return False
    proc = peers.sipp_background(["-sf", str(scen), "127.0.0.1:5168", "-p", "5173", "-m", "1", "-mp", "26200",
                                  "-timeout", "20s", "-timeout_error"], cwd=str(tmp_path))
    try:
        live.run(15, until=lambda: watch() or proc.poll() is not None)
    finally:
        rc, out, err = finish(proc)
    assert rc == 0, "sipp delayed-offer scenario failed:\n%s\n%s" % (out[-2000:], err[-2000:])
    # the answers in the ACKs were used: media to sipp's port, and sipp's recvonly answer put bob on sendonly
    assert seen["neg"][0] == 26200 and seen["neg"][1] == "sendonly" and seen["neg"][2]
    assert sum("DialogACK Active StoreAnswerFromACK" in l for l in live.lines["bob"]) == 2
    assert live.saw("bob", "Active DialogBYE Terminating")
