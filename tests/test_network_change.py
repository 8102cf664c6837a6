# Phone.network_changed on the in-memory loopback net: the link came back, maybe with a new address. Every account
# registers again at once (from Registered, from a failed attempt's backoff, and after a REGISTER that was out
# while it moved); a new address moves the SIP and RTP sockets and goes into Contact, Via and SDP; an active call
# sends a re-INVITE and the far end then reaches the phone there. tests/test_vboard_net.py does it on the board.
from uphone import table as T
from uphone.sip import message as M
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


def _call(rig):
    a = rig.add("alice", 5062, 21000)
    b = rig.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    return a, b, rig.call("alice"), rig.call("bob")


def test_a_held_call_sends_a_reinvite_with_the_new_address_and_stays_held():
    rig = Rig()
    a, b, ca, cb = _call(rig)
    rig.ev("alice", "HoldCall")
    assert rig.run(3000, until=lambda: "OnHold Dialog200OK OnHold" in " ".join(rig.tr("alice")))
    assert cb.ctx.neg.direction == "recvonly"
    n = len(rig.tr("bob"))
    a.network_changed("127.0.0.3")
    assert rig.run(3000, until=lambda: "tr c1 Active DialogReINVITE Active" in " ".join(rig.tr("bob")[n:]) and
                   rig.tr("alice")[-1].startswith("tr c1 OnHold Dialog200OK OnHold"))
    # the far end has the new address in its remote target and media, and still hears a held call
    assert cb.ctx.neg.remote_addr == "127.0.0.3" and "127.0.0.3" in cb.ctx.dialog.remote_target
    assert b"a=sendonly" in cb.ctx.remote_sdp and cb.ctx.neg.direction == "recvonly"
    assert b"c=IN IP4 127.0.0.3" in ca.ctx.local_sdp and b"a=sendonly" in ca.ctx.local_sdp
    assert rig.state("alice") == "OnHold" and ca.ctx.local_dir == "sendonly"
    rig.ev("alice", "ResumeCall")                       # and it comes back from there, at the new address
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and cb.ctx.neg.direction == "sendrecv")
    rig.ev("bob", "HangupCall")
    assert rig.run(3000, until=lambda: rig.state("alice") == "-" and rig.state("bob") == "-")


def test_a_refused_reinvite_leaves_an_agreed_hold_held():
    rig = Rig()
    a, b, ca, cb = _call(rig)
    rig.ev("alice", "HoldCall")
    assert rig.run(3000, until=lambda: "OnHold Dialog200OK OnHold" in " ".join(rig.tr("alice")))
    assert ca.cond & T.C_HoldAnswered
    bob = rig.net.socks.pop(("127.0.0.1", 5064))         # bob does not hear this re-INVITE: we answer it
    a.network_changed("127.0.0.3")
    assert b"a=sendonly" in ca.ctx.reinvite.body
    resp = M.make_response(ca.ctx.reinvite, 488, "Not Acceptable Here", to_tag=ca.ctx.dialog.remote_tag)
    rig.net.queue.append((rig.net.t, resp.to_bytes(), ("127.0.0.1", 5064), ("127.0.0.3", 5062)))
    assert rig.run(1000, until=lambda: not a.busy(ca, "reinvite"))
    rig.net.socks[("127.0.0.1", 5064)] = bob
    # RFC 3261 14.1: the session is as it was, held (the hold-refused row would have taken it back to Active)
    assert rig.state("alice") == "OnHold" and ca.ctx.local_dir == "sendonly"
    assert not [ln for ln in rig.tr("alice") if "Dialog4xxFailure" in ln]


def test_a_muted_call_sends_a_reinvite_and_stays_muted():
    rig = Rig()
    a, b, ca, cb = _call(rig)
    rig.ev("alice", "MuteCall")
    assert rig.state("alice") == "Muted" and ca.ctx.media.muted
    a.network_changed("127.0.0.3")
    assert rig.run(3000, until=lambda: "tr c1 Active DialogReINVITE Active" in " ".join(rig.tr("bob")) and
                   "tr c1 Muted Dialog200OK Muted" in " ".join(rig.tr("alice")))
    assert cb.ctx.neg.remote_addr == "127.0.0.3" and "127.0.0.3" in cb.ctx.dialog.remote_target
    assert cb.ctx.neg.direction == "sendrecv"
    assert rig.state("alice") == "Muted" and ca.ctx.media.muted


def test_the_mwi_subscription_is_refreshed_with_the_new_contact():
    from tests.test_phone_features import _pbx
    rig = Rig()
    got = []
    _pbx(rig, b"Messages-Waiting: yes\r\nVoice-Message: 1/0\r\n", got)
    p = rig.add("dave", 5068, 21300, account={"registrar": "sip:127.0.0.1:5060"},
                features={"voicemail_uri": "sip:dave@127.0.0.1:5060"})
    sub = lambda: next(s for s in p.sessions() if s.kind == T.K_subscription)     # noqa: E731
    assert rig.run(2000, until=lambda: p.mwi is not None and sub().state == T.S_Subscribed)
    rig.run(100)
    first = [m for m in got if m.is_request and m.method == "SUBSCRIBE"]
    assert len(first) == 1 and "@127.0.0.1:5068" in first[0].get("Contact")
    p.network_changed("127.0.0.3")
    subs = lambda: [m for m in got if m.is_request and m.method == "SUBSCRIBE"]    # noqa: E731
    assert rig.run(2000, until=lambda: len(subs()) == 2 and sub().state == T.S_Subscribed)
    re = subs()[1]
    # in the dialog (same Call-ID, both tags), a target refresh: the new Contact
    assert re.call_id == first[0].call_id and re.to_tag == "pbx1" and "@127.0.0.3:5068" in re.get("Contact")
    assert re.cseq_num > first[0].cseq_num
    # the NOTIFY it triggered goes to the new Contact, the only address the phone listens on, and is answered
    rig.run(200)
    assert ("127.0.0.1", 5068) not in rig.net.socks
    assert len([m for m in got if not m.is_request and m.cseq_method == "NOTIFY" and m.status == 200]) == 2
    # one refresh timer, not two: the early refresh replaced the waiting one
    assert len([t for t in p.timers if t[1] is sub() and t[3] == T.E_RefreshSubscription]) == 1
