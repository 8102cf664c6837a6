# uPhone: Goertzel single-bin energy and a dominant-frequency finder for int16 LE audio.
# Analysis helpers (tests, selftest, "what did the phone hear"): they use floats and are not per-frame code.
import math


def _power(pcm, n, rate, freq):
    c = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = 0.0
    s2 = 0.0
    for j in range(0, 2 * n, 2):
        v = pcm[j] | (pcm[j + 1] << 8)
        if v & 0x8000:
            v -= 0x10000
        s0 = v + c * s1 - s2
        s2 = s1
        s1 = s0
    return (s1 * s1 + s2 * s2 - c * s1 * s2) * 4.0 / (n * n)


def power(pcm, n, rate, freq):
    """Goertzel energy of freq over n int16 LE samples of pcm, normalised so that a sine of amplitude
    A at freq (whole number of cycles) gives about A*A; 0.0 for n == 0."""
    if n <= 0:
        return 0.0
    return _power(pcm, n, rate, freq)


def dominant_freq(pcm_bytes, rate, lo=100, hi=3800, step=10):
    """Strongest frequency (Hz, int) in lo..hi: a scan every step Hz over up to 1024 samples, then a
    1 Hz refine around the best over up to 4096 samples. Returns 0 for empty or silent input."""
    n = len(pcm_bytes) // 2
    if n == 0:
        return 0
    n2 = n if n < 4096 else 4096
    n1 = n if n < 1024 else 1024
    best = 0
    best_p = 0.0
    f = lo
    while f <= hi:
        p = _power(pcm_bytes, n1, rate, f)
        if p > best_p:
            best_p = p
            best = f
        f += step
    if best == 0:
        return 0
    f0 = best - step if best - step > lo else lo
    f1 = best + step if best + step < hi else hi
    best_p = 0.0
    f = f0
    while f <= f1:
        p = _power(pcm_bytes, n2, rate, f)
        if p > best_p:
            best_p = p
            best = f
        f += 1
    return best
