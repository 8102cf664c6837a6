# Call recording from the table (Active: StartRecording / StopRecording) on the loopback net: a WAV file with both
# directions mixed, closed by StopRecording or by the hang-up, and clean refusals when there is nothing to record.
import pytest

from uphone.console import Console
from uphone.hal.desktop import WavSource
from uphone.media import goertzel
from uphone.media.wav import WavReader
from tests.phone_rig import Rig


@pytest.fixture
def rig():
    r = Rig()
    a = r.add("alice", 5062, 21000)
    b = r.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    a.set_audio(WavSource("tone:1000", 8000), None)
    b.set_audio(WavSource("tone:600", 8000), None)
    r.out = []
    r.con = Console(a, r.out.append)
    return r


def connect(rig):
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    rig.run(200)                                   # the jitter buffer fills: audio both ways


def read_wav(path):
    with open(path, "rb") as f:
        w = WavReader(f)
        buf = bytearray(w.size)
        n = w.readinto(buf)
    return w, bytes(buf[:n])


def test_start_stop_recording_writes_both_directions(rig, tmp_path):
    connect(rig)
    path = str(tmp_path / "call.wav")
    rig.con.handle_line("ev StartRecording file=%s" % path)
    assert rig.out[-1] == "ok c1 Active", rig.out
    assert any(l.startswith("rec c1 ") and l.endswith(path) for l in rig.lines["alice"])
    f = rig.call("alice").ctx.recording
    rig.run(1000)
    rig.con.handle_line("ev StopRecording")
    assert rig.out[-1] == "ok c1 Active", rig.out
    assert f.closed and rig.call("alice").ctx.recording is None
    rig.run(500)                                   # nothing more is written after the stop
    w, pcm = read_wav(path)
    assert (w.rate, w.channels, w.bits) == (8000, 1, 16)
    assert 7840 <= w.frames <= 8160                # ~1 s at 8 kHz (50 frames +- 1), whole 20 ms frames
    assert w.frames % 160 == 0
    # both directions are in it: alice's own 1 kHz (sent) and bob's 600 Hz (received), at similar levels
    n = len(pcm) // 2 - 800
    p_tx = goertzel.power(pcm[1600:], n, 8000, 1000)
    p_rx = goertzel.power(pcm[1600:], n, 8000, 600)
    p_off = goertzel.power(pcm[1600:], n, 8000, 2500)
    assert p_tx > 1e6 and p_rx > 1e6               # amplitude ~ 8000 each: A*A ~ 6.4e7 (G.711 loses little)
    assert p_off < p_tx / 1000 and p_off < p_rx / 1000
    rig.ev("alice", "HangupCall")
    assert rig.run(3000, until=lambda: rig.call("alice") is None and rig.call("bob") is None)


def test_hangup_while_recording_closes_the_file(rig, tmp_path):
    connect(rig)
    path = str(tmp_path / "hung.wav")
    rig.ev("alice", "StartRecording", file=path)
    f = rig.call("alice").ctx.recording
    rig.run(400)
    rig.ev("bob", "HangupCall")
    assert rig.run(3000, until=lambda: rig.call("alice") is None and rig.call("bob") is None)
    assert f.closed
    w, pcm = read_wav(path)                        # sizes patched: a valid file with the call in it
    assert w.frames >= 320 and len(pcm) == 2 * w.frames
    n = len(pcm) // 2 - 800
    assert goertzel.power(pcm[1600:], n, 8000, 1000) > 1e6 and goertzel.power(pcm[1600:], n, 8000, 600) > 1e6


def test_recording_refused_without_call_and_twice(rig, tmp_path):
    # no call: nothing takes the event, no file appears
    path = str(tmp_path / "none.wav")
    rig.con.handle_line("ev StartRecording file=%s" % path)
    assert rig.out[-1].startswith("err no session takes StartRecording"), rig.out
    assert not (tmp_path / "none.wav").exists()
    assert rig.call("alice") is None
    rig.con.handle_line("ev StopRecording")
    assert rig.out[-1].startswith("err "), rig.out
    # in a call: the second StartRecording fails, the first file keeps recording and the state stays Active
    connect(rig)
    first, second = str(tmp_path / "one.wav"), str(tmp_path / "two.wav")
    rig.con.handle_line("ev StartRecording file=%s" % first)
    assert rig.out[-1] == "ok c1 Active"
    f = rig.call("alice").ctx.recording
    rig.run(200)
    del rig.out[:]
    rig.con.handle_line("ev StartRecording file=%s" % second)
    assert rig.out[-1] == "err failed c1 StartRecording in Active: StartRecordingMedia failed", rig.out
    assert not any(l.startswith("tr ") for l in rig.out)          # no transition ran
    assert rig.state("alice") == "Active" and rig.call("alice").ctx.recording is f and not f.closed
    assert not (tmp_path / "two.wav").exists()
    rig.con.handle_line("ev StopRecording")
    assert rig.out[-1] == "ok c1 Active"
    del rig.out[:]
    rig.con.handle_line("ev StopRecording")                     # stop twice: refused, state unchanged
    assert rig.out[-1] == "err failed c1 StopRecording in Active: StopRecordingMedia failed", rig.out
    assert rig.state("alice") == "Active"
    # a path that cannot be opened: an err line naming it, still Active, still no recording
    del rig.out[:]
    bad = str(tmp_path / "no-such-dir" / "x.wav")
    rig.con.handle_line("ev StartRecording file=%s" % bad)
    assert any(l.startswith("err c1 cannot record to %s" % bad) for l in rig.out), rig.out
    assert rig.out[-1].startswith("err failed c1 StartRecording in Active")
    assert rig.state("alice") == "Active" and rig.call("alice").ctx.recording is None
    w, pcm = read_wav(first)
    assert w.frames >= 1600                        # the first recording kept going through the refusals
    rig.ev("alice", "HangupCall")
    assert rig.run(3000, until=lambda: rig.call("alice") is None and rig.call("bob") is None)
