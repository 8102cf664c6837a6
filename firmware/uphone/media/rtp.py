# uPhone: RTP (RFC 3550) packetizer and parser, sans-I/O.
# One preallocated packet buffer per sender; the codec encodes straight into RtpSender.payload, no copy, no alloc.
from uphone.compat import const

HDR = const(12)
_MASK32 = const(0xFFFFFFFF)
_seed = [0]


def rand32():
    """32 random bits: hardware RNG (os.urandom) when there is one, else a ticks-seeded xorshift."""
    try:
        import os
        b = os.urandom(4)
        return int.from_bytes(b, "big")
    except (ImportError, AttributeError, OSError):
        pass
    try:
        import random
        return random.getrandbits(16) << 16 | random.getrandbits(16)
    except (ImportError, AttributeError, OSError):
        pass
    x = _seed[0]
    if x == 0:
        from uphone.compat import ticks_ms
        # ticks_ms is an int (the stubs give it a type of its own)
        x = (ticks_ms() * 2654435761 + id(_seed)) & _MASK32 or 0x9E3779B9  # type: ignore[operator]
    x ^= (x << 13) & _MASK32
    x ^= x >> 17
    x ^= (x << 5) & _MASK32
    _seed[0] = x
    return x


class RtpSender:
    """Builds RTP packets in one preallocated buffer. seq, ts and ssrc start random (RFC 3550 5.1).
    Header fields are written byte by byte: a 32-bit timestamp or SSRC is a heap-allocated big int on
    MicroPython (small ints stop at 2**30), so the per-frame path (build_at) takes the timestamp as two
    16-bit halves and the SSRC's bytes are written once, not per packet."""

    def __init__(self, pt, ssrc=None, clock=8000, max_payload=640, buf=None):
        self.pt = pt
        self.ssrc = (rand32() if ssrc is None else ssrc) & _MASK32
        self.clock = clock
        self.seq = rand32() & 0xFFFF
        self.ts = rand32()
        self.packets = 0
        self.octets = 0
        self._buf = buf if buf is not None else bytearray(HDR + max_payload)     # buf: a line's, reserved at boot
        self._mv = memoryview(self._buf)
        self.payload = self._mv[HDR:]      # encode into this to skip the copy in build()
        self._view = self._mv
        self._vn = -1
        self._ssrc_w = None                 # the SSRC object whose bytes are in the buffer

    def build(self, payload_mv, n, ts_step, marker=False, pt=None, ts=None):
        """One packet carrying n payload bytes -> memoryview into the sender's buffer (valid until the next build).
        ts=None: stamp self.ts and advance it by ts_step; else stamp ts (DTMF events keep their start ts)."""
        if ts is None:
            ts = self.ts
            self.ts = (ts + ts_step) & _MASK32
        b = self._buf
        if payload_mv is not self.payload:
            if len(payload_mv) == n:
                self._mv[HDR:HDR + n] = payload_mv
            else:
                b[HDR:HDR + n] = payload_mv[:n]
        ts &= _MASK32
        return self.build_at(n, marker, ts >> 16, ts & 0xFFFF, self.pt if pt is None else pt)

    def build_at(self, n, marker, ts_hi, ts_lo, pt=-1):
        """The allocation-free build: the payload is already in self.payload[:n]; the timestamp comes as its
        high and low 16 bits; self.ts is left alone. -> memoryview of the packet (valid until the next build)."""
        b = self._buf
        if pt < 0:
            pt = self.pt
        b[0] = 0x80
        b[1] = (0x80 | (pt & 0x7F)) if marker else (pt & 0x7F)
        seq = self.seq
        b[2] = seq >> 8
        b[3] = seq & 0xFF
        b[4] = ts_hi >> 8
        b[5] = ts_hi & 0xFF
        b[6] = ts_lo >> 8
        b[7] = ts_lo & 0xFF
        if self.ssrc is not self._ssrc_w:
            ss = self.ssrc & _MASK32
            b[8] = ss >> 24
            b[9] = (ss >> 16) & 0xFF
            b[10] = (ss >> 8) & 0xFF
            b[11] = ss & 0xFF
            self._ssrc_w = self.ssrc
        self.seq = (seq + 1) & 0xFFFF
        self.packets += 1
        self.octets += n
        if n != self._vn:                   # same size every frame: the view is reused, no allocation
            self._view = self._mv[:HDR + n]
            self._vn = n
        return self._view


class RtpInfo:
    """Allocation-free parser: parse() fills the attributes and returns True for a usable RTP packet.
    The 32-bit fields are kept in small-int pieces (ts_hi: top 2 bits, ts30: low 30 bits; ssrc_hi/ssrc_lo:
    16 bits each); the ts and ssrc properties put them together (a big int, so not on the per-packet path)."""

    def __init__(self):
        self.pt = self.seq = self.ts_hi = self.ts30 = self.ssrc_hi = self.ssrc_lo = self.offset = self.length = 0
        self.marker = False

    @property
    def ts(self):
        return (self.ts_hi << 30) | self.ts30

    @property
    def ssrc(self):
        return (self.ssrc_hi << 16) | self.ssrc_lo

    def parse(self, data, n):
        if n < HDR:
            return False
        b0 = data[0]
        if b0 & 0xC0 != 0x80:
            return False                    # not version 2
        b1 = data[1]
        if 192 <= b1 <= 223:
            return False                    # RTCP multiplexed on the RTP port (RFC 5761 4)
        off = HDR + (b0 & 0x0F) * 4        # CSRC list
        if b0 & 0x10:                       # header extension: 16-bit profile, 16-bit length in words
            if off + 4 > n:
                return False
            off += 4 + ((data[off + 2] << 8) | data[off + 3]) * 4
        end = n
        if b0 & 0x20:                       # padding: the last octet counts the padding octets
            pad = data[n - 1]
            if pad == 0:
                return False
            end = n - pad
        if off > end:
            return False
        self.seq = (data[2] << 8) | data[3]
        t = data[4]
        self.ts_hi = t >> 6
        self.ts30 = ((t & 0x3F) << 24) | (data[5] << 16) | (data[6] << 8) | data[7]
        self.ssrc_hi = (data[8] << 8) | data[9]
        self.ssrc_lo = (data[10] << 8) | data[11]
        self.pt = b1 & 0x7F
        self.marker = bool(b1 & 0x80)
        self.offset = off
        self.length = end - off
        return True


_info = RtpInfo()


def parse(data, n):
    """-> (pt, seq, ts, ssrc, marker, payload_offset, payload_len), or None when data is not usable RTP."""
    r = _info
    if not r.parse(data, n):
        return None
    return (r.pt, r.seq, r.ts, r.ssrc, r.marker, r.offset, r.length)


def seq_diff(a, b):
    """a - b in the 16-bit sequence space, in -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_diff(a, b):
    """a - b in the 32-bit timestamp space, signed."""
    return ((a - b + 0x80000000) & _MASK32) - 0x80000000
