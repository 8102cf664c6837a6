# The in-place mixing a running conference uses (media/mixer.py mix/mix2/mix3/add/tmap): the plain twins against a
# straightforward reference on CPython, and the viper twins (media/mixer_viper.py) against the plain ones on the
# frozen MicroPython runtime, with loud frames that saturate int16.
import struct

from tests.proc import run_code
from uphone.media import g711, mixer


def _frames(k, n, seed):
    out = []
    x = seed
    for _ in range(k):
        b = bytearray(2 * n)
        for i in range(n):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            v = (x >> 8) % 65536 - 32768            # the whole int16 range: sums saturate often
            struct.pack_into("<h", b, 2 * i, v)
        out.append(b)
    return out


def _ref(frames, n):
    vals = [struct.unpack("<%dh" % n, f) for f in frames]
    out = []
    for p in range(len(frames)):
        o = bytearray(2 * n)
        for i in range(n):
            s = sum(v[i] for q, v in enumerate(vals) if q != p)
            struct.pack_into("<h", o, 2 * i, max(-32768, min(32767, s)))
        out.append(o)
    return out


def test_plain_in_place_mix_matches_the_reference():
    for k in (2, 3, 4):
        fr = _frames(k, 160, 7 + k)
        want = _ref(fr, 160)
        mixer.mix(fr, k, 160)
        assert fr == want, k
    a, b = _frames(2, 80, 3)
    want = _ref([a, b, bytearray(160)], 80)[2]     # a + b, clamped
    mixer.add_py(a, b, 80)
    assert a == want
    t = bytes((i * 7) & 255 for i in range(256))
    src = bytes(range(256))
    dst = bytearray(256)
    mixer.tmap_py(src, dst, 256, t)
    assert bytes(dst) == t


_VIPER = """
from uphone.media import mixer
x = 12345
def frame(n):
    global x
    b = bytearray(2 * n)
    for i in range(2 * n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        b[i] = (x >> 16) & 255
    return b
ok = mixer.IMPL == "viper"
for n in (1, 80, 160, 320):
    a, b, c = frame(n), frame(n), frame(n)
    a2, b2, c2 = bytearray(a), bytearray(b), bytearray(c)
    mixer.mix3(memoryview(a), b, c, n)
    mixer.mix3_py(a2, b2, c2, n)
    ok = ok and a == a2 and b == b2 and c == c2
    mixer.mix2(a, b, n)
    mixer.mix2_py(a2, b2, n)
    ok = ok and a == a2 and b == b2
    mixer.add(a, c, n)
    mixer.add_py(a2, c2, n)
    ok = ok and a == a2
t = frame(128)
s = frame(100)
d1, d2 = bytearray(200), bytearray(200)
mixer.tmap(s, d1, 200, t)
mixer.tmap_py(s, d2, 200, t)
ok = ok and d1 == d2
print("same" if ok else "differ")
"""


def test_viper_twins_compute_the_plain_bytes_on_micropython():
    rc, out, err = run_code("micropython", _VIPER)
    assert rc == 0, (out, err)
    assert out.strip() == "same", out


def test_law_to_law_tables_round_trip_through_pcm():
    br = mixer.Bridge(g711.ULAW, g711.ALAW)
    src = bytes(range(256))
    out = bytearray(256)
    br.a_to_b(src, 256, out)
    pcm_a, pcm_b = bytearray(512), bytearray(512)
    g711.decode(g711.ULAW, src, pcm_a, 256)
    g711.decode(g711.ALAW, bytes(out), pcm_b, 256)
    # each A-law code decodes within the A-law step of the mu-law value it came from
    for i in range(256):
        u = struct.unpack_from("<h", pcm_a, 2 * i)[0]
        a = struct.unpack_from("<h", pcm_b, 2 * i)[0]
        assert abs(u - a) <= max(16, abs(u) // 16), (i, u, a)
