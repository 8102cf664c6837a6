# The codec part of a 20 ms frame on the real MicroPython: the unix build with the firmware frozen in and its viper
# code compiled for x64 (`make micropython`). Microseconds per frame for G.711 PCMU/PCMA (encode 160 samples +
# decode 160 codes) and G.722 (encode 320 samples + decode 160 codes, codec state carried from frame to frame), the
# plain twins (encode_py/decode_py, EncoderPy/DecoderPy) beside the viper twins the phone runs, timed inside
# MicroPython with time.ticks_us: best of REPS x ROUNDS runs over many frames of a tone + noise signal.
#
# ESP32 estimate: the Pystone-style yardstick bench/media_frame.py uses (bench/pystone_mp.py), run on this binary,
# gives stones/s here, and time here * (stones/s here / ESP32_PYSTONES) is the estimate. ESP32_PYSTONES (1800, from
# bench/media_frame.py) stands for MicroPython's pystones/s on an ESP32; docs/NOTES.md says what that figure is and
# what it is not. The scaling is a bytecode-interpreter yardstick, and for native viper code it is pessimistic: an
# ESP32 spends ~3.4 cycles per x64 instruction of interpreter work (published ESP32 pystones/s against this binary's
# x64 instructions per pystone), and this machine runs bytecode at 0.65x the instruction rate it runs the viper
# kernels at, so the scaling charges ~2.2 ESP32 cycles per x64 instruction of viper code; that code is ~0.86 Xtensa
# instructions per x64 instruction (static count of the two mpy-cross outputs), so ~1.2-1.6 cycles if the in-order
# LX6 runs it at 1.4-1.8 cycles per instruction (assumed: there is no ESP32 here to time it).
# The targets (PCMU frame <= 2 ms, G.722 frame <= 5 ms on the ESP32 estimate) are for the whole frame (capture,
# codecs, RTP, jitter buffer, playback): the codec part measured here has to leave room for the rest.
import os
import subprocess
import tempfile

from host_tools import runtime

HERE = os.path.dirname(os.path.abspath(__file__))
REPS = 7
ROUNDS = 3

TIMING = """
import gc, math, time
from uphone.media import g711, g722
print('IMPL', g711.IMPL, g722.IMPL)
REPS = %(reps)d

def signal(rate, frames, n):
    # tone + deterministic noise, int16 LE, one bytearray per frame (made before timing: no slicing in the loop)
    out = []
    i = 0
    for f in range(frames):
        b = bytearray(2 * n)
        for k in range(n):
            v = int(6000 * math.sin(2 * math.pi * 440 * i / rate) + 3000 * math.sin(2 * math.pi * 1900 * i / rate))
            v += ((i * 7919) %% 2001) - 1000
            b[2 * k] = v & 0xFF
            b[2 * k + 1] = (v >> 8) & 0xFF
            i += 1
        out.append(b)
    return out

def best(fn, frames):
    b = None
    for r in range(REPS):
        gc.collect()
        t0 = time.ticks_us()
        fn(frames)
        dt = time.ticks_diff(time.ticks_us(), t0)
        if b is None or dt < b:
            b = dt
    return b / frames

PCM8 = signal(8000, 50, 160)
CODES = [bytearray(160) for f in range(50)]
OUT8 = bytearray(320)

def g711_run(law, enc, dec):
    def run(k):
        for i in range(k):
            f = i %% 50
            enc(law, PCM8[f], CODES[f], 160)
            dec(law, CODES[f], OUT8, 160)
    return run

for name, law in (('PCMU', g711.ULAW), ('PCMA', g711.ALAW)):
    print('US', name, 'plain', best(g711_run(law, g711.encode_py, g711.decode_py), 200))
    print('US', name, 'viper', best(g711_run(law, g711.encode, g711.decode), 5000))

PCM16 = signal(16000, 50, 320)
BITS = [bytearray(160) for f in range(50)]
OUT16 = bytearray(640)

def g722_run(enc, dec):
    def run(k):
        for i in range(k):
            f = i %% 50
            enc.encode(PCM16[f], 320, BITS[f])
            dec.decode(BITS[f], 160, OUT16)
    return run

print('US G722 plain', best(g722_run(g722.EncoderPy(), g722.DecoderPy()), 20))
print('US G722 viper', best(g722_run(g722.Encoder(), g722.Decoder()), 500))
"""

STONES = """
import time
best = None
for r in range(5):
    t0 = time.ticks_us()
    stones(%(n)d)
    dt = time.ticks_diff(time.ticks_us(), t0)
    if best is None or dt < best:
        best = dt
print('STONES', %(n)d * 1000000 / best)
"""


def _mp(code, timeout=600):
    with tempfile.TemporaryDirectory() as d:       # an empty cwd: nothing there shadows the frozen package
        r = subprocess.run([runtime.UNIX_BIN, "-c", code], cwd=d, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("micropython exited %d: %s" % (r.returncode, (r.stdout + r.stderr)[-1500:]))
    return r.stdout


def stones_per_s():
    """bench/pystone_mp.py on the unix MicroPython: best of 5 runs of 20000 stones -> stones/s."""
    with open(os.path.join(HERE, "pystone_mp.py")) as f:
        src = f.read()
    out = _mp(src + STONES % dict(n=20000))
    return float(out.split("STONES")[1].split()[0])


FRAME = {"PCMU": "PCMU (encode+decode 160 samples)", "PCMA": "PCMA (encode+decode 160 samples)",
         "G722": "G.722 (encode 320 samples + decode 160 codes)"}
TARGET = {"PCMU": "whole frame <= 2 ms", "PCMA": "whole frame <= 2 ms", "G722": "whole frame <= 5 ms"}


def rows():
    from bench.media_frame import ESP32_PYSTONES
    if not os.path.exists(runtime.UNIX_BIN):
        yield ("codec part of a 20 ms frame on MicroPython", "not measured: run make micropython", "", "")
        return
    # the yardstick and the codecs alternate ROUNDS times and each keeps its best: a busy machine (other builds and
    # tests on these 2 cores) slows both, and the best of each is the figure least touched by it
    sps = 0.0
    us = {}
    impl = None
    for _ in range(ROUNDS):
        sps = max(sps, stones_per_s())
        out = _mp(TIMING % dict(reps=REPS))
        impl = out.split("IMPL")[1].split()[:2]
        for line in out.splitlines():
            if line.startswith("US "):
                _, codec, kind, v = line.split()
                us[codec, kind] = min(us.get((codec, kind), float(v)), float(v))
    scale = sps / ESP32_PYSTONES
    yield ("unix MicroPython: stones/s (bench/pystone_mp.py, best of %d x 20000 stones)" % (5 * ROUNDS), "%.0f" % sps, "stones/s", "")
    yield ("ESP32 estimate scale = stones/s here / %d (ESP32_PYSTONES, bench/media_frame.py)" % ESP32_PYSTONES,
           "x%.1f" % scale, "", "")
    yield ("  (interpreter yardstick: pessimistic for viper native code, see docs/NOTES.md)", "", "", "")
    if impl != ["viper", "viper"]:
        yield ("codecs the frozen build binds (g711, g722)", " ".join(impl), "", "viper viper")
    for codec in ("PCMU", "PCMA", "G722"):
        for kind in ("viper", "plain"):
            t = us[codec, kind]
            name = "%s codec part of a 20 ms frame, %s twin" % (FRAME[codec], kind)
            yield (name + ", unix MicroPython (best of %d runs)" % (REPS * ROUNDS), "%.1f" % t, "us", "")
            yield ("  ... est. ESP32", "%.2f" % (t * scale / 1000.0), "ms",
                   TARGET[codec] if kind == "viper" else "(the phone runs the viper twin)")
        yield ("  %s viper speed-up over plain" % codec, "x%.0f" % (us[codec, "plain"] / us[codec, "viper"]), "", "")
