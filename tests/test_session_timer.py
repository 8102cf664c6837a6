# Session timers (RFC 4028) on phone processes of both runtimes against sipp scenarios of our own that check every
# Session-Expires, Min-SE and Require the phone sends: the phone as UAC told to refresh (422 first, then refreshes
# by UPDATE halfway, again at once after a 422 to that refresh), as UAS refreshing by re-INVITE (the far end allows
# no UPDATE), as UAS whose far end refreshes once and then stops (the phone's BYE at the expiry), a too-small
# interval refused with 422; phone to phone, who refreshes, and a held call refreshing a muted one.
# The intervals are the smallest RFC 4028 allows (Min-SE 90 s): these tests take about a minute each.
import time

from tests import peers
from tests import sippx as X
from tests.proc import free_port, phones  # noqa: F401  (phones is a fixture)
from tests.test_prack import _done, _run

AUTO = {"auto_answer": True, "auto_answer_delay_ms": 0}
ALLOW_NO_UPDATE = "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS"
NO_RTP_TIMEOUT = {"rtp_timeout_s": 0}       # sipp sends no RTP, and these calls outlast the 30 s default


def test_phone_as_uac_retries_a_422_and_refreshes_by_update(phones, tmp_path):
    # the phone asks for 90 s; sipp wants at least 100 (422); the phone asks again with 100, sipp makes the phone
    # the refresher (refresher=uac), and the phone's UPDATE comes halfway, 50 s later
    sc = X.Scenario("session timer, phone refreshes by UPDATE")
    X.recv_invite(sc, must=("Session-Expires: 90[[:space:]]", "Min-SE: 90", "Supported: [a-z0-9, ]*timer", "CSeq: 1 INVITE"))
    sc.send(X.answer(422, "Session Interval Too Small", "f1", ["Min-SE: 100"]))
    sc.recv("request", "ACK", must=("CSeq: 1 ACK",))
    X.recv_invite(sc, must=("Session-Expires: 100[[:space:]]", "Min-SE: 100", "CSeq: 2 INVITE"))
    sc.send(X.answer(200, "OK", "fA", ["Session-Expires: 100;refresher=uac", "Require: timer",
                                       "Allow: INVITE, ACK, BYE, CANCEL, UPDATE"], body=peers.sdp()))
    sc.recv("request", "ACK", must=("CSeq: 2 ACK",))
    sc.recv("request", "UPDATE", must=("Session-Expires: 100;refresher=uac", "Min-SE: 100", "Content-Length: *0",
                                       "To: <[^>]*>;tag=fA"), more=' timeout="65000"')
    # sipp now wants 120 s: the refresh goes again at once with it, and keeps the larger Min-SE (7.4)
    sc.send(X.reply(422, "Session Interval Too Small", ["Min-SE: 120"]))
    sc.recv("request", "UPDATE", must=("Session-Expires: 120;refresher=uac", "Min-SE: 120", "CSeq: 4 UPDATE"))
    sc.send(X.reply(200, "OK", ["Session-Expires: 120;refresher=uac", "Require: timer"]))
    sc.recv("request", "BYE", must=("To: <[^>]*>;tag=fA",))
    sc.send(X.reply(200, "OK"))
    a = phones.add("alice", sip={"session_expires_s": 90}, media=NO_RTP_TIMEOUT)
    port = free_port()
    proc = _run(tmp_path, "uac", sc, ["-p", str(port)], timeout=100)
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        t0 = time.time()
        a.ev("MakeCall", target="sip:bob@127.0.0.1:%d" % port)
        assert a.wait_line("timer c1 422: INVITE again with Session-Expires 100", 5), a.tail()
        assert a.wait_line("timer c1 100 s, we refresh", 5), a.tail()
        assert a.wait(lambda: a.state() == "Active", 5), a.tail()
        assert a.wait_line("Active SessionTimerExpired Refreshing RefreshSession", 60), a.tail()
        assert time.time() - t0 >= 49, a.tail()             # halfway through 100 s, not before
        assert a.wait_line("timer c1 422 to our refresh: again with Session-Expires 120", 5), a.tail()
        assert a.wait_line("Refreshing SessionRefreshed Active", 5), a.tail()
        assert a.saw("timer c1 120 s, we refresh") and a.count("timer c1 100 s, we refresh") == 1, a.tail()
        a.ev("HangupCall")
        assert a.wait(lambda: a.state() == "-", 5), a.tail()
    finally:
        _done(proc, tmp_path, "uac", a)


def test_phone_as_uas_refreshes_by_reinvite_and_refuses_a_small_interval(phones, tmp_path):
    b = phones.add("bob", features=AUTO, media=NO_RTP_TIMEOUT)
    # 60 s is below the phone's Min-SE (90): 422 with Min-SE, and no call (RFC 4028 8.1)
    sc = X.Scenario("too small")
    inv = X.invite(sc, extra=["Session-Expires: 60", "Supported: timer"])
    sc.recv("response", "100", optional=True)
    sc.recv("response", "422", must=("Min-SE: 90",))
    X.ack_non2xx(sc, inv)
    _done(_run(tmp_path, "small", sc, ["127.0.0.1:%d" % b.port]), tmp_path, "small", b)
    assert not b.saw("IncomingCall"), b.tail()
    # sipp asks the phone to refresh (refresher=uas) and allows no UPDATE: a re-INVITE with the offer, 45 s later
    sc = X.Scenario("session timer, phone refreshes by re-INVITE")
    X.invite(sc, extra=["Session-Expires: 90;refresher=uas", "Supported: timer", ALLOW_NO_UPDATE])
    sc.recv("response", "100", optional=True)
    sc.recv("response", "180")
    sc.recv("response", "200", must=("Session-Expires: 90;refresher=uas", "Require: timer"),
            capture=(("bobto", "To", " *(.*)"),), more=' rrs="true"')
    X.in_dialog(sc, "ACK", 1)
    sc.recv("request", "INVITE", must=("Session-Expires: 90;refresher=uac", "Min-SE: 90", "m=audio "),
            more=' timeout="60000"')
    sc.send(X.reply(200, "OK", ["Session-Expires: 90;refresher=uac", "Require: timer", ALLOW_NO_UPDATE],
                    body=peers.sdp()))
    sc.recv("request", "ACK")
    sc.raw(peers.sipp_send("BYE", 2).replace("[last_To:]", "To: [$bobto]"))
    sc.recv("response", "200")
    proc = _run(tmp_path, "uas", sc, ["127.0.0.1:%d" % b.port], timeout=100)
    try:
        assert b.wait_line("timer c1 90 s, we refresh", 10), b.tail()
        t0 = time.time()
        assert b.wait_line("Active SessionTimerExpired Refreshing RefreshSession", 60), b.tail()
        assert time.time() - t0 >= 43, b.tail()
        assert b.wait_line("Refreshing Dialog200OK Active", 5), b.tail()
        assert b.wait(lambda: b.state() == "-", 10), b.tail()
    finally:
        _done(proc, tmp_path, "uas", b)
    assert b.count("timer c1 90 s, we refresh") == 2, b.tail()


def test_phone_ends_the_call_when_the_refresher_stops(phones, tmp_path):
    # sipp is the refresher: it refreshes once by UPDATE (the phone's 2xx echoes the interval), then stops; the
    # phone sends BYE 90 - 30 = 60 s after that refresh (RFC 4028 10)
    sc = X.Scenario("session timer, the far end stops refreshing")
    X.invite(sc, extra=["Session-Expires: 90;refresher=uac", "Supported: timer"])
    sc.recv("response", "100", optional=True)
    sc.recv("response", "180")
    sc.recv("response", "200", must=("Session-Expires: 90;refresher=uac", "Require: timer"),
            capture=(("bobto", "To", " *(.*)"),), more=' rrs="true"')
    X.in_dialog(sc, "ACK", 1)
    sc.pause(1000)
    X.in_dialog(sc, "UPDATE", 2, extra=["Session-Expires: 90;refresher=uac", "Supported: timer"])
    sc.recv("response", "200", must=("Session-Expires: 90;refresher=uac", "Require: timer"))
    sc.recv("request", "BYE", more=' timeout="75000"')
    sc.send(X.reply(200, "OK"))
    b = phones.add("bob", features=AUTO, media=NO_RTP_TIMEOUT)
    proc = _run(tmp_path, "expiry", sc, ["127.0.0.1:%d" % b.port], timeout=100)
    try:
        assert b.wait_line("timer c1 90 s, they refresh", 10), b.tail()
        assert b.wait_line("Active DialogUPDATE Active", 5), b.tail()
        t0 = time.time()
        assert b.wait_line("Active SessionExpired Terminating SendBYE", 70), b.tail()
        assert 57 <= time.time() - t0, b.tail()
        assert b.wait(lambda: b.state() == "-", 5), b.tail()
    finally:
        _done(proc, tmp_path, "expiry", b)
    assert b.count("timer c1 90 s, they refresh") == 2, b.tail()


def test_phone_to_phone_agrees_who_refreshes(phones):
    # alice asks for 120 s; bob (who asks for nothing himself) answers with it and makes alice, who supports
    # timers, the refresher
    a = phones.add("alice", sip={"session_expires_s": 120})
    b = phones.add("bob", features=AUTO)
    a.ev("MakeCall", target=b.uri)
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    assert a.saw("timer c1 120 s, we refresh") and b.saw("timer c1 120 s, they refresh"), (a.tail(), b.tail())
    a.ev("HangupCall")
    assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())


def test_held_and_muted_calls_keep_their_session_refreshed(phones):
    # alice asks for 90 s and refreshes (bob makes her the refresher); she holds the call and bob mutes his side:
    # halfway, alice's refresh (an UPDATE: bob allows it) goes from OnHold and bob answers it while Muted; digits by
    # INFO still reach the held call
    quiet = {"rtp_timeout_s": 0, "dtmf": "info"}     # a held call hears no RTP
    a = phones.add("alice", sip={"session_expires_s": 90}, media=quiet)
    b = phones.add("bob", features=AUTO, media=quiet)
    a.ev("MakeCall", target=b.uri)
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    assert a.saw("timer c1 90 s, we refresh") and b.saw("timer c1 90 s, they refresh"), (a.tail(), b.tail())
    t0 = time.time()
    assert a.ev("HoldCall").startswith("ok c1 OnHold"), a.tail()
    assert a.wait_line("OnHold Dialog200OK OnHold", 5), a.tail()
    assert b.ev("MuteCall").startswith("ok c1 Muted"), b.tail()
    assert b.ev("SendDTMF", digits="3").startswith("ok c1 Muted"), b.tail()
    assert a.wait_line("OnHold DialogINFO OnHold ReportDTMF,Send200OK", 5), a.tail()
    assert a.wait_line("OnHold SessionTimerExpired OnHold RefreshSession", 60), a.tail()
    assert time.time() - t0 >= 40, a.tail()
    assert b.wait_line("Muted DialogUPDATE Muted", 5), b.tail()
    assert a.wait_line("OnHold SessionRefreshed OnHold", 5), a.tail()
    assert b.count("timer c1 90 s, they refresh") >= 3, b.tail()    # the answer, the hold re-INVITE, the UPDATE
    assert a.ev("ResumeCall").startswith("ok c1 Resuming"), a.tail()
    assert a.wait(lambda: a.state() == "Active", 5), a.tail()
    a.ev("HangupCall")
    assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())


def test_a_refused_refresh_leaves_the_call_until_it_expires(phones, tmp_path):
    # sipp makes the phone the refresher (refresher=uas) and allows UPDATE; it refuses the phone's refresh with 500:
    # the call goes on (Refreshing -> Active) until the interval's end, when the phone itself sends BYE (RFC 4028 10)
    sc = X.Scenario("session timer, refresh refused")
    X.invite(sc, extra=["Session-Expires: 90;refresher=uas", "Supported: timer",
                        "Allow: INVITE, ACK, BYE, CANCEL, UPDATE"])
    sc.recv("response", "100", optional=True)
    sc.recv("response", "180")
    sc.recv("response", "200", must=("Session-Expires: 90;refresher=uas",), more=' rrs="true"')
    X.in_dialog(sc, "ACK", 1)
    sc.recv("request", "UPDATE", must=("Session-Expires: 90;refresher=uac",), more=' timeout="60000"')
    sc.send(X.reply(500, "Server Internal Error"))
    sc.recv("request", "BYE", more=' timeout="30000"')
    sc.send(X.reply(200, "OK"))
    b = phones.add("bob", features=AUTO, media=NO_RTP_TIMEOUT)
    proc = _run(tmp_path, "refused", sc, ["127.0.0.1:%d" % b.port], timeout=100)
    try:
        assert b.wait_line("timer c1 90 s, we refresh", 10), b.tail()
        t0 = time.time()
        assert b.wait_line("Refreshing Dialog4xxFailure Active", 60), b.tail()
        assert b.wait_line("Active SessionExpired Terminating SendBYE", 20), b.tail()
        assert 57 <= time.time() - t0, b.tail()
        assert b.wait(lambda: b.state() == "-", 5), b.tail()
    finally:
        _done(proc, tmp_path, "refused", b)


def test_what_reaches_a_call_while_its_refresh_is_out(phones, tmp_path):
    # the phone refreshes by UPDATE (refresher=uas); before sipp answers it, sipp's own INFO digit and UPDATE reach
    # the call in Refreshing and are answered; sipp then refuses the refresh with 491 (glare): the phone waits its
    # 0-2 s (RFC 3261 14.1, the callee's share) and refreshes again; that second refresh is crossed by sipp's BYE.
    # T1 is 2 s so the phone repeats nothing while sipp holds its answers back
    sc = X.Scenario("session timer, requests while refreshing")
    X.invite(sc, extra=["Session-Expires: 90;refresher=uas", "Supported: timer",
                        "Allow: INVITE, ACK, BYE, CANCEL, UPDATE, INFO"])
    sc.recv("response", "100", optional=True)
    sc.recv("response", "180")
    sc.recv("response", "200", must=("Session-Expires: 90;refresher=uas",),
            capture=(("bobto", "To", " *(.*)"),), more=' rrs="true"')
    X.in_dialog(sc, "ACK", 1)
    sc.recv("request", "UPDATE", must=("Session-Expires: 90;refresher=uac",),
            capture=(("uvia", "Via", " *(.*)"), ("ufrom", "From", " *(.*)"), ("uto", "To", " *(.*)"),
                     ("ucseq", "CSeq", " *(.*)")), more=' timeout="60000"')
    bob_to = lambda text: text.replace("[last_To:]", "To: [$bobto]")     # noqa: E731
    sc.raw(bob_to(peers.sipp_send("INFO", 2, _dtmf_relay("5"), ctype="application/dtmf-relay")))
    sc.recv("response", "200", must=("CSeq: 2 INFO",))
    sc.raw(bob_to(peers.sipp_send("UPDATE", 3)))
    sc.recv("response", "200", must=("CSeq: 3 UPDATE",))
    sc.send("\n".join(["SIP/2.0 491 Request Pending", "Via: [$uvia]", "From: [$ufrom]", "To: [$uto]",
                       "[last_Call-ID:]", "CSeq: [$ucseq]", "Content-Length: 0", ""]))
    sc.recv("request", "UPDATE", must=("Session-Expires: 90;refresher=uac",), more=' timeout="10000"')
    sc.pause(1500)                  # the phone's user presses a key while this refresh is out
    sc.raw(bob_to(peers.sipp_send("BYE", 4)))
    sc.recv("response", "200", must=("CSeq: 4 BYE",))
    b = phones.add("bob", features=AUTO, media=NO_RTP_TIMEOUT, sip={"t1_ms": 2000, "t2_ms": 8000})
    proc = _run(tmp_path, "crossing", sc, ["127.0.0.1:%d" % b.port], timeout=100)
    try:
        assert b.wait_line("Active SessionTimerExpired Refreshing RefreshSession", 60), b.tail()
        assert b.wait_line("Refreshing DialogINFO Refreshing ReportDTMF,Send200OK", 5), b.tail()
        assert b.wait_line("Refreshing DialogUPDATE Refreshing", 5), b.tail()
        assert b.wait_line("Refreshing Dialog491Glare Refreshing StartGlareTimer", 5), b.tail()
        assert b.wait_line("Refreshing GlareRetry Refreshing RefreshSession", 5), b.tail()
        assert b.ev("SendDTMF", digits="4") == "ok c1 Refreshing", b.tail()      # RFC 4733 events go out meanwhile
        assert b.saw("tr c1 Refreshing SendDTMF Refreshing SendDTMFTone"), b.tail()
        assert b.wait_line("Refreshing DialogBYE Terminating", 5), b.tail()
    finally:
        _done(proc, tmp_path, "crossing", b)
    assert b.saw("dtmf c1 5"), b.tail()


def _dtmf_relay(digit):
    return "Signal=%s\nDuration=160\n" % digit
