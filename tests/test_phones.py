# Two phones, each in its own process on CPython and on the frozen MicroPython runtime, call each other over real
# UDP sockets on 127.0.0.1: audio both ways, hold and resume, DTMF, hang up. Driven only through their consoles.
import wave

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
