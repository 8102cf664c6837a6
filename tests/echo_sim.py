# A synthetic acoustic echo path for the echo canceller's tests and bench (CPython only): speech-like talkers
# (formant-filtered glottal pulses and noise under a syllable envelope, with pauses), a handset-like impulse response
# (bulk delay, a direct-path peak and a decaying random tail), optional near-end talk and mic noise; plus the figures
# (ERLE, the near talker's gain in the output) computed the same way everywhere.
import math
import random


def speech(n, rate, seed, f0=120.0, level=8000.0, voiced=0.7):
    """n samples (floats) of a speech-like signal: RMS `level` over its active part, pauses between syllables."""
    rnd = random.Random(seed)
    forms = ((500.0, 80.0), (1500.0, 120.0), (2500.0, 200.0))      # formant (Hz, bandwidth Hz)
    coefs = []
    for f, bw in forms:
        r = math.exp(-math.pi * bw / rate)
        coefs.append((2 * r * math.cos(2 * math.pi * f / rate), -r * r))
    env = []
    while len(env) < n:                                             # syllables of 120-300 ms, pauses of 30-150 ms
        ln = int(rate * rnd.uniform(0.12, 0.3))
        gap = int(rate * rnd.uniform(0.03, 0.15))
        a = rnd.uniform(0.4, 1.0)
        fm = rnd.uniform(0.8, 1.25)                                 # pitch moves from syllable to syllable
        env += [(a * math.sin(math.pi * i / ln) ** 0.7, fm) for i in range(ln)] + [(0.0, fm)] * gap
    st = [[0.0, 0.0] for _ in forms]
    out = []
    ph = 0.0
    for i in range(n):
        e, fm = env[i]
        ph += f0 * fm * (1 + 0.1 * math.sin(2 * math.pi * 3 * i / rate)) / rate
        pulse = 0.0
        if ph >= 1.0:
            ph -= 1.0
            pulse = 1.0
        v = voiced * pulse * 6.0 + (1 - voiced) * rnd.gauss(0, 0.3)
        s = 0.0
        for j, (a1, a2) in enumerate(coefs):
            y = v + a1 * st[j][0] + a2 * st[j][1]
            st[j][1] = st[j][0]
            st[j][0] = y
            s += y
        out.append(s * e)
    act = [v for v in out if v != 0.0]
    rms = math.sqrt(sum(v * v for v in act) / max(1, len(act)))
    return [v * level / rms for v in out]


def echo_path(rate, delay_ms, seed=7, gain=0.5, tail_ms=6.0, tau_ms=1.5):
    """Impulse response: delay_ms of nothing, then a direct-path peak over a decaying random tail; its energy gain
    (sum of squares) is gain**2, i.e. the echo is about 20*log10(1/gain) dB under the reference (6 dB for 0.5)."""
    rnd = random.Random(seed)
    d = int(rate * delay_ms / 1000)
    taps = int(rate * tail_ms / 1000)
    tau = tau_ms * rate / 1000.0
    h = [0.0] * (d + taps)
    for k in range(taps):
        h[d + k] = rnd.gauss(0, 1) * math.exp(-k / tau)
    h[d] += 2.0
    norm = math.sqrt(sum(v * v for v in h))
    return [v * gain / norm for v in h]


def convolve(x, h):
    nz = [(k, c) for k, c in enumerate(h) if c != 0.0]
    out = [0.0] * len(x)
    for n in range(len(x)):
        s = 0.0
        for k, c in nz:
            if k > n:
                break
            s += c * x[n - k]
        out[n] = s
    return out


def clip16(v):
    v = int(round(v))
    return 32767 if v > 32767 else (-32768 if v < -32768 else v)


class Scene:
    """far (the reference the speaker plays), echo (what reaches the mic of it), near (the local talker), noise,
    mic = echo + near + noise, all int16 lists of the same length; rate; frame = samples per 20 ms."""

    def __init__(self, rate=8000, secs=6.0, path_delay_ms=41.0, near_from_s=None, near_to_s=None, near_level=5000.0,
                 noise_rms=0.0, far_level=6000.0, far_from_s=0.0, path_gain=0.5, seed=1):
        n = int(rate * secs)
        n -= n % (rate // 50)
        self.rate = rate
        self.frame = rate // 50
        far = speech(n, rate, seed, level=far_level)
        peak = max(abs(v) for v in far)
        if peak > 30000:
            far = [v * 30000 / peak for v in far]                  # the played reference never clips
        k0 = int(far_from_s * rate)
        far = [float(clip16(v)) for v in [0.0] * k0 + far[:n - k0]]   # the echo is of the int16 samples played
        self.h = echo_path(rate, path_delay_ms, gain=path_gain)
        echo = convolve(far, self.h)
        near = [0.0] * n
        if near_from_s is not None:
            a = int(near_from_s * rate)
            b = n if near_to_s is None else int(near_to_s * rate)
            talk = speech(n, rate, seed + 4, f0=210.0, level=near_level)
            near[a:b] = talk[a:b]
        rnd = random.Random(seed + 2)
        noise = [rnd.gauss(0, noise_rms) for _ in range(n)] if noise_rms else [0.0] * n
        self.far = [clip16(v) for v in far]
        self.echo = [clip16(v) for v in echo]
        self.near = [clip16(v) for v in near]
        self.noise = [clip16(v) for v in noise]
        self.mic = [clip16(a + b + c) for a, b, c in zip(echo, near, noise)]

    def frames(self, sig):
        """int16 LE bytes per 20 ms frame."""
        f = self.frame
        for i in range(0, len(sig), f):
            yield pcm(sig[i:i + f])


def pcm(samples):
    b = bytearray(2 * len(samples))
    for i, v in enumerate(samples):
        b[2 * i] = v & 0xFF
        b[2 * i + 1] = (v >> 8) & 0xFF
    return bytes(b)


def samples(data):
    out = []
    for i in range(0, len(data) - 1, 2):
        v = data[i] | (data[i + 1] << 8)
        out.append(v - 0x10000 if v & 0x8000 else v)
    return out


def run(proc, scene, mic=None):
    """Feed a scene through a VoiceProc frame by frame (reference = the far-end frame); -> output samples."""
    mic = scene.mic if mic is None else mic
    out = bytearray(2 * scene.frame)
    res = []
    for m, r in zip(scene.frames(mic), scene.frames(scene.far)):
        proc.process(m, r, out)
        res += samples(out)
    return res


def energy(sig, a, b):
    return sum(v * v for v in sig[a:b])


def erle_db(echo, residual, a, b):
    """10 log10(E[echo^2] / E[residual^2]) over samples a..b."""
    return 10 * math.log10(max(energy(echo, a, b), 1) / max(energy(residual, a, b), 1))


def gain_db(near, out, a, b):
    """The near talker's gain in the output: the output projected on the near-end signal, in dB."""
    num = sum(o * s for o, s in zip(out[a:b], near[a:b]))
    den = energy(near, a, b)
    return 20 * math.log10(max(num / den, 1e-9))
