# uPhone: microphone voice processing, sans-I/O: acoustic echo canceller fed with the far-end reference, residual
# echo suppressor, noise gate and AGC on 20 ms int16 LE frames (8 kHz: 160 samples, 16 kHz: 320). Plain-Python twin
# of aec_viper.py (same integer arithmetic, bit-exact); VoiceProc runs the viper kernels where the port has them.
#
# Why this design (an ESP32 at 240 MHz, the whole media frame in a few ms, no floats or allocation per frame):
# - Echo canceller: a time-domain NLMS filter updated every sample, over a short tail (8 ms after the bulk delay:
#   64 taps at 8 kHz, 128 at 16 kHz), in fixed point. A handset's or a small speakerphone's echo is mostly the
#   direct speaker-to-mic coupling and the enclosure's first reflections: a short filter cancels that, and what a
#   short filter cannot reach (room tail, misadjustment) goes to the residual suppressor. Per sample one fused loop
#   applies the previous sample's coefficient update and computes this sample's echo estimate (one pass over the
#   taps, 2 multiplies per tap), so the cost is ~2*L*N multiply-adds per frame; at 16 kHz the coefficients update
#   on every second sample (8000 updates a second, as at 8 kHz; the filter still runs on every sample), which
#   costs 2 dB of ERLE on the synthetic path and saves a quarter of the work. Block NLMS (one update per 5 ms)
#   costs the same and converged several times slower on speech-like input (about 8 dB after 1 s where this
#   reaches over 20); frequency-domain (MDF) filters need FFTs per frame and far more code.
# - The reference is what the speaker played (or the codec's hardware loopback channel where a board has one), put
#   through a configurable bulk delay (I2S DMA buffers on both sides, the acoustic path) so that the taps cover
#   only the part of the echo path that matters.
# - Double talk: a 4 ms block controller in the log domain (energies as Q8 log2, no division, no overflow). Before
#   the filter has converged it adapts (step 0.5) whenever the far end talks, unless the mic is 12 dB louder than
#   the far end could make it (a guard). Once converged (long-term ERLE over 15 dB, from loud blocks only; the step
#   halves then: less misadjustment from mic noise), a drop of the block's ERLE 9 dB under the long-term value with
#   a residual as loud as a loud block's means near-end speech: adaptation freezes (20 ms hang-over) and the filter
#   goes back to a snapshot taken 32-64 ms earlier, which undoes what the block or two before the detection did.
#   Snapshots are taken every 32 ms of clean echo-only adaptation. Half a second of far-end blocks all judged double
#   talk is an echo path change (someone moved the phone): the controller starts converging again (~1-1.5 s).
#   Not solved: double talk before the filter has first converged is adapted on, and the filter partly cancels the
#   talker (by 3-9 dB on the synthetic path) until the far end talks alone for a moment. The filter is kept from
#   call to call (one VoiceProc per audio device), so that is the first call after boot.
# - Far end silent (no reference sample above -67 dBFS, i.e. |x| <= 15, in the filter's window): no filtering and
#   no adaptation, so the microphone passes bit-exact (with AGC and gate off).
# - Residual echo suppressor (NLP): full-band gain 1 - 1.5 * R/E per 4 ms block, where E is the block's residual
#   energy and R the residual echo expected from the echo estimate and the long-term ERLE, floored at -26 dB (-6 dB
#   before convergence: an unconverged estimate may be the talker's). In double talk E is mostly the near-end talker
#   and the gain stays near 1: the talker comes through.
# - Noise gate: a noise-floor tracker (fast down, ~3 dB/s up); the gate opens 9 dB over the floor, closes below
#   4.5 dB after 200 ms of hold, and then fades 1 dB per 4 ms down to -20 dB (attenuation, not muting).
# - AGC: moves its gain toward -20 dBFS RMS at 6 dB/s up and 24 dB/s down, between -10 dB and +18 dB, only while
#   the gate's detector hears speech that is not echo (no pumping on silence or on suppressed echo); a peak limiter
#   holds each block's peak at -1 dBFS (the block is in hand: 4 ms of look-ahead). All gains change with a
#   per-sample ramp over each 4 ms block (no clicks).
#
# Word width: the viper twin runs with 64-bit machine words on x64 and 32-bit on the ESP32's Xtensa, and a viper
# ptr32 load sign-extends on Xtensa but not on x64; both twins must give the bit-exact results of this file. Rules
# kept here and there: (1) the filter's sums and the coefficient updates only add and multiply (exact modulo 2**32
# on any width), and a sum is masked to 32 bits and sign-extended once per sample; (2) a coefficient is stored as
# h * 2**30 + 2**31 modulo 2**32 (array('I')) and the filter uses its upper half-word, read unsigned: the Q14
# coefficient offset by 32768, the same on any width; (3) reference samples (array('i')) and state words that can
# be negative are sign-extended explicitly where their value, not just their low 32 bits, matters; residuals are
# stored offset by 32768 (array('H')). See aec_viper.py.
from array import array

from uphone.compat import NATIVE, const

# -- the state array: configuration (set once), then state (changes per frame) -------------------------------------
_L = const(0)        # filter taps
_B = const(1)        # block length, samples (4 ms)
_LB = const(2)       # log2(_B)
_NB = const(3)       # blocks per frame
_N = const(4)        # frame length, samples
_R = const(5)        # bulk-delay ring length, samples (delay + frame)
_MU = const(6)       # NLMS step, Q14
_DELTA = const(7)    # regularisation of the window energy (its units: (x*x) >> 8 summed over the taps)
_XON = const(8)      # far end active: window energy _ES at least this
_GUARD = const(9)    # unconverged guard: mic block energy over the far-end window's by this (Q8 log2)
_TGT = const(10)     # AGC target level (Q8 log2 of a block's energy)
_FLAGS = const(11)   # _F_GATE | _F_AGC
_WP = const(12)      # ring write position, samples
                     # (13: free)
_ES = const(14)      # window energy: sum over the taps of (x*x) >> 8
_SX = const(15)      # window sum of x (the offset correction of the filter sum)
_EP = const(16)      # the update pending for the next sample (step-scaled error)
_MUC = const(17)     # step in use: _MU, or 0 while frozen / far end silent
_CONV = const(18)    # 1 once the filter has converged
_ERLE = const(19)    # long-term ERLE of the linear filter, Q8 log2 of the energy ratio
_HANG = const(20)    # double-talk hang-over, blocks
_FROZEN = const(21)  # far-end blocks judged double talk in a row
_GOOD = const(22)    # clean converged blocks since the last snapshot
_SNAP = const(23)    # which half of the snapshot buffer is the older one
_NF = const(24)      # noise floor (Q8 log2 block energy)
_OPEN = const(25)    # speech detector: 1 = open
_HOLD = const(26)    # speech detector hold, blocks
_GG = const(27)      # gate gain, Q8 log2 of an energy ratio (<= 0)
_AG = const(28)      # AGC gain, same units
_ALVL = const(29)    # AGC level estimate (Q8 log2 block energy)
_GPREV = const(30)   # total gain applied at the end of the last block, Q13
_DTN = const(31)     # double-talk blocks seen (statistics)
_LMAX = const(32)    # loud level: the peak mic block energy, decaying (Q8 log2)
_DEC = const(33)     # coefficient updates on samples n with n & _DEC == 0 (0: every sample; 1 at 16 kHz)
_BS = const(34)      # per block of the frame: residual level (Q8 log2), peak |e|, suppressor gain (Q14)
_NST = const(_BS + 3 * 5)

_F_GATE = const(1)
_F_AGC = const(2)

_KDT = const(768)      # double talk: block ERLE 9 dB under the long-term one
_CONVD = const(1276)   # converged: long-term ERLE over 15 dB
_HANGN = const(5)      # 20 ms
_TIMEOUT = const(125)  # 0.5 s of far-end blocks all judged double talk: the echo path changed, converge again
_SNAPN = const(8)      # a snapshot per 32 ms of clean adaptation
_BETA = const(150)     # log2(1.5) in Q8: suppressor over-estimation
_GMIN = const(819)     # suppressor floor, Q14 (0.05, -26 dB)
_GMINU = const(8192)   # ... while the filter has not converged (0.5, -6 dB)
_OPENL = const(768)    # gate opens 9 dB over the noise floor
_CLOSEL = const(384)   # ... and closes under 4.5 dB (after the hold)
_HOLDN = const(50)     # 200 ms
_NFUP = const(1)       # noise floor rises 1/256 octave of energy per block (~2.9 dB/s)
_GSTEP = const(85)     # gate fades 1 dB per block
_GFLOOR = const(-1701)  # ... down to -20 dB
_AUP = const(2)        # AGC: +5.9 dB/s
_ADOWN = const(8)      # AGC: -23.5 dB/s
_AMAX = const(1531)    # +18 dB
_AMIN = const(-850)    # -10 dB
_ONE13 = const(8192)   # unity gain, Q13
_LIM = const(239239168)  # 29204 * 8192: the peak limiter keeps peaks at -1 dBFS (peak * gain, Q13)
_OFF = const(32768)    # residuals are stored offset by this (array('H'))


# -- plain-Python kernels (twins of aec_viper.py) -------------------------------------------------------------------
def _bits(n):
    return (1 << n) - 1


# 32-bit masks made at run time: a literal over 2**30 is compiled into a long-int constant for a 31-bit small-int
# target (frozen code), and every & with it would allocate. On 64-bit ports these are small ints; the ESP32 runs
# the viper twin.
_M32 = _bits(32)
_C31 = _bits(31) + 1


def lg(v):
    """Q8 log2 of v >= 1 with a linear mantissa (error < 0.09 octave); 0 for v < 1."""
    if v < 1:
        return 0
    b = 8
    while v >= 512:
        v >>= 1
        b += 1
    while v < 256:
        v <<= 1
        b -= 1
    return (b << 8) + v - 256


def pow2q14(x):
    """16384 * 2**(x/256), the inverse of lg's approximation (x <= 767)."""
    k = x >> 8
    m = 16384 + ((x & 255) << 6)
    if k >= 0:
        return m << k
    if k < -30:
        return 0
    return m >> -k


def delay_in(ref, ring, X, st):
    """Shift the filter window by a frame and append the reference delayed by the bulk delay (ring)."""
    L = st[_L]
    N = st[_N]
    R2 = 2 * st[_R]
    for i in range(L):
        X[i] = X[N + i]
    j = 2 * st[_WP]
    k = 0
    for n in range(N):
        ring[j] = ref[k]
        ring[j + 1] = ref[k + 1]
        j += 2
        k += 2
        if j == R2:
            j = 0
    st[_WP] = j >> 1
    for n in range(L, L + N):
        X[n] = ((ring[j] | (ring[j + 1] << 8)) ^ 0x8000) - 0x8000
        j += 2
        if j == R2:
            j = 0


def load(mic, E, st):
    """No echo canceller: the block statistics of the microphone itself, for the gate and the AGC."""
    B = st[_B]
    for b in range(st[_NB]):
        n0 = b * B
        see = 0
        peak = 0
        for n in range(n0, n0 + B):
            d = mic[2 * n] | (mic[2 * n + 1] << 8)
            d = (d ^ 0x8000) - 0x8000
            if d < -32767:
                d = -32767
            E[n] = d + _OFF
            see += (d * d) >> 7
            if d < 0:
                d = -d
            if d > peak:
                peak = d
        o = _BS + 3 * b
        st[o] = lg(see + 1)
        st[o + 1] = peak
        st[o + 2] = 16384


def echo(X, H, mic, S, E, st):
    """The echo canceller over one frame: NLMS per sample, control and suppressor gain per block."""
    L = st[_L]
    B = st[_B]
    mu = st[_MUC]
    ep = st[_EP]
    es = st[_ES]
    sx = st[_SX]
    delta = st[_DELTA]
    m32 = _M32
    c31 = _C31
    dec = st[_DEC]
    for b in range(st[_NB]):
        n0 = b * B
        sdd = 0
        see = 0
        syy = 0
        peak = 0
        for n in range(n0, n0 + B):
            k = L + n
            xv = X[k]                        # x[n] enters the window,
            xo = X[n]                        # x[n - L] leaves it
            es += ((xv * xv) >> 8) - ((xo * xo) >> 8)
            sx += xv - xo
            d = mic[2 * n] | (mic[2 * n + 1] << 8)
            d = (d ^ 0x8000) - 0x8000
            if es == 0:
                y = 0                        # no reference sample over 15 (-67 dBFS) in the window: no estimate
                ep = 0
            else:
                # coefficients in reverse lag order: H[m] goes with x[n - L + 1 + m] (X[n + 1 + m]), and the
                # last sample's update with x[n - L + m] (X[n + m]); a coefficient is h * 2**30 + 2**31 modulo
                # 2**32, its upper half-word the Q14 coefficient offset by 32768
                acc = 0
                j = n
                if ep != 0 and n & dec == 0:
                    for m in range(L):
                        w = (H[m] + ep * X[j]) & m32
                        H[m] = w
                        j += 1
                        acc += (w >> 16) * X[j]
                else:
                    for m in range(L):
                        j += 1
                        acc += (H[m] >> 16) * X[j]
                # sum (q - 32768) * x = sum q * x - 32768 * sum x: wraps like a 32-bit word, then sign-extended
                acc = (((acc - (sx << 15)) & m32) ^ c31) - c31
                y = (acc + 8192) >> 14
                if y > 32767:
                    y = 32767
                elif y < -32767:
                    y = -32767
            e = d - y
            if e > 32767:
                e = 32767
            elif e < -32767:
                e = -32767
            E[n] = e + _OFF                  # the residual, offset like the reference (array('H'))
            sdd += (d * d) >> 7
            see += (e * e) >> 7
            syy += (y * y) >> 7
            if e > peak:
                peak = e
            elif -e > peak:
                peak = -e
            if mu != 0 and es != 0:
                # NLMS: the next update is mu * e * x / |x|^2, in the coefficients' Q30 (|x|^2 ~ 256 * es)
                p = e * mu
                den = (es + delta) >> 8
                if p >= 0:
                    ep = (p + (den >> 1)) // den
                    if ep > 32768:
                        ep = 32768
                else:
                    ep = -((-p + (den >> 1)) // den)
                    if ep < -32768:
                        ep = -32768
            else:
                ep = 0
        # -- block control (log domain) --
        ld = lg(sdd + 1)
        le = lg(see + 1)
        ly = lg(syy + 1)
        conv = st[_CONV]
        erle = st[_ERLE]
        if es >= st[_XON]:
            er = ld - le
            lmax = st[_LMAX]
            if ld > lmax:
                lmax = ld
            else:
                lmax -= 1                            # the loud level decays ~2.9 dB/s
            st[_LMAX] = lmax
            if conv:
                # the block's ERLE fell 9 dB under the long-term one and its residual is within 6 dB of a loud
                # block's typical residual (a quiet syllable tail with a poor ratio is not a talker)
                dt = er + _KDT < erle and le + 512 > lmax - erle
            else:
                dt = ld > lg(es + 1) + st[_GUARD]
            if dt:
                st[_HANG] = _HANGN
                st[_DTN] += 1
                fr = st[_FROZEN] + 1
                if conv and fr == 1:
                    # undo the adaptation since before the onset: back to the older snapshot (both halves)
                    o = st[_SNAP] * L
                    o2 = L - o
                    for i in range(L):
                        v = S[o + i]
                        H[i] = v
                        S[o2 + i] = v
                    ep = 0
                if fr > _TIMEOUT:
                    conv = 0
                    erle = 0
                    fr = 0
                st[_FROZEN] = fr
            else:
                st[_FROZEN] = 0
                hang = st[_HANG]
                if hang > 0:
                    hang -= 1
                    st[_HANG] = hang
                # long-term ERLE: the mean block ratio of loud blocks only (within 12 dB of the loud level: a
                # quiet block's ratio is ruled by the residual's rounding and would lift the mean)
                if ld + 1024 > lmax:
                    if conv:
                        erle += (er - erle) >> 5
                    else:
                        erle += (er - erle) >> 3
                if conv == 0 and erle > _CONVD:
                    conv = 1
                    for i in range(L):                   # both snapshots start from the converged filter
                        v = H[i]
                        S[i] = v
                        S[L + i] = v
                    st[_GOOD] = 0
                if conv and hang == 0:
                    g = st[_GOOD] + 1
                    if g >= _SNAPN:
                        o = st[_SNAP] * L
                        for i in range(L):
                            S[o + i] = H[i]
                        st[_SNAP] ^= 1
                        g = 0
                    st[_GOOD] = g
            mu = 0
            if st[_HANG] == 0:
                mu = st[_MU] >> 1 if conv else st[_MU]       # converged: half the step, half the noise
        else:
            mu = 0
        if mu == 0:
            ep = 0
        st[_CONV] = conv
        st[_ERLE] = erle
        # residual echo suppressor
        if syy == 0:
            gn = 16384
        else:
            t = ly - le + _BETA
            if erle > 0:
                t -= erle
            gm = _GMIN if conv else _GMINU           # an unconverged filter's estimate may be the talker's
            if t >= 0:
                gn = gm
            else:
                gn = 16384 - pow2q14(t)
                if gn < gm:
                    gn = gm
        o = _BS + 3 * b
        st[o] = le
        st[o + 1] = peak
        st[o + 2] = gn
    st[_MUC] = mu
    st[_EP] = ep
    st[_ES] = es
    st[_SX] = sx


def post(E, out, st):
    """Gate, AGC and the suppressor's gain over the frame, ramped per sample; int16 LE into out."""
    B = st[_B]
    lb = st[_LB]
    flags = st[_FLAGS]
    g0 = st[_GPREV]
    for b in range(st[_NB]):
        o = _BS + 3 * b
        le = st[o]
        peak = st[o + 1]
        gn = st[o + 2]
        gg = 0
        ag = 0
        if flags != 0:
            lvl = le + lg(gn * gn) - 7168                 # after the suppressor (7168 = lg(16384 * 16384))
            nf = st[_NF]
            if lvl < nf:
                nf += (lvl - nf) >> 2
            else:
                nf += _NFUP
            st[_NF] = nf
            op = st[_OPEN]
            if lvl > nf + _OPENL:
                op = 1
                st[_HOLD] = _HOLDN
            elif op != 0 and lvl < nf + _CLOSEL:
                if st[_HOLD] > 0:
                    st[_HOLD] -= 1
                else:
                    op = 0
            st[_OPEN] = op
            if flags & _F_GATE:
                gg = st[_GG]
                if op != 0:
                    gg = 0
                elif gg > _GFLOOR:
                    gg -= _GSTEP
                    if gg < _GFLOOR:
                        gg = _GFLOOR
                st[_GG] = gg
            if flags & _F_AGC:
                ag = st[_AG]
                if op != 0 and gn >= 8192:
                    al = st[_ALVL]
                    if lvl > al:
                        al += (lvl - al) >> 2
                    else:
                        al += (lvl - al) >> 5
                    st[_ALVL] = al
                    want = st[_TGT] - al
                    if want > _AMAX:
                        want = _AMAX
                    elif want < _AMIN:
                        want = _AMIN
                    if want > ag:
                        ag += _AUP if want - ag > _AUP else want - ag
                    elif want < ag:
                        ag -= _ADOWN if ag - want > _ADOWN else ag - want
                    st[_AG] = ag
        g = (gn * (pow2q14((gg + ag) >> 1) >> 2)) >> 13
        if g > 65535:
            g = 65535
        if peak > 0:
            if g * peak > _LIM:
                g = _LIM // peak
            if g0 * peak > _LIM:
                g0 = _LIM // peak                  # a loud onset: the ramp starts limited too (4 ms look-ahead)
        n0 = b * B
        dg = g - g0
        j = 2 * n0
        for i in range(B):
            v = ((E[n0 + i] - _OFF) * (g0 + ((dg * (i + 1)) >> lb)) + 4096) >> 13
            if v > 32767:
                v = 32767
            elif v < -32767:
                v = -32767
            out[j] = v & 0xFF
            out[j + 1] = (v >> 8) & 0xFF
            j += 2
        g0 = g
    st[_GPREV] = g0


try:
    from uphone.media import aec_viper as _v
except (ImportError, SyntaxError):
    _v = None  # type: ignore[assignment]  # no viper emitter (CPython, VM): plain Python above

IMPL = "viper" if _v is not None else "python"


def _filled(code, size, v, n):
    a = array(code, bytes(size * n))              # (array * int is missing on MicroPython)
    for i in range(n):
        a[i] = v
    return a


class VoiceProc:
    """Microphone processing for one audio device: process(mic, ref, out) once per 20 ms frame, where ref is the
    frame the speaker played just before (the far-end reference; None = silence). Frames are int16 LE of
    rate // 50 samples; out may be mic. aec/agc/gate switch the stages; delay_ms is the bulk delay from the
    reference to its echo in the mic; tail_ms the filter's span after it (None: 8 ms at 8 kHz, 4 ms at 16 kHz, the
    ESP32's budget). viper=False forces the plain twin."""

    def __init__(self, rate=8000, aec=True, agc=True, gate=True, delay_ms=0, tail_ms=None, viper=None):
        if rate not in (8000, 16000):
            raise ValueError("voice: rate %d, not 8000 or 16000" % rate)
        if tail_ms is None:
            tail_ms = 8 if rate == 8000 else 4               # ~2 ms and ~4 ms of an ESP32's 20 ms (bench/echo.py)
        if not 0 <= delay_ms <= 1000 or not 2 <= tail_ms <= 256000 // rate:
            raise ValueError("voice: delay_ms 0-1000, tail_ms 2-%d (256 taps)" % (256000 // rate))
        n = rate // 50
        b = n // 5
        taps = rate // 1000 * tail_ms
        d = rate // 1000 * delay_ms
        self.rate, self.samples, self.taps, self.delay = rate, n, taps, d
        self.aec, self.agc, self.gate = bool(aec), bool(agc), bool(gate)
        st = array("i", bytes(4 * _NST))
        st[_L] = taps
        st[_B] = b
        st[_LB] = 5 if b == 32 else 6
        st[_NB] = 5
        st[_N] = n
        st[_R] = d + n
        st[_MU] = 8192                                       # 0.5
        st[_DEC] = 0 if rate == 8000 else 1                  # 16 kHz: update every 2nd sample (8000 a second)
        st[_DELTA] = taps * 16                               # a window at -54 dBFS
        st[_XON] = taps * ((100 * 100) >> 8)                 # far end over -50 dBFS in the filter's window
        st[_GUARD] = lg(32 * b // taps)                      # 12 dB, in the units of echo()'s guard test
        st[_TGT] = lg(b * ((3277 * 3277) >> 7))              # -20 dBFS RMS
        st[_FLAGS] = (_F_GATE if gate else 0) | (_F_AGC if agc else 0)
        st[_NF] = lg(b * ((328 * 328) >> 7))                 # start at -40 dBFS: falls at the first quiet block
        st[_GPREV] = _ONE13
        self.st = st
        self.X = array("i", bytes(4 * (taps + n)))
        self.H = _filled("I", 4, _C31, taps)                 # zero coefficients (2**31: h = 0)
        self.S = _filled("I", 4, _C31, 2 * taps)
        self.E = array("H", bytes(2 * n))
        self.ring = bytearray(2 * (d + n))
        self._zero = bytes(2 * n)
        k = _v if (viper is not False and _v is not None) else None
        self.impl = "viper" if k is not None else "python"
        if viper and k is None:
            raise ValueError("voice: no viper emitter on this port")
        self._delay_in = k.delay_in if k is not None else delay_in
        self._echo = k.echo if k is not None else echo
        self._load = k.load if k is not None else load
        self._post = k.post if k is not None else post

    def process(self, mic, ref, out):
        """One frame: mic (and the reference) in, the processed microphone into out; returns out."""
        st = self.st
        if self.aec:
            self._delay_in(self._zero if ref is None else ref, self.ring, self.X, st)
            self._echo(self.X, self.H, mic, self.S, self.E, st)
        else:
            self._load(mic, self.E, st)
        self._post(self.E, out, st)
        return out

    def stats(self):
        """Diagnostics (allocates; not for the frame path): long-term ERLE in dB, converged, double-talk blocks,
        AGC and gate gains in dB, speech detector state."""
        st = self.st
        db = 3.0103 / 256
        return {"erle_db": round(st[_ERLE] * db, 1), "converged": st[_CONV], "dt_blocks": st[_DTN],
                "agc_db": round(st[_AG] * db, 1), "gate_db": round(st[_GG] * db, 1), "speech": st[_OPEN]}


class MicPath:
    """The phone's microphone path around a VoiceProc: mic(buf) processes a captured frame in place before it is
    encoded, played(pcm) keeps the frame just sent to the speaker as the reference for the next mic frame (no
    frame played since the last mic frame: silence). A source with a `loopback` buffer (a codec's hardware loopback
    channel captured with the mic, e.g. the Korvo-2's ES7210 reference input, filled by its readinto) gives the
    reference instead. Nothing here allocates per frame."""

    def __init__(self, proc, src=None):
        self.proc = proc
        self.ref = bytearray(2 * proc.samples)
        self._fresh = False
        self._loop = getattr(src, "loopback", None)

    def mic(self, buf):
        ref = self._loop
        if ref is None and self._fresh:
            ref = self.ref
        self._fresh = False
        self.proc.process(buf, ref, buf)

    def played(self, pcm):
        if len(pcm) == len(self.ref):
            self.ref[:] = pcm                      # same length: copied in place
            self._fresh = True

    def reference(self):
        """What the echo canceller takes as the far-end reference: "loopback" (the device's captured channel)
        or "played" (the frames the phone wrote to the speaker)."""
        return "played" if self._loop is None else "loopback"


def mic_path(audio, rate, src=None):
    """The MicPath that config section "audio" asks for (aec, aec_delay_ms, aec_tail_ms, agc, noise_gate), or None
    when all three stages are off. aec_delay_ms -1: the audio device's own estimate (its echo_delay_ms, else 0);
    no aec_tail_ms: VoiceProc's per-rate default."""
    on = audio.get("aec", NATIVE)
    agc = audio.get("agc", NATIVE)
    gate = audio.get("noise_gate", NATIVE)
    if not (on or agc or gate):
        return None
    d = audio.get("aec_delay_ms", -1)
    if d < 0:
        d = getattr(src, "echo_delay_ms", 0)
    return MicPath(VoiceProc(rate, on, agc, gate, d, audio.get("aec_tail_ms")), src)
