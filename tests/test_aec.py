# Voice processing (firmware/uphone/media/aec.py + aec_viper.py) on a synthetic echo path (tests/echo_sim.py):
# echo return loss enhancement after convergence, double talk, a silent far end, the bulk delay, AGC and the noise
# gate; the plain-Python twin here on CPython, both twins on the real MicroPython (frozen unix build: identical
# output, no allocation per frame), and the viper source under CPython with 32-bit words (the ESP32's width).
import ast
import math
import os
import random
import sys
import types

import pytest

from tests.conftest import ROOT
from tests import echo_sim as sim
from uphone.media import aec

AEC_ONLY = dict(agc=False, gate=False)
VIPER = os.path.join(ROOT, "firmware", "uphone", "media", "aec_viper.py")
PLAIN = os.path.join(ROOT, "firmware", "uphone", "media", "aec.py")


def _run(proc, scene, mic=None):
    """-> (output samples, linear residual samples before the suppressor and the gains)."""
    mic = scene.mic if mic is None else mic
    out = bytearray(2 * scene.frame)
    res, lin = [], []
    for m, r in zip(scene.frames(mic), scene.frames(scene.far)):
        proc.process(m, r, out)
        res += sim.samples(out)
        lin += [v - 32768 for v in proc.E]
    return res, lin


@pytest.fixture(scope="module")
def far_only():
    return sim.Scene(rate=8000, secs=4.0)


@pytest.fixture(scope="module")
def double_talk():
    return sim.Scene(rate=8000, secs=5.0, near_from_s=2.5)


def test_erle_after_convergence_8k(far_only):
    sc = far_only
    p = aec.VoiceProc(8000, delay_ms=40, **AEC_ONLY)
    out, lin = _run(p, sc)
    a, b = 2 * sc.rate, len(out)                      # converged part: the last 2 s
    assert sim.erle_db(sc.echo, lin, a, b) >= 20      # the linear filter alone
    assert sim.erle_db(sc.echo, out, a, b) >= 30      # with the residual echo suppressor
    assert p.stats()["converged"] == 1 and p.stats()["dt_blocks"] == 0   # no double talk called on pure echo


def test_erle_after_convergence_16k():
    sc = sim.Scene(rate=16000, secs=3.0)
    a = 2 * sc.rate
    p = aec.VoiceProc(16000, delay_ms=40, tail_ms=8, **AEC_ONLY)
    out, lin = _run(p, sc)
    assert sim.erle_db(sc.echo, lin, a, len(out)) >= 20
    assert sim.erle_db(sc.echo, out, a, len(out)) >= 30
    # the default 4 ms filter (the ESP32's budget) misses the synthetic path's last 3 ms: the suppressor covers it
    p = aec.VoiceProc(16000, delay_ms=40, **AEC_ONLY)
    out, lin = _run(p, sc)
    assert p.taps == 64 and sim.erle_db(sc.echo, lin, a, len(out)) >= 15
    assert sim.erle_db(sc.echo, out, a, len(out)) >= 30


def test_erle_with_mic_noise():
    sc = sim.Scene(rate=8000, secs=4.0, noise_rms=300.0)        # noise 20 dB under the echo
    p = aec.VoiceProc(8000, delay_ms=40, **AEC_ONLY)
    out, lin = _run(p, sc)
    residual = [e - v for e, v in zip(lin, sc.noise)]
    assert sim.erle_db(sc.echo, residual, 2 * sc.rate, len(out)) >= 15


def test_double_talk_keeps_the_near_talker(double_talk):
    sc = double_talk
    p = aec.VoiceProc(8000, delay_ms=40, **AEC_ONLY)
    out, lin = _run(p, sc)
    a, b = int(2.5 * sc.rate), len(out)
    assert -3.0 <= sim.gain_db(sc.near, out, a, b) <= 1.0      # the talker comes through: not gated, not cancelled
    assert -1.0 <= sim.gain_db(sc.near, lin, a, b) <= 1.0
    residual = [e - v for e, v in zip(lin, sc.near)]
    assert sim.erle_db(sc.echo, residual, a, b) >= 20        # the filter was not wrecked by the talker
    assert p.stats()["dt_blocks"] > 50                        # ... because adaptation froze


def test_far_end_silent_passes_the_mic_bit_exact():
    sc = sim.Scene(rate=8000, secs=1.5, near_from_s=0.0, noise_rms=50.0, far_level=1e-6)
    assert not any(sc.far)
    for far in (sc.far, [random.Random(3).randint(-16, 16) for _ in sc.far]):   # digital silence, A-law-ish +-16
        sc.far = far
        p = aec.VoiceProc(8000, delay_ms=40, **AEC_ONLY)
        out, _ = _run(p, sc)
        assert out == sc.mic
    p = aec.VoiceProc(8000, delay_ms=40, **AEC_ONLY)
    out = bytearray(320)
    for m in sc.frames(sc.mic):
        assert p.process(m, None, out) == m                   # no reference at all: silence


def test_bulk_delay_is_what_the_filter_skips():
    sc = sim.Scene(rate=8000, secs=3.0, path_delay_ms=121.0)
    a = 2 * sc.rate
    p = aec.VoiceProc(8000, delay_ms=120, **AEC_ONLY)
    _, lin = _run(p, sc)
    assert sim.erle_db(sc.echo, lin, a, len(lin)) >= 20
    p = aec.VoiceProc(8000, delay_ms=0, **AEC_ONLY)           # the echo lies beyond the taps: nothing to cancel
    _, lin = _run(p, sc)
    assert sim.erle_db(sc.echo, lin, a, len(lin)) < 3


def test_echo_path_change_converges_again():
    sc = sim.Scene(rate=8000, secs=7.0)
    h2 = sim.echo_path(8000, 43.0, seed=9, gain=0.7)
    echo2 = [sim.clip16(v) for v in sim.convolve([float(v) for v in sc.far], h2)]
    t = 3 * sc.rate
    mic = sc.mic[:t] + echo2[t:]
    echo = sc.echo[:t] + echo2[t:]
    p = aec.VoiceProc(8000, delay_ms=40, **AEC_ONLY)
    _, lin = _run(p, sc, mic)
    assert sim.erle_db(echo, lin, 5 * sc.rate, len(lin)) >= 20


def test_aec_off_leaves_the_echo():
    sc = sim.Scene(rate=8000, secs=2.0)
    p = aec.VoiceProc(8000, aec=False, agc=False, gate=False)
    out, _ = _run(p, sc)
    assert out == sc.mic                                       # every stage off: the frame passes untouched


def _rms_db(sig, a, b):
    return 10 * math.log10(max(sim.energy(sig, a, b) / (b - a), 1e-9) / 32768.0 ** 2)


def _feed(p, mic):
    out = bytearray(320)
    res = []
    for i in range(0, len(mic), 160):
        p.process(sim.pcm(mic[i:i + 160]), None, out)
        res += sim.samples(out)
    return res


@pytest.fixture(scope="module")
def quiet_talker():
    n = 8000 * 6
    talk = [sim.clip16(v) for v in sim.speech(n, 8000, 9, level=300.0)]     # about -40 dBFS while talking
    rnd = random.Random(1)
    return talk, [sim.clip16(v + rnd.gauss(0, 30)) for v in talk]         # plus noise at -61 dBFS


def test_agc_raises_a_quiet_talker_toward_the_target(quiet_talker):
    talk, mic = quiet_talker
    n = len(mic)
    out = _feed(aec.VoiceProc(8000, aec=False, agc=True, gate=False), mic)
    g = sim.gain_db(talk, out, 4 * 8000, n)
    assert 12.0 <= g <= 18.5                                   # +18 dB at most, on the way to -20 dBFS
    assert _rms_db(out, 4 * 8000, n) > _rms_db(mic, 4 * 8000, n) + 12
    flat = _feed(aec.VoiceProc(8000, aec=False, agc=False, gate=False), mic)
    assert flat == mic                                         # the key switches the AGC: no gain without it


def test_agc_does_not_boost_silence_or_noise():
    rnd = random.Random(2)
    for mic in ([0] * 8000 * 3, [sim.clip16(rnd.gauss(0, 30)) for _ in range(8000 * 3)]):
        p = aec.VoiceProc(8000, aec=False, agc=True, gate=False)
        out = _feed(p, mic)
        assert p.stats()["agc_db"] == 0.0                      # no speech heard: the gain never moved
        assert out == mic


def _talker(n, seed, level, peak=30000.0):
    t = sim.speech(n, 8000, seed, level=level)
    top = max(abs(v) for v in t)
    return [sim.clip16(v * min(1.0, peak / top)) for v in t]


def test_agc_brings_a_loud_talker_down():
    n = 8000 * 4
    talk = _talker(n, 11, 9000.0)                              # about -12 dBFS
    p = aec.VoiceProc(8000, aec=False, agc=True, gate=False)
    out = _feed(p, talk)
    assert p.stats()["agc_db"] < -5.0
    assert _rms_db(out, 3 * 8000, n) < _rms_db(talk, 3 * 8000, n) - 5


def test_agc_limiter_keeps_a_loud_onset_from_clipping(quiet_talker):
    # 5 s of the quiet talker take the gain up to +18 dB; then a loud talker (peaks at -1 dBFS) starts
    _, quiet = quiet_talker
    loud = _talker(8000, 12, 9000.0)
    mic = quiet[:5 * 8000] + loud
    p = aec.VoiceProc(8000, aec=False, agc=True, gate=False)
    out = _feed(p, mic)
    assert max(abs(v) for v in out[:5 * 8000]) < 32767
    assert 15 < sim.gain_db(quiet, out, 4 * 8000, 5 * 8000)   # the gain was up when the loud talker started
    assert max(abs(v) for v in out[5 * 8000:]) <= 29204        # and it was held at -1 dBFS, not clipped


def test_gate_attenuates_noise_only_input():
    rnd = random.Random(4)
    noise = [sim.clip16(rnd.gauss(0, 100)) for _ in range(8000 * 3)]       # -50 dBFS of noise, nobody talking
    out = _feed(aec.VoiceProc(8000, aec=False, agc=False, gate=True), noise)
    assert _rms_db(out, 8000, len(out)) < _rms_db(noise, 8000, len(out)) - 18
    out = _feed(aec.VoiceProc(8000, aec=False, agc=False, gate=False), noise)
    assert out == noise                                        # the key switches the gate


def test_gate_lets_a_talker_through(quiet_talker):
    talk, mic = quiet_talker
    out = _feed(aec.VoiceProc(8000, aec=False, agc=False, gate=True), mic)
    assert sim.gain_db(talk, out, 8000, len(out)) > -2.0      # opens on speech (and holds through short pauses)


def test_rejects_what_it_cannot_run():
    with pytest.raises(ValueError):
        aec.VoiceProc(44100)
    with pytest.raises(ValueError):
        aec.VoiceProc(16000, tail_ms=32)                       # 512 taps: over the 256 the energies have room for
    assert aec.IMPL == "python"                                # CPython has no viper emitter
    with pytest.raises(ValueError):
        aec.VoiceProc(8000, viper=True)


def _consts(path):
    out = {}
    for node in ast.parse(open(path).read()).body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", "") == "const" and isinstance(node.targets[0], ast.Name)):
            out[node.targets[0].id] = node.value.args[0]
    return out


def test_viper_twin_uses_the_same_state_layout_and_constants():
    plain, viper = _consts(PLAIN), _consts(VIPER)
    assert viper and set(viper) <= set(plain)
    env = {}
    for name, node in plain.items():                           # aec.py's may refer to earlier ones (_BS + 3 * 5)
        env[name] = eval(compile(ast.Expression(node), PLAIN, "eval"), {}, env)
    for name, node in viper.items():
        assert eval(compile(ast.Expression(node), VIPER, "eval"), {}, {}) == env[name], name


# -- the real MicroPython: the 32-bit runtime (the ESP32's word size) and the 64-bit build, viper and plain twins ---
MP_RUN = """
from uphone.media import aec
rate, delay = %(rate)d, %(delay)d
fb = rate // 50 * 2
m = bytearray(fb)
r = bytearray(fb)
out = bytearray(fb)
for vip in (False, True):
    p = aec.VoiceProc(rate, delay_ms=delay, viper=vip)
    with open(%(mic)r, 'rb') as fm, open(%(far)r, 'rb') as ff, open(%(res)r %% p.impl, 'wb') as fo:
        while fm.readinto(m) == fb and ff.readinto(r) == fb:    # frame by frame: an ESP32-sized heap holds it
            p.process(m, r, out)
            fo.write(out)
print('IMPL', aec.IMPL)
"""


@pytest.mark.parametrize("bits", (32, 64))
@pytest.mark.parametrize("rate", (8000, 16000))
def test_micropython_twins_match_cpython_bit_exact(rate, bits, tmp_path, mp):
    sc = sim.Scene(rate=rate, secs=3.0, near_from_s=2.0, noise_rms=100.0)
    for name, sig in (("mic", sc.mic), ("far", sc.far)):
        (tmp_path / name).write_bytes(sim.pcm(sig))
    # the viper kernels' sums wrap a 32-bit word on purpose: both word widths must give CPython's result
    out = mp(MP_RUN % dict(rate=rate, delay=40, mic=str(tmp_path / "mic"), far=str(tmp_path / "far"),
                           res=str(tmp_path / "out_%s")), heap=110 * 1024, bits=bits)
    assert "IMPL viper" in out
    ref, _ = _run(aec.VoiceProc(rate, delay_ms=40), sc)
    for impl in ("python", "viper"):
        got = sim.samples((tmp_path / ("out_" + impl)).read_bytes())
        assert got == ref, "%s differs from CPython (a stale binary? run make micropython)" % impl
    # the converged part before the talker, measured on the MicroPython output
    got = sim.samples((tmp_path / "out_viper").read_bytes())
    assert sim.erle_db(sc.echo, [o - v for o, v in zip(got, sc.noise)], rate, 2 * rate) >= 20


MP_ALLOC = """
import gc
from uphone.media import aec
fb = %(rate)d // 50 * 2
mic = bytearray(fb)
far = bytearray(fb)
out = bytearray(fb)
for i in range(fb // 2):
    v = (i * 937) %% 20000 - 10000
    far[2 * i] = v & 255
    far[2 * i + 1] = (v >> 8) & 255
    w = (i * 331) %% 6000 - 3000
    mic[2 * i] = w & 255
    mic[2 * i + 1] = (w >> 8) & 255
buf = bytearray(fb)
def frames(p, path, n):
    for k in range(n):
        p.process(mic, far, out)
        p.process(mic, None, out)
        buf[:] = mic
        path.mic(buf)
        path.played(far)
for vip in VIPS:
    for on in (True, False):
        gc.collect()
        a = gc.mem_alloc()
        p = aec.VoiceProc(%(rate)d, aec=on, delay_ms=60, viper=vip)
        gc.collect()
        size = gc.mem_alloc() - a
        path = aec.MicPath(p)                      # the phone's side: in place, the played frame kept as reference
        frames(p, path, 5)
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        frames(p, path, 50)
        print(p.impl, on, gc.mem_alloc() - a, size)
        gc.enable()
"""


@pytest.mark.parametrize("bits", (32, 64))
@pytest.mark.parametrize("rate", (8000, 16000))
def test_micropython_no_allocation_per_frame(rate, bits, mp):
    # the viper twin allocates nothing on either word width; the plain twin's 32-bit words are big ints (heap
    # objects) on a 32-bit MicroPython, so it is allocation-free only on the 64-bit build (the phone runs viper)
    vips = (False, True) if bits == 64 else (True,)
    out = mp("VIPS = %r\n" % (vips,) + MP_ALLOC % dict(rate=rate), heap=110 * 1024, bits=bits)
    rows = [l.split() for l in out.splitlines()]
    assert len(rows) == 2 * len(vips), out
    for impl, on, alloc, size in rows:
        assert alloc == "0", (impl, on, alloc)                 # 150 frames, gc off: not one byte
        assert int(size) < (8000 if rate == 8000 else 14000)  # the processor's own heap: buffers and state


# -- the config keys, through aec.mic_path (what ua/audio.py calls with the "audio" section) ---------------------------
def _path_run(audio, sc, src=None):
    mp = aec.mic_path(audio, sc.rate, src)
    out = []
    for m, r in zip(sc.frames(sc.mic), sc.frames(sc.far)):
        buf = bytearray(m)
        mp.mic(buf)                                # the frame played last is the reference (none before the first)
        mp.played(r)
        out += sim.samples(buf)
    return out, mp


@pytest.fixture(scope="module")
def long_path():
    # the played frame becomes the reference of the next mic frame: a 31 ms acoustic path is 11 ms of bulk delay
    # past that frame; its tail runs 14 ms (longer than the default 8 ms filter)
    sc = sim.Scene(rate=8000, secs=4.0, path_delay_ms=11.0 + 20.0)
    sc.h = sim.echo_path(8000, 31.0, tail_ms=14.0, tau_ms=4.0)
    sc.echo = [sim.clip16(v) for v in sim.convolve([float(v) for v in sc.far], sc.h)]
    sc.mic = list(sc.echo)
    return sc


def test_key_aec_and_aec_delay_ms(long_path):
    sc = long_path
    a = 2 * sc.rate
    base = {"agc": False, "noise_gate": False, "aec_tail_ms": 16}
    out, mp = _path_run(dict(base, aec=True, aec_delay_ms=10), sc)
    right = sim.erle_db(sc.echo, out, a, len(out))
    assert right >= 20
    out, _ = _path_run(dict(base, aec=True, aec_delay_ms=60), sc)           # the echo is not where it was told
    wrong = sim.erle_db(sc.echo, out, a, len(out))
    assert wrong < 10 and wrong < right - 15       # (pitch periodicity still lets a misplaced filter take a little)
    assert aec.mic_path(dict(base, aec=False), 8000) is None               # every stage off: no processor at all
    out, mp = _path_run(dict(base, aec=False, agc=True), sc)
    assert mp.proc.aec is False and sim.erle_db(sc.echo, out, a, len(out)) < 3


def test_key_aec_delay_ms_auto_takes_the_device_estimate(long_path):
    class Device:
        echo_delay_ms = 10

    mp = aec.mic_path({"aec": True, "aec_delay_ms": -1, "aec_tail_ms": 16, "agc": False, "noise_gate": False},
                      8000, Device())
    assert mp.proc.delay == 80
    assert aec.mic_path({"aec": True, "aec_delay_ms": -1}, 8000, object()).proc.delay == 0
    out, _ = _path_run({"aec": True, "aec_delay_ms": -1, "aec_tail_ms": 16, "agc": False, "noise_gate": False},
                       long_path, Device())
    assert sim.erle_db(long_path.echo, out, 2 * 8000, len(out)) >= 20


def test_key_aec_tail_ms(long_path):
    sc = long_path
    a = 2 * sc.rate
    base = {"aec": True, "aec_delay_ms": 10, "agc": False, "noise_gate": False}
    long_tail, mp = _path_run(dict(base, aec_tail_ms=16), sc)
    assert mp.proc.taps == 128
    short_tail, mp = _path_run(dict(base, aec_tail_ms=4), sc)
    assert mp.proc.taps == 32
    assert sim.erle_db(sc.echo, long_tail, a, len(sc.echo)) > sim.erle_db(sc.echo, short_tail, a, len(sc.echo)) + 10
    assert aec.mic_path(base, 8000).proc.taps == 64                 # absent: 8 ms at 8 kHz,
    assert aec.mic_path(base, 16000).proc.taps == 64                # 4 ms at 16 kHz


def test_keys_agc_and_noise_gate(quiet_talker):
    talk, mic = quiet_talker
    sc = types.SimpleNamespace(rate=8000, mic=mic, far=[0] * len(mic),
                               frames=lambda s: (sim.pcm(s[i:i + 160]) for i in range(0, len(s), 160)))
    off = {"aec": False, "agc": False, "noise_gate": False}
    assert aec.mic_path(off, 8000) is None
    up, _ = _path_run(dict(off, agc=True), sc)
    assert sim.gain_db(talk, up, 4 * 8000, len(up)) > 12
    rnd = random.Random(6)
    sc.mic = [sim.clip16(rnd.gauss(0, 100)) for _ in range(3 * 8000)]
    sc.far = [0] * len(sc.mic)
    gated, _ = _path_run(dict(off, noise_gate=True), sc)
    assert _rms_db(gated, 8000, len(gated)) < _rms_db(sc.mic, 8000, len(gated)) - 18


def test_hardware_loopback_channel_is_the_reference(long_path):
    # a source that captures the codec's loopback channel with the mic: its `loopback` frame is the reference, so
    # what the phone played (here: garbage) does not matter
    sc = long_path

    class Source:
        loopback = bytearray(2 * sc.frame)

    src = Source()
    mp = aec.mic_path({"aec": True, "aec_delay_ms": 30, "aec_tail_ms": 16, "agc": False, "noise_gate": False},
                      8000, src)
    out = []
    rnd = random.Random(7)
    junk = sim.pcm([rnd.randint(-20000, 20000) for _ in range(sc.frame)])
    for m, r in zip(sc.frames(sc.mic), sc.frames(sc.far)):
        src.loopback[:] = r                        # aligned with the mic frame: 31 ms path = 30 ms + 1
        buf = bytearray(m)
        mp.mic(buf)
        mp.played(junk)
        out += sim.samples(buf)
    assert sim.erle_db(sc.echo, out, 2 * 8000, len(out)) >= 20


# -- the phone: ua/audio.py's frame pump runs the mic through the processor with the frame it played last -------------
class _EchoRoom:
    """alice's handset: what the phone plays comes back into its mic through an echo path (31 ms: 11 ms of bulk
    delay past the frame the phone pairs it with), plus a local talker who starts at talk_from (s)."""

    def __init__(self, rate, talker, talk_from):
        self.h = [(k, c) for k, c in enumerate(sim.echo_path(rate, 31.0, gain=0.5)) if c]
        self.played = []
        self.talker = talker
        self.t0 = int(talk_from * rate)
        self.n = 0

    def write(self, buf):
        self.played += sim.samples(buf)
        return len(buf)

    def readinto(self, buf):
        p = self.played
        for i in range(len(buf) // 2):
            t = self.n + i
            v = self.talker[t] if self.t0 <= t < len(self.talker) else 0
            for k, c in self.h:
                if 0 <= t - k < len(p):
                    v += c * p[t - k]
            v = sim.clip16(v)
            buf[2 * i] = v & 0xFF
            buf[2 * i + 1] = (v >> 8) & 0xFF
        self.n += len(buf) // 2
        return len(buf)


class _Voice:
    def __init__(self, samples):
        self.s = samples
        self.n = 0

    def readinto(self, buf):
        for i in range(len(buf) // 2):
            v = self.s[self.n] if self.n < len(self.s) else 0
            self.n += 1
            buf[2 * i] = v & 0xFF
            buf[2 * i + 1] = (v >> 8) & 0xFF
        return len(buf)


class _Keep:
    def __init__(self):
        self.pcm = []

    def write(self, buf):
        self.pcm += sim.samples(buf)
        return len(buf)


def _call_with_echo(audio):
    """bob talks for 4 s, then alice's talker for 2 s; -> what bob heard."""
    from tests.phone_rig import Rig
    rate = 8000
    far = [sim.clip16(v) for v in sim.speech(rate * 4, rate, 1, level=5000.0)]
    near = [sim.clip16(v) for v in sim.speech(rate * 8, rate, 5, f0=210.0, level=3000.0)]
    rig = Rig()
    alice = rig.add("alice", 5062, 21000)
    alice.cfg["audio"].update(audio)
    bob = rig.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    bob.cfg["audio"].update({"aec": False, "agc": False, "noise_gate": False})
    room = _EchoRoom(rate, near, 0.0)
    alice.set_audio(room, room)
    heard = _Keep()
    rig.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:5064")
    assert rig.run(3000, until=lambda: rig.state("alice") == "Active" and rig.state("bob") == "Active")
    room.t0 = room.n + 4 * rate                    # alice's talker starts when bob has talked for 4 s
    bob.set_audio(_Voice(far), heard)
    rig.run(6000)
    return heard.pcm, alice


def test_phone_cancels_its_echo_and_lets_its_talker_through():
    off = {"aec": False, "agc": False, "noise_gate": False}
    on = dict(off, aec=True, aec_delay_ms=10)
    heard_off, _ = _call_with_echo(off)
    heard_on, alice = _call_with_echo(on)
    assert alice.voice and alice.voice.proc.aec
    assert alice.voice.proc.stats()["converged"] == 1
    # bob's own voice coming back (his 2nd to 4th second, alice silent): 20 dB less with the echo canceller
    a, b = 2 * 8000, 4 * 8000
    assert sim.energy(heard_off, a, b) > 1e4 * (b - a)       # there is an echo to cancel (-30 dBFS or more)
    assert 10 * math.log10(sim.energy(heard_off, a, b) / max(1, sim.energy(heard_on, a, b))) >= 20
    # alice's talker alone (bob silent): the same level either way
    a, b = int(4.5 * 8000), 6 * 8000
    ratio = 10 * math.log10(sim.energy(heard_on, a, b) / sim.energy(heard_off, a, b))
    assert -1.5 < ratio < 1.5
# -- the config keys: validation, the defaults on each runtime, the ESP32 device's delay estimate ---------------------
@pytest.mark.parametrize("key,value,message", [
    ("aec", 1, "audio.aec: expected true or false, got 1"),
    ("aec_delay_ms", -2, "audio.aec_delay_ms: expected an integer -1-500, got -2"),
    ("aec_delay_ms", 501, "audio.aec_delay_ms: expected an integer -1-500, got 501"),
    ("aec_tail_ms", 1, "audio.aec_tail_ms: expected an integer 2-16, got 1"),
    ("aec_tail_ms", 17, "audio.aec_tail_ms: expected an integer 2-16, got 17"),
    ("agc", "on", "audio.agc: expected true or false, got 'on'"),
    ("noise_gate", None, "audio.noise_gate: expected true or false, got None"),
])
def test_config_keys_are_validated(key, value, message):
    from uphone import config
    assert config.validate({"accounts": [{"user": "a"}], "audio": {key: value}}) == [message]
    assert config.validate({"accounts": [{"user": "a"}], "audio": {"aec": True, "aec_delay_ms": 120,
                                                                   "aec_tail_ms": 16, "agc": False,
                                                                   "noise_gate": True}}) == []


def test_config_defaults_on_where_the_viper_kernels_run(mp):
    from uphone import config
    a = config.with_defaults({"accounts": [{"user": "a"}]})["audio"]
    # absent keys: the mic path decides per runtime; CPython has only the plain twin (~2-9 ms a frame): off
    assert "aec" not in a and "agc" not in a and "noise_gate" not in a and a["aec_delay_ms"] == -1
    assert "aec_tail_ms" not in a                                  # absent: the processor's per-rate default
    assert aec.mic_path(a, 8000) is None
    out = mp("from uphone import config\nfrom uphone.media import aec\n"
             "a = config.with_defaults({'accounts': [{'user': 'a'}]})['audio']\n"
             "p = aec.mic_path(a, 8000).proc\n"
             "print(p.aec, p.agc, p.gate)")
    assert out.split() == ["True", "True", "True"]                 # the phone's runtime (a native emitter)


def test_esp32_audio_device_estimates_its_echo_delay():
    from tests import test_drivers as D
    from uphone.hal import esp32
    pins = {"sck": 26, "ws": 25, "sd_out": 22, "sd_in": 32, "rx_sck": 14, "rx_ws": 15}
    assert esp32.I2SAudio(D.make_machine(), pins, 8000).echo_delay_ms == 96
    assert esp32.I2SAudio(D.make_machine(), pins, 16000).echo_delay_ms == 48
    assert esp32.I2SAudio(D.make_machine(), pins, 8000, capture=False).echo_delay_ms == 0   # no mic, no echo
