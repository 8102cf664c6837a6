# uPhone: G.711 mu-law (PCMU) and A-law (PCMA), bit-exact with the ITU-T G.191 STL reference.
# Plain-Python twin of g711_viper.py; encode/decode are bound to the fastest one available.

# Memory (measured, see tests/test_g711.py): two 512-byte decode tables (code -> int16 LE) and one
# 128-byte segment table, 1152 bytes in all, at import. The viper twin runs the G.191 segment algorithm
# on those. The plain-Python path (CPython, the MicroPython VM; never the phone) builds, on first use and
# per law, a sign-magnitude encode table (mu-law 4113 bytes, A-law 2048) and split decode tables (512):
# about 40% less VM work per 20 ms frame than the per-sample segment algorithm. Sign-folded encode tables
# (mu-law 8193 bytes keyed by (x + 4) >> 3, A-law 4096 keyed by x >> 4) would save ~20% more of encode.
# Importing this module grows the MicroPython heap by about 6.8 KB, module bytecode included.
from uphone.compat import const

ULAW = const(0)
ALAW = const(1)

_NAMES = {"PCMU": ULAW, "PCMA": ALAW}


def codec_for(name):
    """RTP/SDP encoding name ("PCMU"/"PCMA", any case) -> ULAW/ALAW; ValueError otherwise."""
    law = _NAMES.get(name.upper())
    if law is None:
        raise ValueError("g711: no G.711 law for codec %r (want PCMU or PCMA)" % (name,))
    return law


def _build_bitlen():
    # _BITLEN[i] = number of significant bits of i, for i in 0..127.
    t = bytearray(128)
    for i in range(1, 128):
        t[i] = t[i >> 1] + 1
    return bytes(t)


def _ulaw_expand(code):
    # G.191 ulaw_expand.
    sign = -1 if code < 0x80 else 1
    mant = ~code
    exp = (mant >> 4) & 7
    step = 4 << (exp + 1)
    return sign * ((0x80 << exp) + step * (mant & 15) + (step >> 1) - 4 * 33)


def _alaw_expand(code):
    # G.191 alaw_expand.
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 15
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 8
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


def _build_decode(fn):
    t = bytearray(512)
    for c in range(256):
        v = fn(c) & 0xFFFF
        t[2 * c] = v & 0xFF
        t[2 * c + 1] = v >> 8
    return bytes(t)


_BITLEN = _build_bitlen()
_UDEC = _build_decode(_ulaw_expand)
_ADEC = _build_decode(_alaw_expand)


# Plain-Python fast path (CPython, the MicroPython VM; the phone runs the viper twin and never builds these):
# per law, a sign-magnitude encode table keyed by a shifted magnitude (mu-law: 4113 bytes indexed by
# (|x| + 132) >> 3, i.e. G.191's biased magnitude a >> 1, clip included; A-law: 2048 bytes indexed by |x| >> 4)
# and the decode table split into low and high bytes. Built from the G.191 algorithm below on first use.
_fast = [None, None]  # type: list


def _encode_ref(law, src, dst, n):
    # the G.191 segment algorithm, one sample at a time (builds the fast tables; twin of g711_viper.py)
    bl = _BITLEN
    j = 0
    if law == ULAW:
        for i in range(n):
            u = src[j] | (src[j + 1] << 8)
            j += 2
            if u & 0x8000:
                # negative: G.191 uses ~x = 0xFFFF - u, and leaves the sign bit clear
                a = ((0xFFFF - u) >> 2) + 33
                s = 0
            else:
                a = (u >> 2) + 33
                s = 0x80
            if a > 0x1FFF:
                a = 0x1FFF
            seg = bl[a >> 6] + 1
            dst[i] = s | ((8 - seg) << 4) | (15 - ((a >> seg) & 15))
    else:
        for i in range(n):
            u = src[j] | (src[j + 1] << 8)
            j += 2
            if u & 0x8000:
                ix = (0xFFFF - u) >> 4
                s = 0
            else:
                ix = u >> 4
                s = 0x80
            e = bl[ix >> 4]
            if e:
                ix = (e << 4) | ((ix >> (e - 1)) & 15)
            dst[i] = (ix | s) ^ 0x55


def _tables(law):
    t = _fast[law]
    if t is None:
        # encode: one representative non-negative sample per table index (every sample of an index encodes alike)
        if law == ULAW:
            size, step, base = 4113, 8, -128      # index k covers |x| in 8k-132 .. 8k-125 (clipped to 0..32767)
        else:
            size, step, base = 2048, 16, 0        # index k covers |x| in 16k .. 16k+15
        pcm = bytearray(2 * size)
        for k in range(size):
            v = step * k + base
            v = 0 if v < 0 else (32767 if v > 32767 else v)
            pcm[2 * k] = v & 0xFF
            pcm[2 * k + 1] = v >> 8
        enc = bytearray(size)
        _encode_ref(law, pcm, enc, size)
        for k in range(size):
            enc[k] &= 0x7F                        # magnitude part; the sign bit is added per sample
        d = _UDEC if law == ULAW else _ADEC
        lo = bytearray(256)
        hi = bytearray(256)
        for c in range(256):
            lo[c] = d[2 * c]
            hi[c] = d[2 * c + 1]
        t = (bytes(enc), bytes(lo), bytes(hi))
        _fast[law] = t
    return t


def encode_py(law, src, dst, n):
    """Encode n int16 LE samples from src into n G.711 bytes in dst (plain Python)."""
    t = _fast[law]
    if t is None:
        t = _tables(law)
    t = t[0]
    j = 0
    if law == ULAW:
        # G.191: a = (|x| >> 2) + 33 with |x| = ~x for negatives; the code depends on a >> 1 = (|x| + 132) >> 3
        for i in range(n):
            u = src[j] | (src[j + 1] << 8)
            j += 2
            if u & 0x8000:
                dst[i] = t[(0x10083 - u) >> 3]
            else:
                dst[i] = t[(u + 132) >> 3] | 0x80
    else:
        for i in range(n):
            u = src[j] | (src[j + 1] << 8)
            j += 2
            if u & 0x8000:
                dst[i] = t[(0xFFFF - u) >> 4]
            else:
                dst[i] = t[u >> 4] | 0x80


def decode_py(law, src, dst, n):
    """Decode n G.711 bytes from src into 2n bytes of int16 LE in dst (plain Python)."""
    t = _fast[law]
    if t is None:
        t = _tables(law)
    lo = t[1]
    hi = t[2]
    j = 0
    if len(src) == n:
        for c in src:                             # iterating a buffer needs no index and allocates nothing
            dst[j] = lo[c]
            dst[j + 1] = hi[c]
            j += 2
    else:
        for i in range(n):
            c = src[i]
            dst[j] = lo[c]
            dst[j + 1] = hi[c]
            j += 2


def linear(law, code):
    """One G.711 code -> its int16 value (for tables and tests, not per-sample loops)."""
    t = _UDEC if law == ULAW else _ADEC
    v = t[2 * code] | (t[2 * code + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


try:
    from uphone.media import g711_viper as _v
except (ImportError, SyntaxError):
    _v = None  # type: ignore[assignment]  # no viper emitter (CPython, VM): plain Python below

if _v is not None:
    def encode(law, src, dst, n):
        """Encode n int16 LE samples into n G.711 bytes (viper)."""
        if law == ULAW:
            _v.ulaw_encode(src, dst, n, _BITLEN)
        else:
            _v.alaw_encode(src, dst, n, _BITLEN)

    def decode(law, src, dst, n):
        """Decode n G.711 bytes into 2n bytes of int16 LE (viper)."""
        _v.decode(src, dst, n, _UDEC if law == ULAW else _ADEC)

    IMPL = "viper"
else:
    encode = encode_py
    decode = decode_py
    IMPL = "python"
