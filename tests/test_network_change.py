# Phone.network_changed on the in-memory loopback net: the link came back, maybe with a new address. Every account
# registers again at once (from Registered, from a failed attempt's backoff, and after a REGISTER that was out
# while it moved); a new address moves the SIP and RTP sockets and goes into Contact, Via and SDP; an active call
# sends a re-INVITE and the far end then reaches the phone there. tests/test_vboard_net.py does it on the board.
from uphone import table as T
from uphone.sip import parse as P
from tests.phone_rig import Rig
from tests.test_keepalive import UdpRegistrar


def registration(p):
    return next(s for s in p.sessions() if s.kind == T.K_registration)


def registers(reg):
    return [P.parse(d) for _t, d in reg.got if d.startswith(b"REGISTER")]


def test_registered_phone_registers_the_new_contact_at_once():
    rig = Rig()
    reg = UdpRegistrar(rig.net, 5090)
    p = rig.add("alice", 5062, 21000, account={"registrar": "sip:127.0.0.1:5090"})
    s = registration(p)
    assert rig.run(1000, until=lambda: s.state == T.S_Registered)
    p.network_changed(None)                             # same address: register again, nothing moves
    assert rig.run(1000, until=lambda: len(registers(reg)) == 2 and s.state == T.S_Registered)
    p.network_changed("127.0.0.3")
    assert rig.run(1000, until=lambda: len(registers(reg)) == 3 and s.state == T.S_Registered)
    last = registers(reg)[-1]
    assert "@127.0.0.3:5062" in last.get("Contact") and "127.0.0.3:5062" in last.get("Via")
    assert ("127.0.0.3", 5062) in rig.net.socks and ("127.0.0.1", 5062) not in rig.net.socks
    assert last.call_id == registers(reg)[0].call_id      # one Call-ID per binding (RFC 3261 10.2.4)


def test_a_register_out_while_moving_is_followed_by_one_from_the_new_address():
    rig = Rig()
    reg = UdpRegistrar(rig.net, 5090)
    p = rig.add("alice", 5062, 21000, account={"registrar": "sip:127.0.0.1:5090"})
    s = registration(p)
    assert s.state == T.S_Registering                  # the first REGISTER is out
    p.network_changed("127.0.0.3")                      # its answer goes to the old address: lost
    assert rig.run(40000, until=lambda: s.state == T.S_Registered and any(
        "@127.0.0.3:" in r.get("Contact") for r in registers(reg)))


def test_a_failed_registration_retries_at_once_when_the_network_is_back():
    rig = Rig()
    p = rig.add("alice", 5062, 21000, account={"registrar": "sip:127.0.0.1:5090"})
    s = registration(p)
    assert rig.run(40000, until=lambda: s.state == T.S_Idle)       # nobody answers: timeout, backoff 30 s
    assert any("retry in 30 s" in ln for ln in rig.lines["alice"])
    reg = UdpRegistrar(rig.net, 5090)
    p.network_changed("127.0.0.3")
    assert rig.run(2000, until=lambda: s.state == T.S_Registered), rig.lines["alice"][-5:]
    assert "@127.0.0.3:" in registers(reg)[-1].get("Contact")


def test_an_active_call_sends_a_reinvite_with_the_new_address():
    rig = Rig()
    a = rig.add("alice", 5062, 21000)
    b = rig.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    ca, cb = rig.call("alice"), rig.call("bob")
    a.network_changed("127.0.0.3")
    assert rig.run(3000, until=lambda: "tr c1 Active DialogReINVITE Active" in " ".join(rig.tr("bob")) and
                   "Active Dialog200OK Active" in " ".join(rig.tr("alice")))
    assert cb.ctx.neg.remote_addr == "127.0.0.3" and "127.0.0.3" in cb.ctx.dialog.remote_target
    assert b"c=IN IP4 127.0.0.3" in ca.ctx.local_sdp and ca.ctx.rtp_sock == ("127.0.0.3", ca.ctx.rtp_port)
    assert rig.state("alice") == "Active" and rig.state("bob") == "Active"
    rig.ev("bob", "HangupCall")                         # bob's BYE goes to the new Contact and is answered
    assert rig.run(3000, until=lambda: rig.state("alice") == "-" and rig.state("bob") == "-")
    assert "tr c1 Active DialogBYE Terminating" in " ".join(rig.tr("alice"))
