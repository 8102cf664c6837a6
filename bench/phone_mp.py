# The whole phone on the real MicroPython: the frozen unix runtime, 32-bit x86 as the ESP32 is a 32-bit machine
# (`make micropython`). Every figure comes from that runtime running phones (processes on loopback driven through
# their consoles, with real sockets, the loop and the media path), or from the runtime itself for the frame times:
#   heap after importing the phone, a phone's heap idle and in a call, the smallest heap the heap test's scenario
#   (register with digest, call, hold, resume, DTMF, hang up; tests/proc.py heap_scenario) runs in, by bisection,
#   garbage in a steady call (what the GC must reclaim; call frames MicroPython frees at once are not garbage), the
#   longest loop pass over a 60 s call (GC pauses included), and the time of a whole 20 ms frame (capture, encode,
#   RTP, receive, jitter buffer, decode, play) with the plain and the viper codecs, with the ESP32 estimate.
import os
import shutil
import subprocess
import sys
import tempfile
import time

from host_tools import runtime

if runtime.FIRMWARE not in sys.path:
    sys.path.insert(0, runtime.FIRMWARE)        # tests.proc validates the phones' configs with the firmware's code

HEAP_MUST = 96000           # the heap the scenario must run in (an ESP32 without PSRAM has ~110 KB)
HEAP_GOAL = 65536
GARBAGE_MUST = 2048         # bytes/s in a steady call

FRAME = """
import gc, time
from uphone.media import g711, g722, rtp
from uphone.media.session import MediaSession
from uphone.hal.desktop import WavSource
if %(plain)d:               # the plain-Python twins, as on a port without a native emitter
    g711.encode, g711.decode = g711.encode_py, g711.decode_py
    g722.Encoder, g722.Decoder = g722.EncoderPy, g722.DecoderPy
A = MediaSession(%(codec)r, %(pt)d, 101, %(rate)d, 20)
B = MediaSession(%(codec)r, %(pt)d, 101, %(rate)d, 20)
SRC = WavSource('tone:1000', %(rate)d)
BUF = bytearray(%(rate)d // 50 * 2)
def frame(now):
    SRC.readinto(BUF)
    pkt = A.tx(BUF, now)
    B.rx(pkt, len(pkt), None, now)
    B.play(now)
t = 0
for i in range(30):         # the jitter buffer fills and settles
    frame(t)
    t += 20
best = None
for r in range(7):
    gc.collect()
    t0 = time.ticks_us()
    for i in range(50):
        frame(t)
        t += 20
    dt = time.ticks_diff(time.ticks_us(), t0) / 50
    best = dt if best is None or dt < best else best
gc.collect()
gc.disable()
a = gc.mem_alloc()
for i in range(50):
    frame(t)
    t += 20
print('FRAME', best, gc.mem_alloc() - a)
"""

IMPORTS = """
import gc
gc.collect()
a = gc.mem_alloc()
import uphone.run, uphone.phone, uphone.loop, uphone.console
gc.collect()
print('IMPORTS', gc.mem_alloc() - a)
"""

RTCP = """
import gc
from uphone.media.session import MediaSession
A = MediaSession('PCMU', 0, 101, 8000, 20)
B = MediaSession('PCMU', 0, 101, 8000, 20)
buf = bytearray(320)
for t in range(0, 600, 20):
    p = A.tx(buf, t)
    B.rx(p, len(p), None, t)
    B.play(t)
gc.collect()
gc.disable()
a = gc.mem_alloc()
for k in range(10):
    B.rtcp_rx(A.rtcp_build(1000 + k), 1000 + k)
print('RTCP', (gc.mem_alloc() - a) // 10)
"""


def _mp(code, timeout=300):
    with tempfile.TemporaryDirectory() as d:       # an empty cwd: nothing there shadows the frozen package
        r = subprocess.run([runtime.UNIX_BIN, "-c", code], cwd=d, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("micropython exited %d: %s" % (r.returncode, (r.stdout + r.stderr)[-1500:]))
    return r.stdout


def _scenario(heap, codec, tries=3):
    """True when heap_scenario passes with both phones in `heap` bytes; False when a phone ran out of heap (a
    MemoryError, a datagram dropped for want of heap, a crash). A step that failed for another reason (a machine
    too busy for the scenario's time bounds) is run again, up to `tries` times."""
    from tests import peers
    from tests.proc import Phones, heap_scenario
    for _ in range(tries):
        d = tempfile.mkdtemp(prefix="uphone-heap-")
        kam = peers.Kamailio(os.path.join(d, "kam")).start()
        ps = Phones("micropython", d, heap=heap)
        try:
            heap_scenario(ps, kam, codec)
            return True
        except AssertionError:
            out = "\n".join("\n".join(p.lines + p.err) for p in ps.all.values())
            if "MemoryError" in out or "err heap" in out or "err internal" in out:
                return False
        finally:
            ps.close(check=False)
            kam.stop()
            shutil.rmtree(d, ignore_errors=True)
    raise RuntimeError("the scenario failed %d times at %d bytes for reasons other than the heap" % (tries, heap))


def smallest_heap(codec, lo=32768, hi=HEAP_MUST, step=2048):
    """Bisection on the heap size: the smallest (to `step`) in which the scenario passed twice running."""
    if not (_scenario(hi, codec) and _scenario(hi, codec)):
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // 512 * 512
        if _scenario(mid, codec) and _scenario(mid, codec):
            hi = mid
        else:
            lo = mid
    return hi


def _call(seconds, fn):
    """A PCMU call between two phone processes on the runtime (96 KB heaps); fn(alice) runs while it lasts."""
    from tests.proc import Phones
    d = tempfile.mkdtemp(prefix="uphone-call-")
    ps = Phones("micropython", d, heap=HEAP_MUST)
    try:
        a = ps.add("alice", audio={"source": "tone:1000"})
        b = ps.add("bob", audio={"source": "tone:440"}, features={"auto_answer": True, "auto_answer_delay_ms": 0})
        idle = a.mem(True)
        a.ev("MakeCall", target=b.uri)
        if not a.wait(lambda: a.state() == "Active", 10):
            raise RuntimeError("the call did not come up: %s" % a.tail())
        time.sleep(1.0)
        return idle, fn(a, seconds)
    finally:
        ps.close(check=False)
        shutil.rmtree(d, ignore_errors=True)


def _garbage(a, seconds):
    # the console's own share (reading `mem release` and the harness's echo line) measured with nothing else on:
    # a hold/release pair right away, then the call's window
    a.cmd("mem hold")
    base = int(a.cmd("mem release")[0].split("garbage=")[1].split()[0])
    in_call = a.mem(True)
    a.cmd("mem hold")
    time.sleep(seconds)
    g = int(a.cmd("mem release")[0].split("garbage=")[1].split()[0])
    return in_call, max(0, g - base) / float(seconds), base


def _longest_pass(a, seconds):
    a.mem()                                 # reading `mem` starts the longest-pass figure over
    time.sleep(seconds)
    return a.mem()["max_pass_ms"]


def rows():
    if not os.path.exists(runtime.UNIX_BIN):
        yield ("the whole phone on MicroPython", "not measured: run make micropython", "", "")
        return
    imp = int(_mp(IMPORTS).split("IMPORTS")[1].split()[0])
    yield ("MicroPython (32-bit unix, frozen): heap after importing the phone", imp, "bytes", "")
    idle, (in_call, garbage, console) = _call(10, _garbage)
    yield ("  a phone's heap, idle (imports, 2 lines' media buffers, loop, audio device, mic path)", idle["alloc"],
           "bytes", "")
    yield ("  a phone's heap in a PCMU call (live, after a collection)", in_call["alloc"], "bytes", "")
    yield ("  garbage in a steady PCMU call, 10 s window (what the GC reclaims; console's share taken off)",
           "%.0f" % garbage, "bytes/s", "<= %d (goal 0 per frame)" % GARBAGE_MUST)
    rtcp = int(_mp(RTCP).split("RTCP")[1].split()[0])
    yield ("    of which RTCP: one report built + one parsed every 5 s (bytes objects, not per frame)", rtcp,
           "bytes/report", "")
    yield ("    console hold/release pair itself (subtracted above)", console, "bytes", "")
    if shutil.which("kamailio"):
        for codec in ("PCMU", "G722"):
            try:
                h = smallest_heap(codec)
            except RuntimeError as e:
                h = "not measured: %s" % e
            yield ("smallest heap for register+call+hold+resume+DTMF+hang up, %s (bisection, 2 passes each)" % codec,
                   h if h is not None else "fails at %d" % HEAP_MUST, "bytes",
                   "<= %d (goal %d)" % (HEAP_MUST, HEAP_GOAL))
    else:
        yield ("smallest heap for the scenario", "not measured: kamailio missing", "", "<= %d" % HEAP_MUST)
    _idle, longest = _call(60, _longest_pass)
    yield ("longest loop pass over a 60 s PCMU call (GC pauses included; this machine)", longest, "ms", "< 20")
    from bench.codecs_mp import stones_per_s
    from bench.media_frame import ESP32_PYSTONES
    scale = stones_per_s() / ESP32_PYSTONES
    for codec, pt, rate, target in (("PCMU", 0, 8000, 2.0), ("G722", 9, 16000, 5.0)):
        for plain in (0, 1):
            out = _mp(FRAME % dict(codec=codec, pt=pt, rate=rate, plain=plain))
            us, alloc = out.split("FRAME")[1].split()
            kind = "plain" if plain else "viper"
            yield ("whole %s frame on MicroPython, %s codec (capture, encode, RTP, rx, jitter, decode, play)"
                   % (codec, kind), "%.0f" % float(us), "us", "")
            yield ("  ... est. ESP32 (x%.0f, the pystone scaling of bench/codecs_mp.py)" % scale,
                   "%.2f" % (float(us) * scale / 1000.0), "ms",
                   "<= %.0f ms" % target if not plain else "(the phone runs viper)")
            yield ("  ... bytes allocated per frame (gc off, 50 frames)", "%.1f" % (int(alloc) / 50.0), "bytes", "0")
