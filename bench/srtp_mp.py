# SRTP's cost per 20 ms PCMU packet on the real MicroPython (the 32-bit unix build with the firmware frozen in, its
# viper compiled for x86, in the phones' 96 KB heap): protect + unprotect of one 172-byte RTP packet (12-byte
# header, 160 bytes of PCMU) with AES_CM_128_HMAC_SHA1_80, as the phone will run it per frame (one packet out, one
# in), timed inside MicroPython with time.ticks_us: best of REPS x ROUNDS runs of many packets. Three ways:
# - viper: what the phone binds (srtp_viper.py: XOR, tag, counter blocks and HMAC-SHA1; cryptolib ECB for AES);
# - hashlib HMAC: the viper loops, HMAC-SHA1 over hashlib.sha1 (the plain path's HMAC), to show what it costs;
# - plain: the plain twins and hashlib (ports without viper).
# Bytes allocated per pair are gc.mem_alloc() growth with the collector off; micropython-lib's hmac.new per packet
# is timed beside the two HMACs for the record.
#
# ESP32 estimates, two views:
# - pystone scaling, as bench/codecs_mp.py: time here * (stones/s here / ESP32_PYSTONES); for the interpreter-bound
#   parts (the plain twin, the Python around the kernels) it is the usual yardstick (docs/NOTES.md says how
#   optimistic it is); for native viper code it is a guess in either direction.
# - the viper SHA-1 from its ESP32 build (mpy-cross -march=xtensawin, disassembled as bench/echo.py does): every
#   loop of srtp_viper.hmac_sha1 through bench/echo.py's in-order cycle model times its trip count for a 172-byte
#   packet (4 SHA-1 blocks: 3 inner from the key's saved state, 1 outer). Not counted: the Python call, AES (the
#   ESP32's mbedtls uses its AES accelerator), the Python around it.
import collections
import os
import subprocess
import tempfile

from host_tools import runtime

HERE = os.path.dirname(os.path.abspath(__file__))
REPS = 7
ROUNDS = 3
HEAP = 96000                       # tests/proc.py MP_HEAP: the phones' heap
MHZ = 240
PKT = 172                          # 12-byte RTP header + 160 bytes of PCMU (20 ms)

TIMING = """
import gc, time, hashlib, hmac
from uphone.media import srtp
print('IMPL', srtp.IMPL, srtp.AES)
REPS = %(reps)d
PKT = %(pkt)d

def pair_run(mode):
    tx = srtp.Srtp(bytes(range(16)), bytes(range(16, 30)))
    rx = srtp.Srtp(bytes(range(16)), bytes(range(16, 30)))
    for s in (tx, rx):
        if mode == 'plain':
            s.use_plain_twins()
        elif mode == 'hashlib':
            s.use_hashlib_hmac()
    b = bytearray(PKT + 10)
    b[0] = 0x80
    b[8:12] = b'\\xde\\xad\\xbe\\xef'
    for i in range(PKT - 12):
        b[12 + i] = (i * 37) & 255
    seq = [0]
    def run(k):
        s = seq[0]
        for i in range(k):
            b[2] = s >> 8
            b[3] = s & 255
            s = (s + 1) & 0xFFFF
            rx.unprotect(b, tx.protect(b, PKT))
        seq[0] = s
    return run

def best(fn, n):
    fn(5)
    bb = None
    for r in range(REPS):
        gc.collect()
        t0 = time.ticks_us()
        fn(n)
        dt = time.ticks_diff(time.ticks_us(), t0)
        if bb is None or dt < bb:
            bb = dt
    return bb / n

def alloc(fn, n):
    fn(5)
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    fn(n)
    a = gc.mem_alloc() - a
    gc.enable()
    return a / n

for mode, n in (('viper', 2000), ('hashlib', 1000), ('plain', 200)):
    fn = pair_run(mode)
    print('US', mode, best(fn, n))
    print('BYTES', mode, alloc(fn, 50))

key = bytes(range(20))
msg = bytes(PKT + 4)
ip, op = srtp.pads(key)
ctx = srtp.mac_ctx(key)
from uphone.media import srtp_viper
def h_viper(k):
    for i in range(k):
        srtp_viper.hmac_sha1(ctx, msg, PKT, 0)
def h_hashlib(k):
    for i in range(k):
        srtp.hmac_sha1(ip, op, msg)
def h_lib(k):
    for i in range(k):
        hmac.new(key, msg, hashlib.sha1).digest()
for name, fn, n in (('viper', h_viper, 2000), ('hashlib', h_hashlib, 2000), ('hmac.new', h_lib, 300)):
    print('HMAC', name, best(fn, n), alloc(fn, 30))
"""

MODES = (("viper", "viper kernels + viper HMAC-SHA1 (the phone)"),
         ("hashlib", "viper kernels + hashlib HMAC-SHA1"),
         ("plain", "plain twins + hashlib HMAC-SHA1"))


def _mp(code, timeout=600):
    with tempfile.TemporaryDirectory() as d:       # an empty cwd: nothing there shadows the frozen package
        r = subprocess.run([runtime.UNIX_BIN, "-X", "heapsize=%d" % HEAP, "-c", code], cwd=d, capture_output=True,
                           text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("micropython exited %d: %s" % (r.returncode, (r.stdout + r.stderr)[-1500:]))
    return r.stdout


def xtensa_hmac_cycles(n=PKT + 0):
    """Modelled ESP32 cycles of srtp_viper.hmac_sha1 over an n-byte packet plus the ROC (bench/echo.py's in-order
    model, every loop times its trip count). -> (cycles, cycles per SHA-1 block, blocks), or a string saying what
    is missing."""
    from bench import echo
    saved = echo.VIPER
    echo.VIPER = os.path.join(echo.FW, "uphone", "media", "srtp_viper.py")
    try:
        dis = echo._disassemble()
    finally:
        echo.VIPER = saved
    if isinstance(dis, str):
        return dis
    ins = dis["hmac_sha1"]
    loops = echo._loops(ins)
    inner = [lp for lp in loops if not any(echo._inside(o, lp) for o in loops if o is not lp)]

    def ops(lp):
        return collections.Counter(x[1] for x in lp[2])
    rounds = [lp for lp in inner if ops(lp)["sll"] == 10]
    sched = [lp for lp in inner if ops(lp)["sll"] == 4 and ops(lp)["srl"] == 4]
    load = [lp for lp in inner if ops(lp)["l8ui"] == 4]
    copy = [lp for lp in inner if ops(lp)["l8ui"] == 1 and ops(lp)["s8i"] == 1]
    zero = [lp for lp in inner if ops(lp)["s8i"] == 1 and not ops(lp)["l8ui"]]
    digest = [lp for lp in inner if ops(lp)["s8i"] == 4]
    state = [lp for lp in inner if ops(lp)["s32i.n"] == 1 and len(lp[2]) < 40]
    if (len(rounds), len(sched), len(load), len(copy), len(zero), len(digest), len(state)) != (4, 1, 1, 1, 2, 2, 1):
        return "the SHA-1 loops were not found in the disassembly"
    cyc = echo._cycles
    block = 4 * sum(cyc(lp[2]) for lp in rounds) + 16 * cyc(sched[0][2]) + 16 * cyc(load[0][2])
    r = n & 63
    j = r + 4 + 1
    tail_blocks = 1 if j <= 56 else 2
    blocks = (n >> 6) + tail_blocks + 1
    zmax = max(cyc(lp[2]) for lp in zero)              # the two zero fills look alike: both costed as the dearer
    rest = r * cyc(copy[0][2]) + ((tail_blocks << 6) - 4 - j) * zmax + 41 * zmax + \
        5 * sum(cyc(lp[2]) for lp in digest) + 5 * cyc(state[0][2])
    return blocks * block + rest, block, blocks


def rows():
    from bench.codecs_mp import stones_per_s
    from bench.media_frame import ESP32_PYSTONES
    if not os.path.exists(runtime.UNIX_BIN):
        yield ("SRTP per 20 ms packet on MicroPython", "not measured: run make micropython", "", "")
        return
    sps = 0.0
    us = {}
    hm = {}
    alloc = {}
    impl = None
    for _ in range(ROUNDS):
        sps = max(sps, stones_per_s())
        out = _mp(TIMING % dict(reps=REPS, pkt=PKT))
        impl = out.split("IMPL")[1].split()[:2]
        for line in out.splitlines():
            w = line.split()
            if w and w[0] == "US":
                us[w[1]] = min(us.get(w[1], float(w[2])), float(w[2]))
            elif w and w[0] == "BYTES":
                alloc[w[1]] = float(w[2])
            elif w and w[0] == "HMAC":
                t = min(hm.get(w[1], (float(w[2]), 0))[0], float(w[2]))
                hm[w[1]] = (t, float(w[3]))
    scale = sps / ESP32_PYSTONES
    if impl != ["viper", "cryptolib"]:
        yield ("srtp binds (kernels, AES)", " ".join(impl), "", "viper cryptolib")
    yield ("ESP32 estimate scale (bench/codecs_mp.py's pystone yardstick)", "x%.1f" % scale, "", "")
    for mode, label in MODES:
        name = "SRTP protect+unprotect, one 20 ms PCMU packet (%d B), %s" % (PKT, label)
        yield (name + ", unix MicroPython 32-bit, 96 KB heap", "%.1f" % us[mode], "us", "")
        yield ("  ... est. ESP32 (pystone scaling)", "%.2f" % (us[mode] * scale / 1000.0), "ms",
               "whole frame <= 2 ms" if mode == "viper" else "")
        yield ("  ... heap allocated per packet pair", "%.0f" % alloc[mode], "bytes", "0" if mode == "viper" else "")
    for name in ("viper", "hashlib", "hmac.new"):
        what = {"viper": "srtp_viper.hmac_sha1 (saved keyed states)", "hashlib": "hashlib.sha1 over saved pads",
                "hmac.new": "micropython-lib hmac.new(key, msg, hashlib.sha1) per packet"}[name]
        yield ("HMAC-SHA1 of one packet + ROC, %s" % what, "%.1f" % hm[name][0], "us",
               "%.0f bytes allocated" % hm[name][1])
    x = xtensa_hmac_cycles()
    if isinstance(x, str):
        yield ("viper HMAC-SHA1 on the ESP32 (Xtensa model)", x, "", "")
    else:
        cycles, block, blocks = x
        yield ("viper SHA-1 block, ESP32 build, in-order model", "%d" % block, "cycles", "")
        yield ("viper HMAC-SHA1 of one packet (%d blocks), est. ESP32 @ %d MHz" % (blocks, MHZ),
               "%.0f" % (cycles / MHZ), "us", "x2 per packet pair")
