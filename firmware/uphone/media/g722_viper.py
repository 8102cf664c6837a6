# uPhone: G.722 64 kbit/s encoder and decoder in MicroPython viper (native code); only imported through g722.py.
# Same arithmetic as the plain-Python twin there (bit-exact with spandsp/libg722, PyPI G722), same API:
# Encoder().encode(pcm, n_samples, out) -> bytes written, Decoder().decode(data, n_bytes, out) -> samples written.

# One viper kernel, _run, does both directions (st[_MODE]): the QMF push/filter and the two sub-band ADPCM
# updates (G.722 block 4: RECONS, PARREC, UPPOL1/2, UPZERO, DELAYA, FILTEP, FILTEZ, PREDIC, plus LOGSCL/H and
# SCALEL/H) are shared code, so there is one copy of each. All state lives in one array('i') per codec (97 words)
# and all tables in one module array('i') (228 words), both read through ptr32: no allocation per call.
# Overflow: every intermediate fits a signed 32-bit word (largest: det * QM6 < 2**30, QMF sums < 2**28,
# coefficient * 32640 < 2**30), and every value the reference saturates is saturated here at the same point.
import array
import sys

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

_TAB = array.array("i", (
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

# What _run's sign restoration needs: 2**31 where a viper int is wider than 32 bits, else 0 (see _run).
_SX = 0x80000000 if sys.maxsize > 0x7FFFFFFF else 0

# State layout (words of the per-codec array('i')): two bands of _BAND words (low at 0, high at _BAND),
# then the 24-tap QMF delay line kept twice (48 words, every window contiguous), its index, and the mode.
_S = const(0)       # signal estimate (PREDIC)
_SZ = const(1)      # zero-section estimate (FILTEZ)
_R1 = const(2)      # reconstructed signal history
_R2 = const(3)
_P1 = const(4)      # partial reconstructed signal history (sign only is used)
_P2 = const(5)
_A1 = const(6)      # pole coefficients
_A2 = const(7)
_NB = const(8)      # log scale factor
_DET = const(9)     # linear scale factor
_D = const(10)      # quantised difference history d[0..6], d[1] = newest (d[0] stays 0)
_B = const(17)      # zero coefficients b[0..6] (b[0] unused)
_BAND = const(24)
_X = const(48)      # QMF delay line, 48 words
_K = const(96)      # QMF index (0, 2, .., 22)
_MODE = const(97)   # 0 encode, 1 decode
_WORDS = const(98)


@micropython.viper
def _run(src: ptr8, n: int, dst: ptr8, st: ptr32, t: ptr32, sx: int):
    # n code bytes: encode reads 2n int16 LE samples from src and writes n codes to dst; decode reads n codes
    # from src and writes 2n int16 LE samples to dst (as bytes: no alignment needed for either buffer).
    # sx: a ptr32 load is zero-extended where the machine word is wider than 32 bits (x64: the unix port) and
    # is the word itself on a 32-bit one (Xtensa). Each signed word read goes through (w ^ sx) - sx: with sx = 2**31
    # that restores the sign on a 64-bit machine; sx is 0 on a 32-bit one, where it changes nothing (_SX).
    # Fields and tables that are never negative (_DET, _NB, _K, _MODE, _Q6, _ILN, _ILP, _ILB) are read plainly.
    dec = st[_MODE]
    j = 0
    for o in range(n):
        # front end: the two QMF inputs (decoder: reconstructed sub-band signals; encoder: two PCM samples)
        ilow = 0
        ihigh = 0
        dl = 0
        dh = 0
        rlow = 0
        if dec:
            code = src[o]
            il6 = code & 0x3F
            ihigh = code >> 6
            # low band: INVQBL + RECONS + LIMIT for the output, INVQAL for the predictor
            det = st[_DET]
            rlow = ((st[_S] ^ sx) - sx) + ((det * ((t[_QM6 + il6] ^ sx) - sx)) >> 15)
            if rlow > 16383:
                rlow = 16383
            elif rlow < -16384:
                rlow = -16384
            ilow = il6
            dl = (det * ((t[_QM4 + (il6 >> 2)] ^ sx) - sx)) >> 15
            # high band: INVQAH + RECONS + LIMIT
            dh = (st[_BAND + _DET] * ((t[_QM2 + ihigh] ^ sx) - sx)) >> 15
            rhigh = ((st[_BAND + _S] ^ sx) - sx) + dh
            if rhigh > 16383:
                rhigh = 16383
            elif rhigh < -16384:
                rhigh = -16384
            v0 = rlow + rhigh
            v1 = rlow - rhigh
        else:
            v0 = src[j] | (src[j + 1] << 8)
            v1 = src[j + 2] | (src[j + 3] << 8)
            if v0 & 0x8000:
                v0 -= 0x10000
            if v1 & 0x8000:
                v1 -= 0x10000
        # QMF push (both copies of the delay line) and the two filter halves
        k = st[_K] + 2
        if k >= 24:
            k = 0
        st[_K] = k
        q = k + 22
        if q >= 24:
            q -= 24
        q += _X
        st[q] = v0
        st[q + 24] = v0
        st[q + 1] = v1
        st[q + 25] = v1
        q = _X + k
        sa = (3 * ((st[q] ^ sx) - sx) - 11 * ((st[q + 2] ^ sx) - sx) + 12 * ((st[q + 4] ^ sx) - sx)
              + 32 * ((st[q + 6] ^ sx) - sx) - 210 * ((st[q + 8] ^ sx) - sx) + 951 * ((st[q + 10] ^ sx) - sx)
              + 3876 * ((st[q + 12] ^ sx) - sx) - 805 * ((st[q + 14] ^ sx) - sx) + 362 * ((st[q + 16] ^ sx) - sx)
              - 156 * ((st[q + 18] ^ sx) - sx) + 53 * ((st[q + 20] ^ sx) - sx) - 11 * ((st[q + 22] ^ sx) - sx))
        sb = (-11 * ((st[q + 1] ^ sx) - sx) + 53 * ((st[q + 3] ^ sx) - sx) - 156 * ((st[q + 5] ^ sx) - sx)
              + 362 * ((st[q + 7] ^ sx) - sx) - 805 * ((st[q + 9] ^ sx) - sx) + 3876 * ((st[q + 11] ^ sx) - sx)
              + 951 * ((st[q + 13] ^ sx) - sx) - 210 * ((st[q + 15] ^ sx) - sx) + 32 * ((st[q + 17] ^ sx) - sx)
              + 12 * ((st[q + 19] ^ sx) - sx) - 11 * ((st[q + 21] ^ sx) - sx) + 3 * ((st[q + 23] ^ sx) - sx))
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
            el = ((sb + sa) >> 14) - ((st[_S] ^ sx) - sx)
            if el > 32767:
                el = 32767
            elif el < -32768:
                el = -32768
            wd = el
            if el < 0:
                wd = -(el + 1)
            det = st[_DET]
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
            dl = (det * ((t[_QM4 + (ilow >> 2)] ^ sx) - sx)) >> 15
            # high band: SUBTRA, QUANTH, INVQAH
            eh = ((sb - sa) >> 14) - ((st[_BAND + _S] ^ sx) - sx)
            if eh > 32767:
                eh = 32767
            elif eh < -32768:
                eh = -32768
            wd = eh
            if eh < 0:
                wd = -(eh + 1)
            det = st[_BAND + _DET]
            if wd >= ((564 * det) >> 12):
                ihigh = 2
                if eh < 0:
                    ihigh = 0
            else:
                ihigh = 3
                if eh < 0:
                    ihigh = 1
            dh = (det * ((t[_QM2 + ihigh] ^ sx) - sx)) >> 15
            dst[o] = ((ihigh << 6) | ilow) & 0xFF
        j += 4
        # both bands: scale factor adaptation, then block 4 with difference d
        for band in range(2):
            b = 0
            d = dl
            wadd = ((t[_WLR + (ilow >> 2)] ^ sx) - sx)
            nbmax = 18432
            shift = 8
            if band:
                b = _BAND
                d = dh
                wadd = ((t[_WHR + ihigh] ^ sx) - sx)
                nbmax = 22528
                shift = 10
            # LOGSCL/LOGSCH + SCALEL/SCALEH
            nb = ((st[b + _NB] * 127) >> 7) + wadd
            if nb < 0:
                nb = 0
            elif nb > nbmax:
                nb = nbmax
            st[b + _NB] = nb
            wd2 = shift - (nb >> 11)
            v = t[_ILB + ((nb >> 6) & 31)]
            if wd2 < 0:
                v = v << (0 - wd2)
            else:
                v = v >> wd2
            st[b + _DET] = v << 2
            # PARREC, RECONS
            p0 = ((st[b + _SZ] ^ sx) - sx) + d
            if p0 > 32767:
                p0 = 32767
            elif p0 < -32768:
                p0 = -32768
            r0 = ((st[b + _S] ^ sx) - sx) + d
            if r0 > 32767:
                r0 = 32767
            elif r0 < -32768:
                r0 = -32768
            sg0 = p0 >> 15
            sg1 = ((st[b + _P1] ^ sx) - sx) >> 15
            a1 = ((st[b + _A1] ^ sx) - sx)
            # UPPOL2
            wd1 = a1 << 2
            if wd1 > 32767:
                wd1 = 32767
            elif wd1 < -32768:
                wd1 = -32768
            w = wd1
            if sg0 == sg1:
                w = 0 - wd1
            if w > 32767:
                w = 32767
            a2 = (w >> 7) + ((((st[b + _A2] ^ sx) - sx) * 32512) >> 15)
            if sg0 == (((st[b + _P2] ^ sx) - sx) >> 15):
                a2 += 128
            else:
                a2 -= 128
            if a2 > 12288:
                a2 = 12288
            elif a2 < -12288:
                a2 = -12288
            # UPPOL1
            w = (a1 * 32640) >> 15
            if sg0 == sg1:
                w += 192
            else:
                w -= 192
            if w > 32767:
                w = 32767
            elif w < -32768:
                w = -32768
            lim = 15360 - a2
            if w > lim:
                w = lim
            elif w < 0 - lim:
                w = 0 - lim
            a1 = w
            # UPZERO with the old history, then DELAYA
            g = 128
            if d == 0:
                g = 0
            sgd = d >> 15
            i = 6
            while i > 0:
                w = (((st[b + _B + i] ^ sx) - sx) * 32640) >> 15
                if (((st[b + _D + i] ^ sx) - sx) >> 15) == sgd:
                    w += g
                else:
                    w -= g
                if w > 32767:
                    w = 32767
                elif w < -32768:
                    w = -32768
                st[b + _B + i] = w
                st[b + _D + i] = ((st[b + _D + i - 1] ^ sx) - sx)
                i -= 1
            st[b + _D + 1] = d
            r2 = ((st[b + _R1] ^ sx) - sx)
            st[b + _R2] = r2
            st[b + _R1] = r0
            st[b + _P2] = ((st[b + _P1] ^ sx) - sx)
            st[b + _P1] = p0
            st[b + _A1] = a1
            st[b + _A2] = a2
            # FILTEP
            w = r0 + r0
            if w > 32767:
                w = 32767
            elif w < -32768:
                w = -32768
            sp = (a1 * w) >> 15
            w = r2 + r2
            if w > 32767:
                w = 32767
            elif w < -32768:
                w = -32768
            sp += (a2 * w) >> 15
            if sp > 32767:
                sp = 32767
            elif sp < -32768:
                sp = -32768
            # FILTEZ
            sz = 0
            i = 1
            while i < 7:
                w = ((st[b + _D + i] ^ sx) - sx) << 1
                if w > 32767:
                    w = 32767
                elif w < -32768:
                    w = -32768
                sz += (((st[b + _B + i] ^ sx) - sx) * w) >> 15
                i += 1
            if sz > 32767:
                sz = 32767
            elif sz < -32768:
                sz = -32768
            st[b + _SZ] = sz
            # PREDIC
            sz += sp
            if sz > 32767:
                sz = 32767
            elif sz < -32768:
                sz = -32768
            st[b + _S] = sz


def _state(mode):
    st = array.array("i", bytes(4 * _WORDS))
    st[_DET] = 32
    st[_BAND + _DET] = 8
    st[_MODE] = mode
    return st


class Encoder:
    """16 kHz int16 LE PCM -> G.722 64 kbit/s, one byte per two samples (viper)."""

    def __init__(self):
        self._st = _state(0)

    def encode(self, pcm, n_samples, out):
        """Encode n_samples (even) from pcm (int16 LE bytes) into out; returns bytes written."""
        n = n_samples >> 1
        _run(pcm, n, out, self._st, _TAB, _SX)
        return n


class Decoder:
    """G.722 64 kbit/s -> 16 kHz int16 LE PCM, two samples per byte (viper)."""

    def __init__(self):
        self._st = _state(1)

    def decode(self, data, n_bytes, out):
        """Decode n_bytes of data into out (4 bytes per input byte); returns samples written."""
        _run(data, n_bytes, out, self._st, _TAB, _SX)
        return n_bytes << 1
