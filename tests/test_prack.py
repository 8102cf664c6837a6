# Reliable provisional responses (RFC 3262, 100rel) on phone processes of both runtimes against sipp scenarios of
# our own that check every PRACK and reliable provisional, and phone to phone: as UAC (PRACK per reliable 1xx, repeats
# and gaps dropped), as UAS (WaitingForPRACK: the 180 repeated until the PRACK, 481 for a wrong RAck, 5xx after 64*T1,
# CANCEL and hang-up while waiting), and the sip.100rel modes.
from tests import peers
from tests import sippx as X
from tests.proc import free_port, phones  # noqa: F401  (phones is a fixture)

AUTO = {"auto_answer": True, "auto_answer_delay_ms": 0}


def _run(tmp_path, name, sc, args, timeout=40):
    path = tmp_path / (name + ".xml")
    path.write_text(sc.xml())
    return peers.sipp_background(["-sf", str(path), "-m", "1", "-timeout", "%ds" % timeout, "-timeout_error",
                                  "-trace_err", "-trace_msg", "-message_file", str(tmp_path / (name + ".msg"))]
                                 + args, cwd=str(tmp_path))


def _done(proc, tmp_path, name, *phones_):
    rc, out, err = peers.finish(proc, 30)
    msgs = (tmp_path / (name + ".msg")).read_text() if (tmp_path / (name + ".msg")).exists() else ""
    assert rc == 0, "sipp %s failed:\n%s\n%s\n%s\n%s" % (name, out[-1500:], err[-2500:], msgs[-3000:],
                                                        "\n".join(p.tail() for p in phones_))
    return msgs


def test_phone_prack_s_each_reliable_provisional_once_in_order(phones, tmp_path):
    # sipp answers the phone's INVITE with a reliable 180 (RSeq 5), repeats it, a reliable 183 with SDP (RSeq 6),
    # then a reliable 180 past a gap (RSeq 8) and the 200: the phone PRACKs 5 and 6 once each and nothing else
    sc = X.Scenario("reliable provisionals to the phone")
    X.recv_invite(sc, must=("Supported: [a-z0-9, ]*100rel",), must_not=("Require:",))
    sc.send(X.answer(180, "Ringing", "fA", ["Require: 100rel", "RSeq: 5"]))
    sc.recv("request", "PRACK", must=("RAck: 5 1 INVITE", "To: <[^>]*>;tag=fA", "CSeq: 2 PRACK"))
    sc.send(X.reply(200, "OK"))
    sc.send(X.answer(180, "Ringing", "fA", ["Require: 100rel", "RSeq: 5"]))         # a repeat: no PRACK
    sc.send(X.answer(183, "Session Progress", "fA", ["Require: 100rel", "RSeq: 6"], peers.sdp()))
    sc.recv("request", "PRACK", must=("RAck: 6 1 INVITE", "CSeq: 3 PRACK"))
    sc.send(X.reply(200, "OK"))
    sc.send(X.answer(180, "Ringing", "fA", ["Require: 100rel", "RSeq: 8"]))         # past a gap: no PRACK
    sc.pause(300)
    sc.send(X.answer(200, "OK", "fA", body=peers.sdp()))
    sc.recv("request", "ACK", must=("CSeq: 1 ACK",))
    sc.recv("request", "BYE", must=("CSeq: 4 BYE",))
    sc.send(X.reply(200, "OK"))
    a = phones.add("alice")
    port = free_port()
    proc = _run(tmp_path, "uas", sc, ["-p", str(port)])
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        assert a.ev("MakeCall", target="sip:bob@127.0.0.1:%d" % port) == "ok c1 Initiating"
        assert a.wait_line("Ringing PRACKRequired Ringing SendPRACK", 5), a.tail()
        assert a.wait_line("EarlyMedia PRACKRequired EarlyMedia SendPRACK", 5), a.tail()
        assert a.wait(lambda: a.state() == "Active", 5), a.tail()
        a.ev("HangupCall")
        assert a.wait(lambda: a.state() == "-", 5), a.tail()
    finally:
        _done(proc, tmp_path, "uas", a)
    assert a.count("PRACKRequired") == 2, a.tail()


def test_phone_requires_100rel_when_told(phones, tmp_path):
    # sip.100rel "required": the INVITE says Require: 100rel (RFC 3262 4), and a provisional without it is still taken
    sc = X.Scenario("INVITE that requires 100rel")
    X.recv_invite(sc, must=("Require: 100rel", "Supported: [a-z0-9, ]*100rel"))
    sc.send(X.answer(486, "Busy Here", "fA"))
    sc.recv("request", "ACK")
    a = phones.add("alice", sip={"100rel": "required"})
    port = free_port()
    proc = _run(tmp_path, "req", sc, ["-p", str(port)])
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        a.ev("MakeCall", target="sip:bob@127.0.0.1:%d" % port)
        assert a.wait_line("Initiating Dialog4xxFailure Failed(Rejected)", 5), a.tail()
    finally:
        _done(proc, tmp_path, "req", a)


def _caller(name, requires=True, supports=True, user="bob"):
    sc = X.Scenario(name)
    tags = (["Require: 100rel"] if requires else []) + (["Supported: 100rel"] if supports else [])
    return sc, X.invite(sc, extra=tags, user=user)


def test_phone_answers_reliably_and_rings_after_the_prack(phones, tmp_path):
    # sipp requires 100rel: the phone's 180 carries Require: 100rel and an RSeq, comes again (T1 100 ms, doubling)
    # until a PRACK names it; a PRACK with a wrong RAck gets 481; the phone rings (and answers) only after the PRACK
    sc, _ = _caller("caller that requires 100rel")
    sc.recv("response", "100", optional=True)
    sc.recv("response", "180", must=("Require: 100rel",), capture=(("rseq", "RSeq", " *([0-9]+)"),),
            more=' rrs="true"')
    sc.pause(1000)
    X.in_dialog(sc, "PRACK", 2, extra=["RAck: [$rseq] 7 INVITE"])         # names no INVITE of ours: 481
    sc.recv("response", "481")
    X.in_dialog(sc, "PRACK", 3, extra=["RAck: [$rseq] 1 INVITE"])
    sc.recv("response", "200", must=("CSeq: 3 PRACK",))
    sc.recv("response", "200", must=("CSeq: 1 INVITE",), more=' rrs="true"')
    X.in_dialog(sc, "ACK", 1)
    sc.pause(300)
    X.in_dialog(sc, "BYE", 4)
    sc.recv("response", "200")
    b = phones.add("bob", features=AUTO, sip={"t1_ms": 100})
    proc = _run(tmp_path, "uac", sc, ["127.0.0.1:%d" % b.port])
    try:
        assert b.wait_line("Idle IncomingCall100rel WaitingForPRACK", 10), b.tail()
        assert b.wait_line("WaitingForPRACK DialogPRACK Ringing Send200OK,NotifyUser", 5), b.tail()
        assert b.wait_line("Ringing AcceptCall Active", 5), b.tail()
    finally:
        msgs = _done(proc, tmp_path, "uac", b)
    # the reliable 180 came again while sipp held its PRACK back for a second: at 100, 300 and 700 ms
    assert msgs.count("SIP/2.0 180 Ringing") >= 3, msgs[-3000:]
    # it rang only once the PRACK was in (NotifyUser belongs to the PRACK's row, its ring line right before it)
    i = next(i for i, l in enumerate(b.lines) if "WaitingForPRACK DialogPRACK" in l)
    assert b.lines[i - 1].startswith("ring c1 from") and b.count("ring c1") == 1, b.tail()


def test_no_prack_cancel_and_hangup_while_waiting_for_it(phones, tmp_path):
    b = phones.add("bob", features=AUTO, sip={"t1_ms": 100})
    # no PRACK within 64*T1 (6.4 s here): 500, and the call fails (RFC 3262 3)
    sc, inv = _caller("caller that never PRACKs")
    sc.recv("response", "100", optional=True)
    sc.recv("response", "180", must=("Require: 100rel", "RSeq: "))
    sc.recv("response", "500")
    X.ack_non2xx(sc, inv)
    proc = _run(tmp_path, "noprack", sc, ["127.0.0.1:%d" % b.port])
    try:
        assert b.wait_line("WaitingForPRACK PRACKTimeout Failed(Timeout)", 15), b.tail()
    finally:
        _done(proc, tmp_path, "noprack", b)
    # the caller gives up before its PRACK: 487
    sc, inv = _caller("caller that cancels", requires=False, user="carol")
    sc.recv("response", "100", optional=True)
    sc.recv("response", "180", must=("Require: 100rel",))
    sc.raw(peers.sipp_send("CANCEL", 1).replace("branch=[branch]", "branch=[branch-%d]" % (sc.n - inv))
           .replace("[next_url]", "sip:carol@[remote_ip]:[remote_port]")
           .replace("[last_To:]", "To: <sip:carol@[remote_ip]:[remote_port]>"))
    sc.recv("response", "200")
    sc.recv("response", "487")
    X.ack_non2xx(sc, inv, user="carol")
    b2 = phones.add("carol", sip={"100rel": "required"})      # reliable for a caller that only supports it
    proc = _run(tmp_path, "cancel", sc, ["127.0.0.1:%d" % b2.port])
    try:
        assert b2.wait_line("WaitingForPRACK DialogCANCEL Cancelled", 10), b2.tail()
    finally:
        _done(proc, tmp_path, "cancel", b2)
    # hung up before it rang: 603
    sc, inv = _caller("caller hung up on")
    sc.recv("response", "100", optional=True)
    sc.recv("response", "180", must=("Require: 100rel",))
    sc.recv("response", "603")
    X.ack_non2xx(sc, inv)
    proc = _run(tmp_path, "hangup", sc, ["127.0.0.1:%d" % b.port])
    try:
        assert b.wait(lambda: b.state() == "WaitingForPRACK", 10), b.tail()
        assert b.ev("HangupCall").startswith("ok c2"), b.tail()
        assert b.wait_line("WaitingForPRACK HangupCall Terminated SendSIPResponse(603,Decline)", 5), b.tail()
    finally:
        _done(proc, tmp_path, "hangup", b)
    assert b.wait(lambda: b.state() == "-", 5), b.tail()


def test_100rel_off_refuses_an_invite_that_requires_it(phones, tmp_path):
    sc, inv = _caller("caller that requires 100rel of a phone without it")
    sc.recv("response", "100", optional=True)
    sc.recv("response", "420", must=("Unsupported: 100rel",))
    X.ack_non2xx(sc, inv)
    b = phones.add("bob", features=AUTO, sip={"100rel": "off"})
    proc = _run(tmp_path, "off", sc, ["127.0.0.1:%d" % b.port])
    _done(proc, tmp_path, "off", b)
    assert not b.saw("IncomingCall"), b.tail()


def test_phone_to_phone_with_100rel_required(phones):
    # alice requires 100rel: bob (supported, the default) answers reliably, alice PRACKs, bob rings and answers
    a = phones.add("alice", sip={"100rel": "required"})
    b = phones.add("bob", features=AUTO)
    a.ev("MakeCall", target=b.uri)
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    assert b.saw("Idle IncomingCall100rel WaitingForPRACK") and b.saw("WaitingForPRACK DialogPRACK Ringing")
    assert a.saw("Ringing PRACKRequired Ringing SendPRACK"), a.tail()
    a.ev("HangupCall")
    assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())


def test_100rel_through_kamailio(phones, tmp_path):
    # alice requires 100rel and calls bob through Kamailio (Record-Route): the reliable 180 comes through the proxy,
    # alice's PRACK follows the early dialog's route set back through it, and bob rings only then
    from tests.proc import account_at
    kam = peers.Kamailio(tmp_path / "kam").start()
    try:
        a = phones.add("alice", account=account_at("alice", kam), sip={"100rel": "required"})
        b = phones.add("bob", account=account_at("bob", kam), features=AUTO)
        for p in (a, b):
            assert p.wait_line("reg r1 registered", 10), (p.tail(), kam.text()[-3000:])
        a.ev("MakeCall", target="bob")
        assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
        assert b.saw("WaitingForPRACK DialogPRACK Ringing Send200OK,NotifyUser"), b.tail()
        assert a.saw("Ringing PRACKRequired Ringing SendPRACK") and a.saw("resp c1 prack 200 OK"), a.tail()
        assert int(a.st()["leg"]["c1"]["routes"]) >= 1, a.tail()
        a.ev("HangupCall")
        assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())
    finally:
        kam.stop()
