# Tests for uphone.media.session.MediaSession: two sessions wired back to back (tx of one -> rx of the other),
# audio through PCMU/PCMA/G.722, directions, mute, symmetric RTP, events, DTMF, RTCP, stats/MOS, recording; and the
# same on the real MicroPython.
import io
import math
import struct

import pytest

from uphone.media import goertzel
from uphone.media.session import MediaSession, mos

A_ADDR = ("10.0.0.1", 4000)
B_ADDR = ("10.0.0.2", 5000)


def sine_frames(rate, freq=1000, amp=8000, nframes=1):
    n = rate // 50
    out = []
    for k in range(nframes):
        b = bytearray(2 * n)
        for i in range(n):
            struct.pack_into("<h", b, 2 * i, int(amp * math.sin(2 * math.pi * freq * (k * n + i) / rate)))
        out.append(b)
    return out


def pair(codec="PCMU", pt=0, te_pt=101, rate=8000, **kw):
    a = MediaSession(codec, pt, te_pt, rate, 20, **kw)
    b = MediaSession(codec, pt, te_pt, rate, 20, **kw)
    a.set_remote(*B_ADDR)
    b.set_remote(*A_ADDR)
    return a, b


def wire(a, b, nframes, t0=0, drop=None, a_src=None, b_src=None):
    """Run nframes of 20 ms. drop(i) -> True loses a->b packet i. Returns (a's played frames, b's played frames)."""
    fa = sine_frames(a.rate, 1000, nframes=50)
    fb = sine_frames(b.rate, 1000, nframes=50)
    pa, pb = [], []
    for i in range(nframes):
        t = t0 + 20 * i
        pkt = a.tx(a_src if a_src is not None else fa[i % 50], t)
        if pkt is not None and not (drop and drop(i)):
            b.rx(bytes(pkt), len(pkt), A_ADDR, t + 30)
        pkt = b.tx(b_src if b_src is not None else fb[i % 50], t)
        if pkt is not None:
            a.rx(bytes(pkt), len(pkt), B_ADDR, t + 30)
        pa.append(bytes(a.play(t)))
        pb.append(bytes(b.play(t)))
    return pa, pb


def level(frames, rate, freq):
    buf = b"".join(frames)
    return goertzel.power(buf, len(buf) // 2, rate, freq) ** 0.5


@pytest.mark.parametrize("codec,pt,rate", [("PCMU", 0, 8000), ("PCMA", 8, 8000), ("G722", 9, 16000)])
def test_tone_crosses_back_to_back(codec, pt, rate):
    a, b = pair(codec, pt, rate=rate)
    pa, pb = wire(a, b, 60)
    tail_b, tail_a = pb[20:], pa[20:]
    assert level(tail_b, rate, 1000) > 5000          # the 8000-amplitude tone arrives (codec loss is small)
    assert level(tail_b, rate, 500) < 500
    assert level(tail_a, rate, 1000) > 5000
    assert a.stats()["sent"] == 60 and b.stats()["received"] == 60
    assert a.rate == rate
    ev = b.events()
    assert list(ev) == [("flow",)] and list(b.events()) == []


def test_directions_hold_and_resume():
    a, b = pair()
    wire(a, b, 10)
    a.set_direction("sendonly")            # we put the peer on hold: we still send, we play nothing
    b.set_direction("recvonly")
    pa, pb = wire(a, b, 20, t0=200)
    assert max(max(f) for f in pa) == 0
    assert level(pb[5:], 8000, 1000) > 5000
    assert b.tx(bytearray(320), 600) is None
    a.set_direction("inactive")
    assert a.tx(bytearray(320), 620) is None
    assert max(a.play(620)) == 0
    a.set_direction("sendrecv")
    b.set_direction("sendrecv")
    pa, pb = wire(a, b, 30, t0=700)
    assert level(pa[10:], 8000, 1000) > 5000 and level(pb[10:], 8000, 1000) > 5000
    with pytest.raises(ValueError):
        a.set_direction("sideways")


def test_mute_keeps_rtp_flowing_with_silence():
    a, b = pair("PCMA", 8)
    a.mute(True)
    pa, pb = wire(a, b, 30)
    assert a.stats()["sent"] == 30 and b.stats()["received"] == 30
    assert level(pb[10:], 8000, 1000) < 50
    a.mute(False)
    pa, pb = wire(a, b, 30, t0=600)
    assert level(pb[10:], 8000, 1000) > 5000


def test_symmetric_rtp_learns_source_and_rejects_junk():
    a, b = pair()
    a.set_remote("192.0.2.9", 7000)                  # what SDP said; the peer is really behind a NAT
    pkt = bytes(b.tx(bytearray(320), 0))
    a.rx(pkt, len(pkt), ("198.51.100.7", 40000), 0)
    assert a.remote == ("192.0.2.9", 7000)            # first packet of a new source is still on probation
    pkt = bytes(b.tx(bytearray(320), 20))
    a.rx(pkt, len(pkt), ("198.51.100.7", 40000), 20)
    assert a.remote == ("198.51.100.7", 40000)
    a.rx(b"\x00" * 40, 40, ("203.0.113.66", 1), 40)    # not RTP: ignored
    junk = bytearray(pkt)
    junk[1] = 77                                      # a payload type we did not negotiate
    a.rx(bytes(junk), len(junk), ("203.0.113.66", 1), 40)
    assert a.remote == ("198.51.100.7", 40000)
    a.set_remote(None, 0)
    assert a.remote is None


def test_flow_and_rtp_timeout_events():
    a, b = MediaSession("PCMU", 0, None, 8000, 20, rtp_timeout_ms=1000), MediaSession("PCMU", 0, None, 8000, 20)
    b.set_remote(*A_ADDR)
    wire(b, a, 10)
    assert list(a.events()) == [("flow",)]
    for t in range(200, 700, 20):                     # the peer goes quiet (its last packet came at 210)
        a.play(t)
    assert list(a.events()) == []
    for t in range(700, 1200, 20):                    # half the timeout: its media may come from elsewhere now
        a.play(t)
    assert list(a.events()) == [("rtp_silent",)]
    for t in range(1200, 1300, 20):
        a.play(t)
    assert list(a.events()) == [("rtp_timeout",)]
    for t in range(1300, 3000, 20):
        a.play(t)
    assert list(a.events()) == []                     # once per outage
    wire(b, a, 5, t0=3000)
    assert list(a.events()) == []                     # flow is reported only once per session
    for t in range(3100, 3700, 20):                   # quiet again (last packet at 3110): a new outage
        a.play(t)
    assert list(a.events()) == [("rtp_silent",)]
    a.set_direction("sendonly")                       # the peer is on hold: it owes us no RTP
    for t in range(3700, 9000, 20):
        a.play(t)
    assert list(a.events()) == []


@pytest.mark.parametrize("te_pt,mode", [(101, "rfc4733"), (None, "rfc4733"), (101, "inband")])
def test_dtmf_end_to_end(te_pt, mode):
    a, b = pair(te_pt=te_pt, dtmf_mode=mode)
    silence = bytearray(320)
    wire(a, b, 5, a_src=silence, b_src=silence)
    b.events()
    a.send_dtmf("159#*0")
    wire(a, b, 70, t0=100, a_src=silence, b_src=silence)
    got = "".join(e[1] for e in b.events() if e[0] == "dtmf")
    assert got == "159#*0"


def test_rtcp_reports_rtt_and_stats():
    a, b = pair()
    wire(a, b, 50)
    sr = a.rtcp_build(1000)
    assert bytes(sr)[1] == 200                        # a sent RTP: SR
    b.rtcp_rx(bytes(sr), 1030)
    rr = bytes(b.rtcp_build(1230))
    assert rr[1] == 200                               # b sent too, so an SR with a report block
    a.rtcp_rx(rr, 1260)
    st = a.stats()
    assert abs(st["rtt_ms"] - 60.0) < 0.1
    assert bytes(a.rtcp_build(1300))[1] == 201        # nothing sent since the last report: RR
    b.rtcp_rx(bytes(a.rtcp_bye(1400)), 1430)
    assert ("rtcp_bye",) in list(b.events())


def test_stats_and_mos_lossless_vs_lossy():
    a, b = pair()
    wire(a, b, 200)
    good = b.stats()
    assert good["lost"] == 0 and good["received"] == 200 and good["mos"] > 4.0
    assert good["jitter_ms"] < 1.0
    c, d = pair()
    wire(c, d, 200, drop=lambda i: i % 10 == 5)
    bad = d.stats()
    assert bad["lost"] == 20 and 9.0 < bad["loss_pct"] < 11.0
    assert 2.5 < bad["mos"] < good["mos"] - 0.5
    assert bad["concealed"] >= 15
    assert mos(0, 0) > 4.3 and mos(0, 400) < mos(0, 100) and mos(20, 0) < mos(5, 0)


def test_recording_writes_wav_of_both_directions():
    a, b = pair()
    f = io.BytesIO()
    a.start_recording(f)
    wire(a, b, 25)
    a.stop_recording()
    data = f.getvalue()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack_from("<I", data, 24)[0] == 8000
    assert struct.unpack_from("<I", data, 40)[0] == 25 * 320 == len(data) - 44
    rec = data[44 + 320 * 15:]
    assert level([rec], 8000, 1000) > 9000             # our tone plus theirs, both at 1 kHz
    a.close()
    assert a.tx(bytearray(320), 1000) is None and a.rtcp_build(1000) is None


def test_codec_rate_mismatch_rejected():
    with pytest.raises(ValueError):
        MediaSession("G722", 9, None, 8000, 20)
    with pytest.raises(ValueError):
        MediaSession("GSM", 3, None, 8000, 20)


def test_ptime_40_packs_two_frames():
    a, b = MediaSession("PCMU", 0, None, 8000, 40), MediaSession("PCMU", 0, None, 8000, 40)
    pkts = [a.tx(f, 20 * i) for i, f in enumerate(sine_frames(8000, nframes=4))]
    assert pkts[0] is None and len(pkts[1]) == 12 + 320 and pkts[2] is None
    pa, pb = wire(a, b, 60)
    assert level(pb[20:], 8000, 1000) > 5000


def test_back_to_back_in_micropython(mp):
    code = """
from uphone.media.session import MediaSession
from uphone.media import rtp, jitter
a = MediaSession("PCMU", 0, 101, 8000, 20)
b = MediaSession("PCMU", 0, 101, 8000, 20)
a.set_remote("10.0.0.2", 5000)
tab = [0, 5657, 8000, 5657, 0, -5657, -8000, -5657]   # 1 kHz at 8 kHz
frame = bytearray(320)
for i in range(160):
    v = tab[i % 8] & 0xFFFF
    frame[2 * i] = v & 0xFF
    frame[2 * i + 1] = v >> 8
a.send_dtmf("7")
peak = 0
for i in range(60):
    t = 20 * i
    p = a.tx(frame, t)
    if p is not None and i % 10 != 3:
        b.rx(bytes(p), len(p), ("10.0.0.1", 4000), t + 15)
    out = b.play(t)
    if i > 30:
        for j in range(0, 320, 2):
            v = out[j] | (out[j + 1] << 8)
            v = v - 65536 if v & 0x8000 else v
            peak = max(peak, v)
r = rtp.parse(bytes(p), len(p))
s = b.stats()
print("events", [e[0] + (e[1] if len(e) > 1 else "") for e in b.events()])
print("pt", r[0], "len", r[6])
print("stats", s["received"], s["lost"], s["concealed"] > 0, s["mos"] > 3.0)
print("peak", peak > 6000, peak < 9000)
"""
    out = mp(code)
    lines = out.strip().splitlines()
    assert lines[0] == "events ['flow', 'dtmf7']"
    assert lines[1] == "pt 0 len 160"
    assert lines[2] == "stats 54 6 True True"
    assert lines[3] == "peak True True"


@pytest.mark.parametrize("codec,pt,ptime", [("PCMU", 0, 20), ("PCMA", 8, 20), ("PCMU", 0, 40)])
def test_steady_state_frame_allocates_nothing_in_micropython(mp, codec, pt, ptime):
    """tx, rx and play of a running call allocate 0 bytes per frame in MicroPython (measured with gc off),
    with 32-bit SSRC and timestamps (big ints there) and a timestamp wrap inside the measured frames."""
    code = """
import gc
gc.disable()            # a collection inside a measured window would hide what it allocated
from uphone.media.session import MediaSession
a = MediaSession(%(codec)r, %(pt)d, 101, 8000, %(ptime)d)
b = MediaSession(%(codec)r, %(pt)d, 101, 8000, %(ptime)d)
a.sender.ssrc = 0xDEADBEEF
a._th, a._tl = 0xFFFF, 0xFFFF - 160 * 40     # the RTP clock wraps 2**32 during the measured frames
tab = [0, 5657, 8000, 5657, 0, -5657, -8000, -5657]
frame = bytearray(320)
for i in range(160):
    v = tab[i %% 8] & 0xFFFF
    frame[2 * i] = v & 0xFF
    frame[2 * i + 1] = v >> 8
acc = [0, 0, 0, 0]
def step(t, measure):
    if not measure:                          # warm-up (gc.mem_alloc() scans the heap: only where measured)
        p = a.tx(frame, t)
        if p is not None:
            b.rx(p, len(p), None, t + 5)
        b.play(t)
        return
    m0 = gc.mem_alloc()
    p = a.tx(frame, t)
    m1 = gc.mem_alloc()
    if p is not None:
        d = p if t %% 40 else bytes(p)       # the sender's view, or a fresh bytes object as from a socket
        m2 = gc.mem_alloc()
        b.rx(d, len(d), None, t + 5)
        m3 = gc.mem_alloc()
    else:
        m2 = m3 = gc.mem_alloc()
    out = b.play(t)
    m4 = gc.mem_alloc()
    if measure:
        acc[0] += m1 - m0
        acc[1] += m3 - m2
        acc[2] += m4 - m3
        acc[3] += out[0] | out[1] | out[100] | out[101]
t = 0
while t < 30 * 20:
    step(t, False)
    t += 20
while t < 70 * 20:
    step(t, True)
    t += 20
print("ALLOC", acc[0], acc[1], acc[2], acc[3] != 0, b.rx_packets, b.jb.received)
""" % dict(codec=codec, pt=pt, ptime=ptime)
    out = mp(code)
    w = out.split()
    tx, rx, play, audible, pkts, frames = w[w.index("ALLOC") + 1:w.index("ALLOC") + 7]
    assert (int(tx), int(rx), int(play)) == (0, 0, 0), out
    assert audible == "True"
    assert int(pkts) == 70 * 20 // ptime and int(frames) == 70
