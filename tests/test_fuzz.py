# No crash on a bad packet: thousands of mutated SIP datagrams and RTP/RTCP packets thrown at phones in a call,
# in the middle of their dialogs. Every one must be answered or dropped without an exception, and the phones keep
# working. Seeded and bounded, so a failure reproduces.
import random

from uphone import table as T
from uphone.ua import request
from host_tools import fuzz
from tests.phone_rig import Rig
from bench.sip_parse import CORPUS


def _seeds():
    return list(CORPUS) + fuzz.conformance_messages()


def _in_dialog(rig):
    """Real in-dialog requests (BYE, re-INVITE, INFO...) of the live call, so mutations hit the dialog code too."""
    call = [s for s in rig.phones["alice"].sessions() if s.kind == T.K_call][-1]
    out = []
    for method, body, ctype in (("BYE", b"", None), ("INFO", b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay"),
                                ("INVITE", call.ctx.local_sdp or b"", "application/sdp"), ("UPDATE", b"", None),
                                ("NOTIFY", b"SIP/2.0 200 OK\r\n", "message/sipfrag"),
                                ("REFER", b"", None)):
        req, _dest = request.dialog_request(rig.phones["alice"], call, method, body, ctype,
                                            [("Refer-To", "<sip:carol@127.0.0.1:5066>")]
                                            if method == "REFER" else [("Event", "refer")])
        call.ctx.dialog.local_cseq -= 1      # not really sent: keep alice's own numbering intact
        out.append(req.to_bytes())
    return out


def test_mutated_sip_and_rtp_never_crash_a_phone():
    rng = random.Random(4475)
    rig = Rig()
    rig.add("alice", 5062, 21000)
    # no per-source rate limit (sip.rate_limit): it would drop most of a burst unparsed, and the parser is the target
    rig.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 0}, sip={"rate_limit": 0})
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    seeds = _seeds() + _in_dialog(rig)
    bob_call = [s for s in rig.phones["bob"].sessions() if s.kind == T.K_call][-1]
    rtp_port = bob_call.ctx.rtp_port
    for i in range(3000):
        data = fuzz.mutate(rng, rng.choice(seeds))
        # from alice's own address half of the time: then mutated in-dialog requests reach bob's dialog code
        src = ("127.0.0.1", 5062) if i & 1 else ("127.0.0.1", 5099)
        rig.net.queue.append((rig.net.t, data, src, ("127.0.0.1", 5064)))
        if i % 5 == 0:
            pkt = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
            if rng.random() < 0.5 and len(pkt) > 12:
                pkt = b"\x80" + pkt[1:]               # looks like RTP version 2
            rig.net.queue.append((rig.net.t, pkt, ("127.0.0.1", 31000), ("127.0.0.1", rtp_port)))
            rig.net.queue.append((rig.net.t, pkt, ("127.0.0.1", 31001), ("127.0.0.1", rtp_port + 1)))
        if i % 50 == 0:
            rig.run(20)         # timers, retransmissions and media run between the bursts
    rig.run(200)
    # both phones still work: a new call from bob to alice goes through and ends cleanly
    for name in ("alice", "bob"):
        p = rig.phones[name]
        for s in list(p.sessions()):
            if s.kind == T.K_call and s.state not in (T.S_Terminated, T.S_Cancelled, T.S_Failed, T.S_Idle):
                p.dispatch(s, T.E_HangupCall)
    # calls the fuzz set up with unreachable peers end by their own timers (BYE Timer F): nothing is left behind
    assert rig.run(40000, until=lambda: rig.call("alice") is None and rig.call("bob") is None), \
        [(s.sid, T.STATES[s.state]) for s in rig.phones["bob"].sessions()]
    assert not rig.phones["bob"].timers and not rig.phones["alice"].timers
    rig.phones["alice"].cfg["features"]["auto_answer"] = True
    _res, s, _why = rig.ev("bob", "MakeCall", target="sip:alice@127.0.0.1:5062")
    assert rig.run(3000, until=lambda: T.STATES[s.state] == "Active"), rig.lines["bob"][-10:]
    rig.ev("bob", "HangupCall")
    assert rig.run(3000, until=lambda: rig.call("bob") is None)
