# Tests for uphone.media.rtp (RFC 3550 packetizer/parser) and uphone.media.rtcp (A.1/A.3/A.8 statistics, SR/RR, RTT).
# All arithmetic is checked against values worked out by hand or by the RFC's reference formulas in floating point.
import struct

from uphone.media import rtcp, rtp


def test_build_parse_round_trip_and_wraps():
    s = rtp.RtpSender(0, ssrc=0x11223344, clock=8000)
    s.seq = 65534
    s.ts = 0xFFFFFF00
    payload = bytes(range(160))
    seen = []
    for i in range(3):
        pkt = bytes(s.build(memoryview(payload), 160, 160, marker=(i == 0)))
        assert len(pkt) == 172
        seen.append(rtp.parse(pkt, len(pkt)))
    assert [r[1] for r in seen] == [65534, 65535, 0]
    assert [r[2] for r in seen] == [0xFFFFFF00, 0xFFFFFFA0, 0x00000040]
    assert [r[4] for r in seen] == [True, False, False]
    for pt, _seq, _ts, ssrc, _m, off, ln in seen:
        assert (pt, ssrc, off, ln) == (0, 0x11223344, 12, 160)
    assert s.packets == 3 and s.octets == 480
    assert rtp.seq_diff(0, 65535) == 1 and rtp.ts_diff(0xA0, 0xFFFFFF00) == 0x1A0


def test_build_in_place_pt_override_and_explicit_ts():
    s = rtp.RtpSender(8, clock=8000)
    assert 0 <= s.seq <= 0xFFFF and 0 <= s.ssrc <= 0xFFFFFFFF
    s.payload[:4] = b"\x0b\x8a\x03\x20"
    ts0 = s.ts
    pkt = s.build(s.payload, 4, 160, marker=True, pt=101, ts=12345)
    r = rtp.parse(pkt, len(pkt))
    assert r[0] == 101 and r[2] == 12345 and r[4] is True and bytes(pkt[12:]) == b"\x0b\x8a\x03\x20"
    assert s.ts == ts0                      # an explicit ts leaves the running clock alone
    a = s.build(s.payload, 4, 160)
    b = s.build(s.payload, 4, 160)
    assert a is b                            # same size: the same view, nothing allocated per packet


def test_parse_csrc_extension_padding():
    hdr = bytearray(struct.pack(">BBHII", 0x80 | 0x20 | 0x10 | 2, 0x80 | 96, 7, 1000, 42))
    hdr += b"\x00\x00\x00\x01" * 2          # two CSRCs
    hdr += b"\xbe\xde\x00\x02" + b"\xaa" * 8  # extension of 2 words
    pkt = bytes(hdr) + b"PAYLOAD" + b"\x00\x00\x03"
    pt, seq, ts, ssrc, marker, off, ln = rtp.parse(pkt, len(pkt))
    assert (pt, seq, ts, ssrc, marker) == (96, 7, 1000, 42, True)
    assert pkt[off:off + ln] == b"PAYLOAD"


def test_parse_rejects():
    good = struct.pack(">BBHII", 0x80, 0, 1, 2, 3) + b"x" * 10
    assert rtp.parse(good, len(good)) is not None
    assert rtp.parse(good, 11) is None                                    # short
    assert rtp.parse(b"\x40" + good[1:], len(good)) is None                # version 1
    assert rtp.parse(good[:1] + b"\xc8" + good[2:], len(good)) is None     # RTCP SR on the RTP port
    padded = b"\xa0" + good[1:-1] + b"\x40"                                 # padding longer than the packet
    assert rtp.parse(padded, len(padded)) is None
    ext = b"\x90" + good[1:12] + b"\x00\x00\x00\x09"                       # extension running past the end
    assert rtp.parse(ext, len(ext)) is None
    csrc = b"\x8f" + good[1:]                                               # 15 CSRCs in a 22-byte packet
    assert rtp.parse(csrc, len(csrc)) is None


def test_recvstats_probation_loss_and_fraction():
    st = rtcp.RecvStats(8000)
    st.reset(99, 1000)
    assert st.update(1000) is False and st.probation == 1
    assert st.update(1001) is True and st.probation == 0
    for seq in range(1002, 1101):
        if seq % 10 == 0:
            continue                             # lose 1010, 1020, ... 1100 -> 10 packets
        assert st.update(seq)
    assert st.expected() == 99                 # 1001..1099 (1100 is lost and was never seen)
    assert st.lost() == 9
    assert st.interval() == (9 << 8) // 99
    for seq in range(1101, 1201):
        st.update(seq)
    assert st.interval() == (1 << 8) // 101   # 1100 shows up as lost only once 1101 arrives
    assert st.lost() == 10
    for seq in range(1201, 1301):
        st.update(seq)
    assert st.interval() == 0 and st.lost() == 10


def test_recvstats_wrap_reorder_duplicates_and_restart():
    st = rtcp.RecvStats(8000)
    st.reset(1, 65530)
    for seq in list(range(65530, 65536)) + list(range(0, 5)):
        st.update(seq)
    assert st.cycles == 65536 and st.extended_max() == 65536 + 4
    assert st.update(3)                          # a reordered old packet counts, max stays
    assert st.extended_max() == 65536 + 4
    assert st.update(20000) is False           # a big jump is suspect...
    assert st.update(20001) is True            # ...until the next one confirms it: the source restarted
    assert st.base_seq == 20001 and st.received == 1 and st.lost() == 0


def test_jitter_matches_rfc_a8_on_synthetic_arrivals():
    st = rtcp.RecvStats(8000)
    arrivals = [0]
    delays = [0, 5, -3, 12, 0, 0, 7, -6, 20, 1] * 5
    for k in range(1, len(delays)):
        arrivals.append(20 * k + delays[k])
    ref = 0.0
    for k, arr in enumerate(arrivals):
        st.jitter(arr, (5000 + 160 * k) & 0xFFFFFFFF)
        if k:
            d = abs((arrivals[k] - arrivals[k - 1]) * 8 - 160)
            ref += (d - ref) / 16
    assert abs(st.jitter_ts() - ref) <= 1.0
    assert ref > 20


def test_jitter_across_timestamp_wrap():
    st = rtcp.RecvStats(8000)
    for k in range(200):
        st.jitter(1000 + 20 * k, (0xFFFFF000 + 160 * k) & 0xFFFFFFFF)
    assert st.jitter_ts() == 0


def _pair():
    a = rtcp.Rtcp(0xAAAA0001, 8000, b"alice@host")
    b = rtcp.Rtcp(0xBBBB0002, 8000, b"bob@host")
    return a, b


def test_sr_rr_fields_and_rtt():
    a, b = _pair()
    # b hears a's stream 5000.. with 2 of 50 packets lost
    b.stats.reset(a.ssrc, 5000)
    for seq in range(5000, 5050):
        if seq in (5010, 5011):
            continue
        b.stats.update(seq)
    sr = bytes(a.build(10000, 123456, 50, 8000, True))
    parts = list(rtcp.walk(sr, len(sr)))
    assert [p[0] for p in parts] == [rtcp.SR, rtcp.SDES]
    kind, ssrc, body, ln = parts[0]
    assert ssrc == a.ssrc and ln == 20        # no report block: a hears nobody
    sec, frac, ts, pk, octs = struct.unpack_from(">IIIII", sr, body)
    assert (sec, ts, pk, octs) == (10, 123456, 50, 8000)
    assert b"alice@host" in sr
    assert len(sr) % 4 == 0
    assert b.rx(sr, len(sr), 10050) == 1      # arrives 50 ms later on b's clock
    rr = bytes(b.build(10300, 0, 0, 0, False))  # b answers 250 ms after the SR
    parts = list(rtcp.walk(rr, len(rr)))
    assert parts[0][0] == rtcp.RR and parts[0][1] == b.ssrc
    blk = rtcp.report_blocks(rr, parts[0][2], parts[0][3])
    assert len(blk) == 1
    ssrc, fraction, cum, ext, jit, lsr, dlsr = blk[0]
    assert ssrc == a.ssrc
    assert cum == 2 and ext == 5049
    assert fraction == (2 << 8) // 49         # expected 5001..5049 after probation, 2 missing
    assert lsr == rtcp.ntp_mid(10000)
    assert abs(dlsr - 250 * 65536 / 1000) <= 1
    assert a.rx(rr, len(rr), 10350) == 2
    assert a.peer_lost == 2 and a.peer_fraction == fraction
    assert abs(a.rtt_ms - 100.0) < 0.1        # 350 ms round trip minus 250 ms held at b


def test_sr_carries_report_block_and_negative_cumulative_loss():
    a, b = _pair()
    a.stats.reset(b.ssrc, 1)
    for seq in (1, 2, 3, 3, 3, 4):              # duplicates make "lost" negative (A.3)
        a.stats.update(seq)
    pkt = bytes(a.build(5000, 0, 1, 160, True))
    kind, ssrc, body, ln = next(rtcp.walk(pkt, len(pkt)))
    assert kind == rtcp.SR and ln == 20 + 24
    blk = rtcp.report_blocks(pkt, body + 20, ln - 20)[0]
    assert blk[0] == b.ssrc and blk[2] == -2 and blk[5] == 0 and blk[6] == 0   # no SR heard: LSR = DLSR = 0
    b.rx(pkt, len(pkt), 5001)
    assert b.peer_lost == -2 and b.rtt_ms is None


def test_bye():
    a, b = _pair()
    pkt = bytes(a.build_bye(1000))
    kinds = [p[0] for p in rtcp.walk(pkt, len(pkt))]
    assert kinds == [rtcp.RR, rtcp.SDES, rtcp.BYE]
    assert b.rx(pkt, len(pkt), 1001) == 6 and b.bye


def test_walk_stops_at_junk():
    a, _ = _pair()
    pkt = bytes(a.build(1000, 0, 0, 0, False))
    assert len(list(rtcp.walk(pkt + b"\x00" * 8, len(pkt) + 8))) == 2
    assert list(rtcp.walk(pkt[:7], 7)) == []


def test_build_at_matches_build_and_info_keeps_32_bit_fields_in_small_pieces():
    a = rtp.RtpSender(0, ssrc=0xDEADBEEF, clock=8000)
    b = rtp.RtpSender(0, ssrc=0xDEADBEEF, clock=8000)
    b.seq = a.seq
    for ts in (0, 0x3FFFFFFF, 0x40000000, 0xFFFFFF60, 0xFFFFFFFF):
        a.payload[:160] = bytes(range(160))
        b.payload[:160] = bytes(range(160))
        p1 = bytes(a.build(a.payload, 160, 0, True, None, ts))
        p2 = bytes(b.build_at(160, True, ts >> 16, ts & 0xFFFF))
        assert p1 == p2
        inf = rtp.RtpInfo()
        assert inf.parse(p2, len(p2))
        assert (inf.ts, inf.ssrc, inf.ts30, inf.ts_hi) == (ts, 0xDEADBEEF, ts & 0x3FFFFFFF, ts >> 30)
        assert (inf.ssrc_hi, inf.ssrc_lo) == (0xDEAD, 0xBEEF)
    a.ssrc = 0x01020304                     # a changed SSRC reaches the wire on the next packet
    assert bytes(a.build(a.payload, 4, 160))[8:12] == b"\x01\x02\x03\x04"


def test_jitter_stats_same_with_30_bit_timestamps():
    full, low = rtcp.RecvStats(8000), rtcp.RecvStats(8000)
    ts = 0xFFFFF000
    for i, late in enumerate([0, 3, 0, 7, 1, 0, 12, 2, 0, 5, 0, 0, 4]):
        full.jitter(20 * i + late, ts)
        low.jitter(20 * i + late, ts & 0x3FFFFFFF)
        ts = (ts + 160) & 0xFFFFFFFF
    assert full.jitter16 == low.jitter16 > 0
