# Codec throughput on CPython: our plain-Python G.711 (encode_py/decode_py) and G.722 (Encoder/Decoder), and the
# 16 <-> 8 kHz resampler, next to C references: CPython's audioop (G.711) and the PyPI G722 package (libg722).
# Samples per second and "x realtime" (samples/s over the codec's sample rate). Best of 3 runs of ~1 s of audio.
import array
import math
import os
import sys
import time
import warnings

from host_tools import tablec

FW = os.path.join(tablec.ROOT, "firmware")
if FW not in sys.path:
    sys.path.insert(0, FW)

REPS = 3


def _signal(rate, seconds):
    n = int(rate * seconds)
    return array.array("h", [int(6000 * math.sin(2 * math.pi * 440 * i / rate)
                                 + 3000 * math.sin(2 * math.pi * 1900 * i / rate)
                                 + ((i * 7919) % 2001) - 1000) for i in range(n)]).tobytes()


def _best(fn, k=1):
    """Best of REPS timings of k calls of fn, per call (k > 1 for the C references: one call takes microseconds)."""
    best = None
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _i in range(k):
            fn()
        dt = (time.perf_counter() - t0) / k
        best = dt if best is None or dt < best else best
    return best


def _rows(name, n, rate, dt):
    sps = n / dt
    yield (name + ": samples/s", "%.0f" % sps, "samples/s", "")
    yield (name + ": x realtime", "%.1f" % (sps / rate), "x", ">= 1x (CPython sim)" if "ours" in name else "")


def rows():
    from uphone.media import g711, g722, resample
    pcm8 = _signal(8000, 1.0)
    n8 = len(pcm8) // 2
    codes = bytearray(n8)
    out8 = bytearray(2 * n8)
    for law, lname, ref_enc, ref_dec in ((g711.ULAW, "PCMU", "lin2ulaw", "ulaw2lin"),
                                         (g711.ALAW, "PCMA", "lin2alaw", "alaw2lin")):
        dt = _best(lambda: g711.encode_py(law, pcm8, codes, n8))
        yield from _rows("G.711 %s encode, ours (plain Python)" % lname, n8, 8000, dt)
        dt = _best(lambda: g711.decode_py(law, codes, out8, n8))
        yield from _rows("G.711 %s decode, ours (plain Python)" % lname, n8, 8000, dt)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import audioop
        except ImportError:
            yield ("G.711 %s, audioop (C)" % lname, "not measured: no audioop (Python >= 3.13)", "", "")
            continue
        enc, dec = getattr(audioop, ref_enc), getattr(audioop, ref_dec)
        ref = enc(pcm8, 2)
        g711.encode_py(law, pcm8, codes, n8)
        diff = sum(1 for a, b in zip(ref, codes) if a != b)
        # audioop's lin2ulaw is not G.191 bit-exact (ours is: conformance/g711); A-law agrees
        yield ("G.711 %s: codes differing from audioop on this signal" % lname, diff, "of %d" % n8, "")
        dt = _best(lambda: enc(pcm8, 2), 200)
        yield from _rows("G.711 %s encode, audioop.%s (C)" % (lname, ref_enc), n8, 8000, dt)
        dt = _best(lambda: dec(ref, 2), 200)
        yield from _rows("G.711 %s decode, audioop.%s (C)" % (lname, ref_dec), n8, 8000, dt)
    pcm16 = _signal(16000, 1.0)
    n16 = len(pcm16) // 2
    bits = bytearray(n16 // 2)
    out16 = bytearray(2 * n16)
    dt = _best(lambda: g722.Encoder().encode(pcm16, n16, bits))
    yield from _rows("G.722 encode, ours (plain Python)", n16, 16000, dt)
    dt = _best(lambda: g722.Decoder().decode(bits, len(bits), out16))
    yield from _rows("G.722 decode, ours (plain Python)", n16, 16000, dt)
    try:
        import G722
    except ImportError:
        yield ("G.722, PyPI G722 (C)", "not measured: pip install G722", "", "")
    else:
        sig = array.array("h", pcm16)
        ref_bits = G722.G722(16000, 64000).encode(sig)
        same = bytes(ref_bits) == bytes(bits)
        dt = _best(lambda: G722.G722(16000, 64000).encode(sig), 20)
        yield from _rows("G.722 encode, PyPI G722 (C)", n16, 16000, dt)
        dt = _best(lambda: G722.G722(16000, 64000).decode(ref_bits), 20)
        yield from _rows("G.722 decode, PyPI G722 (C)", n16, 16000, dt)
        yield ("G.722 ours == PyPI G722 bitstream on this signal", "yes" if same else "NO", "", "yes")
    half = bytearray(n16)
    dn, up = resample.Down(), resample.Up()
    dt = _best(lambda: dn.process(pcm16, n16, half))
    yield from _rows("resample 16 -> 8 kHz, ours (plain Python, per input sample)", n16, 16000, dt)
    dt = _best(lambda: up.process(half, n16 // 2, out16))
    yield from _rows("resample 8 -> 16 kHz, ours (plain Python, per output sample)", n16, 16000, dt)
