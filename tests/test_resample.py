# 16 kHz boards with a G.711 call: the 2:1 decimator / 1:2 interpolator (uphone.media.resample) keeps speech-band
# tones, removes what would alias, carries state across frames, and sits in the phone's frame pump.
import array
import math
import random

from uphone import table as T
from uphone.hal.desktop import WavSource
from uphone.media import goertzel, resample
from tests.phone_rig import Rig


def tone(hz, rate, n, amp=8000, phase=0.0):
    return array.array("h", [int(round(amp * math.sin(2 * math.pi * hz * i / rate + phase))) for i in range(n)]).tobytes()


def down(pcm):
    out = bytearray(len(pcm) // 2)
    assert resample.Down().process(pcm, len(pcm) // 2, out) == len(pcm) // 4
    return out


def up(pcm):
    out = bytearray(2 * len(pcm))
    assert resample.Up().process(pcm, len(pcm) // 2, out) == len(pcm)
    return out


def db(p, ref):
    return 10 * math.log10(max(p, 1e-9) / ref)


def test_1khz_survives_down_and_up():
    sig = tone(1000, 16000, 4000)
    ref = goertzel.power(sig[400:], 1600, 16000, 1000)
    d = down(sig)
    assert goertzel.dominant_freq(d, 8000) in range(995, 1006)
    assert abs(db(goertzel.power(d[200:], 1600, 8000, 1000), ref)) < 0.5       # passband: 1 kHz at unity gain
    u = up(d)
    assert goertzel.dominant_freq(u, 16000) in range(995, 1006)
    assert abs(db(goertzel.power(u[400:], 3200, 16000, 1000), ref)) < 0.5
    # and the image of the interpolator (7 kHz for 1 kHz) is far down
    assert db(goertzel.power(u[400:], 3200, 16000, 7000), ref) < -40


def test_6khz_is_attenuated_30db_by_the_decimator():
    sig = tone(6000, 16000, 4000)
    ref = goertzel.power(sig[400:], 1600, 16000, 6000)
    d = down(sig)
    # 6 kHz at 16 kHz would fold to 2 kHz at 8 kHz: what is left there, and anywhere, must be >= 30 dB down
    assert db(goertzel.power(d[200:], 1600, 8000, 2000), ref) <= -30
    rms2 = sum(v * v for v in array.array("h", bytes(d[200:]))) / (len(d[200:]) // 2)
    assert db(2 * rms2, ref) <= -30                                              # whole-signal power, A*A scale


def test_dc_gain_is_unity_and_full_scale_saturates_cleanly():
    dc = array.array("h", [12345] * 400).tobytes()
    assert set(array.array("h", bytes(down(dc)[100:]))) == {12345}
    assert set(array.array("h", bytes(up(dc)[400:]))) == {12345}
    sq = array.array("h", [32767 if (i // 4) & 1 else -32768 for i in range(800)]).tobytes()
    for out in (down(sq), up(sq)):
        vals = array.array("h", bytes(out))
        assert max(vals) <= 32767 and min(vals) >= -32768 and max(vals) > 30000


def test_frame_by_frame_equals_whole_signal():
    rnd = random.Random(7)
    sig = array.array("h", [rnd.randint(-20000, 20000) for _ in range(16000 * 2 // 5)]).tobytes()  # 0.4 s, 16 kHz
    whole_d = down(sig)                       # 6400 samples: the work buffer is crossed in many chunks
    whole_u = up(sig)
    for frame in (640, 128, 4):               # 20 ms frames, and sizes that do not divide the chunk
        dn, un = resample.Down(), resample.Up()
        got_d, got_u = bytearray(), bytearray()
        od, ou = bytearray(frame // 2), bytearray(2 * frame)
        mv = memoryview(sig)
        for off in range(0, len(sig), frame):
            part = mv[off:off + frame]
            dn.process(part, len(part) // 2, od)
            got_d += od[:len(part) // 2]
            un.process(part, len(part) // 2, ou)
            got_u += ou[:2 * len(part)]
        assert got_d == whole_d, frame
        assert got_u == whole_u, frame
    un = resample.Up()                        # odd sample counts are fine for the interpolator
    got = bytearray()
    out = bytearray(2 * 14)
    for off in range(0, 14 * 50, 14):
        un.process(memoryview(sig)[off:off + 14], 7, out)
        got += out
    assert got == up(sig[:14 * 50])


def test_same_output_in_micropython(mp):
    rnd = random.Random(3)
    sig = array.array("h", [rnd.randint(-32768, 32767) for _ in range(700)]).tobytes()
    code = ("from uphone.media import resample\nsig = bytes.fromhex(%r)\nd = bytearray(%d)\nu = bytearray(%d)\n"
            "dn = resample.Down()\nup = resample.Up()\n"
            "for off in range(0, %d, 280):\n"
            "    m = memoryview(sig)[off:off + 280]\n"
            "    dn.process(m, len(m) // 2, memoryview(d)[off // 2:])\n"
            "    up.process(m, len(m) // 2, memoryview(u)[off * 2:])\n"
            "print(d.hex())\nprint(u.hex())\n" % (sig.hex(), len(sig) // 2, 2 * len(sig), len(sig)))
    out = mp(code)
    d, u = out.split()
    assert bytes.fromhex(d) == bytes(down(sig))
    assert bytes.fromhex(u) == bytes(up(sig))


class Collect:
    def __init__(self):
        self.data = bytearray()
        self.sizes = set()

    def write(self, buf):
        self.data += buf
        self.sizes.add(len(buf))
        return len(buf)


def test_16khz_phone_with_pcmu_talks_to_8khz_phone():
    rig = Rig()
    a = rig.add("alice", 5062, 21000, audio={"rate": 16000}, media={"codecs": ["PCMU", "G722"]})
    b = rig.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    a_sink, b_sink = Collect(), Collect()
    a.set_audio(WavSource("tone:1000", 16000), a_sink)
    b.set_audio(WavSource("tone:700", 8000), b_sink)
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    assert rig.call("alice").ctx.neg.codec == "PCMU"        # bob is narrowband: G.722 was offered, PCMU agreed
    a_sink.data[:] = b""
    b_sink.data[:] = b""
    rig.run(1000)
    assert a_sink.sizes == {640} and b_sink.sizes == {320}   # each device gets frames at its own rate
    # bob (8 kHz) hears alice's 1 kHz, decimated; alice (16 kHz) hears bob's 700 Hz, interpolated
    assert goertzel.dominant_freq(bytes(b_sink.data[-8000:]), 8000) in range(995, 1006)
    assert goertzel.dominant_freq(bytes(a_sink.data[-16000:]), 16000) in range(695, 706)
    # and nothing of consequence above the narrowband: the 16 kHz side's 4-8 kHz band is empty
    ref = goertzel.power(bytes(a_sink.data[-16000:]), 8000, 16000, 700)
    assert db(goertzel.power(bytes(a_sink.data[-16000:]), 8000, 16000, 7300), ref) < -40
    rig.ev("alice", "HangupCall")
    assert rig.run(3000, until=lambda: rig.call("alice") is None and rig.call("bob") is None)
    assert not [l for l in rig.lines["alice"] if l.startswith("err")]


def test_16khz_phones_use_g722_without_resampling():
    rig = Rig()
    a = rig.add("alice", 5062, 21000, audio={"rate": 16000}, media={"codecs": ["G722", "PCMU"]})
    b = rig.add("bob", 5064, 21100, audio={"rate": 16000}, media={"codecs": ["G722", "PCMU"]},
                features={"auto_answer": True, "auto_answer_delay_ms": 0})
    b_sink = Collect()
    a.set_audio(WavSource("tone:5000", 16000), Collect())
    b.set_audio(WavSource("silence", 16000), b_sink)
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    assert rig.call("alice").ctx.neg.codec == "G722"
    rig.run(1000)
    assert rig.call("alice").ctx.resample[1] == 0            # no filter in the path
    assert goertzel.dominant_freq(bytes(b_sink.data[-16000:]), 16000, hi=7000) in range(4990, 5011)  # wideband
    rig.ev("alice", "HangupCall")
    assert rig.run(3000, until=lambda: rig.call("alice") is None and rig.call("bob") is None)
