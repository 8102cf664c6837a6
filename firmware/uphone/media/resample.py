# uPhone: 16 kHz <-> 8 kHz for G.711 calls on 16 kHz boards: a 2:1 decimator and a 1:2 interpolator sharing one
# 19-tap half-band FIR low-pass. Integer arithmetic, state carried across frames, no allocation per frame.

# The filter (Kaiser-windowed sinc, beta 4, 4K-1 = 19 taps, K = 5): h[centre] = 1/2, h[centre +- (2i+1)] = C[i],
# every other tap zero, so a 2:1 decimator costs 5 multiplies per output sample and the interpolator's odd phase 5
# per input sample (its even phase is the input itself). Coefficients in Q14, summing to exactly 1/2 so DC passes
# at unity gain. Response at 16 kHz (host-computed from the quantised taps): 0.0 dB at 1 kHz, -0.2 dB at 3 kHz,
# -1.3 dB at 3.4 kHz, -6 dB at 4 kHz (half-band), -31.6 dB at 5 kHz, -56 dB at 6 kHz, -73 dB at 7 kHz.
# Q14 keeps every partial sum under 2**30 for full-scale int16 input: the accumulators stay small ints on
# MicroPython (31-bit on the ESP32) and never become heap-allocated long ints.
# Latency: 9 input samples (0.56 ms) for the decimator, 5 input samples (0.63 ms) for the interpolator.
from uphone.compat import const

_C0 = const(5103)
_C1 = const(-1428)
_C2 = const(589)
_C3 = const(-219)
_C4 = const(51)
_HALF = const(8192)        # 1/2 in Q14: the centre tap
_RND = const(8192)         # rounding for >> 14
_DH = const(18)            # decimator history: 4K-2 input samples
_UH = const(9)             # interpolator history: 2K-1 input samples
_CHUNK = const(320)        # samples per pass through the work buffer (any frame length works, in chunks)


class _Fir:
    """The work buffer both filters share: `hist` samples of history, then the chunk being filtered."""

    def __init__(self, hist):
        self._h = hist
        self._w = [0] * (hist + _CHUNK)      # ints in place: no allocation per frame

    def reset(self):
        w = self._w
        for i in range(len(w)):
            w[i] = 0

    def _load(self, src, done, k):
        # int16 LE samples done .. done+k of src after the history; returns the work buffer
        w = self._w
        j = 2 * done
        for i in range(self._h, self._h + k):
            v = src[j] | (src[j + 1] << 8)
            j += 2
            w[i] = v - 0x10000 if v & 0x8000 else v
        return w


class Down(_Fir):
    """2:1 decimator: process(src, n, dst) reads n (even) int16 LE samples from src and writes n // 2 to dst."""

    def __init__(self):
        _Fir.__init__(self, _DH)

    def process(self, src, n, dst):
        done = 0
        o = 0
        while done < n:
            k = n - done
            if k > _CHUNK:
                k = _CHUNK
            w = self._load(src, done, k)
            # output m: centre e = 2m + 10, window w[2m+1 .. 2m+19]; the newest sample is w[_DH + 2m + 1]
            for e in range(10, 10 + k, 2):
                y = (_HALF * w[e] + _C0 * (w[e - 1] + w[e + 1]) + _C1 * (w[e - 3] + w[e + 3])
                     + _C2 * (w[e - 5] + w[e + 5]) + _C3 * (w[e - 7] + w[e + 7]) + _C4 * (w[e - 9] + w[e + 9])
                     + _RND) >> 14
                if y > 32767:
                    y = 32767
                elif y < -32768:
                    y = -32768
                dst[o] = y & 0xFF
                dst[o + 1] = (y >> 8) & 0xFF
                o += 2
            for i in range(_DH):                 # keep the last 18 samples (k is even: phase is preserved)
                w[i] = w[k + i]
            done += k
        return n >> 1


class Up(_Fir):
    """1:2 interpolator: process(src, n, dst) reads n int16 LE samples from src and writes 2 * n to dst."""

    def __init__(self):
        _Fir.__init__(self, _UH)

    def process(self, src, n, dst):
        done = 0
        o = 0
        while done < n:
            k = n - done
            if k > _CHUNK:
                k = _CHUNK
            w = self._load(src, done, k)
            # input j (at w[9 + j]) completes the window w[j .. j+9]: emit x[d] (d = j + 4, the even phase, the
            # sample itself) then the half-way point between x[d] and x[d+1] (the odd phase: 2 * C, Q14)
            for d in range(4, 4 + k):
                y = w[d]
                dst[o] = y & 0xFF
                dst[o + 1] = (y >> 8) & 0xFF
                y = (2 * _C0 * (w[d] + w[d + 1]) + 2 * _C1 * (w[d - 1] + w[d + 2]) + 2 * _C2 * (w[d - 2] + w[d + 3])
                     + 2 * _C3 * (w[d - 3] + w[d + 4]) + 2 * _C4 * (w[d - 4] + w[d + 5]) + _RND) >> 14
                if y > 32767:
                    y = 32767
                elif y < -32768:
                    y = -32768
                dst[o + 2] = y & 0xFF
                dst[o + 3] = (y >> 8) & 0xFF
                o += 4
            for i in range(_UH):
                w[i] = w[k + i]
            done += k
        return n << 1
