# Interop with real SIP peers on 127.0.0.1: sipp as caller and answerer, Kamailio as registrar and proxy with
# digest auth, baresip as a second phone. The phones are processes on CPython and on the frozen MicroPython (tests/
# proc.py), driven through their consoles; each test starts its peers on free ports and stops them; all bounded.
import os
import time

from tests import peers
from tests.proc import free_port, free_range, phones  # noqa: F401  (phones is a fixture)

AUTO = {"auto_answer": True, "auto_answer_delay_ms": 0}

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


def test_sipp_calls_the_phone_20_times(phones, tmp_path):
    bob = phones.add("bob", features=AUTO)
    proc = peers.sipp_background(["-sn", "uac", "127.0.0.1:%d" % bob.port, "-s", "bob", "-m", "20", "-r", "10",
                                  "-timeout", "40s", "-timeout_error", "-trace_err"], cwd=str(tmp_path))
    rc, out, err = peers.finish(proc, 45)
    assert rc == 0, "sipp uac failed:\n%s\n%s\n%s" % (out[-2000:], err[-2000:], bob.tail())
    assert bob.count(" Ringing AcceptCall Active ") == 20
    assert bob.wait(lambda: not bob.st()["calls"], 5), bob.tail()


def test_phone_calls_sipp_20_times(phones, tmp_path):
    alice = phones.add("alice")
    port = free_port()
    proc = peers.sipp_background(["-sn", "uas", "-p", str(port), "-m", "20", "-timeout", "60s", "-timeout_error"],
                                 cwd=str(tmp_path))
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        for i in range(20):
            ans = alice.ev("MakeCall", target="sip:service@127.0.0.1:%d" % port)
            assert ans.startswith("ok c%d " % (i + 1)), ans
            assert alice.wait(lambda: alice.state() == "Active", 5), alice.tail()
            alice.ev("HangupCall")
            assert alice.wait(lambda: alice.state() == "-", 5), alice.tail()
    finally:
        rc, out, err = peers.finish(proc, 15)
    assert rc == 0, "sipp uas failed:\n%s\n%s" % (out[-2000:], err[-2000:])
    assert alice.count(" Initiating Dialog180Ringing Ringing ") == 20


def test_phone_cancels_a_call_to_sipp(phones, tmp_path):
    scen = tmp_path / "cancel_uas.xml"
    scen.write_text(CANCEL_UAS)
    alice = phones.add("alice")
    port = free_port()
    proc = peers.sipp_background(["-sf", str(scen), "-p", str(port), "-m", "3", "-timeout", "30s", "-timeout_error"],
                                 cwd=str(tmp_path))
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        for i in range(3):
            alice.ev("MakeCall", target="sip:service@127.0.0.1:%d" % port)
            assert alice.wait(lambda: alice.state() == "Ringing", 5), alice.tail()
            alice.ev("HangupCall")
            assert alice.wait(lambda: alice.state() == "-", 5), alice.tail()
    finally:
        rc, out, err = peers.finish(proc, 15)
    assert rc == 0, "sipp cancel scenario failed:\n%s\n%s" % (out[-2000:], err[-2000:])
    assert alice.count("Ringing HangupCall Cancelled") == 3
    assert alice.count("Cancelled Dialog4xxFailure Cancelled") == 3


def _account(user, kam, **more):
    """An account on Kamailio: its domain is the registrar's address, as a phone provisioned for a PBX has it."""
    a = {"user": user, "domain": "127.0.0.1:%d" % kam.port, "password": "secret", "registrar": kam.uri,
         "proxy": kam.uri, "expires": 60, "register": True}
    a.update(more)
    return a


def test_kamailio_register_refresh_and_call_through_proxy(phones, tmp_path):
    kam = peers.Kamailio(tmp_path / "kam", max_expires=8).start()
    try:
        alice = phones.add("alice", account=_account("alice", kam))
        bob = phones.add("bob", account=_account("bob", kam), features={"auto_answer": True,
                                                                        "auto_answer_delay_ms": 200})
        assert alice.wait_line("reg r1 registered", 10) and bob.wait_line("reg r1 registered", 10), \
            (alice.tail(), kam.text()[-3000:])
        # digest auth happened: the first REGISTER was challenged (401) and the retry accepted
        assert alice.saw("auth r1 register challenged by 401: answered"), alice.tail()
        assert kam.auth_lines("challenge", "REGISTER", "alice") >= 1
        assert kam.auth_lines("authorized", "REGISTER", "alice") >= 1
        assert alice.saw("expires=8")
        # refresh before expiry: a second successful registration within the granted 8 s
        assert alice.wait(lambda: alice.count("reg r1 registered") >= 2, 12), alice.tail()
        alice.ev("MakeCall", target="bob")      # a bare user: sip:bob@<the account's domain>, through the proxy
        assert alice.wait(lambda: alice.state() == "Active" and bob.state() == "Active", 10), \
            (alice.tail(), kam.text()[-3000:])
        # Record-Route from Kamailio is in both route sets
        assert int(bob.st()["leg"]["c1"]["routes"]) >= 1, bob.tail()
        assert int(alice.st()["leg"]["c1"]["routes"]) >= 1, alice.tail()
        # the INVITE was challenged with 407 and answered with Proxy-Authorization
        assert alice.saw("auth c1 invite challenged by 407: answered"), alice.tail()
        assert kam.auth_lines("challenge", "INVITE", "alice") >= 1
        assert kam.auth_lines("authorized", "INVITE", "alice") >= 1
        alice.ev("HangupCall")
        assert alice.wait(lambda: alice.state() == "-" and bob.state() == "-", 5), (alice.tail(), bob.tail())
        assert bob.saw("Active DialogBYE Terminating")
        # the password went into no console line (transitions, events, status)
        st_lines = alice.st()["lines"] + bob.st()["lines"]
        assert not any("secret" in l for l in alice.lines + bob.lines + st_lines)
        # closing the console shuts the phone down: it unregisters (Expires: 0) and Kamailio confirms it
        alice.close()
        assert alice.saw("Registered Unregister Unregistering"), alice.tail()
        assert alice.saw("reg r1 unregistered"), alice.tail()
        phones.close()
    finally:
        phones.close(check=False)
        kam.stop()
    log = kam.text()
    assert "ERROR" not in log or "auth" not in log.lower().split("error")[-1][:200]


def test_baresip_through_kamailio_both_directions(phones, tmp_path):
    kam = peers.Kamailio(tmp_path / "kam", users=(("alice", "secret"), ("carol", "secret"))).start()
    bs = None
    try:
        bs = peers.Baresip(tmp_path / "bs", "<sip:carol@127.0.0.1:%d>;auth_pass=secret;regint=60;answermode=auto;"
                           "audio_codecs=PCMU" % kam.port)
        bs.start()
        alice = phones.add("alice", account=_account("alice", kam), features={"auto_answer": True,
                                                                              "auto_answer_delay_ms": 200})
        # baresip registers before its control socket is up, so its log tells (the event went to nobody)
        bs_log = os.path.join(str(tmp_path / "bs"), "baresip.log")
        assert alice.wait_line("reg r1 registered", 10), alice.tail()
        assert alice.wait(lambda: "200 OK" in open(bs_log).read(), 10), open(bs_log).read()[-2000:]
        assert kam.auth_lines("authorized", "REGISTER", "carol") >= 1
        # the phone calls baresip
        alice.ev("MakeCall", target="carol")
        assert alice.wait(lambda: alice.state() == "Active", 15), alice.tail()
        assert alice.wait(lambda: bs.saw("CALL_ESTABLISHED"), 5)
        assert alice.wait(lambda: alice.st()["leg"]["c1"]["flowing"] == "1", 5), alice.tail()
        alice.ev("HangupCall")
        assert alice.wait(lambda: alice.state() == "-", 5), alice.tail()
        assert alice.wait(lambda: bs.saw("CALL_CLOSED"), 5)
        # baresip calls the phone (its INVITE challenged by Kamailio and answered)
        bs.events = []
        bs.command("dial", "sip:alice@127.0.0.1:%d" % kam.port)
        assert alice.wait(lambda: alice.state() == "Active", 15), alice.tail()
        assert alice.wait(lambda: alice.st()["leg"]["c2"]["flowing"] == "1", 5), alice.tail()
        assert kam.auth_lines("authorized", "INVITE", "carol") >= 1
        alice.ev("HangupCall")
        assert alice.wait(lambda: alice.state() == "-", 5), alice.tail()
        assert alice.wait(lambda: bs.saw("CALL_CLOSED"), 5)
        phones.close()
    finally:
        phones.close(check=False)
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
    '  <pause milliseconds="1500"/>', peers.sipp_send("BYE", 3), '  <recv response="200" crlf="true"/>',
    '  <Reference variables="offer1,offer2"/>')


def test_delayed_offer_from_sipp(phones, tmp_path):
    scen = tmp_path / "delayed.xml"
    scen.write_text(DELAYED_OFFER_UAC)
    bob = phones.add("bob", features=AUTO)
    media = free_range(8)
    proc = peers.sipp_background(["-sf", str(scen), "127.0.0.1:%d" % bob.port, "-m", "1", "-mp", str(media),
                                  "-timeout", "20s", "-timeout_error"], cwd=str(tmp_path))
    legs = []
    try:
        # what bob's console says about the call while it lasts (sipp holds each state 0.5-1.5 s)
        while proc.poll() is None:          # sipp's -timeout bounds it
            leg = bob.st()["leg"].get("c1")
            if leg is not None:
                legs.append(leg)
            time.sleep(0.05)
    finally:
        rc, out, err = peers.finish(proc, 15)
    assert rc == 0, "sipp delayed-offer scenario failed:\n%s\n%s" % (out[-2000:], err[-2000:])
    # the answers in the ACKs were used: media to sipp's port, and sipp's recvonly answer put bob on sendonly
    assert any(l["rtp"] == "127.0.0.1:%d" % media and l["dir"] == "sendonly" and l["flowing"] == "1"
               for l in legs), (media, legs[-5:], bob.tail())
    assert bob.count("DialogACK Active StoreAnswerFromACK") == 2
    assert bob.wait_line("Active DialogBYE Terminating", 5)


def test_kamailio_registers_a_phone_that_keeps_only_ha1(phones, tmp_path):
    # accounts.ha1 in place of the password: the phone answers Kamailio's MD5 digest from MD5(user:realm:password)
    # and the password is nowhere on the phone (not in its config, not in what it prints)
    import hashlib
    kam = peers.Kamailio(tmp_path / "kam").start()
    try:
        acct = _account("alice", kam)
        del acct["password"]
        acct["ha1"] = hashlib.md5(b"alice:127.0.0.1:secret").hexdigest()
        alice = phones.add("alice", account=acct)
        assert alice.wait_line("reg r1 registered", 10), (alice.tail(), kam.text()[-2000:])
        assert alice.saw("auth r1 register challenged by 401: answered")
        assert kam.auth_lines("authorized", "REGISTER", "alice") >= 1
        assert "secret" not in open(alice.config).read()
        phones.close()
    finally:
        phones.close(check=False)
        kam.stop()
