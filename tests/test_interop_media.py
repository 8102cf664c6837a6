# Media interop with real peers on 127.0.0.1: tones both ways with baresip, sipp echoing our RTP, sipp streaming
# a G.711 file into the phone (bit-exact), and sipp replaying its shipped RFC 4733 DTMF captures.
import os
import random
import struct
import wave

import pytest

from tests import peers
from tests.live import finish, live  # noqa: F401  (live is a fixture)
from uphone.media import g711
from uphone.media.goertzel import dominant_freq



class Collect:
    """Audio sink that keeps every 20 ms frame the phone played."""

    def __init__(self):
        self.frames = []

    def write(self, buf):
        self.frames.append(bytes(buf))
        return len(buf)

    def pcm(self):
        return b"".join(self.frames)


class Noise:
    """Audio source: a speech-like random signal (no two frames alike, so a frame identifies itself)."""

    def __init__(self, seed=7):
        self.rng = random.Random(seed)
        self.sent = []

    def readinto(self, buf):
        n = len(buf) // 2
        for i in range(n):
            struct.pack_into("<h", buf, 2 * i, max(-32768, min(32767, int(self.rng.gauss(0, 3000)))))
        self.sent.append(bytes(buf))
        return len(buf)


def roundtrip(frame, law):
    n = len(frame) // 2
    enc = bytearray(n)
    dec = bytearray(2 * n)
    g711.encode(law, frame, enc, n)
    g711.decode(law, enc, dec, n)
    return bytes(dec)


def test_tone_both_ways_with_baresip(live, tmp_path):
    from uphone.hal.desktop import WavSource
    bs = peers.Baresip(tmp_path, "<sip:carol@127.0.0.1:5380>;regint=0;answermode=auto;audio_codecs=PCMU",
                       port=5380, ctrl=4644, tone_hz=700).start()
    sink = Collect()
    try:
        live.add("alice", 5462, 22600, audio=(WavSource("tone:1000", 8000), sink))
        live.start()
        live.ev("alice", "MakeCall", target="sip:carol@127.0.0.1:5380")
        assert live.run(10, until=lambda: live.state("alice") == "Active"), live.lines["alice"][-10:]
        live.run(3.0)
        live.ev("alice", "HangupCall")
        assert live.run(5, until=lambda: not live.calls("alice"))
        live.run(0.5)
    finally:
        bs.stop()
    heard = sink.pcm()[-8000 * 2 * 2:]          # the last two seconds of the call
    assert abs(dominant_freq(heard, 8000) - 700) < 20
    decoded = [w for w in bs.dumps_wavs() if "dec" in os.path.basename(w)]
    assert decoded, "baresip wrote no decoded audio: %s" % bs.dumps_wavs()
    with wave.open(decoded[-1]) as w:
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    if w.getnchannels() == 2:
        data = b"".join(data[i:i + 2] for i in range(0, len(data), 4))
    assert abs(dominant_freq(data[len(data) // 3:], rate) - 1000) < 20


def test_rtp_echo_comes_back_intact(live, tmp_path):
    src, sink = Noise(), Collect()
    live.add("alice", 5466, 22700, audio=(src, sink), media={"codecs": ["PCMU"]})
    live.start()
    proc = peers.sipp_background(["-sn", "uas", "-p", "5470", "-m", "1", "-rtp_echo", "-mp", "26000",
                                  "-timeout", "30s", "-timeout_error"], cwd=str(tmp_path))
    try:
        live.ev("alice", "MakeCall", target="sip:echo@127.0.0.1:5470")
        assert live.run(10, until=lambda: live.state("alice") == "Active"), live.lines["alice"][-10:]
        live.run(3.0)
        live.ev("alice", "HangupCall")
        assert live.run(5, until=lambda: not live.calls("alice"))
        live.run(5, until=lambda: proc.poll() is not None)
    finally:
        rc, out, err = finish(proc)
    assert rc == 0, out[-2000:] + err[-2000:]
    sent = set(roundtrip(f, g711.ULAW) for f in src.sent)
    heard = [f for f in sink.frames if any(f)]
    assert len(heard) > 100, "about 3 s of echoed audio expected, got %d frames" % len(heard)
    intact = sum(f in sent for f in heard)
    # every echoed frame is one we sent, decoded bit-exactly (concealment may fill a gap at the very end)
    assert intact >= len(heard) - 2, "%d of %d echoed frames were not ours" % (len(heard) - intact, len(heard))


def test_sipp_rtp_stream_is_decoded_bit_exactly(live, tmp_path):
    rng = random.Random(3)
    payload = bytes(rng.choice([b for b in range(256) if b not in (0x7F, 0xFF)]) for _ in range(160 * 100))
    # sipp 3.6 streams the file's bytes as they are (a RIFF header would be sent as audio): raw mu-law
    wav = tmp_path / "stream.ulaw"
    wav.write_bytes(payload)
    media = ('  <nop><action><exec rtp_stream="%s,1,0"/></action></nop>\n'
             '  <pause milliseconds="3000"/>' % wav)
    scen = tmp_path / "stream.xml"
    scen.write_text(peers.uac_scenario(media, port="[auto_media_port]"))
    sink = Collect()
    live.add("bob", 5468, 22800, audio=(None, sink), features={"auto_answer": True, "auto_answer_delay_ms": 0})
    live.start()
    proc = peers.sipp_background(["-sf", str(scen), "127.0.0.1:5468", "-p", "5472", "-m", "1",
                                  "-timeout", "30s", "-timeout_error"], cwd=str(tmp_path))
    try:
        live.run(20, until=lambda: proc.poll() is not None)
    finally:
        rc, out, err = finish(proc)
    assert rc == 0, out[-2000:] + err[-2000:]
    expected = []
    for i in range(0, len(payload), 160):
        dec = bytearray(320)
        g711.decode(g711.ULAW, payload[i:i + 160], dec, 160)
        expected.append(bytes(dec))
    exp = set(expected)
    heard = [f for f in sink.frames if any(f)]
    got = [f for f in heard if f in exp]
    assert len(set(got)) >= 98, "%d of 100 streamed frames came out bit-exact" % len(set(got))
    # what is left is the jitter buffer's concealment after the stream stopped (3 fading repeats at most)
    assert len(heard) - len(got) <= 3
    # and in order: the frames heard follow the file
    idx = [expected.index(f) for f in got]
    assert idx == sorted(idx)


def test_sipp_rfc4733_captures_become_digits(live, tmp_path):
    caps = "/usr/share/sip-tester"
    digits = "159#*0"
    names = {"#": "pound", "*": "star"}
    media = "\n".join('  <nop><action><exec play_pcap_audio="%s/dtmf_2833_%s.pcap"/></action></nop>\n'
                      '  <pause milliseconds="700"/>' % (caps, names.get(d, d)) for d in digits)
    scen = tmp_path / "dtmf.xml"
    scen.write_text(peers.uac_scenario(media))
    live.add("bob", 5474, 22900, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    live.start()
    proc = peers.sipp_background(["-sf", str(scen), "127.0.0.1:5474", "-p", "5476", "-m", "1", "-mp", "26100",
                                  "-timeout", "30s", "-timeout_error"], cwd=str(tmp_path))
    try:
        live.run(20, until=lambda: proc.poll() is not None)
    finally:
        rc, out, err = finish(proc)
    assert rc == 0, out[-2000:] + err[-2000:]
    got = "".join(l.split()[-1] for l in live.lines["bob"] if l.startswith("dtmf "))
    assert got == digits, live.lines["bob"][-20:]
