# uPhone: RTCP (RFC 3550 6): receiver statistics (A.1, A.3, A.8), SR/RR/SDES/BYE build, peer report parse, RTT.
# Times are milliseconds passed in; the NTP-format clock is derived from them (only differences of it matter).
import struct

from uphone.compat import const, ticks_diff

SR = const(200)
RR = const(201)
SDES = const(202)
BYE = const(203)
_MIN_SEQUENTIAL = const(2)
_MAX_DROPOUT = const(3000)
_MAX_MISORDER = const(100)
_SEQ_MOD = const(0x10000)
_MASK32 = const(0xFFFFFFFF)
_MASK30 = const(0x3FFFFFFF)
_HALF30 = const(0x20000000)


def ntp_mid(now_ms):
    """The middle 32 bits of an NTP timestamp (16.16 seconds) for a millisecond clock."""
    return ((now_ms // 1000) << 16 | ((now_ms % 1000) << 16) // 1000) & _MASK32


class RecvStats:
    """Per-source receive state: RFC 3550 A.1 sequence validation, A.3 loss, A.8 interarrival jitter."""

    def __init__(self, clock=8000):
        self.clock = clock
        self.ssrc = None
        self.ssrc_hi = self.ssrc_lo = -1    # the SSRC's 16-bit halves (small ints: compared per packet)
        self.probation = _MIN_SEQUENTIAL
        self.max_seq = self.cycles = self.base_seq = self.bad_seq = 0
        self.received = self.expected_prior = self.received_prior = 0
        self.jitter16 = 0                   # jitter in timestamp units, scaled by 16 (A.8 integer form)
        self._last_arr = None
        self._last_ts = 0
        self.sr_mid = 0                     # middle 32 bits of the peer's last SR NTP time (-> LSR)
        self.sr_at = None                   # our ms clock when that SR arrived (-> DLSR)

    def init_seq(self, seq):
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = _SEQ_MOD + 1
        self.cycles = 0
        self.received = self.received_prior = self.expected_prior = 0

    def reset(self, ssrc, seq):
        """A new source: the first packet starts probation (A.1)."""
        self.ssrc = ssrc
        self.ssrc_hi = (ssrc >> 16) & 0xFFFF
        self.ssrc_lo = ssrc & 0xFFFF
        self.init_seq(seq)
        self.max_seq = (seq - 1) & 0xFFFF
        self.probation = _MIN_SEQUENTIAL
        self.jitter16 = 0
        self._last_arr = None

    def update(self, seq):
        """A.1 update_seq: True when the packet counts as valid."""
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self.init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = _MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < _MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += _SEQ_MOD     # wrapped
            self.max_seq = seq
        elif udelta <= _SEQ_MOD - _MAX_MISORDER:
            if seq == self.bad_seq:         # two sequential packets: the source restarted
                self.init_seq(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        self.received += 1
        return True

    def jitter(self, arrival_ms, ts):
        """A.8: J += (|D| - J) / 16, D = difference of transit times, in timestamp units.
        Timestamps count modulo 2**30 here (the low 30 bits, e.g. RtpInfo.ts30): every value stays a small int
        on MicroPython, and timestamp steps beyond +-2**29 (18 hours at 8 kHz) do not occur between packets."""
        ts &= _MASK30
        if self._last_arr is not None:
            d = ticks_diff(arrival_ms, self._last_arr) * self.clock // 1000
            dts = (ts - self._last_ts) & _MASK30
            if dts >= _HALF30:
                dts = dts - _MASK30 - 1     # (2**30 is not a small int on MicroPython)
            d -= dts
            if d < 0:
                d = -d
            self.jitter16 += d - ((self.jitter16 + 8) >> 4)
        self._last_arr = arrival_ms
        self._last_ts = ts

    def extended_max(self):
        return (self.cycles + self.max_seq) & _MASK32

    def expected(self):
        return self.cycles + self.max_seq - self.base_seq + 1

    def lost(self):
        """Cumulative packets lost (A.3), clamped to the 24-bit signed field."""
        lost = self.expected() - self.received
        return max(-0x800000, min(0x7FFFFF, lost))

    def interval(self):
        """A.3 fraction lost since the last call, 0..255 (1/256 units); advances the interval."""
        expected = self.expected()
        exp_int = expected - self.expected_prior
        rec_int = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_int = exp_int - rec_int
        if exp_int == 0 or lost_int <= 0:
            return 0
        return min(255, (lost_int << 8) // exp_int)

    def jitter_ts(self):
        return self.jitter16 >> 4


def _cname_len(cname):
    n = 2 + len(cname) + 1                  # item type, length, text, end-of-list null
    return (n + 3) & ~3


class Rtcp:
    """Builds our compound reports and digests the peer's. rtt_ms is None until an RR/SR answers our SR."""

    def __init__(self, ssrc, clock=8000, cname=b"uphone@0.0.0.0"):
        self.ssrc = ssrc
        self.clock = clock
        self.cname = cname[:255]
        self.stats = RecvStats(clock)
        self.rtt_ms = None
        self.peer_fraction = 0               # what the peer reports about our stream
        self.peer_lost = 0
        self.peer_jitter = 0
        self.bye = False
        self.sr_sent = 0
        # + 14: room for SRTCP's index and tag after the compound packet (RFC 3711 3.4), protected in place
        self._buf = bytearray(28 + 24 + 8 + _cname_len(self.cname) + 8 + 14)
        self.buf = self._buf
        self._mv = memoryview(self._buf)

    def build(self, now, rtp_ts, packets, octets, sender):
        """Compound SR (sender=True) or RR, plus SDES CNAME -> memoryview. One report block when we hear a source."""
        b = self._buf
        st = self.stats
        rc = 1 if (st.ssrc is not None and not st.probation) else 0
        off = 0
        if sender:
            ln = 6 + 6 * rc
            mid = ntp_mid(now)
            struct.pack_into(">BBHIIIIII", b, 0, 0x80 | rc, SR, ln, self.ssrc, (now // 1000) & _MASK32,
                             ((now % 1000) << 32) // 1000, rtp_ts & _MASK32, packets & _MASK32, octets & _MASK32)
            off = 28
            self.sr_sent = mid
        else:
            struct.pack_into(">BBHI", b, 0, 0x80 | rc, RR, 1 + 6 * rc, self.ssrc)
            off = 8
        if rc:
            lsr = dlsr = 0
            if st.sr_at is not None:
                lsr = st.sr_mid
                dlsr = (ticks_diff(now, st.sr_at) << 16) // 1000
            struct.pack_into(">IIIIII", b, off, st.ssrc, st.interval() << 24 | (st.lost() & 0xFFFFFF),
                             st.extended_max(), st.jitter_ts(), lsr, dlsr & _MASK32)
            off += 24
        return self._mv[:self._sdes(off)]

    def _sdes(self, off):
        b = self._buf
        cl = len(self.cname)
        n = 4 + _cname_len(self.cname)
        struct.pack_into(">BBHIBB", b, off, 0x81, SDES, (n + 4) // 4 - 1, self.ssrc, 1, cl)
        b[off + 10:off + 10 + cl] = self.cname
        for i in range(off + 10 + cl, off + 4 + n):
            b[i] = 0
        return off + 4 + n

    def build_bye(self, now):
        """Compound RR + SDES + BYE, to send when the session ends."""
        rr = len(self.build(now, 0, 0, 0, False))
        struct.pack_into(">BBHI", self._buf, rr, 0x81, BYE, 1, self.ssrc)
        return self._mv[:rr + 8]

    def rx(self, data, n, now):
        """Digest a compound packet from the peer. Returns a bitmask: 1 SR, 2 RR, 4 BYE."""
        seen = 0
        for kind, ssrc, body, ln in walk(data, n):
            if kind == SR and ln >= 20:
                st = self.stats
                sec, frac = struct.unpack_from(">II", data, body)
                st.sr_mid = ((sec & 0xFFFF) << 16) | (frac >> 16)
                st.sr_at = now
                self._blocks(data, body + 20, ln - 20, now)
                seen |= 1
            elif kind == RR:
                self._blocks(data, body, ln, now)
                seen |= 2
            elif kind == BYE:
                self.bye = True
                seen |= 4
        return seen

    def _blocks(self, data, off, ln, now):
        while ln >= 24:
            ssrc, fl, _ext, jit, lsr, dlsr = struct.unpack_from(">IIIIII", data, off)
            if ssrc == self.ssrc:
                self.peer_fraction = fl >> 24
                lost = fl & 0xFFFFFF
                self.peer_lost = lost - 0x1000000 if lost & 0x800000 else lost
                self.peer_jitter = jit
                if lsr:
                    rtt = (ntp_mid(now) - lsr - dlsr) & _MASK32
                    if rtt < 0x80000000:     # a negative result means clocks or fields are bogus
                        self.rtt_ms = rtt * 1000 / 65536
            off += 24
            ln -= 24


def walk(data, n):
    """Yield (pt, ssrc, body_offset, body_len) for each packet of a compound RTCP packet; stops at junk.
    body_offset points after the SSRC field; body_len is in bytes (without the padding octets)."""
    off = 0
    while off + 8 <= n:
        b0 = data[off]
        if b0 & 0xC0 != 0x80:
            return
        size = (((data[off + 2] << 8) | data[off + 3]) + 1) * 4
        if off + size > n:
            return
        end = off + size
        if b0 & 0x20:
            end -= data[off + size - 1]
        ssrc = struct.unpack_from(">I", data, off + 4)[0]
        yield data[off + 1], ssrc, off + 8, end - off - 8
        off += size


def report_blocks(data, off, ln):
    """-> list of (ssrc, fraction, cum_lost, ext_max_seq, jitter, lsr, dlsr); for tests and logs."""
    out = []
    while ln >= 24:
        ssrc, fl, ext, jit, lsr, dlsr = struct.unpack_from(">IIIIII", data, off)
        lost = fl & 0xFFFFFF
        out.append((ssrc, fl >> 24, lost - 0x1000000 if lost & 0x800000 else lost, ext, jit, lsr, dlsr))
        off += 24
        ln -= 24
    return out
