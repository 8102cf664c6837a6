# Two phones, each in its own process on CPython and on the frozen MicroPython runtime, call each other over real
# UDP sockets on 127.0.0.1: audio both ways, hold and resume, DTMF, hang up. Driven only through their consoles.
import wave

import pytest

from uphone.media.goertzel import dominant_freq
from tests.proc import phones  # noqa: F401  (fixture)


def _heard(path, last_s=1.0):
    with wave.open(path) as w:
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    return data[-int(rate * last_s) * 2:], rate


def test_call_audio_both_ways_hold_resume_dtmf_hangup(phones):
    a = phones.add("alice", audio={"source": "tone:1000", "sink": "heard.wav"})
    b = phones.add("bob", audio={"source": "tone:440", "sink": "heard.wav"},
                   features={"auto_answer": True, "auto_answer_delay_ms": 0})
    ans = a.ev("MakeCall", target=b.uri)
    assert ans.startswith("ok c1"), ans
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), a.tail()
    assert a.wait_line("Active MediaFlowEstablished", 5) and b.wait_line("Active MediaFlowEstablished", 5)
    a.wait(lambda: False, 1.5)
    leg = a.st()["leg"]["c1"]
    assert leg["codec"] == "PCMU" and leg["dir"] == "sendrecv" and leg["flowing"] == "1", leg
    assert a.ev("HoldCall").startswith("ok c1 OnHold")
    assert b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "recvonly", 5), b.tail()
    assert a.ev("ResumeCall").startswith("ok c1 Resuming")
    assert a.wait(lambda: a.state() == "Active", 5), a.tail()
    assert b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "sendrecv", 5), b.tail()
    assert a.ev("SendDTMF", digits="12#").startswith("ok c1 Active")
    assert b.wait(lambda: b.st()["media"]["c1"]["dtmf"] == "12#", 5), b.tail()
    a.wait(lambda: False, 1.5)
    assert a.ev("HangupCall").startswith("ok c1 Terminating")
    assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())
    phones.close()
    for p, hz in ((a, 440), (b, 1000)):
        pcm, rate = _heard(p.dir + "/heard.wav")
        assert abs(dominant_freq(pcm, rate) - hz) < 20, (p.name, dominant_freq(pcm, rate), a.tail(60), b.tail(60))


@pytest.mark.parametrize("mode", ["rfc4733", "info", "inband"])
def test_dtmf_three_ways(phones, mode):
    # both phones configured for one way: RFC 4733 events in RTP, SIP INFO (application/dtmf-relay) or tones in the
    # audio that the receiver's Goertzel detector hears (alice's microphone plays a tone between the digits)
    a = phones.add("alice", audio={"source": "tone:1000"}, media={"dtmf": mode})
    b = phones.add("bob", media={"dtmf": mode}, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    a.ev("MakeCall", target=b.uri)
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    assert b.wait_line("Active MediaFlowEstablished", 5), b.tail()
    for d in "159#":
        assert a.ev("SendDTMF", digits=d).startswith("ok c1 Active")
        assert b.wait(lambda: b.st()["media"]["c1"]["dtmf"].endswith(d), 5), (mode, b.tail())
    assert b.st()["media"]["c1"]["dtmf"] == "159#"
    # each digit came the configured way: in SIP INFO requests, or out of the media (RTP events or tones)
    via_info, via_media = b.count("Active DialogINFO Active ReportDTMF"), b.count("Active DTMFReceived Active")
    assert (via_info, via_media) == ((4, 0) if mode == "info" else (0, 4)), b.tail()
    a.ev("HangupCall")
    assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())


def test_blind_transfer(phones):
    # alice calls bob; bob sends alice a REFER to carol; alice accepts it, calls carol and tells bob it worked
    # (sipfrag NOTIFY); bob hangs up his leg and alice ends up talking to carol
    auto = {"auto_answer": True, "auto_answer_delay_ms": 50}
    a = phones.add("alice", audio={"source": "tone:1000"})
    b = phones.add("bob", features=auto)
    c = phones.add("carol", audio={"source": "tone:440"}, features=auto)
    a.ev("MakeCall", target=b.uri)
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    assert b.ev("BlindTransfer", target=c.uri).startswith("ok c1 Transferring")
    assert a.wait(lambda: not b.st()["calls"] and len(a.st()["calls"]) == 1 and a.state() == "Active"
                  and c.state() == "Active", 10), (a.tail(), b.tail(), c.tail())
    assert a.saw("Active DialogREFER Active AcceptTransfer")
    assert b.saw("Transferring TransferSuccess Terminating")
    assert a.saw("Active DialogBYE Terminating")
    # alice's one call is with carol now, and audio flows both ways on it
    (sid, leg), = a.st()["leg"].items()
    assert leg["remote"].startswith("sip:carol@") and leg["state"] == "Active", leg
    assert a.wait(lambda: a.st()["leg"][sid]["flowing"] == "1" and c.st()["leg"]["c1"]["flowing"] == "1", 5)
    assert c.st()["leg"]["c1"]["remote"].startswith("sip:alice@")
    a.ev("HangupCall")
    assert a.wait(lambda: a.state() == "-" and c.state() == "-", 5), (a.tail(), c.tail())


def test_a_digit_sent_as_sip_info_on_demand(phones):
    # a phone set for RFC 4733 events sends one digit as SIP INFO when its user asks (`ev SendInfo digit=`): the
    # PBX feature codes that are read only in signalling. The far end reports it from the INFO (not from RTP) and
    # answers 200; a SendInfo without a digit or with one that is not DTMF fails and sends nothing
    a = phones.add("alice")
    b = phones.add("bob", features={"auto_answer": True, "auto_answer_delay_ms": 0})
    a.ev("MakeCall", target=b.uri)
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    for d in "7*":
        assert a.ev("SendInfo", digit=d).startswith("ok c1 Active"), a.tail()
        assert b.wait(lambda: b.st()["media"]["c1"]["dtmf"].endswith(d), 5), b.tail()
    assert a.wait(lambda: a.count("resp c1 info 200 OK") == 2, 5), a.tail()
    assert a.count("tr c1 Active SendInfo Active SendINFO") == 2, a.tail()
    assert b.count("tr c1 Active DialogINFO Active ReportDTMF") == 2, b.tail()
    assert not b.saw("DTMFReceived"), b.tail()
    assert not a.ev("SendInfo").startswith("ok"), a.tail()
    assert not a.ev("SendInfo", digit="x").startswith("ok") and a.saw("err c1 SendInfo needs digit="), a.tail()
    assert b.st()["media"]["c1"]["dtmf"] == "7*" and b.count("DialogINFO") == 2, b.tail()
    a.ev("HangupCall")
    assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())


def test_info_digits_reach_a_muted_call_and_an_update_reaches_a_held_one(phones):
    # the far end's INFO digits reach a call its user muted (muting silences the microphone, not the far end), and
    # its UPDATE offer reaches a call its user holds: answered 200 and the hold survives it (our answer stays
    # sendonly), where a 491 would have ended a session-timer call at its expiry
    a = phones.add("alice")
    b = phones.add("bob", features={"auto_answer": True, "auto_answer_delay_ms": 0})
    a.ev("MakeCall", target=b.uri)
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    assert b.ev("MuteCall") == "ok c1 Muted"
    assert a.ev("SendInfo", digit="5").startswith("ok c1 Active"), a.tail()
    assert b.wait_line("tr c1 Muted DialogINFO Muted ReportDTMF,Send200OK", 5), b.tail()
    assert b.wait(lambda: b.st()["media"]["c1"]["dtmf"] == "5", 5), b.tail()
    assert a.wait_line("resp c1 info 200 OK", 5), a.tail()
    assert b.ev("UnmuteCall") == "ok c1 Active"
    assert b.ev("HoldCall") == "ok c1 OnHold"
    assert a.wait(lambda: a.st()["leg"]["c1"]["dir"] == "recvonly", 5), a.tail()
    assert a.ev("SendUpdate").startswith("ok c1 Active"), a.tail()
    assert b.wait_line("tr c1 OnHold DialogUPDATE OnHold StoreRemoteSDP,NegotiateSDPAsUAS,GenerateLocalSDP,Send200OK",
                       5), b.tail()
    assert a.wait_line(lambda l: l.startswith("tr c1 Active Update200OK Active"), 5), a.tail()
    assert b.st()["leg"]["c1"]["dir"] == "sendonly" and a.st()["leg"]["c1"]["dir"] == "recvonly", (a.tail(), b.tail())
    assert b.state() == "OnHold"
    a.ev("HangupCall")
    assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())
