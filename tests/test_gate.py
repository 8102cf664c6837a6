# Scanners and strangers (ua/gate.py) at phone processes on CPython and on the frozen MicroPython (96 KB heap), over
# real UDP sockets: calls past the lines and past one ringing call get 486 with no session, a Request-URI user the
# phone is not gets 404, a BYE or CANCEL that matches nothing gets 481 and changes nothing, one source over its rate
# is dropped unanswered while others are not, a SIP scanner's sweep is never answered and never rings the phone,
# only the proxy may call a registered phone (sip.accept_from), and what the calls took comes back after GC.
import socket
import time

from host_tools.fuzz import _msg, sdp
from tests.proc import Phones, account_at, phones  # noqa: F401  (fixture)

AUTO = {"auto_answer": True, "auto_answer_delay_ms": 0}


class Stranger:
    """A SIP endpoint of the test's own on one UDP port: sends requests, collects the answers by Call-ID."""

    def __init__(self, phone, ua="test-stranger"):
        self.target = ("127.0.0.1", phone.port)
        self.ua = ua
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.me = self.sock.getsockname()
        self.n = 0
        self.got = []           # (status, call-id) of every response

    def request(self, method, user, call_id, ftag="s1", ttag=None, cseq=1, body=b"", ua=None):
        # the branch is the Call-ID's: a CANCEL (or ACK of a non-2xx) goes in its INVITE's transaction (9.1, 17.1.1.3)
        hs = ["Via: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bKst-%s-%d" % (self.me[0], self.me[1], call_id, cseq),
              "Max-Forwards: 70", "From: <sip:stranger@%s:%d>;tag=%s" % (self.me[0], self.me[1], ftag),
              "To: <sip:%s@127.0.0.1>%s" % (user, ";tag=" + ttag if ttag else ""), "Call-ID: " + call_id,
              "CSeq: %d %s" % (cseq, method), "Contact: <sip:stranger@%s:%d>" % self.me,
              "User-Agent: " + (ua or self.ua)]
        if body:
            hs.append("Content-Type: application/sdp")
        ruri = "sip:%s@127.0.0.1:%d" % (user, self.target[1]) if user else "sip:127.0.0.1:%d" % self.target[1]
        self.sock.sendto(_msg("%s %s SIP/2.0" % (method, ruri), hs, body), self.target)

    def invite(self, user, call_id, ua=None):
        self.request("INVITE", user, call_id, body=sdp(40000), ua=ua)

    def answers(self, call_id=None, wait=1.0, want=None):
        """Statuses got so far for call_id (all when None), reading for up to `wait` s or until `want` are in."""
        end = time.time() + wait
        while True:
            self.sock.settimeout(max(0.01, min(0.1, end - time.time())))
            try:
                data = self.sock.recv(65535)
                hs = {}
                for l in data.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
                    k, _, v = l.decode().partition(":")
                    hs.setdefault(k.strip().lower(), v.strip())
                code = int(data[8:11])
                self.got.append((code, hs.get("call-id", "")))
                if code >= 300 and hs.get("cseq", "").endswith("INVITE"):
                    # RFC 3261 17.1.1.3: a final non-2xx is ACKed in its transaction (or the phone repeats it)
                    self.sock.sendto(_msg("ACK sip:bob@127.0.0.1:%d SIP/2.0" % self.target[1], [
                        "Via: " + hs["via"], "Max-Forwards: 70", "From: " + hs["from"], "To: " + hs["to"],
                        "Call-ID: " + hs["call-id"], "CSeq: %s ACK" % hs["cseq"].split()[0]]), self.target)
                continue
            except socket.timeout:
                pass
            mine = [c for c, i in self.got if call_id is None or i == call_id]
            if time.time() >= end or (want is not None and want(mine)):
                return mine

    def close(self):
        self.sock.close()


def _gate(p):
    line = [l for l in p.st()["lines"] if l.startswith("gate ")][0]
    return {k: v for k, v in (x.split("=", 1) for x in line.split()[1:])}


def test_strangers_get_404_481_and_486_and_never_a_second_ringing_session(phones):
    a = phones.add("alice")
    b = phones.add("bob")                      # rings until told to answer
    s = Stranger(b)
    try:
        # a user the phone is not: 404 (RFC 3261 8.2.2.1), no session
        s.invite("mallory", "wrong-user")
        assert s.answers("wrong-user", 3, lambda g: 404 in g) == [404], s.got
        # a BYE and a CANCEL that match nothing: 481 (12.2.2, 9.2), nothing changes
        s.request("BYE", "bob", "no-dialog", ttag="nope", cseq=2)
        s.request("CANCEL", "bob", "no-txn")
        assert s.answers("no-dialog", 3, lambda g: g) == [481], s.got
        assert s.answers("no-txn", 3, lambda g: g) == [481], s.got
        assert b.st()["sessions"] == {}, b.st()
        assert not b.saw("IncomingCall"), b.tail()
        # alice calls: bob rings. A stranger's call while it rings: 486 (one ringer), no session
        assert a.ev("MakeCall", target=b.uri).startswith("ok c1")
        assert b.wait(lambda: b.state() == "Ringing", 5), b.tail()
        s.invite("bob", "while-ringing")
        assert 486 in s.answers("while-ringing", 3, lambda g: 486 in g), s.got
        assert list(b.st()["sessions"]) == ["c1"], b.st()
        # bob answers; the stranger's next call waits (call waiting: the second line), a third gets 486
        assert b.ev("AcceptCall").startswith("ok c1")
        assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 5), (a.tail(), b.tail())
        s.invite("bob", "waiting")
        assert 180 in s.answers("waiting", 3, lambda g: 180 in g), s.got
        s.invite("bob", "third")
        assert 486 in s.answers("third", 3, lambda g: 486 in g), s.got
        assert sorted(b.st()["sessions"]) == ["c1", "c2"], b.st()
        assert b.count("Idle IncomingCall") == 2, b.tail()
        # the waiting call is cancelled by its caller: 200 to the CANCEL, 487 to the INVITE (the INVITE's branch)
        s.request("CANCEL", "bob", "waiting")
        assert 487 in s.answers("waiting", 3, lambda g: 487 in g), s.got
        assert b.wait(lambda: sorted(b.st()["sessions"]) == ["c1"], 5), b.st()
        assert a.ev("HangupCall").startswith("ok c1")
        assert b.wait(lambda: b.st()["sessions"] == {}, 5), b.tail()
        g = _gate(b)
        assert g["unknown_user"] == "1" and g["strangers"] == "0" and g["scanners"] == "0", g
    finally:
        s.close()


def test_a_scanner_sweep_never_rings_and_one_loud_source_is_held_to_its_rate(phones):
    b = phones.add("bob", features=AUTO)
    # friendly-scanner (SIPVicious svmap/svwar) and its copies: INVITE, OPTIONS and REGISTER for many users from 5
    # ports, never answered (an answer confirms a target), never a session
    sweep = [Stranger(b, ua) for ua in ("friendly-scanner", "sipvicious 0.3.4", "sipcli/v1.8", "VaxSIPUserAgent/3.1",
                                         "Friendly-Scanner")]
    try:
        sent = 0
        for i in range(20):
            for j, s in enumerate(sweep):
                method = ("INVITE", "OPTIONS", "REGISTER")[(i + j) % 3]
                user = ("100", "bob", "admin", "1000")[i % 4]
                if method == "INVITE":
                    s.invite(user, "sweep-%d-%d" % (i, j))
                else:
                    s.request(method, user, "sweep-%d-%d" % (i, j))
                sent += 1
        assert b.wait(lambda: int(_gate(b)["scanners"]) == sent, 5), _gate(b)
        for s in sweep:
            assert s.answers(None, 0.05) == [], s.got      # the phone has read them all: any answer is here
        assert b.st()["sessions"] == {} and not b.saw("IncomingCall"), b.tail()
        # a source sending 100 OPTIONS at once: its bucket holds 2 s at sip.rate_limit (20/s): 40 are answered, the
        # rest dropped unanswered (RFC 3261 26.1.5: no 503 to a source that may be forged)
        loud, quiet = Stranger(b), Stranger(b)
        try:
            for i in range(100):
                loud.request("OPTIONS", "bob", "loud-%d" % i)
            # the phone has read all 100 when the dropped and the answered add up
            assert b.wait(lambda: int(_gate(b)["limited"]) + len(loud.answers(None, 0.05)) == 100, 5), (
                _gate(b), loud.got)
            got = loud.answers(None, 0.05)
            answered = len(got)
            assert 40 <= answered < 60 and set(got) == {200}, got
            # another source is not held back by it
            quiet.request("OPTIONS", "bob", "quiet")
            assert quiet.answers("quiet", 3, lambda g: g) == [200], quiet.got
            # the bucket refills (0.5 s = 10 requests' worth): the loud source is answered again
            time.sleep(0.5)
            loud.request("OPTIONS", "bob", "loud-again")
            assert loud.answers("loud-again", 3, lambda g: g) == [200], loud.got
        finally:
            loud.close()
            quiet.close()
        print("\nscanners %s: sweep %d requests, answered 0; one source 100 OPTIONS at once: %d answered, gate %s" % (
            phones.runtime, sent, answered, _gate(b)))
    finally:
        for s in sweep:
            s.close()


def test_a_registered_phone_takes_calls_from_its_proxy_only(phones, tmp_path):
    # sip.accept_from auto: a phone whose account registers takes requests from its proxy only; a stranger calling it
    # directly (the usual toll-fraud probe, skipping the PBX) gets 403 and no session
    from tests.peers import Kamailio
    kam = Kamailio(tmp_path / "kam").start()
    try:
        a = phones.add("alice", account=account_at("alice", kam))
        b = phones.add("bob", account=account_at("bob", kam), features=AUTO)
        assert a.wait_line("reg r1 registered", 10) and b.wait_line("reg r1 registered", 10), (a.tail(), b.tail())
        s = Stranger(b)
        try:
            s.invite("bob", "direct")
            s.request("OPTIONS", "bob", "direct-options")
            assert s.answers("direct", 3, lambda g: g) == [403], s.got
            assert s.answers("direct-options", 3, lambda g: g) == [403], s.got
            assert not b.saw("IncomingCall") and list(b.st()["sessions"]) == ["r1"], b.tail()
            # through the proxy the call goes in
            assert a.ev("MakeCall", target="bob").startswith("ok c1"), a.tail()
            assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
            assert a.ev("HangupCall").startswith("ok c1")
            assert b.wait(lambda: b.state() == "-", 5), b.tail()
            g = _gate(b)
            assert g["accept_from"] == "proxy" and g["strangers"] == "2", g
        finally:
            s.close()
    finally:
        phones.close()
        kam.stop()


def test_calls_leave_no_memory_behind(tmp_path):
    # twelve calls set up and ended, the heap read after GC after each: within 3 KB of where it was after the first
    # (the first call's one-time imports and buffers are not a leak), and no new high after the eighth (MicroPython's
    # dicts keep deleted slots until they are rebuilt, so the heap saw-tooths over 8 calls; a leak would climb). On
    # MicroPython this is the 96 KB phone's heap. Over TCP, so that each call's transactions end with it (Timers I, J,
    # K are 0 on a reliable transport, RFC 3261 17): over UDP they linger 64*T1 and each reading would catch a
    # different number of them. MicroPython only: the CPython phone has no heap figure (`mem` says alloc=-1)
    phones = Phones("micropython", tmp_path)
    try:
        _twelve_calls(phones)
    finally:
        phones.close()


def _twelve_calls(phones):
    a = phones.add("alice", audio={"source": "tone:1000"}, sip={"transport": "tcp"})
    b = phones.add("bob", features=AUTO, sip={"transport": "tcp"})
    heap = []
    for i in range(1, 13):
        sid = "c%d" % i
        assert a.ev("MakeCall", target=b.uri).startswith("ok " + sid), a.tail()
        assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 5), (a.tail(), b.tail())
        assert b.wait(lambda: int(b.st()["media"][sid]["received"]) > 5, 5), b.st()["lines"]
        assert a.ev("HangupCall").startswith("ok " + sid)
        assert a.wait(lambda: a.st()["sessions"] == {} and b.st()["sessions"] == {}, 10), (a.tail(), b.tail())
        heap.append((a.mem(True)["alloc"], b.mem(True)["alloc"]))
    print("\nheap after GC %s (alice, bob) after each call: %s" % (phones.runtime, heap))
    for k in (0, 1):
        h = [x[k] for x in heap]
        assert max(h) - h[0] < 3072 and max(h[8:]) <= max(h[:8]), (k, h)
