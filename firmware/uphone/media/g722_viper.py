# uPhone: G.722 64 kbit/s encoder and decoder in MicroPython viper (native code); only imported through g722.py.
# Same arithmetic as the plain-Python twin there (bit-exact with spandsp/libg722, PyPI G722), same API:
# Encoder().encode(pcm, n_samples, out) -> bytes written, Decoder().decode(data, n_bytes, out) -> samples written.

# One viper kernel, _run, does both directions (st[_MODE]): the QMF push/filter and the two sub-band ADPCM
# updates (G.722 block 4: RECONS, PARREC, UPPOL1/2, UPZERO, DELAYA, FILTEP, FILTEZ, PREDIC, plus LOGSCL/H and
# SCALEL/H) are shared code, so there is one copy of each. All state lives in one array('h') per codec (98 halfwords)
# and all tables in one module array('h') (228 halfwords), read through ptr16: no allocation per call.
#
# Word width. Viper ints are machine words: 64-bit on the x64 unix port, 32-bit on the ESP32 (Xtensa). The results
# must not depend on that, so:
# - No signed value is ever loaded through ptr32: on x64 a ptr32 load zero-extends the 32-bit word into the 64-bit
#   register (a stored -1 comes back as 4294967295), on Xtensa the word is the value. Every state word and table
#   entry fits int16 (bounds below) and is read through ptr16, whose loads zero-extend on every port (x64 movzx,
#   Xtensa l16ui). A signed halfword is sign-extended explicitly: ((x & 0xFFFF) ^ 0x8000) - 0x8000 is the same int
#   on any word of 17 bits or more. The mask only states the contract (the load already zero-extends).
# - A sign test reads bit 15 of the raw halfword ((x ^ y) & 0x8000: zero when x and y have the same sign), true for
#   any int16 value on any width, so those loads need no sign extension.
# - The QMF delay line is stored offset binary (v + 0x8000, i.e. the int16 LE pattern ^ 0x8000): its loads are then
#   the non-negative values themselves, and each filter half subtracts the bias once: its 12 coefficients sum to
#   4096, so the biased sum is the true sum + 4096 * 0x8000 = 2**27.
# - No intermediate reaches 2**31 in magnitude, so a 32-bit word never wraps and a 64-bit word gets the same int:
#   det <= 16384 (nb <= 18432 low / 22528 high: SCALEL/H shift left by at most 1), det * QM6 < 2**29, biased QMF sums
#   < 6482 * 65535 < 2**29, b * 32640 < 2**30, a1 * 32640 < 2**30 (|a1| <= 15360 + 12288), FILTEZ b * 2d <= 2**30.
#   Every constant is below 2**30, so it is a viper int immediate on the 32-bit port too (a larger literal would be
#   a Python object there, and viper arithmetic with it fails to compile for xtensawin).
# - >> on a viper int is an arithmetic shift on both ports (floor, like Python's); comparisons are signed.
import array

import micropython
from micropython import const

# Table offsets in _TAB.
_Q6 = const(0)      # QUANTL decision levels, 30
_ILN = const(30)    # low-band code words for negative el, 31
_ILP = const(61)    # ... for positive el, 31
_QM4 = const(92)    # 4-bit inverse quantiser (INVQAL), 16
_QM6 = const(108)   # 6-bit inverse quantiser (INVQBL, decoder output), 64
_QM2 = const(172)   # 2-bit high-band inverse quantiser, 4
_WLR = const(176)   # WL[RL42[il4]]: LOGSCL multiplier by 4-bit code, 16
_WHR = const(192)   # WH[RH2[ih]]: LOGSCH multiplier by 2-bit code, 4
_ILB = const(196)   # antilog table for SCALEL/SCALEH, 32

_TAB = array.array("h", (
    # _Q6
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858,
    940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919,
    # _ILN
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13,
    12, 11, 10, 9, 8, 7, 6, 5, 4,
    # _ILP
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41,
    40, 39, 38, 37, 36, 35, 34, 33, 32,
    # _QM4
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200,
    20456, 12896, 8968, 6288, 4240, 2584, 1200, 0,
    # _QM6
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192,
    -10232, -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576,
    -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704,
    14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464,
    4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
    # _QM2
    -7408, -1616, 7408, 1616,
    # _WLR (WL = -60, -30, 58, 172, 334, 538, 1198, 3042; RL42 = 0, 7, 6, 5, 4, 3, 2, 1, 7, 6, ..., 1, 0)
    -60, 3042, 1198, 538, 334, 172, 58, -30, 3042, 1198, 538, 334, 172, 58, -30, -60,
    # _WHR (WH = 0, -214, 798; RH2 = 2, 1, 2, 1)
    798, -214, 798, -214,
    # _ILB
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714,
    2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676,
    3756, 3838, 3922, 4008,
))

# State layout (halfwords of the per-codec array('h')): two bands of _BAND words (low at 0, high at _BAND), then
# the 24-tap QMF delay line kept twice (48 words, every window contiguous, offset binary), its index, and the mode.
_S = const(0)       # signal estimate (PREDIC)
_SZ = const(1)      # zero-section estimate (FILTEZ)
_R2 = const(2)      # sat(2 * r) of the previous sample's reconstructed signal (what FILTEP multiplies by a2)
_P1 = const(3)      # partial reconstructed signal history (only bit 15, the sign, is used)
_P2 = const(4)
_A1 = const(5)      # pole coefficients
_A2 = const(6)
_NB = const(7)      # log scale factor (0 .. 22528)
_DET = const(8)     # linear scale factor (8 .. 16384)
_D = const(9)       # d history as sat(2 * d) (FILTEZ's operand; same sign as d): D[1] newest, D[0] the new one
_B = const(16)      # zero coefficients b[1..6] at _B + 1 .. _B + 6
_BAND = const(24)
_X = const(48)      # QMF delay line, 48 words, offset binary
_K = const(96)      # QMF index (0, 2, .., 22)
_MODE = const(97)   # 0 encode, 1 decode
_WORDS = const(98)


@micropython.viper
def _run(src: ptr8, n: int, dst: ptr8, st: ptr16, t: ptr16):
    # n code bytes: encode reads 2n int16 LE samples from src and writes n codes to dst; decode reads n codes
    # from src and writes 2n int16 LE samples to dst (as bytes: no alignment needed for either buffer).
    dec = st[_MODE]
    base = int(st)                      # the state's address: the band and QMF views below index it by constants
    lo = ptr16(base)
    hi = ptr16(base + 2 * _BAND)
    k = st[_K]
    j = 0
    for o in range(n):
        # front end: the two QMF inputs in offset binary (decoder: the reconstructed sub-band signals; encoder:
        # two PCM samples, whose int16 LE bit pattern ^ 0x8000 is the offset-binary value)
        ilow = 0
        ihigh = 0
        dl = 0
        dh = 0
        if dec:
            code = src[o]
            ilow = code & 0x3F
            ihigh = code >> 6
            # low band: INVQBL + RECONS + LIMIT for the output, INVQAL for the predictor
            det = lo[_DET]
            rlow = (((lo[_S] & 0xFFFF) ^ 0x8000) - 0x8000) + (
                (det * (((t[_QM6 + ilow] & 0xFFFF) ^ 0x8000) - 0x8000)) >> 15)
            if rlow > 16383:
                rlow = 16383
            elif rlow < -16384:
                rlow = -16384
            dl = (det * (((t[_QM4 + (ilow >> 2)] & 0xFFFF) ^ 0x8000) - 0x8000)) >> 15
            # high band: INVQAH + RECONS + LIMIT
            dh = (hi[_DET] * (((t[_QM2 + ihigh] & 0xFFFF) ^ 0x8000) - 0x8000)) >> 15
            rhigh = (((hi[_S] & 0xFFFF) ^ 0x8000) - 0x8000) + dh
            if rhigh > 16383:
                rhigh = 16383
            elif rhigh < -16384:
                rhigh = -16384
            u0 = rlow + rhigh + 0x8000
            u1 = rlow - rhigh + 0x8000
        else:
            u0 = (src[j] | (src[j + 1] << 8)) ^ 0x8000
            u1 = (src[j + 2] | (src[j + 3] << 8)) ^ 0x8000
        # QMF push (both copies of the delay line) and the two filter halves
        k += 2
        if k >= 24:
            k = 0
        q = k + 22
        if q >= 24:
            q -= 24
        x = ptr16(base + 2 * (_X + q))
        x[0] = u0
        x[24] = u0
        x[1] = u1
        x[25] = u1
        x = ptr16(base + 2 * (_X + k))
        sa = (3 * x[0] - 11 * x[2] + 12 * x[4] + 32 * x[6] - 210 * x[8] + 951 * x[10] + 3876 * x[12]
              - 805 * x[14] + 362 * x[16] - 156 * x[18] + 53 * x[20] - 11 * x[22]) - 0x8000000
        sb = (-11 * x[1] + 53 * x[3] - 156 * x[5] + 362 * x[7] - 805 * x[9] + 3876 * x[11] + 951 * x[13]
              - 210 * x[15] + 32 * x[17] + 12 * x[19] - 11 * x[21] + 3 * x[23]) - 0x8000000
        if dec:
            # receive QMF output: two int16 LE samples
            v = sb >> 11
            if v > 32767:
                v = 32767
            elif v < -32768:
                v = -32768
            dst[j] = v & 0xFF
            dst[j + 1] = (v >> 8) & 0xFF
            v = sa >> 11
            if v > 32767:
                v = 32767
            elif v < -32768:
                v = -32768
            dst[j + 2] = v & 0xFF
            dst[j + 3] = (v >> 8) & 0xFF
        else:
            # low band: SUBTRA, QUANTL (binary search of the first level above |el|), INVQAL
            el = ((sb + sa) >> 14) - (((lo[_S] & 0xFFFF) ^ 0x8000) - 0x8000)
            if el > 32767:
                el = 32767
            elif el < -32768:
                el = -32768
            wd = el
            if el < 0:
                wd = -(el + 1)
            det = lo[_DET]
            i0 = 1
            i1 = 30
            while i0 < i1:
                m = (i0 + i1) >> 1
                if wd < ((t[_Q6 + m] * det) >> 12):
                    i1 = m
                else:
                    i0 = m + 1
            if el < 0:
                ilow = t[_ILN + i0]
            else:
                ilow = t[_ILP + i0]
            dl = (det * (((t[_QM4 + (ilow >> 2)] & 0xFFFF) ^ 0x8000) - 0x8000)) >> 15
            # high band: SUBTRA, QUANTH, INVQAH
            eh = ((sb - sa) >> 14) - (((hi[_S] & 0xFFFF) ^ 0x8000) - 0x8000)
            if eh > 32767:
                eh = 32767
            elif eh < -32768:
                eh = -32768
            wd = eh
            if eh < 0:
                wd = -(eh + 1)
            det = hi[_DET]
            if wd >= ((564 * det) >> 12):
                ihigh = 2
                if eh < 0:
                    ihigh = 0
            else:
                ihigh = 3
                if eh < 0:
                    ihigh = 1
            dh = (det * (((t[_QM2 + ihigh] & 0xFFFF) ^ 0x8000) - 0x8000)) >> 15
            dst[o] = ((ihigh << 6) | ilow) & 0xFF
        j += 4
        # both bands: scale factor adaptation, then block 4 with difference d
        bp = lo
        d = dl
        wadd = (((t[_WLR + (ilow >> 2)] & 0xFFFF) ^ 0x8000) - 0x8000)
        nbmax = 18432
        shift = 8
        for band in range(2):
            if band:
                bp = hi
                d = dh
                wadd = (((t[_WHR + ihigh] & 0xFFFF) ^ 0x8000) - 0x8000)
                nbmax = 22528
                shift = 10
            # LOGSCL/LOGSCH + SCALEL/SCALEH
            nb = ((bp[_NB] * 127) >> 7) + wadd
            if nb < 0:
                nb = 0
            elif nb > nbmax:
                nb = nbmax
            bp[_NB] = nb
            wd2 = shift - (nb >> 11)
            v = t[_ILB + ((nb >> 6) & 31)]
            if wd2 < 0:
                v = v << (0 - wd2)
            else:
                v = v >> wd2
            bp[_DET] = v << 2
            # PARREC, RECONS (with the previous sz and s)
            p0 = (((bp[_SZ] & 0xFFFF) ^ 0x8000) - 0x8000) + d
            if p0 > 32767:
                p0 = 32767
            elif p0 < -32768:
                p0 = -32768
            r0 = (((bp[_S] & 0xFFFF) ^ 0x8000) - 0x8000) + d
            if r0 > 32767:
                r0 = 32767
            elif r0 < -32768:
                r0 = -32768
            a1 = ((bp[_A1] & 0xFFFF) ^ 0x8000) - 0x8000
            diff1 = (p0 ^ bp[_P1]) & 0x8000     # 0: p0 and p1 have the same sign
            # UPPOL2
            wd1 = a1 << 2
            if wd1 > 32767:
                wd1 = 32767
            elif wd1 < -32768:
                wd1 = -32768
            w = wd1
            if diff1 == 0:
                w = 0 - wd1
            if w > 32767:
                w = 32767
            a2 = (w >> 7) + (((((bp[_A2] & 0xFFFF) ^ 0x8000) - 0x8000) * 32512) >> 15)
            if (p0 ^ bp[_P2]) & 0x8000:
                a2 -= 128
            else:
                a2 += 128
            if a2 > 12288:
                a2 = 12288
            elif a2 < -12288:
                a2 = -12288
            # UPPOL1 ((a1 * 32640) >> 15 +- 192 stays in int16: |a1| <= 27648)
            w = (a1 * 32640) >> 15
            if diff1:
                w -= 192
            else:
                w += 192
            lim = 15360 - a2
            if w > lim:
                w = lim
            elif w < 0 - lim:
                w = 0 - lim
            a1 = w
            bp[_A1] = a1
            bp[_A2] = a2
            bp[_P2] = bp[_P1]
            bp[_P1] = p0
            # UPZERO with the old history, DELAYA and FILTEZ in one pass over taps 6..1: tap i's new coefficient is
            # final once computed and its new history value is the old one of tap i - 1 (D[0] holds the new d).
            # (b * 32640) >> 15 +- 128 stays in int16 for any int16 b, so UPZERO's saturation never acts.
            w = d + d
            if w > 32767:
                w = 32767
            elif w < -32768:
                w = -32768
            bp[_D] = w
            g = 128
            if d == 0:
                g = 0
            sz = 0
            i = 6
            while i > 0:
                w = ((((bp[_B + i] & 0xFFFF) ^ 0x8000) - 0x8000) * 32640) >> 15
                if (bp[_D + i] ^ d) & 0x8000:
                    w -= g
                else:
                    w += g
                bp[_B + i] = w
                e = ((bp[_D + i - 1] & 0xFFFF) ^ 0x8000) - 0x8000
                bp[_D + i] = e
                sz += (w * e) >> 15
                i -= 1
            if sz > 32767:
                sz = 32767
            elif sz < -32768:
                sz = -32768
            bp[_SZ] = sz
            # FILTEP: a1 * sat(2 r0) + a2 * sat(2 r2), r2 being the previous sample's r0
            w = r0 + r0
            if w > 32767:
                w = 32767
            elif w < -32768:
                w = -32768
            sp = ((a1 * w) >> 15) + ((a2 * (((bp[_R2] & 0xFFFF) ^ 0x8000) - 0x8000)) >> 15)
            bp[_R2] = w
            if sp > 32767:
                sp = 32767
            elif sp < -32768:
                sp = -32768
            # PREDIC
            sz += sp
            if sz > 32767:
                sz = 32767
            elif sz < -32768:
                sz = -32768
            bp[_S] = sz
    st[_K] = k


def _state(mode):
    st = array.array("h", bytes(2 * _WORDS))
    st[_DET] = 32
    st[_BAND + _DET] = 8
    for i in range(_X, _X + 48):
        st[i] = -0x8000                 # an empty delay line: zeros in offset binary (0x8000 as int16)
    st[_MODE] = mode
    return st


class Encoder:
    """16 kHz int16 LE PCM -> G.722 64 kbit/s, one byte per two samples (viper)."""

    def __init__(self):
        self._st = _state(0)

    def encode(self, pcm, n_samples, out):
        """Encode n_samples (even) from pcm (int16 LE bytes) into out; returns bytes written."""
        n = n_samples >> 1
        _run(pcm, n, out, self._st, _TAB)
        return n


class Decoder:
    """G.722 64 kbit/s -> 16 kHz int16 LE PCM, two samples per byte (viper)."""

    def __init__(self):
        self._st = _state(1)

    def decode(self, data, n_bytes, out):
        """Decode n_bytes of data into out (4 bytes per input byte); returns samples written."""
        _run(data, n_bytes, out, self._st, _TAB)
        return n_bytes << 1
