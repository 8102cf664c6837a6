# SRTP interop with baresip (its srtp module: SDES keys, RFC 4568, and libre's SRTP, RFC 3711; not our code): the
# phone calls baresip and baresip calls the phone, each side requiring SRTP (RTP/SAVP), and each hears the other's
# tone: the phone's heard.wav, baresip's decoded dump (sndfile). Phones on CPython and on the frozen MicroPython in a
# 96 KB heap; baresip on free loopback ports, started and stopped by the test.
import os
import time

import pytest

from tests import peers
from tests.proc import free_port, phones  # noqa: F401  (phones is a fixture)
from tests.test_interop_media import read_wav
from uphone.media.goertzel import dominant_freq


def _baresip(tmp_path, mediaenc):
    port = free_port()
    return peers.Baresip(tmp_path / "bs", "<sip:carol@127.0.0.1:%d>;regint=0;answermode=auto;audio_codecs=PCMU;"
                         "mediaenc=%s" % (port, mediaenc), port=port, tone_hz=700, modules=("srtp.so",)).start()


@pytest.mark.parametrize("direction,mode,mediaenc", [
    ("phone calls", "mandatory", "srtp-mand"),      # RTP/SAVP both ways
    ("baresip calls", "mandatory", "srtp-mand"),
    ("baresip calls", "optional", "srtp"),          # best effort: RTP/AVP with crypto lines (RFC 4568 + 3264)
])
def test_srtp_tones_both_ways_with_baresip(phones, tmp_path, direction, mode, mediaenc):
    bs = _baresip(tmp_path, mediaenc)
    try:
        # the mic path off: a steady tone is what the noise gate would learn as noise (see test_interop_media)
        alice = phones.add("alice", media={"srtp": mode, "codecs": ["PCMU"]},
                           audio={"source": "tone:1000", "sink": "heard.wav", "aec": False, "agc": False,
                                  "noise_gate": False},
                           features={"auto_answer": True, "auto_answer_delay_ms": 0})
        if direction == "phone calls":
            assert alice.ev("MakeCall", target="sip:carol@127.0.0.1:%d" % bs.port).startswith("ok c1")
        else:
            bs.command("dial", "sip:alice@127.0.0.1:%d" % alice.port)
        assert alice.wait(lambda: alice.state() == "Active", 10), alice.tail()
        assert alice.wait(lambda: bs.saw("CALL_ESTABLISHED"), 5), bs.events
        time.sleep(3.0)
        m = alice.st()["media"]["c1"]
        assert m["srtp"].startswith("AES_CM_128_HMAC_SHA1_"), m
        # nothing failed authentication or was replayed. baresip (libre) sends one RTCP APP "PING" in plain RTCP
        # (80 cc 00 03 ... PING PONG) when it calls, before its SRTP is in place; RFC 3711 3.4 makes SRTCP
        # mandatory, so the phone drops it, and counts it in srtp_refused
        assert (m["auth_failed"], m["replayed"]) == ("0", "0") and int(m["srtp_refused"]) <= 1, m
        assert int(m["received"]) > 100, m
        alice.ev("HangupCall")
        assert alice.wait(lambda: alice.state() == "-", 5), alice.tail()
        phones.close()
    finally:
        phones.close(check=False)
        bs.stop()
    pcm, rate = read_wav(os.path.join(alice.dir, "heard.wav"))
    assert abs(dominant_freq(pcm[-rate * 2 * 2:], rate) - 700) < 20      # baresip's tone, decrypted by the phone
    decoded = [w for w in bs.dumps_wavs() if "dec" in os.path.basename(w)]
    assert decoded, "baresip wrote no decoded audio: %s" % bs.dumps_wavs()
    data, rate = read_wav(decoded[-1])
    assert abs(dominant_freq(data[len(data) // 3:], rate) - 1000) < 20     # ours, decrypted by baresip
