# uPhone: one call's media, sans-I/O: 20 ms PCM frames <-> codec <-> RTP/RTCP, jitter buffer, DTMF, recording.
# The caller owns sockets and the clock: tx()/play() once per 20 ms frame, rx()/rtcp_rx() per datagram.
from uphone.compat import TYPE_CHECKING, const, ticks_diff
from uphone.media import dtmf, g711, jitter, rtcp, rtp

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

_FRAME_TS = const(160)     # RTP timestamp units per 20 ms: 8000 Hz clock for G.711 and G.722 (RFC 3551 4.5.2)
_ENC = const(160)          # encoded bytes per 20 ms: G.711 1 byte/sample at 8 kHz, G.722 64 kbit/s
_MASK30 = const(0x3FFFFFFF)  # received RTP timestamps count modulo 2**30: small ints on MicroPython
_TAG = const(10)           # SRTP's authentication tag (AES_CM_128_HMAC_SHA1_80; _32's is 4): room after a packet
_RXBUF = const(12 + 64 + 3 * _ENC + _TAG)   # received packets up to this size are read in and sliced, no allocation
RX_MAX = _RXBUF                      # the size of a receive buffer handed in as rxbuf
_SRTCP = const(14)         # SRTCP's E flag + index (4) and tag (10) after an RTCP packet (RFC 3711 3.4)
_RXK = const(4)            # payload views cached per packet: up to 80 ms of audio in one packet
_DIRS = {"sendrecv": 3, "sendonly": 1, "recvonly": 2, "inactive": 0}
_FLOW = ("flow",)
_TIMEOUT = ("rtp_timeout",)
_SILENT = ("rtp_silent",)  # half the RTP timeout without media: the far end may send from elsewhere now
_BYE = ("rtcp_bye",)
_NONE = ()


def mos(loss_pct, delay_ms, ie=0, bpl=25.1):
    """E-model (G.107, simplified): R = 93.2 - Id - Ie_eff, MOS from R. ie/bpl per codec (G.113)."""
    d = delay_ms
    idd = 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)
    ppl = max(0.0, loss_pct)
    ie_eff = ie + (95 - ie) * ppl / (ppl + bpl)
    r = 93.2 - idd - ie_eff
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


def line_bytes(rate, jitter_max_ms):
    """The bytes one call's media keeps its buffers in (the `mem` of a MediaSession at `rate`, the receive buffer
    first). A phone reserves one block this size per line when it starts, so a call's kilobytes are never sought in
    a heap that calls and SIP messages have left in pieces."""
    fb = rate // 25
    return _RXBUF + (jitter_max_ms // 20 + 2) * _ENC + 2 * fb + 12 + 3 * _ENC + _TAG


class MediaSession:
    def __init__(self, codec, pt, te_pt=None, rate=8000, ptime=20, dtmf_mode="rfc4733", rtp_timeout_ms=30000,
                 cname=b"uphone", rxbuf=None, jitter_min_ms=40, jitter_max_ms=200, mem=None):
        name = codec.upper()
        if name == "G722":
            from uphone.media import g722
            self._law = -1
            self._g722e, self._g722d = g722.Encoder(), g722.Decoder()
            want = 16000
        else:
            self._law = g711.codec_for(name)
            want = 8000
        if rate != want:
            raise ValueError("media: %s runs at %d Hz, not %d" % (name, want, rate))
        self.codec, self.pt, self.te_pt, self.rate = name, pt, te_pt, rate
        self.dtmf_mode = dtmf_mode
        self.rtp_timeout_ms = rtp_timeout_ms
        self.samples = rate // 50                            # per 20 ms frame
        fb = 2 * self.samples
        self._k = max(1, min(3, ptime // 20))                # 20 ms frames per packet (ptime 20/40/60)
        self.ptime = 20 * self._k
        # mem (a line's block, see line_bytes): the receive buffer, then the jitter buffer's frames, the decoded
        # frame and the packet being built are carved out of it; without one they are allocated here
        jn = (jitter_max_ms // 20 + 2) * _ENC + fb
        if mem is not None:
            if rxbuf is None:
                rxbuf = mem[:_RXBUF]
            jmem = mem[_RXBUF:_RXBUF + jn]
            self._out = mem[_RXBUF + jn:_RXBUF + jn + fb]
            sbuf = mem[_RXBUF + jn + fb:_RXBUF + jn + fb + 12 + _ENC * self._k + _TAG]
        else:
            jmem = sbuf = None
            self._out = bytearray(fb)
        # the packet buffer has room for SRTP's tag after the longest packet: protect() works in place
        self.sender = rtp.RtpSender(pt, None, 8000, _ENC * self._k + _TAG, sbuf)
        self._pl = [self.sender.payload[i * _ENC:(i + 1) * _ENC] for i in range(self._k)]
        ts = self.sender.ts                                  # RTP timestamp of the current frame, as two 16-bit
        self._th = ts >> 16                                  # halves: small ints on MicroPython (a 32-bit value
        self._tl = ts & 0xFFFF                               # is a heap-allocated big int there)
        self._pth = self._ptl = 0                            # timestamp of the packet being filled
        self._kf = 0
        self._mark = True                                    # marker on the first audio packet of a talkspurt
        self.rtcp = rtcp.Rtcp(self.sender.ssrc, 8000, cname)
        # slots for the deepest buffer allowed plus one frame either side: the buffer is 160 bytes a slot
        self.jb = jitter.JitterBuffer(jitter_max_ms // 20 + 2, _ENC, _FRAME_TS, 8000, fb, jitter_min_ms,
                                      jitter_max_ms, 60, jmem)
        self._info = rtp.RtpInfo()
        # a received packet: the socket reads straight into rxbuf when the caller hands one in, else rx copies in
        self._rxb = rxbuf if rxbuf is not None and len(rxbuf) == _RXBUF else bytearray(_RXBUF)
        self._rxmv = memoryview(self._rxb)
        self._rxo = [-1] * _RXK                              # payload views into _rxb by chunk: offset, length, view
        self._rxn = [0] * _RXK
        self._rxv = [self._rxmv] * _RXK
        self._out_mv = memoryview(self._out)
        self._zero = jitter.zeros(fb)
        self._tone = None                                    # in-band DTMF frame, made when the first digit goes
        self._rec_tx = None  # type: Any  # what we sent, made when recording starts
        self._ev = bytearray(4)
        self._dec = self._decode
        self._rfc = te_pt is not None and dtmf_mode != "inband"
        self.dsend = dtmf.DtmfSender(_FRAME_TS, 20)
        self.drecv = dtmf.DtmfReceiver()
        self.tones = dtmf.ToneSender(rate)
        self.detector = dtmf.InbandDetector(rate) if (te_pt is None or dtmf_mode == "inband") else None
        self.remote = None
        self.muted = False
        self._send = self._recv = True
        self.direction = "sendrecv"
        self._events = []
        self._flow = False
        self._last_rx = None
        self._timed_out = False
        self._silent = False
        self._sent_since = False
        self.rx_packets = 0
        self._wav = None  # type: Any  # media.wav.WavWriter while recording
        self.closed = False
        self._stx = self._srx = None  # type: Any  # media.srtp.Srtp contexts (set_srtp)
        self._sview = self._sbuf = None
        self._svn = -1
        self.srtp_suite = None
        self.srtp_keys = None                                # (ours, theirs) the contexts were made from (ua/media)
        self.srtp_refused = 0                                # received packets SRTP refused (auth, replay, bad)

    # -- control ---------------------------------------------------------------------------------------
    def set_remote(self, addr, port):
        self.remote = (addr, port) if (addr and port) else None

    def set_direction(self, d):
        f = _DIRS.get(d)
        if f is None:
            raise ValueError("media: bad direction %r" % (d,))
        recv = bool(f & 2)
        if recv and not self._recv:
            self.jb.reset()                                  # resuming: nothing buffered is current any more
            self._last_rx = None                             # and the RTP timeout starts over
            self._silent = False
        self._send, self._recv, self.direction = bool(f & 1), recv, d

    def mute(self, flag):
        self.muted = bool(flag)

    def set_srtp(self, tx, rx):
        """SRTP/SRTCP (RFC 3711) from now on: tx protects what we send, rx checks and decrypts what comes (each a
        media.srtp.Srtp for one master key); (None, None): plain RTP. Per packet nothing is allocated: both work in
        place, tx in the sender's packet buffer (room for the tag after it), rx in the receive buffer."""
        self._stx, self._srx = tx, rx
        self.srtp_suite = tx.suite if tx is not None else None
        self._sbuf = self.sender._buf
        self._svn = -1

    def _protect(self, pkt):
        # the RTP packet just built in the sender's buffer -> the SRTP packet (a cached view while its length stays)
        n = self._stx.protect(self._sbuf, len(pkt))
        if n < 0:
            return None                                      # the key's lifetime used up: send nothing
        if n != self._svn:
            self._sview = self.sender._mv[:n]
            self._svn = n
        return self._sview

    def send_dtmf(self, digits):
        (self.dsend if self._rfc else self.tones).send(digits)

    def events(self):
        ev = self._events
        if not ev:
            return _NONE
        self._events = []
        return ev

    def _tick(self, now):
        if not self._recv or self.closed:
            return
        if self._last_rx is None:
            self._last_rx = now
        elif self.rtp_timeout_ms and not self._timed_out:
            quiet = ticks_diff(now, self._last_rx)
            if quiet >= self.rtp_timeout_ms:
                self._timed_out = True
                self._events.append(_TIMEOUT)
            elif not self._silent and quiet >= self.rtp_timeout_ms >> 1:
                # the caller may have fixed the peer (a connected socket drops other senders): its media moving
                # to another address (NAT rebinding, a relay failing over) would be lost until the timeout
                self._silent = True
                self._events.append(_SILENT)

    # -- sending ---------------------------------------------------------------------------------------
    def _clock(self):
        """The RTP timestamp of the next frame (32 bits: a big int on MicroPython, so only for RTCP)."""
        return (self._th << 16) | self._tl

    def tx(self, pcm, now):
        """Encode one 20 ms frame; -> RTP packet (memoryview, valid until the next tx) or None."""
        self._tick(now)
        th = self._th
        tl = self._tl
        n = tl + _FRAME_TS                                   # the RTP clock runs in real time, sending or not
        if n > 0xFFFF:
            self._th = (th + 1) & 0xFFFF
            n &= 0xFFFF
        self._tl = n
        if not self._send or self.closed:
            if self._wav is not None:
                self._rec_tx[:] = self._zero
            return None
        if self._rfc and self.dsend.active():
            if self.dsend.step(self._ev, (th << 16) | tl):
                self._kf = 0
                self._mark = True
                self._sent_since = True
                if self._wav is not None:
                    self._rec_tx[:] = self._zero
                pkt = self.sender.build(self._ev, 4, 0, self.dsend.marker, self.te_pt, self.dsend.ts)
                return pkt if self._stx is None else self._protect(pkt)
        src = pcm
        if self.tones.active() and self.tones.fill(self._tone or self._tone_buf(), self.samples):
            src = self._tone                                 # in-band digit: the tone replaces the microphone
        elif self.muted:
            src = self._zero
        dst = self._pl[self._kf]
        if self._law < 0:
            self._g722e.encode(src, self.samples, dst)
        else:
            g711.encode(self._law, src, dst, self.samples)
        if self._wav is not None:
            self._rec_tx[:] = src
        if self._kf == 0:
            self._pth = th
            self._ptl = tl
        self._kf += 1
        if self._kf < self._k:
            return None
        self._kf = 0
        mark = self._mark
        self._mark = False
        self._sent_since = True
        pkt = self.sender.build_at(_ENC * self._k, mark, self._pth, self._ptl)
        return pkt if self._stx is None else self._protect(pkt)

    def clock16(self):
        """The RTP timestamp of our next frame as (high, low) 16-bit halves (small ints on MicroPython)."""
        return self._th, self._tl

    def forward(self, n, pt, ts_hi, ts_lo, marker):
        """Send n payload bytes already in self.sender.payload, put there from another call's packet (the phone
        bridging two calls relays RTP without decoding it): our SSRC and sequence, the timestamp given in 16-bit
        halves. -> memoryview of the packet (valid until the next build), or None while we may not send."""
        if not self._send or self.closed:
            return None
        self._sent_since = True
        pkt = self.sender.build_at(n, marker, ts_hi, ts_lo, pt)
        return pkt if self._stx is None else self._protect(pkt)      # an SRTP leg: protected as tx() does

    def _tone_buf(self):
        self._tone = bytearray(2 * self.samples)
        return self._tone

    # -- receiving -------------------------------------------------------------------------------------
    def rx(self, data, n, src, now):
        inf = self._info
        if self._srx is not None and not self.closed:
            # SRTP: authenticated, replay-checked and decrypted in place before anything reads it (RFC 3711 3.3);
            # a refused packet is dropped here and counted (the context counts auth failures and replays)
            if data is not self._rxb:
                if n > _RXBUF:
                    self.srtp_refused += 1
                    return
                self._rxmv[:n] = data
                data = self._rxb
            n = self._srx.unprotect(data, n)
            if n < 0:
                self.srtp_refused += 1
                return
        if self.closed or not inf.parse(data, n):
            return
        pt = inf.pt
        if pt != self.pt and pt != self.te_pt:
            return                                           # comfort noise or a codec we did not negotiate
        st = self.rtcp.stats
        if st.ssrc_lo != inf.ssrc_lo or st.ssrc_hi != inf.ssrc_hi:
            st.reset(inf.ssrc, inf.seq)
        valid = st.update(inf.seq)
        if not valid and not st.probation:
            return
        self.rx_packets += 1
        self._last_rx = now
        self._timed_out = self._silent = False
        if valid:
            if not self._flow:
                self._flow = True
                self._events.append(_FLOW)
            r = self.remote
            if src is not None and (r is None or r[0] != src[0] or r[1] != src[1]):
                self.remote = (src[0], src[1])               # symmetric RTP (RFC 4961): answer where it came from
        if pt == self.te_pt:
            d = self.drecv.feed(data, inf.offset, inf.length, inf.ts) if valid else None
            if d is not None:
                self._events.append(("dtmf", d))
            return
        ts = inf.ts30
        st.jitter(now, ts)
        if not self._recv:
            return
        off = inf.offset
        ln = inf.length
        if data is self._rxb or (n <= _RXBUF and len(data) == n):
            # the packet is in our own buffer (read there, or copied in: only the destination is sliced, no
            # allocation) and the jitter buffer gets a cached view of its payload: the same offset and length
            # each packet in steady state
            if data is not self._rxb:
                self._rxmv[:n] = data
            k = 0
            while ln > 0:
                c = ln if ln < _ENC else _ENC
                if k < _RXK:
                    if self._rxo[k] != off or self._rxn[k] != c:
                        self._rxo[k] = off
                        self._rxn[k] = c
                        self._rxv[k] = self._rxmv[off:off + c]
                    self.jb.put(inf.seq, ts, self._rxv[k], c, now)
                else:
                    self.jb.put(inf.seq, ts, self._rxmv[off:off + c], c, now)
                k += 1
                off += c
                ln -= c
                ts = ts + _FRAME_TS if ts <= _MASK30 - _FRAME_TS else ts - _MASK30 + _FRAME_TS - 1   # mod 2**30
            return
        mv = memoryview(data)
        while ln > 0:
            c = ln if ln < _ENC else _ENC
            self.jb.put(inf.seq, ts, mv[off:off + c], c, now)
            off += c
            ln -= c
            ts = (ts + _FRAME_TS) & _MASK30

    def _decode(self, payload, n, out):
        if self._law < 0:
            got = 2 * self._g722d.decode(payload, n, out)
        else:
            g711.decode(self._law, payload, out, n)
            got = 2 * n
        for i in range(got, len(out)):                       # a short (10 ms) packet: pad with silence
            out[i] = 0

    def play(self, now):
        """-> memoryview of one 20 ms frame of int16 LE PCM at self.rate (valid until the next play)."""
        self._tick(now)
        out = self._out
        if not self._recv or self.closed:
            out[:] = self._zero
        elif self.jb.pop(out, self._dec) == jitter.FRAME and self.detector is not None:
            d = self.detector.feed(out, self.samples)
            if d is not None:
                self._events.append(("dtmf", d))
        if self._wav is not None:
            self._record(out)
        return self._out_mv

    # -- RTCP ------------------------------------------------------------------------------------------
    def rtcp_build(self, now):
        """Compound SR (when we sent RTP since the last report) or RR, with SDES CNAME."""
        if self.closed:
            return None
        s = self.sender
        sent, self._sent_since = self._sent_since, False
        return self._protect_rtcp(self.rtcp.build(now, self._clock(), s.packets, s.octets, sent))

    def rtcp_bye(self, now):
        return self._protect_rtcp(self.rtcp.build_bye(now))

    def _protect_rtcp(self, pkt):
        # SRTCP in place in the report's buffer (rtcp.Rtcp keeps 14 bytes of room after it); once per ~5 s
        if self._stx is None or pkt is None:
            return pkt
        n = self._stx.protect_rtcp(self.rtcp.buf, len(pkt))
        return memoryview(self.rtcp.buf)[:n] if n > 0 else None

    def rtcp_rx(self, data, now):
        if self.closed:
            return
        n = len(data)
        if self._srx is not None:
            data = bytearray(data)                           # a report every few seconds: a copy to work in
            n = self._srx.unprotect_rtcp(data, n)
            if n < 0:
                self.srtp_refused += 1
                return
        if self.rtcp.rx(data, n, now) & 4:
            self._events.append(_BYE)

    # -- recording -------------------------------------------------------------------------------------
    def start_recording(self, f):
        from uphone.media.wav import WavWriter
        self._wav = WavWriter(f, self.rate)
        self._rec_tx = bytearray(2 * self.samples)

    def stop_recording(self):
        if self._wav is not None:
            self._wav.close()
            self._wav = None

    def _record(self, rx):
        # both directions mixed with saturation, in place in _rec_tx (tx() refills it every frame)
        m = self._rec_tx
        for j in range(0, len(m), 2):
            a = m[j] | (m[j + 1] << 8)
            b = rx[j] | (rx[j + 1] << 8)
            v = (a - 0x10000 if a & 0x8000 else a) + (b - 0x10000 if b & 0x8000 else b)
            v = 32767 if v > 32767 else (-32768 if v < -32768 else v)
            m[j] = v & 0xFF
            m[j + 1] = (v >> 8) & 0xFF
        self._wav.write(m)

    # -- stats -----------------------------------------------------------------------------------------
    def stats(self):
        st = self.rtcp.stats
        jb = self.jb
        lost = max(0, st.lost()) if st.ssrc is not None and not st.probation else 0
        expected = st.received + lost
        loss_pct = 100.0 * (lost + jb.late) / expected if expected else 0.0
        rtt = self.rtcp.rtt_ms
        delay = (rtt / 2 if rtt else 0.0) + jb.delay_ms() + self.ptime
        # G.113: G.711 Ie=0, Bpl=25.1 with PLC. G.722's wideband Ie lives on another (R=129) scale; we use 0 here.
        return {"sent": self.sender.packets, "received": self.rx_packets, "lost": lost,
                "jitter_ms": st.jitter_ts() * 1000.0 / 8000, "rtt_ms": rtt, "late": jb.late,
                "concealed": jb.concealed, "duplicates": jb.duplicates, "delay_ms": jb.delay_ms(),
                "target_ms": jb.target_ms, "loss_pct": loss_pct, "mos": mos(loss_pct, delay),
                "peer_lost": self.rtcp.peer_lost, "peer_fraction": self.rtcp.peer_fraction,
                "srtp": self.srtp_suite, "srtp_refused": self.srtp_refused,
                "srtp_auth_failed": self._srx.auth_failed if self._srx is not None else 0,
                "srtp_replayed": self._srx.replayed if self._srx is not None else 0}

    def close(self):
        self.stop_recording()
        self.jb.reset()
        self.closed = True
