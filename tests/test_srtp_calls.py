# SRTP in calls (RFC 3711, keys by SDES, RFC 4568; media.srtp off|optional|mandatory): phone processes on CPython
# and on the frozen MicroPython (96 KB heap) call each other with SRTP, tones heard both ways, hold/resume keeping
# the keys, nothing allocated per packet on MicroPython; a scripted far end (this test, over real UDP sockets)
# shows what is on the wire is encrypted, gets the phone's tone by decrypting with the key the phone answered with,
# and has a tampered and a replayed packet dropped and counted; a mandatory phone refuses a plain call with 488.
# Interop with baresip's srtp module (libre/libsrtp's, not ours) is in tests/test_srtp_baresip.py.
import socket
import time
import wave

import pytest

from tests.proc import free_port, free_range, phones  # noqa: F401  (phones is a fixture)
from uphone.media import g711, rtp
from uphone.media.goertzel import dominant_freq
from uphone.media.srtp import Srtp
from uphone.sip import message as M
from uphone.sip import parse as P
from uphone.sip import sdp

SUITE = "AES_CM_128_HMAC_SHA1_80"


def _heard(path, last_s=1.0):
    with wave.open(path) as w:
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    return data[-int(rate * last_s) * 2:], rate


def test_srtp_call_between_phones(phones):
    srtp = {"srtp": "mandatory"}
    a = phones.add("alice", media=srtp, audio={"source": "tone:1000", "sink": "heard.wav"})
    b = phones.add("bob", media=srtp, audio={"source": "tone:440", "sink": "heard.wav"},
                   features={"auto_answer": True, "auto_answer_delay_ms": 0})
    assert a.ev("MakeCall", target=b.uri).startswith("ok c1"), a.tail()
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    assert a.wait_line("Active MediaFlowEstablished", 5) and b.wait_line("Active MediaFlowEstablished", 5)
    for p in (a, b):
        m = p.st()["media"]["c1"]
        assert m["srtp"] == SUITE and m["srtp_refused"] == "0", (p.name, m)
    if phones.runtime == "micropython":
        # nothing per packet: what the GC must reclaim in a steady SRTP call is RTCP's reports (a few hundred bytes
        # every 5 s) and the console's own lines, well under the bench's 2 KB/s
        a.cmd("mem hold")
        a.wait(lambda: False, 3)
        garbage = int(a.cmd("mem release")[0].split("garbage=")[1].split()[0])
        assert garbage < 3 * 2048, garbage
    assert a.ev("HoldCall").startswith("ok c1 OnHold")
    assert b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "recvonly", 5), b.tail()
    assert a.ev("ResumeCall").startswith("ok c1 Resuming")
    assert a.wait(lambda: a.state() == "Active", 5) and b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "sendrecv", 5)
    a.wait(lambda: False, 1.5)
    for p in (a, b):
        # the re-INVITEs offered and answered the same keys: the contexts (ROC, replay window) went on
        assert p.count("media c1 srtp %s" % SUITE) == 1, p.tail()
        m = p.st()["media"]["c1"]
        assert m["srtp_refused"] == "0" and int(m["received"]) > 50, (p.name, m)
    assert a.ev("HangupCall").startswith("ok c1 Terminating")
    assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())
    phones.close()
    for p, hz in ((a, 440), (b, 1000)):
        pcm, rate = _heard(p.dir + "/heard.wav")
        assert abs(dominant_freq(pcm, rate) - hz) < 20, (p.name, dominant_freq(pcm, rate))


@pytest.mark.parametrize("caller,callee", [("mandatory", "off"), ("off", "mandatory")])
def test_mandatory_srtp_and_plain_rtp_do_not_connect(phones, caller, callee):
    a = phones.add("alice", media={"srtp": caller})
    b = phones.add("bob", media={"srtp": callee}, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    assert a.ev("MakeCall", target=b.uri).startswith("ok c1"), a.tail()
    assert a.wait_line("resp c1 invite 488", 10), a.tail()       # refused before ringing (RFC 3261 13.3.1.3)
    assert b.wait_line("refused call from", 5) and not b.saw("ring c1"), b.tail()
    assert a.wait(lambda: a.state() == "-", 5), a.tail()


# -- a far end of our own: SIP and SRTP over real sockets, driven by this test ------------------------------------------
class FarEnd:
    """A minimal SIP UA on 127.0.0.1 (UDP) that calls a phone with an SDES offer and streams SRTP at it."""

    def __init__(self):
        self.sip = _udp(free_port())
        self.port = self.sip.getsockname()[1]
        base = free_range(2)
        self.rtp, self.rtcp = _udp(base), _udp(base + 1)
        self.rtp_port = base
        self.key = sdp.new_crypto(1, SUITE)
        self.call_id = "srtp-test-%d@127.0.0.1" % time.time_ns()

    def request(self, method, uri, cseq, to, body=b"", branch="1"):
        hs = [("Via", "SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bKsrtp%s%d" % (self.port, branch, cseq)),
              ("Max-Forwards", "70"), ("From", "<sip:tester@127.0.0.1:%d>;tag=far1" % self.port), ("To", to),
              ("Call-ID", self.call_id), ("CSeq", "%d %s" % (cseq, method)),
              ("Contact", "<sip:tester@127.0.0.1:%d>" % self.port)]
        if body:
            hs.append(("Content-Type", "application/sdp"))
        return M.make_request(method, uri, hs, body).to_bytes()

    def response(self, want, method, timeout=10):
        """The first response to `method` with a status of at least `want` (earlier ones and repeats skipped)."""
        end = time.time() + timeout
        while time.time() < end:
            self.sip.settimeout(max(0.05, end - time.time()))
            try:
                data, _ = self.sip.recvfrom(65536)
            except socket.timeout:
                break
            msg = P.parse(data)
            if not msg.is_request and msg.status >= want and msg.cseq_method == method:
                return msg
        raise AssertionError("no %d+ response to %s within %d s" % (want, method, timeout))

    def request_in(self, method, timeout=10):
        """The next request of `method` the phone sends us (others skipped)."""
        end = time.time() + timeout
        while time.time() < end:
            self.sip.settimeout(max(0.05, end - time.time()))
            try:
                data, _ = self.sip.recvfrom(65536)
            except socket.timeout:
                break
            msg = P.parse(data)
            if msg.is_request and msg.method == method:
                return msg
        raise AssertionError("no %s within %d s" % (method, timeout))

    def close(self):
        for s in (self.sip, self.rtp, self.rtcp):
            s.close()


def _udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    return s


def _tone(freq, n, start):
    import math
    out = bytearray(2 * n)
    for i in range(n):
        v = int(8000 * math.sin(2 * math.pi * freq * (start + i) / 8000))
        out[2 * i:2 * i + 2] = (v & 0xFFFF).to_bytes(2, "little")
    return out


def test_tampered_and_replayed_srtp_packets_are_dropped_and_counted(phones):
    bob = phones.add("bob", media={"srtp": "mandatory", "codecs": ["PCMU"]},
                     audio={"source": "tone:440", "sink": "heard.wav"},
                     features={"auto_answer": True, "auto_answer_delay_ms": 0})
    far = FarEnd()
    try:
        uri = "sip:bob@127.0.0.1:%d" % bob.port
        offer = sdp.make_offer("127.0.0.1", far.rtp_port, codecs=("PCMU",), dtmf_pt=None, srtp="mandatory",
                               crypto=[far.key])
        far.sip.sendto(far.request("INVITE", uri, 1, "<%s>" % uri, offer), ("127.0.0.1", bob.port))
        ok = far.response(200, "INVITE")
        assert ok.status == 200, ok.status
        neg = sdp.process_answer(offer, ok.body)
        assert neg.srtp_tx.key == far.key.key and neg.srtp_rx.suite == SUITE, neg
        to = ok.get("To")
        far.sip.sendto(far.request("ACK", uri, 1, to, branch="ack"), ("127.0.0.1", bob.port))
        bob_rtp = ("127.0.0.1", neg.remote_port)
        tx = Srtp(far.key.key, far.key.salt, SUITE)
        rx = Srtp(neg.srtp_rx.key, neg.srtp_rx.salt, SUITE)
        law = g711.codec_for("PCMU")
        sender = rtp.RtpSender(0, 0x1234ABCD, 8000, 160 + 10)
        buf = sender._buf
        far.rtp.setblocking(False)
        heard, raw_equal, got, kept = bytearray(), 0, 0, {}
        t0 = time.time()
        for i in range(150):                 # 3 s of a 1000 Hz tone, protected as a phone would
            g711.encode(law, _tone(1000, 160, 160 * i), sender.payload, 160)
            n = tx.protect(buf, len(sender.build_at(160, i == 0, (i * 160) >> 16, (i * 160) & 0xFFFF)))
            pkt = bytes(buf[:n])
            if i == 52:                      # a tampered copy first: one payload bit flipped, tag unchanged
                bad = bytearray(pkt)
                bad[40] ^= 0x01
                far.rtp.sendto(bytes(bad), bob_rtp)
            far.rtp.sendto(pkt, bob_rtp)
            kept[i] = pkt
            if i == 51:
                far.rtp.sendto(kept[50], bob_rtp)     # packet 50 again: a replay
            while True:                      # what bob sends: SRTP that only his key opens
                try:
                    data = bytearray(far.rtp.recv(2048))
                except BlockingIOError:
                    break
                plain = bytes(data)
                m = rx.unprotect(data, len(data))
                assert m > 0, m
                p = rtp.parse(data, m)
                if p[0] != 0:
                    continue
                raw_equal += plain[p[5]:p[5] + p[6]] == bytes(data[p[5]:p[5] + p[6]])
                out = bytearray(2 * p[6])
                g711.decode(law, data[p[5]:p[5] + p[6]], out, p[6])
                heard += out
                got += 1
            time.sleep(max(0.0, t0 + 0.02 * (i + 1) - time.time()))
        m = bob.st()["media"]["c1"]
        assert (m["srtp"], m["auth_failed"], m["replayed"], m["srtp_refused"]) == (SUITE, "1", "1", "2"), m
        assert m["received"] == "150", m                # every genuine packet taken, the two others not
        assert got > 100 and raw_equal == 0, (got, raw_equal)       # encrypted on the wire, every packet
        assert abs(dominant_freq(bytes(heard[-16000:]), 8000) - 440) < 20
        # bob's SRTCP opens with his key too (the first report comes 5 s into the call)
        far.rtcp.settimeout(max(0.1, t0 + 8 - time.time()))
        data = bytearray(far.rtcp.recv(2048))
        n = rx.unprotect_rtcp(data, len(data))
        assert n > 8 and data[1] in (200, 201), (n, bytes(data[:4]))        # SR or RR (RFC 3550 6.4)
        far.sip.sendto(far.request("BYE", uri, 2, to), ("127.0.0.1", bob.port))
        assert far.response(200, "BYE").status == 200
        assert bob.wait(lambda: bob.state() == "-", 5), bob.tail()
        phones.close()
    finally:
        phones.close(check=False)
        far.close()
    pcm, rate = _heard(bob.dir + "/heard.wav", 10.0)      # the whole call: 3 s of tone, then silence
    assert abs(dominant_freq(pcm, rate) - 1000) < 20, dominant_freq(pcm, rate)


def test_a_2xx_without_usable_srtp_is_acked_then_ended_with_bye(phones):
    alice = phones.add("alice", media={"srtp": "mandatory"})
    far = FarEnd()
    try:
        assert alice.ev("MakeCall", target="sip:far@127.0.0.1:%d" % far.port).startswith("ok c1"), alice.tail()
        inv = far.request_in("INVITE")
        assert b"RTP/SAVP" in inv.body and b"a=crypto:" in inv.body, inv.body
        # an answer from a peer that ignored the crypto lines: plain RTP/AVP, which RFC 4568 does not allow for an
        # RTP/SAVP offer; the dialog is up all the same
        plain = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                 "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" % far.rtp_port).encode()
        ok = M.make_response(inv, 200, "OK", to_tag="far2", body=plain,
                             headers=[("Contact", "<sip:far@127.0.0.1:%d>" % far.port),
                                      ("Content-Type", "application/sdp")])
        far.sip.sendto(ok.to_bytes(), ("127.0.0.1", alice.port))
        assert far.request_in("ACK").cseq_num == inv.cseq_num       # RFC 3261 13.2.2.4: every 2xx is ACKed
        bye = far.request_in("BYE")                                  # ... and then the call is ended
        far.sip.sendto(M.make_response(bye, 200, "OK").to_bytes(), ("127.0.0.1", alice.port))
        assert alice.wait_line("SDP answer refused", 5), alice.tail()
        assert alice.wait(lambda: alice.state() == "-", 5), alice.tail()
        assert not alice.saw("media c1 PCMU"), alice.tail()           # no media flowed in between
        far.rtp.settimeout(0.5)
        with pytest.raises(socket.timeout):
            far.rtp.recv(2048)                                       # not one RTP packet, plain or not
        phones.close()
    finally:
        phones.close(check=False)
        far.close()
