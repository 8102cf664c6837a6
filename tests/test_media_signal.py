# Signal-side media: call-progress tones (cadence, frequencies), WAV I/O, Goertzel, the conference mixer,
# the PCMU<->PCMA bridge and the desktop audio HAL.
import array
import io
import math
import struct

import pytest

from uphone.media import g711, goertzel, mixer, tones, wav
from uphone.media.tones import ToneGen
from uphone.hal import desktop


def _sine(freq, n, rate=8000, amp=8000):
    return array.array("h", [int(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)]).tobytes()


def _run_tone(country, name, ms, rate=8000, frame=160):
    g = ToneGen(rate)
    g.start(country, name)
    n = ms * rate // 1000
    out = bytearray(2 * n)
    buf = bytearray(2 * frame)
    for off in range(0, n, frame):
        k = min(frame, n - off)
        g.fill(buf, k)
        out[2 * off:2 * (off + k)] = buf[:2 * k]
    return g, bytes(out)


def _on_ms(pcm, rate=8000):
    """Per millisecond: True when any sample is non-zero."""
    per = rate // 1000
    return [any(pcm[2 * i * per:2 * (i + 1) * per]) for i in range(len(pcm) // (2 * per))]


def _expected(cadence, repeat, ms):
    if not cadence:
        return [True] * ms
    pattern = []
    for i, seg in enumerate(cadence):
        pattern += [i % 2 == 0] * seg
    if repeat:
        return (pattern * (ms // len(pattern) + 1))[:ms]
    return (pattern + [False] * ms)[:ms]


@pytest.mark.parametrize("country", tones.countries())
@pytest.mark.parametrize("name", ["dial", "ringback", "busy", "congestion", "callwaiting"])
def test_tone_cadence_and_frequencies(country, name):
    f1, f2, cad, rep = tones.lookup(country, name)
    ms = min(2 * sum(cad), 13000) if cad else 1500
    g, pcm = _run_tone(country, name, ms)
    assert _on_ms(pcm) == _expected(cad, rep, ms)
    assert g.active == rep
    # frequencies, over the first 200 ms of the first burst (every first burst is >= 100 ms)
    n = min(cad[0], 200) * 8 if cad else 1600
    amp2 = 6000 * 6000 * 0.8
    assert goertzel.power(pcm, n, 8000, f1) > amp2
    if f2:
        assert goertzel.power(pcm, n, 8000, f2) > amp2
    assert goertzel.power(pcm, n, 8000, 1000) < amp2 / 100
    assert goertzel.dominant_freq(pcm[:2 * n], 8000) in range(min(f1, f2 or f1) - 3, max(f1, f2) + 4)


def test_us_and_eu_ringback_timing():
    _, us = _run_tone("us", "ringback", 12000)
    on = _on_ms(us)
    assert all(on[0:2000]) and not any(on[2000:6000]) and all(on[6000:8000])
    _, eu = _run_tone("eu", "ringback", 10000)
    on = _on_ms(eu)
    assert all(on[0:1000]) and not any(on[1000:5000]) and all(on[5000:6000])


def test_callwaiting_once_then_silent_and_stop():
    g, pcm = _run_tone("eu", "callwaiting", 2000)
    assert not g.active and not any(pcm[2 * 8 * 600:])
    g.start("us", "dial")
    g.stop()
    buf = bytearray(b"\x55" * 320)
    g.fill(buf, 160)
    assert not g.active and not any(buf)


def test_tone_16k_and_errors():
    _, pcm = _run_tone("us", "dial", 300, rate=16000, frame=320)
    assert goertzel.power(pcm, 4800, 16000, 350) > 0.8 * 6000 ** 2
    assert goertzel.power(pcm, 4800, 16000, 440) > 0.8 * 6000 ** 2
    g = ToneGen(8000)
    with pytest.raises(ValueError, match="unknown country 'xx'"):
        g.start("xx", "dial")
    with pytest.raises(ValueError, match="unknown tone 'howler'"):
        g.start("us", "howler")


def test_goertzel_and_dominant_freq():
    pcm = _sine(1000, 800, amp=5000)
    assert abs(goertzel.power(pcm, 800, 8000, 1000) - 5000 ** 2) < 0.02 * 5000 ** 2
    assert goertzel.power(pcm, 800, 8000, 2000) < 0.001 * 5000 ** 2
    for f in (300, 440, 1234, 3333):
        assert abs(goertzel.dominant_freq(_sine(f, 4000), 8000) - f) <= 2
    assert abs(goertzel.dominant_freq(_sine(5000, 4000, rate=16000), 16000, hi=7000) - 5000) <= 2
    assert goertzel.dominant_freq(bytes(800), 8000) == 0
    assert goertzel.dominant_freq(b"", 8000) == 0


def test_wav_round_trip():
    f = io.BytesIO()
    w = wav.WavWriter(f, 16000)
    pcm = _sine(440, 1000, rate=16000)
    w.write(pcm[:800])
    w.write(pcm[800:])
    w.close()
    data = f.getvalue()
    assert data[:4] == b"RIFF" and struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    assert struct.unpack_from("<I", data, 40)[0] == len(pcm)
    f.seek(0)
    r = wav.WavReader(f)
    assert (r.rate, r.channels, r.bits, r.frames) == (16000, 1, 16, 1000)
    buf = bytearray(600)
    got = b""
    while True:
        n = r.readinto(buf)
        if not n:
            break
        got += bytes(buf[:n])
    assert got == pcm
    r.rewind()
    assert r.readinto(buf) == 600 and bytes(buf) == pcm[:600]


def test_wav_reader_skips_chunks_and_rejects_non_pcm():
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"LIST" + struct.pack("<I", 3) + b"abc\x00" \
        + b"data" + struct.pack("<I", 4) + b"\x01\x00\xff\xff"
    r = wav.WavReader(io.BytesIO(b"RIFF" + struct.pack("<I", len(body)) + body))
    buf = bytearray(8)
    assert r.readinto(buf) == 4 and bytes(buf[:4]) == b"\x01\x00\xff\xff"
    with pytest.raises(ValueError):
        wav.WavReader(io.BytesIO(b"RIFX" + bytes(40)))
    bad = body.replace(fmt, struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32))
    with pytest.raises(ValueError, match="16-bit PCM"):
        wav.WavReader(io.BytesIO(b"RIFF" + struct.pack("<I", len(bad)) + bad))


def _frame(v, n):
    return array.array("h", [v] * n).tobytes()


def _vals(buf):
    return set(array.array("h", bytes(buf)))


def test_mixer_each_hears_the_others():
    m = mixer.Mixer(3, 160)
    out = bytearray(320)
    for i, v in enumerate((100, 2000, -700)):
        m.put(i, _frame(v, 160))
    m.mix()
    expect = {0: 2000 - 700, 1: 100 - 700, 2: 100 + 2000}
    for i in range(3):
        assert m.get(i, out) == 160 and _vals(out) == {expect[i]}
    # next tick: party 2 sends nothing (silence); party 1 decodes straight into its slot
    m.put(0, _frame(30, 160))
    m.slot(1)[:] = _frame(-5, 160)
    m.put(1)
    m.mix()
    m.get(0, out)
    assert _vals(out) == {-5}
    m.get(2, out)
    assert _vals(out) == {25}


def test_mixer_saturates():
    m = mixer.Mixer(3, 80)
    out = bytearray(160)
    m.put(0, _frame(30000, 80))
    m.put(1, _frame(30000, 80))
    m.put(2, _frame(-30000, 80))
    m.mix()
    m.get(2, out)
    assert _vals(out) == {32767}
    m.put(0, _frame(-30000, 80))
    m.put(1, _frame(-30000, 80))
    m.put(2, _frame(5, 80))
    m.mix()
    m.get(2, out)
    assert _vals(out) == {-32768}
    m.get(0, out)
    assert _vals(out) == {-29995}


def test_bridge_equals_decode_then_encode():
    codes = bytes(range(256))
    for la, lb in ((g711.ULAW, g711.ALAW), (g711.ALAW, g711.ULAW), (g711.ULAW, g711.ULAW)):
        br = mixer.Bridge(la, lb, 160)
        for fwd, src_law, dst_law in ((br.a_to_b, la, lb), (br.b_to_a, lb, la)):
            pcm = bytearray(512)
            g711.decode_py(src_law, codes, pcm, 256)
            want = bytearray(256)
            g711.encode_py(dst_law, pcm, want, 256)
            out = bytearray(256)
            assert fwd(codes, 256, out) == 256
            assert out == want
    same = mixer.Bridge(g711.ALAW, g711.ALAW, 160)
    out = bytearray(256)
    same.a_to_b(codes, 256, out)
    assert bytes(out) == codes                 # A-law decode->encode is the identity


def test_desktop_tone_source_is_phase_continuous():
    a = desktop.WavSource("tone:1000", 8000)
    b = desktop.WavSource("tone:1000", 8000)
    one = bytearray(640)
    a.readinto(one)
    two = bytearray(320)
    parts = b""
    for _ in range(2):
        assert b.readinto(two) == 320
        parts += bytes(two)
    assert bytes(one) == parts
    assert abs(goertzel.dominant_freq(bytes(one), 8000) - 1000) <= 2
    assert 7900 <= max(array.array("h", bytes(one))) <= 8000
    with pytest.raises(ValueError):
        desktop.WavSource("tone:abc", 8000)


def test_desktop_silence_null_and_wav_loop(tmp_path):
    buf = bytearray(b"\x11" * 320)
    desktop.WavSource("silence", 8000).readinto(buf)
    assert not any(buf)
    nd = desktop.NullDevice()
    buf[:] = b"\x22" * 320
    assert nd.readinto(buf) == 320 and not any(buf)
    assert nd.write(buf) == 320
    path = str(tmp_path / "src.wav")
    sink = desktop.WavSink(path, 8000)
    pcm = _sine(500, 100)
    sink.write(pcm[:120])
    sink.write(pcm[120:])
    sink.close()
    src = desktop.WavSource(path, 8000)
    out = bytearray(500)                       # 250 samples from a 100-sample file: loops
    assert src.readinto(out) == 500
    assert bytes(out) == (pcm * 3)[:500]
    src.close()
    with pytest.raises(ValueError, match="16000"):
        desktop.WavSource(path, 16000)


def test_micropython_smoke(mp):
    # Light on floats (written for the WASI VM this ran in before, whose GC could not see wasm locals).
    code = """
from uphone.media import tones, mixer, goertzel, g711
from uphone.hal import desktop
g = tones.ToneGen(8000)
g.start('us', 'ringback')
buf = bytearray(3200)
g.fill(buf, 1600)
print(int(goertzel.power(buf, 400, 8000, 440)), int(goertzel.power(buf, 400, 8000, 1000)))
m = mixer.Mixer(3, 4)
for i, v in enumerate((1, 2, 3)):
    m.put(i, bytes([v, 0] * 4))
m.mix()
o = bytearray(8)
m.get(0, o)
print(o[0], o[1])
b = mixer.Bridge(g711.ULAW, g711.ALAW, 160)
p = bytearray(1)
b.a_to_b(b'\\xff', 1, p)
print(p[0])
s = desktop.WavSource('tone:440', 8000)
s.readinto(buf)
print(int(goertzel.power(buf, 400, 8000, 440)))
"""
    stdout = mp(code)
    v = [int(x) for x in stdout.split()]
    assert v[0] > 0.8 * 6000 ** 2 and v[1] < 0.01 * 6000 ** 2      # 440 Hz part of the ringback
    assert v[2:4] == [5, 0]
    assert v[4] == 0xD5
    assert v[5] > 0.9 * 8000 ** 2
