# Desk-phone features through the real cores on the in-memory network: being transferred (REFER) and
# transferring, message-waiting indication (subscribed and unsolicited).
import pytest

from uphone.sip import message as M
from uphone.sip import parse as P
from uphone.sip import headers as H
from uphone.ua import request
from tests.phone_rig import Rig


@pytest.fixture
def rig():
    r = Rig()
    r.add("alice", 5062, 21000)
    r.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 50})
    r.add("carol", 5066, 21200, features={"auto_answer": True, "auto_answer_delay_ms": 50})
    return r


def calls(rig, name):
    from uphone import table as T
    return [s for s in rig.phones[name].sessions() if s.kind == T.K_call]


def test_blind_transfer_moves_the_caller_to_the_target(rig):
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    rig.ev("bob", "BlindTransfer", target="sip:carol@127.0.0.1:5066")
    # alice accepts the REFER, calls carol, tells bob it worked; bob hangs up his leg
    assert rig.run(5000, until=lambda: not calls(rig, "bob") and len(calls(rig, "alice")) == 1
                   and rig.state("alice") == "Active" and rig.state("carol") == "Active")
    assert any("Active DialogREFER Active AcceptTransfer" in l for l in rig.tr("alice"))
    assert any("Transferring TransferSuccess Terminating" in l for l in rig.tr("bob"))
    assert any("Active DialogBYE Terminating" in l for l in rig.tr("alice"))
    # the new call carries the transferor's identity (RFC 3892) and is really connected to carol
    invite = calls(rig, "carol")[-1].ctx.invite
    assert "bob@" in (invite.get("Referred-By") or "")
    assert calls(rig, "alice")[-1].ctx.dialog.remote_uri.startswith("sip:carol@")


def test_transfer_to_a_busy_target_keeps_the_original_call(rig):
    rig.phones["carol"].cfg["features"]["auto_answer"] = False
    rig.phones["carol"].cfg["features"]["dnd"] = True          # carol answers 486 at once
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("bob") == "Active")
    rig.ev("bob", "BlindTransfer", target="sip:carol@127.0.0.1:5066")
    assert rig.run(5000, until=lambda: any("TransferFailed" in l for l in rig.tr("bob")))
    assert any("Transferring TransferFailed Active" in l for l in rig.tr("bob"))
    rig.run(500)
    # alice's call with bob is still up; her attempt to reach carol ended as a rejected call
    assert rig.state("bob") == "Active" and calls(rig, "alice")[0].ctx.dialog.remote_uri.startswith("sip:bob@")
    assert any("Failed(Rejected)" in l for l in rig.tr("alice"))


def test_refer_without_refer_to_is_refused_and_the_call_stays(rig):
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("bob") == "Active")
    bob_call = calls(rig, "bob")[-1]
    got = []
    p = rig.phones["bob"]
    real = p.txl._send
    p.txl._send = lambda data, dest: (got.append(data), real(data, dest))
    req, dest = request.dialog_request(p, bob_call, "REFER")          # no Refer-To header
    p.send_request(bob_call, req, dest, "refer")
    rig.run(500)
    assert rig.state("alice") == "Active" and rig.state("bob") == "Active"
    lines = rig.lines["alice"]
    assert any("REFER without a usable Refer-To" in l for l in lines)


def _pbx(rig, notify_body, got):
    """A registrar + voicemail server at 127.0.0.1:5060: 200 to REGISTER and SUBSCRIBE, then a NOTIFY."""
    net = rig.net

    def handler(data, src):
        m = P.parse(data)
        got.append(m)
        if not m.is_request:
            return
        hs = []
        if m.method == "REGISTER":
            hs = [("Contact", m.get("Contact")), ("Expires", "600")]
        elif m.method == "SUBSCRIBE":
            hs = [("Expires", "3600"), ("Contact", "<sip:vm@127.0.0.1:5060>")]
        resp = M.make_response(m, 200, "OK", to_tag="pbx1", headers=hs)
        net.queue.append((net.t + 1, resp.to_bytes(), ("127.0.0.1", 5060), src))
        if m.method == "SUBSCRIBE":
            contact = H.parse_name_addr(m.get("Contact")).uri
            notify = M.make_request("NOTIFY", contact, [
                ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKmwi%d" % net.t), ("Max-Forwards", "70"),
                ("From", m.get("To") + ";tag=pbx1"), ("To", m.get("From")), ("Call-ID", m.call_id),
                ("CSeq", "1 NOTIFY"), ("Contact", "<sip:vm@127.0.0.1:5060>"), ("Event", "message-summary"),
                ("Subscription-State", "active;expires=3600"),
                ("Content-Type", "application/simple-message-summary")], notify_body)
            net.queue.append((net.t + 2, notify.to_bytes(), ("127.0.0.1", 5060), src))
    net.socks[("127.0.0.1", 5060)] = handler


def test_voicemail_light_from_a_subscription():
    rig = Rig()
    got = []
    _pbx(rig, b"Messages-Waiting: yes\r\nMessage-Account: sip:dave@127.0.0.1\r\nVoice-Message: 2/8 (0/2)\r\n", got)
    p = rig.add("dave", 5068, 21300, account={"registrar": "sip:127.0.0.1:5060"},
                features={"voicemail_uri": "sip:dave@127.0.0.1:5060"})
    assert rig.run(2000, until=lambda: p.mwi is not None)
    rig.run(100)                 # the 200 to the NOTIFY is on its way
    assert p.mwi == (True, "2/8")
    assert any(l.startswith("mwi on 2/8") for l in rig.lines["dave"])
    subs = [m for m in got if m.is_request and m.method == "SUBSCRIBE"]
    assert subs and subs[0].get("Event") == "message-summary"
    # the phone answered the NOTIFY
    assert any(not m.is_request and m.cseq_method == "NOTIFY" and m.status == 200 for m in got)


def test_unsolicited_mwi_notify_lights_and_clears_the_lamp(rig):
    p = rig.phones["alice"]
    got = []
    rig.net.socks[("127.0.0.1", 5098)] = lambda d, a: got.append(P.parse(d))
    for i, waiting in enumerate((b"yes", b"no")):
        raw = (b"NOTIFY sip:alice@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bKu%d\r\n"
               b"Max-Forwards: 70\r\nFrom: <sip:vm@127.0.0.1>;tag=9\r\nTo: <sip:alice@127.0.0.1>\r\n"
               b"Call-ID: mwi-%d@127.0.0.1\r\nCSeq: 1 NOTIFY\r\nEvent: message-summary\r\n"
               b"Content-Type: application/simple-message-summary\r\nContent-Length: %d\r\n\r\n"
               % (i, i, len(b"Messages-Waiting: " + waiting + b"\r\n"))) + b"Messages-Waiting: " + waiting + b"\r\n"
        rig.net.queue.append((rig.net.t, raw, ("127.0.0.1", 5098), ("127.0.0.1", 5062)))
        rig.run(100)
        assert p.mwi[0] is (waiting == b"yes")
    assert [m.status for m in got] == [200, 200]


class Keep:
    """Audio sink keeping the frames a phone played."""

    def __init__(self):
        self.frames = []

    def write(self, buf):
        self.frames.append(bytes(buf))
        return len(buf)


def test_answering_a_waiting_call_holds_the_first_and_only_one_call_is_heard(rig):
    from uphone import table as T
    from uphone.hal.desktop import WavSource
    from uphone.media.goertzel import dominant_freq
    rig.phones["carol"].cfg["features"]["auto_answer"] = False
    heard = {"bob": Keep(), "carol": Keep()}
    rig.phones["alice"].set_audio(WavSource("tone:1000", 8000), Keep())
    for n in heard:
        rig.phones[n].set_audio(None, heard[n])
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    first = calls(rig, "alice")[0]
    # carol calls alice (call waiting); alice picks it up
    rig.ev("carol", "MakeCall", target="sip:alice@127.0.0.1:5062")
    assert rig.run(2000, until=lambda: len(calls(rig, "alice")) == 2 and rig.state("alice") == "Ringing")
    second = calls(rig, "alice")[1]
    rig.ev("alice", "AcceptCall")
    assert rig.run(3000, until=lambda: second.state == T.S_Active and first.state == T.S_OnHold
                   and not first.ctx.txns)
    assert calls(rig, "bob")[-1].ctx.neg.direction == "recvonly"       # bob learnt he is on hold
    n_bob, n_carol = len(heard["bob"].frames), len(heard["carol"].frames)
    rig.run(1000)
    # alice's voice goes to carol only; bob, on hold, gets silence
    assert abs(dominant_freq(b"".join(heard["carol"].frames[n_carol + 10:]), 8000) - 1000) < 20
    assert not any(any(f) for f in heard["bob"].frames[n_bob + 10:])
    # back to bob: resuming the first call holds the second
    rig.ev("alice", "ResumeCall", sid=first.sid)
    assert rig.run(3000, until=lambda: first.state == T.S_Active and second.state == T.S_OnHold
                   and not second.ctx.txns)


def _redirector(rig, port, contact):
    """A stub at 127.0.0.1:port answering every INVITE with 302 to `contact` (and absorbing ACKs)."""
    net = rig.net
    seen = []

    def handler(data, src):
        m = P.parse(data)
        seen.append(m)
        if m.is_request and m.method == "INVITE":
            resp = M.make_response(m, 302, "Moved Temporarily", to_tag="fwd%d" % len(seen),
                                   headers=[("Contact", "<%s>" % contact)])
            net.queue.append((net.t + 1, resp.to_bytes(), ("127.0.0.1", port), src))
    net.socks[("127.0.0.1", port)] = handler
    return seen


def test_a_302_is_followed_to_the_forwarded_target(rig):
    seen = _redirector(rig, 5070, "sip:bob@127.0.0.1:5064")
    rig.ev("alice", "MakeCall", target="sip:fwd@127.0.0.1:5070")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    assert any(l.startswith("redirect c1 302 to sip:bob@127.0.0.1:5064") for l in rig.lines["alice"])
    # the redirector got its ACK from the INVITE transaction (RFC 3261 17.1.1.3)
    assert [m.method for m in seen if m.is_request] == ["INVITE", "ACK"]
    invite = calls(rig, "bob")[-1].ctx.invite
    assert invite.uri == "sip:bob@127.0.0.1:5064" and "fwd@" in invite.get("To") and invite.cseq_num == 2


def test_a_redirect_loop_fails_the_call_after_three_hops(rig):
    seen = _redirector(rig, 5070, "sip:fwd@127.0.0.1:5070")
    rig.ev("alice", "MakeCall", target="sip:fwd@127.0.0.1:5070")
    assert rig.run(3000, until=lambda: rig.call("alice") is None)
    assert sum(m.is_request and m.method == "INVITE" for m in seen) == 4
    assert any("Dialog4xxFailure Failed(Rejected)" in l for l in rig.tr("alice"))
