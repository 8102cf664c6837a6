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


def test_kamailio_forks_to_two_phones_of_one_user(phones, tmp_path):
    # two phones register as bob at Kamailio, which forks alice's INVITE to both (parallel forking, lookup +
    # t_relay): both ring (two early dialogs at alice), both answer at once; the first 2xx makes the call, the other
    # branch is cancelled by Kamailio or, when its 2xx crossed the CANCEL, ACKed and BYEd by alice
    from tests.proc import account_at
    kam = peers.Kamailio(tmp_path / "kam").start()
    try:
        auto = {"auto_answer": True, "auto_answer_delay_ms": 400}
        quiet = {"rtp_timeout_s": 0}
        a = phones.add("alice", account=account_at("alice", kam), media=quiet)
        b1 = phones.add("bob", account=account_at("bob", kam), features=auto, media=quiet)
        b2 = phones.add("bob2", account=dict(account_at("bob", kam)), features=auto, media=quiet)
        for p in (a, b1, b2):
            assert p.wait_line("reg r1 registered", 10), (p.tail(), kam.text()[-3000:])
        a.ev("MakeCall", target="bob")
        assert a.wait_line("Ringing DialogForked Ringing HandleForkedResponse", 10), (a.tail(), kam.text()[-3000:])
        assert a.saw("(2 at once)"), a.tail()
        assert a.wait(lambda: a.state() == "Active", 10), a.tail()
        # one bob talks to alice, the other's call is over
        assert a.wait(lambda: sorted((b1.state(), b2.state())) == ["-", "Active"], 10), (b1.tail(), b2.tail())
        assert list(a.st()["calls"]) == ["c1"] and a.count("c1 Ringing Dialog200OK Active") == 1, a.tail()
        loser = b1 if b1.state() == "-" else b2
        if a.saw("2xx from tag"):
            assert loser.saw("Active DialogBYE Terminating"), (a.tail(), loser.tail())
        else:
            assert loser.saw("Ringing DialogCANCEL Cancelled"), (a.tail(), loser.tail())
        a.ev("HangupCall")
        assert a.wait(lambda: a.state() == "-" and b1.state() == "-" and b2.state() == "-", 5), \
            (a.tail(), b1.tail(), b2.tail())
    finally:
        kam.stop()
