# Keepalives (RFC 5626 4.4.1, RFC 3261 11): CRLF ping/pong over TCP both ways and a missing pong -> reconnect and
# re-REGISTER, CRLF NAT refreshes over UDP on schedule, OPTIONS keepalives (any answer is alive, a timeout
# re-registers), and nothing keeps firing after shutdown. All on the in-memory loopback net.
from uphone import table as T
from uphone.loopback import LoopRT
from uphone.sip import message as M
from uphone.sip import parse as P
from uphone.ua import transport as ua_transport
from tests.phone_rig import Rig
from tests.test_sip_tcp import TcpPeer, reg_cfg, registration


class UdpRegistrar:
    """200 to REGISTER; OPTIONS answered with options_status (None: never). Records (time, datagram)."""

    def __init__(self, net, port=5090, options_status=200):
        self.net = net
        self.addr = ("127.0.0.1", port)
        self.options_status = options_status
        self.got = []
        net.socks[self.addr] = self.on

    def on(self, data, src):
        self.got.append((self.net.t, data))
        if not data.strip():
            return
        msg = P.parse(data)
        if not msg.is_request or msg.method == "ACK":
            return
        st = 200 if msg.method != "OPTIONS" else self.options_status
        if st is None:
            return
        hs = [("Contact", msg.get("Contact")), ("Expires", "600")] if msg.method == "REGISTER" else []
        resp = M.make_response(msg, st, "OK" if st == 200 else "Nope", to_tag="r1", headers=hs)
        self.net.queue.append((self.net.t + 1, resp.to_bytes(), self.addr, src))

    def count(self, what):
        return len([1 for _t, d in self.got if (d == what if isinstance(what, bytes) else d.startswith(what.encode()))])


def test_tcp_crlf_ping_pong_keeps_the_flow():
    rig = Rig()
    reg = TcpPeer(rig.net, 5090)
    p = rig.add("alice", 5062, 21000, **reg_cfg(keepalive="crlf", keepalive_s=5))
    s = registration(p)
    assert rig.run(1000, until=lambda: s.state == T.S_Registered)
    rig.run(16500)
    assert reg.pings == 3                       # at 5, 10 and 15 s, each answered with one CRLF
    f = p.flows[("127.0.0.1", 5090)]
    assert f.pong_by is None and not f.reader.awaiting_pong and f.reader.pending() == 0
    assert len(reg.conns) == 1 and len(reg.requests("REGISTER")) == 1     # the flow lived on
    assert p.ka_sent == 3


def test_phone_answers_a_crlf_ping_with_one_crlf():
    rig = Rig()
    rig.add("bob", 5064, 21100, sip={"transport": "tcp"})
    rt = LoopRT(rig.net)
    got = []
    c = rt.tcp_connect("127.0.0.1", 5064, lambda conn, d: got.append(d), lambda conn: None)
    rig.run(50)
    rt.tcp_send(c, b"\r\n")                     # a ping split across two segments
    rig.run(50)
    assert got == []
    rt.tcp_send(c, b"\r\n")
    rig.run(50)
    assert b"".join(got) == b"\r\n"
    rt.tcp_send(c, b"\r\n\r\n\r\n\r\n")         # two pings in one segment: two pongs
    rig.run(50)
    assert b"".join(got) == b"\r\n" * 3


def test_missing_pong_fails_the_flow_and_reregisters():
    rig = Rig()
    reg = TcpPeer(rig.net, 5090, pong=False)
    p = rig.add("alice", 5062, 21000, **reg_cfg(keepalive="crlf", keepalive_s=5))
    s = registration(p)
    assert rig.run(1000, until=lambda: s.state == T.S_Registered)
    rig.run(14000)                              # ping at 5 s, no pong by 15 s
    assert reg.pings >= 1
    assert rig.run(3000, until=lambda: len(reg.requests("REGISTER")) == 2 and s.state == T.S_Registered)
    assert len(reg.conns) == 2 and reg.conns[0] in reg.closed
    assert any("no pong" in line for line in rig.lines["alice"])


def test_udp_crlf_keepalives_on_schedule():
    rig = Rig()
    reg = UdpRegistrar(rig.net)
    p = rig.add("alice", 5062, 21000, account={"registrar": "sip:127.0.0.1:5090"},
                sip={"keepalive": "crlf", "keepalive_s": 5})
    assert rig.run(1000, until=lambda: registration(p).state == T.S_Registered)
    rig.run(21000)
    times = [t for t, d in reg.got if d == b"\r\n\r\n"]
    assert len(times) == 4
    assert [b - a for a, b in zip(times, times[1:])] == [5000, 5000, 5000]
    assert reg.count("REGISTER") == 1


def test_options_keepalive_any_answer_is_alive():
    rig = Rig()
    reg = UdpRegistrar(rig.net, options_status=500)
    p = rig.add("alice", 5062, 21000, account={"registrar": "sip:127.0.0.1:5090"},
                sip={"keepalive": "options", "keepalive_s": 5, "t1_ms": 100})
    s = registration(p)
    assert rig.run(1000, until=lambda: s.state == T.S_Registered)
    rig.run(16000)
    assert reg.count("OPTIONS") == 3
    assert reg.count("REGISTER") == 1 and s.state == T.S_Registered       # a 500 still proves it is alive
    assert not s.ctx.txns


def test_options_keepalive_timeout_reregisters():
    rig = Rig()
    reg = UdpRegistrar(rig.net, options_status=None)
    p = rig.add("alice", 5062, 21000, account={"registrar": "sip:127.0.0.1:5090"},
                sip={"keepalive": "options", "keepalive_s": 5, "t1_ms": 100})
    s = registration(p)
    assert rig.run(1000, until=lambda: s.state == T.S_Registered)
    assert rig.run(15000, until=lambda: reg.count("REGISTER") == 2)     # OPTIONS at 5 s, Timer F at 11.4 s
    assert rig.run(500, until=lambda: s.state == T.S_Registered)
    assert any("OPTIONS timed out" in line for line in rig.lines["alice"])


def test_options_keepalive_over_tcp():
    rig = Rig()
    reg = TcpPeer(rig.net, 5090)
    p = rig.add("alice", 5062, 21000, **reg_cfg(keepalive="options", keepalive_s=5))
    s = registration(p)
    assert rig.run(1000, until=lambda: s.state == T.S_Registered)
    rig.run(11000)
    opts = reg.requests("OPTIONS")
    assert len(opts) == 2 and all(m.get_all("Via")[0].startswith("SIP/2.0/TCP") for m in opts)
    assert len(reg.conns) == 1 and s.state == T.S_Registered


def test_keepalives_stop_at_shutdown():
    rig = Rig()
    udp = UdpRegistrar(rig.net)
    tcp = TcpPeer(rig.net, 5092)
    a = rig.add("alice", 5062, 21000, account={"registrar": "sip:127.0.0.1:5090"},
                sip={"keepalive": "crlf", "keepalive_s": 5})
    b = rig.add("bob", 5064, 21100, **reg_cfg(5092, keepalive="crlf", keepalive_s=5))
    assert rig.run(1000, until=lambda: registration(a).state == T.S_Registered and
                   registration(b).state == T.S_Registered)
    rig.run(5500)
    assert udp.count(b"\r\n\r\n") == 1 and tcp.pings == 1
    a.shutdown()
    b.shutdown()
    assert a.ka_at is None and b.ka_at is None and ua_transport.deadline(a) is None
    assert rig.run(1000, until=lambda: registration(a).state == T.S_Idle and registration(b).state == T.S_Idle)
    rig.run(30000)
    assert udp.count(b"\r\n\r\n") == 1 and tcp.pings == 1           # nothing more after shutdown
    assert a.ka_sent == 1 and b.ka_sent == 1
    ua_transport.close(b)
    rig.run(100)
    assert not b.flows and tcp.conns[0] in tcp.closed
