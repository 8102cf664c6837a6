# Forking (RFC 3261 12.1.2, 13.2.2.4) on phone processes of both runtimes: sipp answers the phone's INVITE as a
# forking proxy would forward three branches' answers (To tags fA, fB, fC): reliable provisionals from two of them,
# each PRACKed in its own early dialog; the first 2xx (fB) makes the call, the later one (fA) is ACKed and BYEd, and
# the call goes on with fB only.
from tests import peers
from tests import sippx as X
from tests.proc import free_port, phones  # noqa: F401  (phones is a fixture)
from tests.test_prack import _done, _run


def _forking_proxy():
    sc = X.Scenario("forking proxy")
    X.recv_invite(sc)
    sc.send(X.answer(180, "Ringing", "fA", ["Require: 100rel", "RSeq: 1"]))
    sc.recv("request", "PRACK", must=("To: <[^>]*>;tag=fA", "RAck: 1 1 INVITE", "CSeq: 2 PRACK"))
    sc.send(X.reply(200, "OK"))
    # another branch, with early media: its own early dialog, its own RSeq space and CSeq
    sc.send(X.answer(183, "Session Progress", "fB", ["Require: 100rel", "RSeq: 1"], peers.sdp()))
    sc.recv("request", "PRACK", must=("To: <[^>]*>;tag=fB", "RAck: 1 1 INVITE", "CSeq: 2 PRACK"))
    sc.send(X.reply(200, "OK"))
    sc.send(X.answer(180, "Ringing", "fC"))
    sc.pause(300)
    # fB answers first, then fA too (its 200 crossed the CANCEL a proxy would have sent it)
    sc.send(X.answer(200, "OK", "fB", body=peers.sdp()))
    sc.recv("request", "ACK", must=("To: <[^>]*>;tag=fB", "CSeq: 1 ACK"))
    sc.send(X.answer(200, "OK", "fA", body=peers.sdp()))
    sc.recv("request", "ACK", must=("To: <[^>]*>;tag=fA", "CSeq: 1 ACK"))
    sc.recv("request", "BYE", must=("To: <[^>]*>;tag=fA",))
    sc.send(X.reply(200, "OK"))
    # the call is fB's: the phone's hang-up ends that dialog, after its PRACK (CSeq 2)
    sc.recv("request", "BYE", must=("To: <[^>]*>;tag=fB", "CSeq: 3 BYE"))
    sc.send(X.reply(200, "OK"))
    return sc


def test_forked_answers_keep_their_early_dialogs_and_the_first_2xx_wins(phones, tmp_path):
    a = phones.add("alice")
    port = free_port()
    proc = _run(tmp_path, "fork", _forking_proxy(), ["-p", str(port)])
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        a.ev("MakeCall", target="sip:bob@127.0.0.1:%d" % port)
        assert a.wait_line("fork c1 early dialog fB (2 at once)", 5), a.tail()
        assert a.wait_line("Ringing DialogForked Ringing HandleForkedResponse", 5), a.tail()
        assert a.wait_line("EarlyMedia DialogForked EarlyMedia HandleForkedResponse", 5), a.tail()
        assert a.wait_line("fork c1 early dialog fC (3 at once)", 5), a.tail()
        assert a.wait(lambda: a.state() == "Active", 5), a.tail()
        assert a.wait_line("fork c1 2xx from tag fA after the call was answered: ACK and BYE", 5), a.tail()
        # one call, in the dialog of the first 2xx
        assert list(a.st()["calls"]) == ["c1"] and a.count("Dialog200OK") == 1, a.tail()
        a.wait(lambda: False, 0.5)
        a.ev("HangupCall")
        assert a.wait(lambda: a.state() == "-", 5), a.tail()
    finally:
        _done(proc, tmp_path, "fork", a)
