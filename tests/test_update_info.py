# UPDATE (RFC 3311) and INFO (RFC 6086, DTMF as application/dtmf-relay) in dialogs, on phone processes of both
# runtimes against sipp scenarios of our own that check what the phone answers and sends: sipp's UPDATE offers in
# the confirmed dialog (with and without SDP) and INFO digits to the phone; the phone's and sipp's UPDATE offers in
# the early dialog of a reliable 183 and the phone's in the confirmed dialog, and the phone's INFO digits.
from tests import peers
from tests import sippx as X
from tests.proc import free_port, phones  # noqa: F401  (phones is a fixture)
from tests.test_prack import _done, _run

AUTO = {"auto_answer": True, "auto_answer_delay_ms": 0}
QUIET = {"rtp_timeout_s": 0}        # sipp sends no RTP


def _dtmf_relay(digit):
    return "Signal=%s\nDuration=160\n" % digit


def test_update_and_info_from_the_far_end_in_the_confirmed_dialog(phones, tmp_path):
    sc = X.Scenario("UPDATE and INFO to the phone")
    X.invite(sc)
    sc.recv("response", "100", optional=True)
    sc.recv("response", "180")
    sc.recv("response", "200", capture=(("bobto", "To", " *(.*)"),), more=' rrs="true"')
    X.in_dialog(sc, "ACK", 1)
    # a new offer (sipp puts the call on hold): the answer is in the 200, recvonly
    X.in_dialog(sc, "UPDATE", 2, body=peers.sdp(direction="sendonly", version=2353687638))
    sc.recv("response", "200", must=("CSeq: 2 UPDATE", "Content-Type: application/sdp", "a=recvonly"))
    # no offer: a bare refresh, answered without SDP
    X.in_dialog(sc, "UPDATE", 3)
    sc.recv("response", "200", must=("CSeq: 3 UPDATE", "Content-Length: *0"))
    # DTMF by INFO; a body the phone does not read gets 415 with what it accepts
    X.in_dialog(sc, "INFO", 4, body=_dtmf_relay("7"), ctype="application/dtmf-relay")
    sc.recv("response", "200", must=("CSeq: 4 INFO",))
    X.in_dialog(sc, "INFO", 5, body="hello", ctype="text/plain")
    sc.recv("response", "415", must=("Accept: application/dtmf-relay",))
    X.in_dialog(sc, "BYE", 6)
    sc.recv("response", "200", must=("CSeq: 6 BYE",))
    b = phones.add("bob", features=AUTO, media=QUIET)
    proc = _run(tmp_path, "uas", sc, ["127.0.0.1:%d" % b.port])
    try:
        assert b.wait_line("Active DialogUPDATE Active StoreRemoteSDP,NegotiateSDPAsUAS,GenerateLocalSDP,Send200OK",
                           10), b.tail()
        assert b.wait_line("Active DialogINFO Active ReportDTMF,Send200OK", 5), b.tail()
        assert b.wait(lambda: b.state() == "-", 5), b.tail()
    finally:
        _done(proc, tmp_path, "uas", b)
    assert b.count("Active DialogUPDATE Active") == 2 and b.saw("dtmf c1 7"), b.tail()


def test_update_offers_in_the_early_and_confirmed_dialog_and_info_digits(phones, tmp_path):
    sc = X.Scenario("UPDATE in the early dialog")
    sc.recv("request", "INVITE", capture=X.INVITE_CAPTURE + (("ifrom", "From", " *(.*)"),
                                                             ("icontact", "Contact", " *<([^>]*)>")),
            more=' rrs="true"')
    sc.send(X.answer(183, "Session Progress", "fA", ["Require: 100rel", "RSeq: 1"], peers.sdp()))
    sc.recv("request", "PRACK", must=("RAck: 1 1 INVITE",))
    sc.send(X.reply(200, "OK"))
    # sipp offers again in the early dialog (RFC 3311 5.1): the phone answers in the UPDATE's 200
    sc.send("\n".join([
        "UPDATE [$icontact] SIP/2.0", "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
        "From: [$ito];tag=fA", "To: [$ifrom]", "[last_Call-ID:]", "CSeq: 1 UPDATE",
        "Contact: <sip:sipp@[local_ip]:[local_port]>", "Max-Forwards: 70", "Content-Type: application/sdp",
        "Content-Length: [len]", "", peers.sdp(direction="sendonly", version=2353687638)]))
    sc.recv("response", "200", must=("CSeq: 1 UPDATE", "a=recvonly"))
    # the phone's own offer in the early dialog (its user asks: SendUpdate)
    sc.recv("request", "UPDATE", must=("CSeq: 3 UPDATE", "To: <[^>]*>;tag=fA", "m=audio "))
    sc.send(X.reply(200, "OK", body=peers.sdp(version=2353687639)))
    sc.send(X.answer(200, "OK", "fA", body=peers.sdp(version=2353687639)))
    sc.recv("request", "ACK", must=("CSeq: 1 ACK",))
    # and in the confirmed dialog, then a digit by INFO
    sc.recv("request", "UPDATE", must=("CSeq: 4 UPDATE", "m=audio "))
    sc.send(X.reply(200, "OK", body=peers.sdp(version=2353687640)))
    sc.recv("request", "INFO", must=("CSeq: 5 INFO", "Content-Type: application/dtmf-relay", "Signal=4"))
    sc.send(X.reply(200, "OK"))
    sc.recv("request", "BYE", must=("CSeq: 6 BYE",))
    sc.send(X.reply(200, "OK"))
    a = phones.add("alice", media={"rtp_timeout_s": 0, "dtmf": "info"})
    port = free_port()
    proc = _run(tmp_path, "uac", sc, ["-p", str(port)])
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        a.ev("MakeCall", target="sip:bob@127.0.0.1:%d" % port)
        assert a.wait_line("EarlyMedia DialogUPDATE EarlyMedia StoreRemoteSDP,NegotiateSDPAsUAS", 5), a.tail()
        assert a.ev("SendUpdate").startswith("ok c1 EarlyMedia"), a.tail()
        assert a.wait_line("EarlyMedia Update200OK EarlyMedia StoreRemoteSDP,NegotiateSDPAsUAC", 5), a.tail()
        assert a.wait(lambda: a.state() == "Active", 5), a.tail()
        assert a.ev("SendUpdate").startswith("ok c1 Active"), a.tail()
        assert a.wait_line("Active Update200OK Active StoreRemoteSDP,NegotiateSDPAsUAC", 5), a.tail()
        assert a.ev("SendDTMF", digits="4").startswith("ok c1 Active"), a.tail()
        assert a.wait_line("resp c1 info 200 OK", 5), a.tail()
        a.ev("HangupCall")
        assert a.wait(lambda: a.state() == "-", 5), a.tail()
    finally:
        _done(proc, tmp_path, "uac", a)


def test_update_in_the_early_dialog_of_a_ringing_phone(phones, tmp_path):
    # sipp requires 100rel: after its PRACK the phone rings in an early dialog; sipp's UPDATE with an offer gets 500
    # with Retry-After (its INVITE's offer is not answered yet, RFC 3311 5.2), one without SDP gets 200; then the
    # phone answers
    sc = X.Scenario("UPDATE to a ringing phone")
    X.invite(sc, extra=["Require: 100rel", "Supported: 100rel"])
    sc.recv("response", "100", optional=True)
    sc.recv("response", "180", capture=(("rseq", "RSeq", " *([0-9]+)"),), more=' rrs="true"')
    X.in_dialog(sc, "PRACK", 2, extra=["RAck: [$rseq] 1 INVITE"])
    sc.recv("response", "200", must=("CSeq: 2 PRACK",))
    X.in_dialog(sc, "UPDATE", 3, body=peers.sdp(version=2353687638))
    sc.recv("response", "500", must=("Retry-After: ",))
    X.in_dialog(sc, "UPDATE", 4)
    sc.recv("response", "200", must=("CSeq: 4 UPDATE",))
    sc.recv("response", "200", must=("CSeq: 1 INVITE",), more=' rrs="true"')
    X.in_dialog(sc, "ACK", 1)
    X.in_dialog(sc, "BYE", 5)
    sc.recv("response", "200", must=("CSeq: 5 BYE",))
    b = phones.add("bob", features={"auto_answer": True, "auto_answer_delay_ms": 1500}, media=QUIET)
    proc = _run(tmp_path, "early", sc, ["127.0.0.1:%d" % b.port])
    try:
        assert b.wait_line("WaitingForPRACK DialogPRACK Ringing", 10), b.tail()
        assert b.wait_line("Ringing DialogUPDATE Ringing Send200OK", 5), b.tail()
        assert b.wait(lambda: b.state() == "-", 10), b.tail()
    finally:
        _done(proc, tmp_path, "early", b)
    assert b.count("DialogUPDATE") == 1, b.tail()
