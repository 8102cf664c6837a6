# uPhone: ITU-T G.722 wideband codec at 64 kbit/s (QMF band split + two ADPCM sub-bands), plain Python.
# Bit-exact with the spandsp/libg722 arithmetic (PyPI G722); encode/decode write into caller buffers.
# Plain-Python twin of g722_viper.py: Encoder/Decoder are bound to the viper classes when the port has a native
# emitter (the phone), else to EncoderPy/DecoderPy below (CPython, the MicroPython VM); IMPL says which.

# Structure follows the block names of G.722 section 6: QUANTL/QUANTH (quantisers), INVQAL/INVQAH
# (inverse quantisers), LOGSCL/LOGSCH + SCALEL/SCALEH (scale factor adaptation) and block 4
# (RECONS, PARREC, UPPOL1/2, UPZERO, DELAYA, FILTEP, FILTEZ, PREDIC), shared by both bands.
# All state is small ints (< 2**30): nothing is allocated per sample on MicroPython.

# QUANTL decision levels (6-bit low band), indexed 1..29, and the code words for each interval.
_Q6 = (0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858,
       940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919)
_ILN = (0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13,
        12, 11, 10, 9, 8, 7, 6, 5, 4)
_ILP = (0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41,
        40, 39, 38, 37, 36, 35, 34, 33, 32)
# Inverse quantiser outputs: 4-bit (predictor feedback), 6-bit (decoder output), 2-bit high band.
_QM4 = (0, -20456, -12896, -8968, -6288, -4240, -2584, -1200,
        20456, 12896, 8968, 6288, 4240, 2584, 1200, 0)
_QM6 = (-136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192,
        -10232, -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576,
        -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704,
        14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464,
        4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136)
_QM2 = (-7408, -1616, 7408, 1616)
# Log scale factor multipliers (low band by 4-bit magnitude, high band by 2-bit code).
_RL42 = (0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0)
_WL = (-60, -30, 58, 172, 334, 538, 1198, 3042)
_RH2 = (2, 1, 2, 1)
_WH = (0, -214, 798)
# Antilog table for SCALEL/SCALEH.
_ILB = (2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714,
        2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676,
        3756, 3838, 3922, 4008)


def _sat(x):
    if x > 32767:
        return 32767
    if x < -32768:
        return -32768
    return x


def _scale(nb, shift):
    # SCALEL (shift 8) / SCALEH (shift 10): log scale factor -> linear step size.
    wd2 = shift - (nb >> 11)
    v = _ILB[(nb >> 6) & 31]
    v = (v << -wd2) if wd2 < 0 else (v >> wd2)
    return v << 2


def _qmf_a(x, k):
    # sum of x[k+2i]*h[i], h = the 12 distinct QMF coefficients (G.722 table 11, scaled)
    return (3 * x[k] - 11 * x[k + 2] + 12 * x[k + 4] + 32 * x[k + 6] - 210 * x[k + 8]
            + 951 * x[k + 10] + 3876 * x[k + 12] - 805 * x[k + 14] + 362 * x[k + 16]
            - 156 * x[k + 18] + 53 * x[k + 20] - 11 * x[k + 22])


def _qmf_b(x, k):
    # sum of x[k+2i+1]*h[11-i]
    return (-11 * x[k + 1] + 53 * x[k + 3] - 156 * x[k + 5] + 362 * x[k + 7] - 805 * x[k + 9]
            + 3876 * x[k + 11] + 951 * x[k + 13] - 210 * x[k + 15] + 32 * x[k + 17]
            + 12 * x[k + 19] - 11 * x[k + 21] + 3 * x[k + 23])


class _Band:
    """ADPCM state of one sub-band: pole/zero predictor, its history and the scale factor."""

    def __init__(self, det):
        self.s = 0          # signal estimate (PREDIC)
        self.sz = 0         # zero-section estimate (FILTEZ)
        self.r1 = self.r2 = 0   # reconstructed signal history
        self.p1 = self.p2 = 0   # partial reconstructed signal history (sign only is used)
        self.a1 = self.a2 = 0   # pole coefficients
        self.d = [0] * 7    # quantised difference history, d[1] = newest
        self.b = [0] * 7    # zero coefficients b[1..6]
        self.nb = 0         # log scale factor
        self.det = det      # linear scale factor

    def update(self, d):
        """Block 4: reconstruct, adapt the predictor with difference d, and predict the next s."""
        p0 = _sat(self.sz + d)                           # PARREC
        r0 = _sat(self.s + d)                            # RECONS
        sg0 = p0 >> 15
        sg1 = self.p1 >> 15
        a1 = self.a1
        # UPPOL2
        wd1 = _sat(a1 << 2)
        wd2 = -wd1 if sg0 == sg1 else wd1
        if wd2 > 32767:
            wd2 = 32767
        a2 = (wd2 >> 7) + (128 if sg0 == (self.p2 >> 15) else -128) + ((self.a2 * 32512) >> 15)
        if a2 > 12288:
            a2 = 12288
        elif a2 < -12288:
            a2 = -12288
        # UPPOL1
        a1 = _sat((192 if sg0 == sg1 else -192) + ((a1 * 32640) >> 15))
        lim = 15360 - a2
        if a1 > lim:
            a1 = lim
        elif a1 < -lim:
            a1 = -lim
        # UPZERO with the old history, then DELAYA
        dh = self.d
        b = self.b
        g = 0 if d == 0 else 128
        sgd = d >> 15
        for i in range(6, 0, -1):
            w = (b[i] * 32640) >> 15
            b[i] = _sat((w + g) if (dh[i] >> 15) == sgd else (w - g))
            dh[i] = dh[i - 1]
        dh[1] = d
        self.r2 = self.r1
        self.r1 = r0
        self.p2 = self.p1
        self.p1 = p0
        self.a1 = a1
        self.a2 = a2
        # FILTEP
        sp = _sat(((a1 * _sat(r0 + r0)) >> 15) + ((a2 * _sat(self.r2 + self.r2)) >> 15))
        # FILTEZ
        sz = 0
        for i in range(1, 7):
            sz += (b[i] * _sat(dh[i] + dh[i])) >> 15
        sz = _sat(sz)
        self.sz = sz
        self.s = _sat(sp + sz)                           # PREDIC

    def adapt_low(self, il4):
        # LOGSCL + SCALEL
        nb = ((self.nb * 127) >> 7) + _WL[_RL42[il4]]
        if nb < 0:
            nb = 0
        elif nb > 18432:
            nb = 18432
        self.nb = nb
        self.det = _scale(nb, 8)

    def adapt_high(self, ih):
        # LOGSCH + SCALEH
        nb = ((self.nb * 127) >> 7) + _WH[_RH2[ih]]
        if nb < 0:
            nb = 0
        elif nb > 22528:
            nb = 22528
        self.nb = nb
        self.det = _scale(nb, 10)


class _Qmf:
    """24-tap QMF delay line kept twice in a 48-slot list, so every window is contiguous."""

    def __init__(self):
        self.x = [0] * 48
        self.k = 0

    def push(self, v0, v1):
        k = self.k + 2
        if k >= 24:
            k = 0
        self.k = k
        x = self.x
        j = k + 22
        if j >= 24:
            j -= 24
        x[j] = x[j + 24] = v0
        j += 1
        x[j] = x[j + 24] = v1
        return k


class EncoderPy:
    """16 kHz int16 LE PCM -> G.722 64 kbit/s, one byte per two samples."""

    def __init__(self):
        self.lo = _Band(32)
        self.hi = _Band(8)
        self.qmf = _Qmf()

    def encode(self, pcm, n_samples, out):
        """Encode n_samples (even) from pcm (int16 LE bytes) into out; returns bytes written."""
        lo = self.lo
        hi = self.hi
        qmf = self.qmf
        x = qmf.x
        nbytes = n_samples >> 1
        j = 0
        for o in range(nbytes):
            v0 = pcm[j] | (pcm[j + 1] << 8)
            v1 = pcm[j + 2] | (pcm[j + 3] << 8)
            j += 4
            if v0 & 0x8000:
                v0 -= 0x10000
            if v1 & 0x8000:
                v1 -= 0x10000
            k = qmf.push(v0, v1)
            sa = _qmf_a(x, k)
            sb = _qmf_b(x, k)
            # low band: SUBTRA, QUANTL (binary search of the first level above |el|)
            el = _sat(((sb + sa) >> 14) - lo.s)
            wd = el if el >= 0 else -(el + 1)
            det = lo.det
            i0 = 1
            i1 = 30
            while i0 < i1:
                m = (i0 + i1) >> 1
                if wd < (_Q6[m] * det) >> 12:
                    i1 = m
                else:
                    i0 = m + 1
            ilow = _ILN[i0] if el < 0 else _ILP[i0]
            ril = ilow >> 2
            dlow = (det * _QM4[ril]) >> 15              # INVQAL
            lo.adapt_low(ril)
            lo.update(dlow)
            # high band: SUBTRA, QUANTH, INVQAH
            eh = _sat(((sb - sa) >> 14) - hi.s)
            wd = eh if eh >= 0 else -(eh + 1)
            det = hi.det
            if wd >= (564 * det) >> 12:
                ihigh = 0 if eh < 0 else 2
            else:
                ihigh = 1 if eh < 0 else 3
            dhigh = (det * _QM2[ihigh]) >> 15
            hi.adapt_high(ihigh)
            hi.update(dhigh)
            out[o] = (ihigh << 6) | ilow
        return nbytes


class DecoderPy:
    """G.722 64 kbit/s -> 16 kHz int16 LE PCM, two samples per byte."""

    def __init__(self):
        self.lo = _Band(32)
        self.hi = _Band(8)
        self.qmf = _Qmf()

    def decode(self, data, n_bytes, out):
        """Decode n_bytes of data into out (4 bytes per input byte); returns samples written."""
        lo = self.lo
        hi = self.hi
        qmf = self.qmf
        x = qmf.x
        j = 0
        for i in range(n_bytes):
            code = data[i]
            il6 = code & 0x3F
            ihigh = code >> 6
            # low band: INVQBL + RECONS + LIMIT for the output, INVQAL for the predictor
            det = lo.det
            rlow = lo.s + ((det * _QM6[il6]) >> 15)
            if rlow > 16383:
                rlow = 16383
            elif rlow < -16384:
                rlow = -16384
            ril = il6 >> 2
            dlow = (det * _QM4[ril]) >> 15
            lo.adapt_low(ril)
            lo.update(dlow)
            # high band: INVQAH + RECONS + LIMIT
            dhigh = (hi.det * _QM2[ihigh]) >> 15
            rhigh = hi.s + dhigh
            if rhigh > 16383:
                rhigh = 16383
            elif rhigh < -16384:
                rhigh = -16384
            hi.adapt_high(ihigh)
            hi.update(dhigh)
            # receive QMF
            k = qmf.push(rlow + rhigh, rlow - rhigh)
            v = _sat(_qmf_b(x, k) >> 11) & 0xFFFF
            out[j] = v & 0xFF
            out[j + 1] = v >> 8
            v = _sat(_qmf_a(x, k) >> 11) & 0xFFFF
            out[j + 2] = v & 0xFF
            out[j + 3] = v >> 8
            j += 4
        return n_bytes << 1


try:
    from uphone.media import g722_viper as _v
except (ImportError, SyntaxError):
    _v = None  # type: ignore[assignment]  # no viper emitter (CPython, VM): plain Python above

if _v is not None:
    Encoder = _v.Encoder
    Decoder = _v.Decoder
    IMPL = "viper"
else:
    Encoder = EncoderPy  # type: ignore[misc,assignment]
    Decoder = DecoderPy  # type: ignore[misc,assignment]
    IMPL = "python"
