# Media interop with real peers on 127.0.0.1: tones both ways with baresip, sipp echoing our RTP, sipp streaming
# a G.711 file into the phone (bit-exact), and sipp replaying its shipped RFC 4733 DTMF captures. The phones are
# processes on CPython and on the frozen MicroPython (tests/proc.py); what they played and heard are WAV files.
import os
import random
import struct
import time
import wave

from tests import peers
from tests.proc import free_port, phones  # noqa: F401  (phones is a fixture)
from uphone.media import g711
from uphone.media.goertzel import dominant_freq

FRAME = 320         # bytes of one 20 ms frame of 16-bit mono at 8 kHz: what the phone reads and plays per frame


def read_wav(path):
    with wave.open(path) as w:
        rate, ch = w.getframerate(), w.getnchannels()
        data = w.readframes(w.getnframes())
    if ch == 2:
        data = b"".join(data[i:i + 2] for i in range(0, len(data), 4))
    return data, rate


def frames(pcm):
    return [pcm[i:i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def write_noise_wav(path, seconds=10, seed=7):
    """A speech-like random signal (no two frames alike, so a frame identifies itself) as the phone's microphone."""
    rng = random.Random(seed)
    n = 8000 * seconds
    pcm = b"".join(struct.pack("<h", max(-32768, min(32767, int(rng.gauss(0, 3000))))) for _ in range(n))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    return pcm


def roundtrip(frame, law):
    n = len(frame) // 2
    enc = bytearray(n)
    dec = bytearray(2 * n)
    g711.encode(law, frame, enc, n)
    g711.decode(law, enc, dec, n)
    return bytes(dec)


def test_tone_both_ways_with_baresip(phones, tmp_path):
    port = free_port()
    bs = peers.Baresip(tmp_path / "bs", "<sip:carol@127.0.0.1:%d>;regint=0;answermode=auto;audio_codecs=PCMU"
                       % port, port=port, tone_hz=700).start()
    try:
        # the mic path off: a steady test tone is what the noise gate learns as the noise floor and fades, and
        # this test is about the media path between the phones (tests/test_aec.py covers the mic path)
        alice = phones.add("alice", audio={"source": "tone:1000", "sink": "heard.wav", "aec": False, "agc": False,
                                           "noise_gate": False})
        alice.ev("MakeCall", target="sip:carol@127.0.0.1:%d" % port)
        assert alice.wait(lambda: alice.state() == "Active", 10), alice.tail()
        time.sleep(3.0)                     # three seconds of audio both ways
        alice.ev("HangupCall")
        assert alice.wait(lambda: alice.state() == "-", 5), alice.tail()
        phones.close()                      # the phone finishes its WAV file
    finally:
        phones.close(check=False)
        bs.stop()
    pcm, rate = read_wav(os.path.join(alice.dir, "heard.wav"))
    heard = pcm[-rate * 2 * 2:]             # the last two seconds of the call
    assert abs(dominant_freq(heard, rate) - 700) < 20
    decoded = [w for w in bs.dumps_wavs() if "dec" in os.path.basename(w)]
    assert decoded, "baresip wrote no decoded audio: %s" % bs.dumps_wavs()
    data, rate = read_wav(decoded[-1])
    assert abs(dominant_freq(data[len(data) // 3:], rate) - 1000) < 20


def test_rtp_echo_comes_back_intact(phones, tmp_path):
    noise = str(tmp_path / "noise.wav")
    sent = set(roundtrip(f, g711.ULAW) for f in frames(write_noise_wav(noise)))
    # the mic path (echo canceller, gate, AGC) off: what is sent must be the source's frames, bit for bit
    alice = phones.add("alice", audio={"source": noise, "sink": "heard.wav", "aec": False, "agc": False,
                                       "noise_gate": False}, media={"codecs": ["PCMU"]})
    port = free_port()
    proc = peers.sipp_background(["-sn", "uas", "-p", str(port), "-m", "1", "-rtp_echo", "-timeout", "30s",
                                  "-timeout_error"], cwd=str(tmp_path))
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        alice.ev("MakeCall", target="sip:echo@127.0.0.1:%d" % port)
        assert alice.wait(lambda: alice.state() == "Active", 10), alice.tail()
        time.sleep(3.0)
        alice.ev("HangupCall")
        assert alice.wait(lambda: alice.state() == "-", 5), alice.tail()
    finally:
        rc, out, err = peers.finish(proc, 10)
    assert rc == 0, out[-2000:] + err[-2000:]
    phones.close()
    pcm, _rate = read_wav(os.path.join(alice.dir, "heard.wav"))
    heard = [f for f in frames(pcm) if any(f)]
    assert len(heard) > 100, "about 3 s of echoed audio expected, got %d frames" % len(heard)
    intact = sum(f in sent for f in heard)
    # every echoed frame is one we sent, decoded bit-exactly (concealment may fill a gap at the very end)
    assert intact >= len(heard) - 2, "%d of %d echoed frames were not ours" % (len(heard) - intact, len(heard))


def test_sipp_rtp_stream_is_decoded_bit_exactly(phones, tmp_path):
    rng = random.Random(3)
    payload = bytes(rng.choice([b for b in range(256) if b not in (0x7F, 0xFF)]) for _ in range(160 * 100))
    # sipp 3.6 streams the file's bytes as they are (a RIFF header would be sent as audio): raw mu-law
    raw = tmp_path / "stream.ulaw"
    raw.write_bytes(payload)
    media = ('  <nop><action><exec rtp_stream="%s,1,0"/></action></nop>\n'
             '  <pause milliseconds="3000"/>' % raw)
    scen = tmp_path / "stream.xml"
    scen.write_text(peers.uac_scenario(media, port="[auto_media_port]"))
    bob = phones.add("bob", audio={"source": "silence", "sink": "heard.wav"},
                     features={"auto_answer": True, "auto_answer_delay_ms": 0})
    proc = peers.sipp_background(["-sf", str(scen), "127.0.0.1:%d" % bob.port, "-m", "1",
                                  "-timeout", "30s", "-timeout_error"], cwd=str(tmp_path))
    rc, out, err = peers.finish(proc, 20)
    assert rc == 0, out[-2000:] + err[-2000:]
    assert bob.wait(lambda: bob.state() == "-", 5), bob.tail()
    phones.close()
    expected = []
    for i in range(0, len(payload), 160):
        dec = bytearray(320)
        g711.decode(g711.ULAW, payload[i:i + 160], dec, 160)
        expected.append(bytes(dec))
    exp = set(expected)
    pcm, _rate = read_wav(os.path.join(bob.dir, "heard.wav"))
    heard = [f for f in frames(pcm) if any(f)]
    got = [f for f in heard if f in exp]
    assert len(set(got)) >= 98, "%d of 100 streamed frames came out bit-exact" % len(set(got))
    # what is left is the jitter buffer's concealment after the stream stopped (3 fading repeats at most)
    assert len(heard) - len(got) <= 3
    # and in order: the frames heard follow the file
    idx = [expected.index(f) for f in got]
    assert idx == sorted(idx)


def test_sipp_rfc4733_captures_become_digits(phones, tmp_path):
    caps = "/usr/share/sip-tester"
    digits = "159#*0"
    names = {"#": "pound", "*": "star"}
    media = "\n".join('  <nop><action><exec play_pcap_audio="%s/dtmf_2833_%s.pcap"/></action></nop>\n'
                      '  <pause milliseconds="700"/>' % (caps, names.get(d, d)) for d in digits)
    scen = tmp_path / "dtmf.xml"
    scen.write_text(peers.uac_scenario(media))
    bob = phones.add("bob", features={"auto_answer": True, "auto_answer_delay_ms": 0})
    proc = peers.sipp_background(["-sf", str(scen), "127.0.0.1:%d" % bob.port, "-m", "1",
                                  "-timeout", "30s", "-timeout_error"], cwd=str(tmp_path))
    rc, out, err = peers.finish(proc, 20)
    assert rc == 0, out[-2000:] + err[-2000:]
    got = "".join(l.split()[-1] for l in bob.lines if l.startswith("dtmf "))
    assert got == digits, bob.tail()
