# SIP over TCP (RFC 3261 18, RFC 5626 flows): stream framing, phones calling each other over TCP on the loopback net,
# responses on the connection the request came on, reconnect + re-REGISTER when the registrar's connection drops,
# and sipp calling the phone over real TCP sockets on 127.0.0.1.
import pytest


from uphone import table as T
from uphone.loopback import LoopRT
from uphone.sip import message as M
from uphone.sip import parse as P
from uphone.sip import stream
from uphone.sip.stream import StreamReader, StreamError
from tests.phone_rig import Rig
from tests.proc import MP_HEAP, phones  # noqa: F401  (fixture)


def _opts(branch, cseq=1, body=b""):
    hs = [("Via", "SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK%s" % branch), ("Max-Forwards", "70"),
          ("From", "<sip:stub@127.0.0.1>;tag=s%s" % branch), ("To", "<sip:bob@127.0.0.1>"),
          ("Call-ID", "c%s@stub" % branch), ("CSeq", "%d OPTIONS" % cseq)]
    if body:
        hs.append(("Content-Type", "text/plain"))
    return M.make_request("OPTIONS", "sip:bob@127.0.0.1:5064", hs, body).to_bytes()


class TcpPeer:
    """A scripted SIP endpoint on the loopback net speaking TCP: a registrar (200 to REGISTER and OPTIONS) or a
    raw client. Records every message with the connection it came on."""

    def __init__(self, net, port=None, pong=True, answer=True):
        self.rt = LoopRT(net)
        self.conns = []
        self.closed = []
        self.msgs = []             # (conn, Message)
        self.pings = 0
        self.pong = pong
        self.answer = answer
        self.listener = self.rt.tcp_listen("127.0.0.1", port, self._accept) if port else None

    def _handlers(self):
        reader = StreamReader()

        def data(c, d):
            for kind, payload in reader.feed(d):
                if kind == stream.MSG:
                    self._msg(c, P.parse(payload))
                elif kind == stream.PING:
                    self.pings += 1
                    if self.pong:
                        self.rt.tcp_send(c, stream.PONG_BYTES)
        return data, self.closed.append

    def _accept(self, conn, peer):
        self.conns.append(conn)
        return self._handlers()

    def connect(self, port):
        data, closed = self._handlers()
        c = self.rt.tcp_connect("127.0.0.1", port, data, closed)
        self.conns.append(c)
        return c

    def requests(self, method):
        return [m for _c, m in self.msgs if m.is_request and m.method == method]

    def _msg(self, c, msg):
        self.msgs.append((c, msg))
        if not msg.is_request or not self.answer or msg.method == "ACK":
            return
        hs = []
        if msg.method == "REGISTER":
            hs = [("Contact", msg.get("Contact")), ("Expires", msg.get("Expires") or "600")]
        self.rt.tcp_send(c, M.make_response(msg, 200, "OK", to_tag="reg1", headers=hs).to_bytes())


def reg_cfg(port=5090, **sip):
    s = {"transport": "tcp"}
    s.update(sip)
    return {"account": {"registrar": "sip:127.0.0.1:%d" % port}, "sip": s}


def registration(p):
    return next(s for s in p.sessions() if s.kind == T.K_registration)


# -- framing (sans-I/O) -------------------------------------------------------------------------------------------
def test_stream_frames_split_and_joined_messages():
    a, b = _opts("a1", body=b"hello"), _opts("a2")
    r = StreamReader()
    got = []
    for i in range(len(a)):                     # one byte per segment
        got += r.feed(a[i:i + 1])
    assert got == [(stream.MSG, a)]
    got = r.feed(a + b"\r\n\r\n" + b + a[:10])   # two messages and a ping in one segment, a third begun
    assert got == [(stream.MSG, a), (stream.PING, b""), (stream.MSG, b)]
    assert r.feed(a[10:]) == [(stream.MSG, a)] and r.pending() == 0


def test_stream_keepalives():
    r = StreamReader()
    assert r.feed(b"\r\n") == []                 # half a ping, or a pong nobody asked for: wait
    assert r.feed(b"\r\n") == [(stream.PING, b"")]
    assert r.ping() == b"\r\n\r\n" and r.awaiting_pong
    assert r.feed(b"\r\n") == [(stream.PONG, b"")] and not r.awaiting_pong
    assert r.feed(b"\r\n" + _opts("k")) == [(stream.MSG, _opts("k"))]     # a stray CRLF before a message


def test_stream_limits():
    with pytest.raises(StreamError):
        StreamReader().feed(b"OPTIONS sip:x SIP/2.0\r\nX: " + b"a" * 20000)      # endless header
    r = StreamReader()
    big = _opts("big").replace(b"Content-Length: 0", b"Content-Length: 100000")
    r.feed(big)
    with pytest.raises(StreamError):
        for _ in range(70):
            r.feed(b"x" * 1000)                  # > 64 KB without a message
    with pytest.raises(StreamError):
        StreamReader().feed(_opts("cl").replace(b"Content-Length: 0", b"Content-Length: abc"))
    with pytest.raises(StreamError):
        StreamReader().feed(b"\rX")


# -- phones over TCP on the loopback net ------------------------------------------------------------------------
def _sip_datagrams(p):
    sent = []
    orig = p.rt.sendto

    def spy(s, data, addr):
        if s is p.sock:
            sent.append(data)
        return orig(s, data, addr)
    p.rt.sendto = spy
    return sent


@pytest.mark.parametrize("mss,coalesce", [(0, False), (7, False), (61, True)])
def test_two_phones_call_over_tcp(mss, coalesce):
    rig = Rig()
    rig.net.mss, rig.net.coalesce = mss, coalesce
    alice = rig.add("alice", 5062, 21000, sip={"transport": "tcp"})
    bob = rig.add("bob", 5064, 21100, sip={"transport": "tcp"},
                  features={"auto_answer": True, "auto_answer_delay_ms": 100})
    udp = _sip_datagrams(alice) + _sip_datagrams(bob)
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    inv = rig.call("bob").ctx.invite
    assert inv.get_all("Via")[0].startswith("SIP/2.0/TCP ")
    assert ";transport=tcp" in inv.get("Contact")
    rig.ev("alice", "HoldCall")
    assert rig.run(2000, until=lambda: rig.state("alice") == "OnHold" and not rig.call("alice").ctx.txns)
    assert rig.call("bob").ctx.neg.direction == "recvonly"
    rig.ev("alice", "ResumeCall")
    assert rig.run(2000, until=lambda: rig.state("alice") == "Active" and not rig.call("alice").ctx.txns)
    assert rig.call("bob").ctx.neg.direction == "sendrecv"
    rig.ev("bob", "HangupCall")             # bob's BYE opens a connection to alice's listener
    assert rig.run(3000, until=lambda: rig.call("alice") is None and rig.call("bob") is None)
    assert udp == []                                            # no SIP went over UDP
    # alice opened one flow to bob and reused it for every request; bob's BYE came over his own flow to alice
    assert [k for k, f in alice.flows.items() if f.outgoing] == [("127.0.0.1", 5064)]
    assert [k for k, f in bob.flows.items() if f.outgoing] == [("127.0.0.1", 5062)]
    assert alice.txl.counts() == (0, 0, 0) or rig.run(6000, until=lambda: alice.txl.counts() == (0, 0, 0))


def test_responses_go_back_on_the_connection_and_framing():
    rig = Rig()
    rig.add("bob", 5064, 21100, sip={"transport": "tcp"})
    peer = TcpPeer(rig.net)
    c = peer.connect(5064)
    rig.run(10)
    a, b, d = _opts("r1", 1), _opts("r2", 2), _opts("r3", 3, b"body")
    peer.rt.tcp_send(c, a + b)                  # two requests in one segment
    for i in range(0, len(d), 5):               # one split over many
        peer.rt.tcp_send(c, d[i:i + 5])
    rig.run(200, until=lambda: len(peer.msgs) == 3)
    assert [(m.status, m.cseq_num) for _c, m in peer.msgs] == [(200, 1), (200, 2), (200, 3)]
    assert all(conn is c for conn, _m in peer.msgs)             # RFC 3261 18.2.2: on the same connection
    assert peer.msgs[0][1].get_all("Via")[0].startswith("SIP/2.0/TCP 127.0.0.1:5099")


def test_garbage_stream_closes_the_connection():
    rig = Rig()
    bob = rig.add("bob", 5064, 21100, sip={"transport": "tcp"})
    peer = TcpPeer(rig.net)
    c = peer.connect(5064)
    rig.run(10)
    for _ in range(20):
        peer.rt.tcp_send(c, b"X" * 1000)        # a header that never ends
    assert rig.run(200, until=lambda: c in peer.closed)
    assert not bob.flows
    assert any("closing" in line for line in rig.lines["bob"])


def test_registrar_drop_reconnects_and_reregisters():
    rig = Rig()
    reg = TcpPeer(rig.net, 5090)
    p = rig.add("alice", 5062, 21000, **reg_cfg())
    s = registration(p)
    assert rig.run(1000, until=lambda: s.state == T.S_Registered)
    assert len(reg.conns) == 1 and len(reg.requests("REGISTER")) == 1
    r0 = reg.requests("REGISTER")[0]
    assert r0.get_all("Via")[0].startswith("SIP/2.0/TCP") and ";transport=tcp" in r0.get("Contact")
    reg.rt.tcp_close(reg.conns[0])              # the registrar's side goes away
    assert rig.run(200, until=lambda: not p.flows)
    assert rig.run(3000, until=lambda: len(reg.requests("REGISTER")) == 2 and s.state == T.S_Registered)
    assert len(reg.conns) == 2                  # a new connection carried the re-REGISTER
    r1 = reg.requests("REGISTER")[1]
    assert r1.call_id == r0.call_id and r1.cseq_num == r0.cseq_num + 1     # the same binding, refreshed
    assert any("flow to 127.0.0.1:5090 failed" in line for line in rig.lines["alice"])


def test_registrar_down_backs_off():
    rig = Rig()
    reg = TcpPeer(rig.net, 5090)
    p = rig.add("alice", 5062, 21000, **reg_cfg(register_retry_s=2))
    s = registration(p)
    assert rig.run(1000, until=lambda: s.state == T.S_Registered)
    reg.rt.tcp_close(reg.listener)              # nobody listens any more...
    reg.rt.tcp_close(reg.conns[0])              # ...and the flow drops: reconnects are refused
    rig.run(20000)
    fails = [l for l in rig.lines["alice"] if "retry in" in l]
    assert 2 <= len(fails) <= 4                 # not a busy loop
    # the pause doubles from register_retry_s: 2, 4, 8 ... s
    delays = [int(l.split("retry in ")[1].split()[0]) for l in fails]
    assert delays == [2 * 2 ** i for i in range(len(delays))], fails
    assert s.state != T.S_Registered
    reg.listener = reg.rt.tcp_listen("127.0.0.1", 5090, reg._accept)     # back again
    assert rig.run(40000, until=lambda: s.state == T.S_Registered)


# -- phone processes (CPython and the frozen MicroPython) over real TCP sockets on 127.0.0.1 ---------------------
def test_sipp_calls_the_phone_over_tcp(phones, tmp_path):
    from tests import peers
    from tests.proc import free_port
    bob = phones.add("bob", sip={"transport": "tcp"}, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    port = free_port()
    proc = peers.sipp_background(["-sn", "uac", "127.0.0.1:%d" % bob.port, "-s", "bob", "-t", "t1", "-p", str(port),
                                  "-m", "5", "-r", "5", "-timeout", "30s", "-timeout_error", "-trace_err"], cwd=str(tmp_path))
    rc, out, err = peers.finish(proc, 35)
    # sipp in TCP mode (-t t1) sends and expects everything on its one connection: a response over UDP fails it
    assert rc == 0, "sipp uac over TCP failed:\n%s\n%s\n%s" % (out[-2000:], err[-2000:], bob.tail())
    assert bob.count(" Ringing AcceptCall Active ") == 5
    assert bob.wait(lambda: not bob.st()["calls"], 5), bob.tail()
    # the calls came over one flow sipp opened, which the phone saw close when sipp ended
    assert bob.wait_line("tcp 127.0.0.1:%d closed" % port, 5), bob.tail()


def test_phones_call_over_tcp_and_refused_connect(phones):
    from tests.proc import free_port
    alice = phones.add("alice", sip={"transport": "tcp", "t1_ms": 100})
    bob = phones.add("bob", sip={"transport": "tcp"}, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    alice.ev("MakeCall", target=bob.uri)
    assert alice.wait(lambda: alice.state() == "Active" and bob.state() == "Active", 5), (alice.tail(), bob.tail())
    assert alice.ev("HoldCall").startswith("ok c1 OnHold")
    assert bob.wait(lambda: bob.st()["leg"]["c1"]["dir"] == "recvonly", 5), bob.tail()
    assert alice.ev("ResumeCall").startswith("ok c1 Resuming")
    assert alice.wait(lambda: alice.state() == "Active", 5), alice.tail()
    assert bob.wait(lambda: bob.st()["leg"]["c1"]["dir"] == "sendrecv", 5), bob.tail()
    alice.ev("HangupCall")
    assert alice.wait(lambda: alice.state() == "-" and bob.state() == "-", 5), (alice.tail(), bob.tail())
    # alice opened one flow to bob and reused it for every request
    assert "flow 127.0.0.1:%d out" % bob.port in alice.st()["lines"], alice.tail()
    # nobody listens there: the non-blocking connect fails, the INVITE fails at once (no 64*T1 wait)
    nobody = free_port()
    alice.ev("MakeCall", target="sip:carol@127.0.0.1:%d" % nobody)
    assert alice.wait(lambda: alice.state() == "-", 3), alice.tail()
    assert alice.saw("tcp 127.0.0.1:%d closed" % nobody) and alice.saw("timeout"), alice.tail()


# -- the same code on the real MicroPython (the loopback net, no sockets) ------------------------------------------
MP_TCP_CALL = """
from uphone import table as T
from uphone import config as cfgmod
from uphone.loopback import LoopNet, LoopRT, run
from uphone.phone import Phone
from uphone.sip import stream
net = LoopNet()
net.mss = 97
net.coalesce = True
def cfg(user, port, rtp, aa):
    return cfgmod.with_defaults({'accounts': [{'user': user, 'domain': '127.0.0.1'}],
        'sip': {'local_ip': '127.0.0.1', 'local_port': port, 'transport': 'tcp', 'keepalive': 'crlf',
                'keepalive_s': 5},
        'media': {'rtp_port_min': rtp, 'rtp_port_max': rtp + 20},
        'features': {'auto_answer': aa, 'auto_answer_delay_ms': 0}})
a = Phone(cfg('alice', 5062, 21000, False))
b = Phone(cfg('bob', 5064, 21100, True))
a.attach(LoopRT(net)); b.attach(LoopRT(net))
ph = [a, b]
def st(p):
    c = [s for s in p.sessions() if s.kind == T.K_call]
    return T.STATES[c[-1].state] if c else '-'
a.user_event(None, T.E_MakeCall, {'target': 'sip:bob@127.0.0.1:5064'})
run(net, ph, 3000, until=lambda: st(a) == 'Active' and st(b) == 'Active')
print('active', st(a), st(b))
a.user_event(None, T.E_HangupCall, {})
run(net, ph, 3000, until=lambda: st(a) == '-' and st(b) == '-')
print('ended', st(a), st(b), sorted(k[1] for k, f in a.flows.items() if f.outgoing))
r = stream.StreamReader()
print('frames', [k for k, _p in r.feed(b'\\r\\n\\r\\nOPTIONS sip:x SIP/2.0\\r\\nContent-Length: 2\\r\\n\\r\\nab\\r\\n')])
r2 = stream.StreamReader()
try:
    for i in range(20):             # a header that never ends, in TCP-sized pieces
        r2.feed(b'X' * 1000)
except stream.StreamError:
    print('limit ok')
"""


def test_tcp_call_in_micropython(mp):
    # two phones and the loopback network in one MicroPython: twice a phone's heap
    out = mp(MP_TCP_CALL, heap=2 * MP_HEAP)
    assert out.split("\n")[:-1] == ["active Active Active", "ended - - [5064]", "frames [1, 0]", "limit ok"]
