# Tests for uphone.media.dtmf: RFC 4733 sender/receiver over RTP, SIP INFO bodies, in-band tones and Goertzel detection.
# Tone and noise signals are generated here (floats are fine in tests); the detector sees int16 LE frames.
import math
import random
import struct

import pytest

from uphone.media import dtmf, rtp

DIG = "0123456789*#ABCD"


def test_event_codes():
    assert [dtmf.event_code(d) for d in DIG] == list(range(16))
    assert dtmf.event_code("a") == 12
    with pytest.raises(ValueError):
        dtmf.event_code("E")


def _send_all(digits):
    """Run DtmfSender through RtpSender frame by frame; -> list of RTP packets (bytes) carrying events."""
    snd = dtmf.DtmfSender(160, 20)
    r = rtp.RtpSender(101, clock=8000)
    snd.send(digits)
    ev = bytearray(4)
    pkts = []
    clk = 1000
    frames = 0
    while snd.active():
        if snd.step(ev, clk):
            pkts.append(bytes(r.build(ev, 4, 0, snd.marker, 101, snd.ts)))
        clk += 160
        frames += 1
    return pkts, frames


def test_rfc4733_packet_sequence_for_one_digit():
    pkts, frames = _send_all("5")
    assert frames == 10                           # 100 ms tone + 2 extra end packets + 60 ms gap... in 20 ms frames
    fields = []
    for p in pkts:
        pt, seq, ts, ssrc, marker, off, ln = rtp.parse(p, len(p))
        assert pt == 101 and ln == 4 and ts == 1000
        ev, flags, dur = struct.unpack_from(">BBH", p, off)
        fields.append((marker, ev, flags >> 7, dur))
    assert fields == [(True, 5, 0, 160), (False, 5, 0, 320), (False, 5, 0, 480), (False, 5, 0, 640),
                      (False, 5, 1, 800), (False, 5, 1, 800), (False, 5, 1, 800)]
    seqs = [rtp.parse(p, len(p))[1] for p in pkts]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))


def test_rfc4733_send_receive_dedupes_in_order():
    pkts, _ = _send_all("159#*0")
    assert len(pkts) == 6 * 7
    rx = dtmf.DtmfReceiver()
    got = []
    for p in pkts:
        pt, seq, ts, ssrc, marker, off, ln = rtp.parse(p, len(p))
        d = rx.feed(p, off, ln, ts)
        if d is not None:
            got.append(d)
    assert "".join(got) == "159#*0"
    starts = sorted(set(rtp.parse(p, len(p))[2] for p in pkts))
    assert [b - a for a, b in zip(starts, starts[1:])] == [1600] * 5     # 200 ms apart: 100 ms tone, gaps


def test_receiver_survives_lost_start_and_late_end():
    pkts, _ = _send_all("77")
    rx = dtmf.DtmfReceiver()
    got = []
    first_ts = rtp.parse(pkts[0], 20)[2]
    # first digit: only its end packets survive; second digit complete; then a stray late end of the first
    order = pkts[4:7] + pkts[7:14] + [pkts[5]]
    for p in order:
        pt, seq, ts, ssrc, marker, off, ln = rtp.parse(p, len(p))
        d = rx.feed(p, off, ln, ts)
        if d:
            got.append((d, ts))
    assert [g[0] for g in got] == ["7", "7"] and got[0][1] == first_ts


def test_info_parse_and_build():
    assert dtmf.parse_info(b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay") == "5"
    assert dtmf.parse_info(b"Signal= #\nDuration=100", "Application/DTMF-Relay; charset=x") == "#"
    assert dtmf.parse_info(b"signal=11\r\n", "application/dtmf-relay") == "#"
    assert dtmf.parse_info(b"Signal=b", "application/dtmf-relay") == "B"
    assert dtmf.parse_info(b"*\r\n", "application/dtmf") == "*"
    assert dtmf.parse_info(b"Signal=X", "application/dtmf-relay") is None
    assert dtmf.parse_info(b"Signal=5", "application/sdp") is None
    assert dtmf.parse_info(b"Duration=160", "application/dtmf-relay") is None
    assert dtmf.parse_info(None, "application/dtmf") is None
    body = dtmf.info_body("9")
    assert body == b"Signal=9\r\nDuration=160\r\n"
    for d in DIG:
        assert dtmf.parse_info(dtmf.info_body(d), dtmf.INFO_TYPE) == d


def pcm(samples):
    b = bytearray(2 * len(samples))
    for i, v in enumerate(samples):
        struct.pack_into("<h", b, 2 * i, max(-32768, min(32767, int(v))))
    return b


def tone(freqs, n, rate=8000, amp=6000, phase0=0):
    return [sum(amp * math.sin(2 * math.pi * f * (i + phase0) / rate) for f in freqs) for i in range(n)]


def detect(det, samples, frame):
    b = pcm(samples)
    got = []
    for i in range(0, len(samples) - frame + 1, frame):
        d = det.feed(memoryview(b)[2 * i:2 * (i + frame)], frame)
        if d:
            got.append(d)
    return got


@pytest.mark.parametrize("rate", [8000, 16000])
def test_inband_detects_all_16_digits(rate):
    det = dtmf.InbandDetector(rate)
    sig = []
    keypad = "123A456B789C*0#D"
    for k, d in enumerate(DIG):
        r, c = dtmf.ROWS[keypad.index(d) // 4], dtmf.COLS[keypad.index(d) % 4]
        sig += tone((r, c), rate * 90 // 1000, rate, phase0=37 * k) + [0.0] * (rate * 60 // 1000)
    # frames that do not line up with tone edges (7 ms offset), and a 10 ms feed size
    sig = [0.0] * (rate * 7 // 1000) + sig
    assert "".join(detect(det, sig, rate // 100)) == DIG


def test_inband_twist_and_level_limits():
    det = dtmf.InbandDetector()
    quiet = [0.05 * v for v in tone((770, 1336), 800)]             # about -46 dBFS per tone
    assert detect(det, quiet, 160) == []
    twisted = [a + b for a, b in zip(tone((770,), 800, amp=6000), tone((1336,), 800, amp=1200))]  # 14 dB
    assert detect(det, twisted, 160) == []
    ok = [a + b for a, b in zip(tone((770,), 800, amp=6000), tone((1336,), 800, amp=3000))]       # 6 dB
    assert detect(det, ok, 160) == ["5"]


def test_inband_needs_40ms_and_a_gap():
    det = dtmf.InbandDetector()
    assert detect(det, tone((697, 1209), 200) + [0.0] * 320, 160) == []   # 25 ms: too short
    held = tone((852, 1477), 8000)                                         # one second: one digit
    assert detect(det, held, 160) == ["9"]
    det2 = dtmf.InbandDetector()
    back_to_back = tone((852, 1477), 800) + tone((941, 1336), 800, phase0=800)
    assert detect(det2, back_to_back, 160) == ["9"]                     # no gap: the second is not a new press


def test_inband_rejects_1khz_and_speech_like_noise():
    det = dtmf.InbandDetector()
    assert detect(det, tone((1000,), 16000, amp=12000), 160) == []
    rnd = random.Random(3)
    speech = []
    f0 = 120.0
    ph = 0.0
    for i in range(48000):                         # 6 s: gliding pitch, many harmonics, noise, syllable envelope
        f0 = 100 + 80 * abs(math.sin(i / 4000.0))
        ph += 2 * math.pi * f0 / 8000
        env = 0.5 + 0.5 * math.sin(i / 900.0)
        v = sum(math.sin(h * ph) / h for h in range(1, 25)) * 3000 * env
        speech.append(v + rnd.gauss(0, 800))
    assert detect(det, speech, 160) == []
    noise = [rnd.gauss(0, 4000) for _ in range(16000)]
    assert detect(det, noise, 160) == []


def test_tone_sender_output_is_detected():
    ts = dtmf.ToneSender(8000)
    ts.send("1A#")
    det = dtmf.InbandDetector(8000)
    frame = bytearray(320)
    got = []
    frames = 0
    while ts.active():
        assert ts.fill(frame, 160)
        d = det.feed(frame, 160)
        if d:
            got.append(d)
        frames += 1
    assert "".join(got) == "1A#" and frames == 3 * 8
    assert ts.fill(frame, 160) is False
