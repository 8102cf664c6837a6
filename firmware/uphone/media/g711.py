# uPhone: G.711 mu-law (PCMU) and A-law (PCMA), bit-exact with the ITU-T G.191 STL reference.
# Plain-Python twin of g711_viper.py; encode/decode are bound to the fastest one available.

# Memory (measured, see tests/test_g711.py): two 512-byte decode tables (code -> int16 LE) and one
# 128-byte segment table, 1152 bytes in all. A full encode table keyed by sample>>2 (mu-law, 16384
# entries) plus sample>>4 (A-law, 4096) would cost 20 KB of ESP32 heap for a small speed-up in plain
# Python and none under viper, so encoding runs the G.191 segment algorithm with the segment number
# (a bit length) looked up in the 128-entry table: no loop, no search, a handful of integer ops.
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


def encode_py(law, src, dst, n):
    """Encode n int16 LE samples from src into n G.711 bytes in dst (plain Python)."""
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


def decode_py(law, src, dst, n):
    """Decode n G.711 bytes from src into 2n bytes of int16 LE in dst (plain Python)."""
    t = _UDEC if law == ULAW else _ADEC
    j = 0
    for i in range(n):
        c = src[i] << 1
        dst[j] = t[c]
        dst[j + 1] = t[c + 1]
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
