# Whole calls between two phones through the real SIP and media cores, on the in-memory network.
import pytest

from uphone import table as T
from tests.phone_rig import Rig


@pytest.fixture
def rig():
    r = Rig()
    r.add("alice", 5062, 21000)
    r.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 100})
    return r


def test_call_answer_hold_resume_dtmf_hangup(rig):
    res, s, why = rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert s is not None, why
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    assert any(" Initiating Dialog180Ringing Ringing " in l for l in rig.tr("alice"))
    rig.run(500)
    a, b = rig.call("alice").ctx.media.stats(), rig.call("bob").ctx.media.stats()
    assert a["sent"] > 10 and b["received"] > 10 and b["sent"] > 10 and a["received"] > 10
    rig.ev("alice", "HoldCall")
    assert rig.run(2000, until=lambda: rig.state("alice") == "OnHold" and not rig.call("alice").ctx.txns)
    assert rig.call("bob").ctx.neg.direction == "recvonly"      # bob learnt it is on hold
    rig.ev("alice", "ResumeCall")
    assert rig.run(2000, until=lambda: rig.state("alice") == "Active")
    assert rig.call("bob").ctx.neg.direction == "sendrecv"
    rig.ev("alice", "SendDTMF", digits="159#")
    rig.run(2000)
    assert rig.call("bob").ctx.digits == "159#"
    rig.ev("alice", "HangupCall")
    assert rig.run(3000, until=lambda: rig.call("alice") is None and rig.call("bob") is None)
    assert any("Active DialogBYE Terminating" in l for l in rig.tr("bob"))
    assert any("Terminating InternalCleanupComplete Terminated" in l for l in rig.tr("alice"))


def test_rejected_call(rig):
    rig.phones["bob"].cfg["features"]["auto_answer"] = False
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(2000, until=lambda: rig.state("bob") == "Ringing")
    rig.ev("bob", "RejectCall")
    assert rig.run(2000, until=lambda: rig.call("alice") is None)
    assert any("Initiating Dialog4xxFailure Failed(Rejected)" in l or "Ringing Dialog4xxFailure Failed(Rejected)" in l
               for l in rig.tr("alice"))


def test_cancel_before_answer(rig):
    rig.phones["bob"].cfg["features"]["auto_answer"] = False
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(2000, until=lambda: rig.state("alice") == "Ringing" and rig.state("bob") == "Ringing")
    rig.ev("alice", "HangupCall")
    assert rig.run(3000, until=lambda: rig.call("alice") is None and rig.call("bob") is None)
    assert any("Ringing DialogCANCEL Cancelled" in l for l in rig.tr("bob"))
    assert any("Cancelled Dialog4xxFailure Cancelled" in l for l in rig.tr("alice"))   # the 487


def test_200_after_cancel_is_acked_then_byed(rig):
    # bob answers at the same moment alice cancels: the 200 crosses the CANCEL (DESIGN race)
    rig.phones["bob"].cfg["features"]["auto_answer"] = False
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(2000, until=lambda: rig.state("bob") == "Ringing" and rig.state("alice") == "Ringing")
    rig.ev("bob", "AcceptCall")          # 200 OK is in flight (1 ms one-way)...
    rig.ev("alice", "HangupCall")        # ...when alice cancels
    assert rig.run(5000, until=lambda: rig.call("alice") is None and rig.call("bob") is None)
    assert any("Cancelled Dialog200OK Cancelled SendACK,SendBYE" in l for l in rig.tr("alice"))
    assert any("Active DialogBYE Terminating" in l for l in rig.tr("bob"))


def test_busy_without_call_waiting(rig):
    rig.phones["bob"].cfg["features"]["call_waiting"] = False
    carol = rig.add("carol", 5066, 21200)
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("bob") == "Active")
    rig.ev("carol", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.call("carol") is None)
    assert any("Dialog4xxFailure Failed(Rejected)" in l for l in rig.tr("carol"))
    assert any(l.startswith("resp c1 invite 486 Busy Here") for l in rig.lines["carol"]), rig.lines["carol"]


def test_a_call_past_the_lines_gets_486_without_a_session(rig):
    # features.lines: calls with media at once (their buffers are reserved at boot); one more gets 486, no session
    dave = rig.add("dave", 5068, 21300, features={"lines": 1, "auto_answer": True, "auto_answer_delay_ms": 0})
    rig.add("carol", 5066, 21200)
    assert len(dave._line_mem) == 1 and len(rig.phones["alice"]._line_mem) == 2
    rig.ev("alice", "MakeCall", target="sip:dave@127.0.0.1:5068")
    assert rig.run(3000, until=lambda: rig.state("dave") == "Active")
    rig.ev("carol", "MakeCall", target="sip:dave@127.0.0.1:5068")
    assert rig.run(3000, until=lambda: rig.call("carol") is None)
    assert any(l.startswith("resp c1 invite 486 Busy Here") for l in rig.lines["carol"]), rig.lines["carol"]
    assert len(dave.calls()) == 1 and sum("Idle IncomingCall" in l for l in rig.tr("dave")) == 1
    rig.ev("alice", "HangupCall")
    assert rig.run(3000, until=lambda: rig.call("dave") is None)
    rig.ev("carol", "MakeCall", target="sip:dave@127.0.0.1:5068")     # the line came back: carol gets through
    assert rig.run(3000, until=lambda: rig.state("dave") == "Active" and rig.state("carol") == "Active")


def test_glare_on_reinvite_retries(rig):
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    rig.ev("alice", "HoldCall")
    rig.ev("bob", "HoldCall")            # both re-INVITE at once: each answers the other 491
    # each side got 491, waits its RFC 3261 14.1 interval (Call-ID owner 2.1-4 s, the other 0-2 s), then retries
    retried = lambda: all(any("GlareRetry OnHold SendReINVITE" in l for l in rig.tr(n)) for n in ("alice", "bob"))
    assert rig.run(10000, until=lambda: retried() and rig.state("alice") == "OnHold" and rig.state("bob") == "OnHold"
                   and not rig.call("alice").ctx.txns and not rig.call("bob").ctx.txns)
    assert all(any("Dialog491Glare OnHold StartGlareTimer" in l for l in rig.tr(n)) for n in ("alice", "bob"))
    # both holds went through in the end: each side's offer was answered, neither sends audio now
    assert rig.call("alice").ctx.neg.direction in ("sendonly", "inactive")
    assert rig.call("bob").ctx.neg.direction in ("sendonly", "inactive")


def test_resume_before_the_hold_is_answered_waits_for_it(rig):
    # RFC 3261 14.1: one INVITE transaction at a time in a dialog. The user resumes while the hold re-INVITE is still
    # out: the resume goes out once the hold is answered, and the hold's answer does not count as the resume's
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    rig.ev("alice", "HoldCall")
    rig.ev("alice", "ResumeCall")
    assert rig.state("alice") == "Resuming" and len(rig.call("alice").ctx.txns) == 1
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and not rig.call("alice").ctx.txns)
    assert rig.call("alice").ctx.neg.direction == "sendrecv" and rig.call("bob").ctx.neg.direction == "sendrecv"
    assert sum("DialogReINVITE" in l for l in rig.tr("bob")) == 2
    assert any("to a superseded offer" in l for l in rig.lines["alice"])
    rig.run(500)
    assert rig.call("alice").ctx.media.stats()["received"] > 10


def test_failing_action_refused_cleanly(rig):
    # nothing is unsupported any more (issue 12); an action that fails (an attended transfer with no target to
    # consult) leaves the call as it was, and says which action failed
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active")
    res, s, _ = rig.ev("alice", "StartAttendedTransfer")
    assert res != 0 and rig.state("alice") == "Active"
    assert any("CreateConsultationCall failed" in l for l in rig.lines["alice"]), rig.lines["alice"][-5:]
    # and one that works on the loopback net too: the call becomes a conference's host leg
    res, s, _ = rig.ev("alice", "CreateConference")
    assert res == 0 and rig.state("alice") == "ConferenceHost"


def test_options_answered_and_unknown_dialog_gets_481(rig):
    from uphone.sip import parse as P
    got = []
    rig.net.socks[("127.0.0.1", 5099)] = lambda d, a: got.append(P.parse(d))
    for method, extra in (("OPTIONS", ""), ("BYE", ";tag=nope")):
        raw = ("%s sip:bob@127.0.0.1:5064 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK%s\r\n"
               "Max-Forwards: 70\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>%s\r\n"
               "Call-ID: t-%s@127.0.0.1\r\nCSeq: 1 %s\r\nContent-Length: 0\r\n\r\n"
               % (method, method, extra, method, method)).encode()
        rig.net.queue.append((rig.net.t, raw, ("127.0.0.1", 5099), ("127.0.0.1", 5064)))
    rig.run(200)
    codes = {m.cseq_method: m.status for m in got}
    assert codes == {"OPTIONS": 200, "BYE": 481}
    opt = [m for m in got if m.cseq_method == "OPTIONS"][0]
    assert "INVITE" in opt.get("Allow") and opt.get("Accept")


def test_a_repeated_2xx_is_acked_again_with_its_invites_cseq_and_the_call_goes_on(rig):
    # the UAC no longer keeps its last ACK's bytes for the call's life (ua/call.py ack_2xx): a 2xx that comes
    # again (the UAS missed our ACK, RFC 3261 13.3.1.4) gets an ACK built anew, for the INVITE it answers
    seen = []
    rig.net.loss = lambda data, src, dst: seen.append((data, src, dst)) and False
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    rig.ev("alice", "HoldCall")             # a re-INVITE: the dialog's CSeq moves on to 2
    assert rig.run(2000, until=lambda: rig.state("alice") == "OnHold" and not rig.call("alice").ctx.txns)
    ok = [x for x in seen if x[0].startswith(b"SIP/2.0 200") and b" 1 INVITE\r\n" in x[0]]
    assert len(ok) == 1
    del seen[:]
    rig.net.queue.append((rig.net.t + 1, ok[0][0], ok[0][1], ok[0][2]))     # the first 2xx again
    rig.run(200)
    acks = [x[0] for x in seen if x[0].startswith(b"ACK ")]
    assert len(acks) == 1 and b"CSeq: 1 ACK\r\n" in acks[0], seen
    assert not [x for x in seen if x[0].startswith(b"BYE ")]
    assert rig.state("alice") == "OnHold" and rig.state("bob") == "Active"   # bob is held: his table stays
