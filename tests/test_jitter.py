# Tests for uphone.media.jitter: ordering, duplicates, late packets, concealment, delay adaptation and clock drift.
# Frames carry their index; the decode callback writes it as a constant int16 so the output order is visible.
import random
import struct

from uphone.media import jitter

FT = 160


def dec(payload, n, out):
    v = payload[0] | (payload[1] << 8)
    for i in range(0, len(out), 2):
        out[i] = v & 0xFF
        out[i + 1] = v >> 8


def val(out):
    return struct.unpack_from("<h", out, 0)[0]


def frame(k):
    return memoryview(struct.pack("<H", 1000 + 8 * k) + bytes(158))


def run(jb, arrivals, ticks, t0=0, ts0=123456):
    """arrivals: list of (arrival_ms, k). Pops every 20 ms from t0; returns [(code, value)] per tick."""
    arrivals = sorted(arrivals, key=lambda a: a[0])
    out = bytearray(320)
    res = []
    i = 0
    for t in range(t0, t0 + 20 * ticks, 20):
        while i < len(arrivals) and arrivals[i][0] <= t:
            k = arrivals[i][1]
            jb.put(k & 0xFFFF, (ts0 + FT * k) & 0xFFFFFFFF, frame(k), 160, arrivals[i][0])
            i += 1
        code = jb.pop(out, dec)
        res.append((code, val(out)))
    return res


def played(res):
    return [(v - 1000) // 8 for c, v in res if c == jitter.FRAME]


def test_in_order_with_prebuffering():
    jb = jitter.JitterBuffer(start_ms=60)
    res = run(jb, [(20 * k, k) for k in range(30)], 32)   # 2 ticks of prebuffering, then 30 frames
    assert res[0][0] == jitter.SILENCE and res[1][0] == jitter.SILENCE
    assert played(res) == list(range(30))
    assert jb.lost == 0 and jb.concealed == 0 and jb.received == 30


def test_reorder_and_duplicates():
    jb = jitter.JitterBuffer(start_ms=60)
    arr = [(20 * k, k) for k in range(20) if k not in (5, 6)] + [(20 * 5 + 15, 6), (20 * 5 + 18, 5)]
    arr += [(20 * 8 + 3, 8), (20 * 9 + 1, 9)]                  # duplicates
    res = run(jb, arr, 22)
    assert played(res) == list(range(20))
    assert jb.duplicates == 2 and jb.lost == 0 and jb.late == 0


def test_wraparound_timestamps():
    jb = jitter.JitterBuffer(start_ms=40)
    res = run(jb, [(20 * k, k) for k in range(40)], 50, ts0=0xFFFFFFFF - 5 * FT)
    assert played(res) == list(range(40))


def test_late_packet_is_dropped_and_concealed():
    jb = jitter.JitterBuffer(start_ms=40, min_ms=40, max_ms=40)
    arr = [(20 * k, k) for k in range(20) if k != 7] + [(20 * 7 + 200, 7)]
    res = run(jb, arr, 21)
    assert 7 not in played(res) and jb.late == 1
    assert jb.lost == 1 and jb.concealed == 1
    i = [j for j, r in enumerate(res) if r[0] == jitter.CONCEALED][0]
    assert res[i][1] == (res[i - 1][1] * 3) >> 2         # repeat of frame 6 at 3/4


def test_concealment_fades_to_silence_then_recovers():
    jb = jitter.JitterBuffer(start_ms=40, min_ms=40, max_ms=40)
    arr = [(20 * k, k) for k in range(30) if not 10 <= k < 16]
    res = run(jb, arr, 35)
    codes = [c for c, _ in res]
    i = codes.index(jitter.CONCEALED)
    last = res[i - 1][1]
    assert [v for _, v in res[i:i + 3]] == [(last * 3) >> 2, (last * 2) >> 2, last >> 2]
    assert codes[i:i + 6] == [jitter.CONCEALED] * 3 + [jitter.SILENCE] * 3
    last_frame = max(j for j, c in enumerate(codes) if c == jitter.FRAME)
    assert played(res)[-1] == 29 and codes[:last_frame].count(jitter.CONCEALED) == 3
    assert jb.lost == 0                     # an outage longer than concealment rebuffers (RecvStats counts loss)
    jb2 = jitter.JitterBuffer(start_ms=60, min_ms=60, max_ms=60)
    run(jb2, [(20 * k, k) for k in range(30) if k not in (10, 11)], 32)
    assert jb2.lost == 2 and jb2.concealed == 2


def test_underrun_rebuffers_after_stream_stops():
    jb = jitter.JitterBuffer(start_ms=40)
    run(jb, [(20 * k, k) for k in range(10)], 30)
    assert not jb.started                 # emptied and concealment exhausted: waiting for the next packet
    lost = jb.lost
    run(jb, [], 20, t0=600)
    assert jb.lost == lost                 # silence while nothing arrives is not loss


def test_target_adapts_to_jitter_within_bounds():
    rnd = random.Random(7)
    jb = jitter.JitterBuffer(start_ms=60)
    assert jb.target_ms == 60
    arr = [(20 * k + rnd.randint(0, 90), k) for k in range(300)]
    run(jb, arr, 295)
    assert jb.target_ms >= 100 and jb.target_ms <= 200
    assert jb.late < 30
    assert jb.delay_ms() >= 60
    smooth = [(6200 + 20 * k, 300 + k) for k in range(600)]
    run(jb, smooth, 600, t0=6200)
    assert jb.target_ms <= 40              # jitter gone: the target shrinks again...
    assert jb.delay_ms() <= 60             # ...and frames were dropped to follow it
    assert jb.dropped > 0
    big = jitter.JitterBuffer(start_ms=60)
    run(big, [(20 * k + (400 if k % 2 else 0), k) for k in range(100)], 130)
    assert big.target_ms == 200            # never above max_ms


def test_drift_fast_sender_drops_frames():
    jb = jitter.JitterBuffer(start_ms=40, min_ms=40, max_ms=40)
    res = run(jb, [(int(k * 19.6), k) for k in range(1000)], 980)   # sender clock 2% fast
    assert jb.dropped >= 15
    assert jb.delay_ms() <= 80
    assert jb.lost == 0 and len(played(res)) + jb.dropped >= 970


def test_drift_slow_sender_inserts_frames():
    jb = jitter.JitterBuffer(start_ms=40, min_ms=40, max_ms=40)
    res = run(jb, [(int(k * 20.4), k) for k in range(1000)], 1020)   # sender clock 2% slow
    assert jb.inserted >= 10
    p = played(res)
    assert p == sorted(p) and len(set(p)) == len(p)
    assert jb.lost < 5


def test_stats_keys():
    jb = jitter.JitterBuffer()
    st = jb.stats()
    for k in ("received", "lost", "late", "duplicates", "concealed", "delay_ms", "target_ms", "jitter_ms"):
        assert k in st


def test_timestamps_wrapping_2_32_play_in_order():
    jb = jitter.JitterBuffer(start_ms=40)
    res = run(jb, [(20 * k + 7, k) for k in range(40)], 45, ts0=0xFFFFFFFF - 160 * 20)
    assert played(res) == list(range(40))


def test_decode_gets_a_slot_view_and_n():
    jb = jitter.JitterBuffer(start_ms=20, min_ms=20, max_ms=20)
    seen = []

    def d(payload, n, out):
        seen.append((len(payload), n, bytes(payload[:n])))
        dec(payload, n, out)
    jb.put(1, 1000, memoryview(b"\x01\x02\x03"), 3, 0)
    jb.pop(bytearray(320), d)
    assert seen == [(jb.max_payload, 3, b"\x01\x02\x03")]
