# G.722 viper twin (firmware/uphone/media/g722_viper.py) on the real MicroPython: the unix port with the firmware
# frozen in and its viper code compiled for x64 (`make micropython`), where viper ints are 64-bit machine words.
# Its streams must equal the plain twin's there (g722.EncoderPy/DecoderPy) and the PyPI G722 package's (libg722,
# under CPython), frame by frame with the codec state carried across calls. Its xtensawin (32-bit) build is checked
# by tests/test_mpy_cross.py.
import array
import math
import random

import pytest

from tests.test_g722 import RATE, _ref_decode, _signal

import G722  # noqa: E402  (PyPI g722, the C reference; in requirements-dev.txt)

FRAME = 320                                                 # 20 ms at 16 kHz


def _streams():
    """Named int16 streams at 16 kHz, each a whole number of frames, each coded from a fresh codec."""
    rnd = random.Random(7221)
    sine = [int(8000 * math.sin(2 * math.pi * 1000 * i / RATE)) for i in range(RATE)]          # 1 s
    noise = [rnd.randint(-32768, 32767) for _ in range(RATE)]                                   # 1 s, white
    full = ([32767 if (i // 8) & 1 else -32768 for i in range(RATE // 2)]                        # 1 s full scale:
            + [-32768 if (i // 2) & 1 else 32767 for i in range(RATE // 4)]                      # 1 kHz square,
            + [-32768 if i & 1 else 32767 for i in range(RATE // 4)])                           # 4 and 8 kHz
    silence = [0] * (RATE // 2)                                                                  # 0.5 s
    mixed = list(_signal())                           # 3 s: tones, speech-like, clipping noise, silence
    return (("sine", sine), ("noise", noise), ("fullscale", full), ("silence", silence), ("mixed", mixed))


_TEST_HEAP = 8 * 1024 * 1024    # the reference signals are held in memory on the runtime; not a phone heap

# Runs on MicroPython. For every stream: encode 20 ms a call with the plain and the viper encoder, then decode the
# plain encoder's codes (the reference's, asserted below) with both decoders, 160 codes a call. Then the mixed stream
# once more through the viper twin in irregular chunk sizes, at odd byte offsets of memoryviews, and random codes
# (every code, the unused ones included) through both decoders. Outputs go to files for the test to compare.
MP_G722 = """
from uphone.media import g722, g722_viper
print('IMPL', g722.IMPL, g722.Encoder is g722_viper.Encoder, g722.Decoder is g722_viper.Decoder)
F = 320
def save(name, b):
    with open(name, 'wb') as f:
        f.write(b)
def load(name):
    with open(name, 'rb') as f:
        return f.read()
for name, n in NAMES:
    pcm = memoryview(load(name + '.pcm'))
    for tag, Enc, Dec in (('py', g722.EncoderPy, g722.DecoderPy), ('vp', g722.Encoder, g722.Decoder)):
        enc = Enc()
        bits = bytearray(n // 2)
        b = memoryview(bits)
        for off in range(0, n, F):
            assert enc.encode(pcm[2 * off:], F, b[off // 2:]) == F // 2
        save('%s.enc.%s' % (name, tag), bits)
    ref = memoryview(load(name + '.enc.py'))
    for tag, Dec in (('py', g722.DecoderPy), ('vp', g722.Decoder)):
        dec = Dec()
        out = bytearray(2 * n)
        o = memoryview(out)
        for off in range(0, n // 2, F // 2):
            assert dec.decode(ref[off:], F // 2, o[4 * off:]) == F
        save('%s.dec.%s' % (name, tag), out)
# irregular chunks (even sample counts for the encoder), unaligned buffers
CHUNKS = (2, 320, 158, 640, 34, 1000, 6, 318)
pcm = memoryview(bytearray(1) + load('mixed.pcm'))[1:]
n = len(pcm) // 2
bits = bytearray(1 + n // 2)
b = memoryview(bits)[1:]
enc = g722.Encoder()
off = 0
i = 0
while off < n:
    k = min(CHUNKS[i % len(CHUNKS)], n - off)
    assert enc.encode(pcm[2 * off:], k, b[off // 2:]) == k // 2
    off += k
    i += 1
save('mixed.enc.chunks', b)
out = bytearray(1 + 2 * n)
o = memoryview(out)[1:]
dec = g722.Decoder()
off = 0
i = 0
while off < n // 2:
    k = min(CHUNKS[i % len(CHUNKS)] // 2 + 1, n // 2 - off)
    assert dec.decode(b[off:], k, o[4 * off:]) == 2 * k
    off += k
    i += 1
save('mixed.dec.chunks', o)
codes = load('random.g722')
for tag, Dec in (('py', g722.DecoderPy), ('vp', g722.Decoder)):
    dec = Dec()
    out = bytearray(4 * len(codes))
    for off in range(0, len(codes), 160):
        dec.decode(memoryview(codes)[off:], 160, memoryview(out)[4 * off:])
    save('random.dec.%s' % tag, out)
print('DONE')
"""


@pytest.fixture(scope="module")
def streams():
    return _streams()


def _first_diff(a, b):
    if len(a) != len(b):
        return "lengths %d != %d" % (len(a), len(b))
    bad = [i for i in range(len(a)) if a[i] != b[i]]
    return "%d of %d bytes differ, first at %d" % (len(bad), len(a), bad[0]) if bad else ""


@pytest.fixture(scope="module")
def mp_out(mp, streams, tmp_path_factory):
    """Run MP_G722 once for the module; -> (the folder of its output files, its stdout)."""
    d = tmp_path_factory.mktemp("g722mp")
    for name, s in streams:
        (d / (name + ".pcm")).write_bytes(array.array("h", s).tobytes())
    (d / "random.g722").write_bytes(bytes(random.Random(5).randrange(256) for _ in range(8000)))
    return d, mp("NAMES = %r\n" % [(name, len(s)) for name, s in streams] + MP_G722, cwd=d, heap=_TEST_HEAP)


def test_micropython_binds_the_viper_twin(mp_out):
    assert "IMPL viper True True" in mp_out[1]
    assert "DONE" in mp_out[1]


@pytest.mark.parametrize("name", ["sine", "noise", "fullscale", "silence", "mixed"])
def test_encode_viper_equals_plain_and_libg722(mp_out, streams, name):
    d = mp_out[0]
    sig = array.array("h", dict(streams)[name])
    ref = bytes(G722.G722(RATE, 64000).encode(sig))
    py = (d / (name + ".enc.py")).read_bytes()
    vp = (d / (name + ".enc.vp")).read_bytes()
    assert not _first_diff(py, ref), "plain twin on MicroPython vs libg722: " + _first_diff(py, ref)
    assert not _first_diff(vp, py), "viper vs plain twin on MicroPython: " + _first_diff(vp, py)
    assert vp == ref


@pytest.mark.parametrize("name", ["sine", "noise", "fullscale", "silence", "mixed"])
def test_decode_viper_equals_plain_and_libg722(mp_out, name):
    d = mp_out[0]
    ref = _ref_decode((d / (name + ".enc.py")).read_bytes())
    py = (d / (name + ".dec.py")).read_bytes()
    vp = (d / (name + ".dec.vp")).read_bytes()
    assert not _first_diff(py, ref), "plain twin on MicroPython vs libg722: " + _first_diff(py, ref)
    assert not _first_diff(vp, py), "viper vs plain twin on MicroPython: " + _first_diff(vp, py)
    assert vp == ref


def test_sine_survives_the_viper_round_trip(mp_out):
    # the symptom that started this: a 1 kHz sine at 8000 came back as full-scale noise (~16x the energy)
    out = array.array("h", (mp_out[0] / "sine.dec.vp").read_bytes())[RATE // 2:]
    energy = sum(v * v for v in out) / len(out)
    assert 0.8 * 8000 * 8000 / 2 < energy < 1.2 * 8000 * 8000 / 2


def test_viper_state_carries_across_irregular_unaligned_calls(mp_out, streams):
    d = mp_out[0]
    sig = array.array("h", dict(streams)["mixed"])
    ref = bytes(G722.G722(RATE, 64000).encode(sig))
    got = (d / "mixed.enc.chunks").read_bytes()
    assert not _first_diff(got, ref), _first_diff(got, ref)
    got = (d / "mixed.dec.chunks").read_bytes()
    assert not _first_diff(got, _ref_decode(ref)), _first_diff(got, _ref_decode(ref))


def test_decode_random_codes_viper_equals_plain_and_libg722(mp_out):
    d = mp_out[0]
    ref = _ref_decode((d / "random.g722").read_bytes())
    for tag in ("py", "vp"):
        got = (d / ("random.dec.%s" % tag)).read_bytes()
        assert not _first_diff(got, ref), tag + ": " + _first_diff(got, ref)


def test_viper_allocates_nothing_per_call(mp):
    # measured inside a function: at top level, the first store of a new global grows the globals dict
    out = mp("""
import gc
from uphone.media import g722
def frames(enc, dec, pcm, bits, out, n):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for i in range(n):
        enc.encode(pcm, 320, bits)
        dec.decode(bits, 160, out)
    a = gc.mem_alloc() - a
    gc.enable()
    return a
pcm = bytearray(640)
for i in range(320):
    pcm[2 * i + 1] = (i * 37) & 0xFF
args = (g722.Encoder(), g722.Decoder(), pcm, bytearray(160), bytearray(640))
frames(*args, 1)
print('ALLOC', frames(*args, 50), frames(*args, 5))
""", heap=110 * 1024)
    assert "ALLOC 0 0" in out, out


def test_cpython_binds_the_plain_twins():
    # CPython has no viper emitter: g722_viper fails to import there and the plain twins are bound
    from uphone.media import g722
    assert g722.IMPL == "python"
    assert g722.Encoder is g722.EncoderPy and g722.Decoder is g722.DecoderPy
