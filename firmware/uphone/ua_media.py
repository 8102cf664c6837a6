# Media side of the phone: RTP sockets, SDP offer/answer into a MediaSession, the 20 ms frame pump (audio device
# <-> codec <-> RTP), tones, DTMF and recording. Mixed into uphone.phone.Phone.
from uphone import table as T
from uphone.compat import ticks_diff, ticks_add
from uphone.engine import ERR_FAILED
from uphone.sip import sdp
# the media modules load with the phone, not at a call's first packet: imported mid-call their objects land between
# the call's short-lived ones and leave the heap in pieces too small for a datagram buffer (seen in a 96 KB heap)
from uphone.media.session import MediaSession, RX_MAX, line_bytes
from uphone.media.tones import ToneGen
from uphone.media import aec

_DIGITS = "0123456789*#ABCD"


def _has_sdp(msg):
    return bool(msg.body) and "application/sdp" in (msg.get("Content-Type") or "").lower()
_FRAME_MS = 20
_NO_AUDIO = {}  # type: dict


class Silence:
    """Audio source/sink when the phone has no audio device (tests, headless sim)."""

    def readinto(self, buf):
        for i in range(len(buf)):
            buf[i] = 0
        return len(buf)

    def write(self, buf):
        return len(buf)


class MediaActions:
    audio_src = None
    audio_sink = None
    _bufs = None
    voice = False       # the device's mic processing (uphone.media.aec.MicPath), made by set_audio; False: off

    # -- audio devices ---------------------------------------------------------------------------------
    def set_audio(self, src, sink):
        self.audio_src, self.audio_sink = src, sink
        # the mic path (echo canceller, gate, AGC; see config audio.*) is made with the device, not mid-call: its
        # kilobytes are best placed before calls have left the heap in pieces
        self.voice = aec.mic_path(self.cfg.get("audio", _NO_AUDIO), self.audio_rate(), src) or False

    def audio_lines(self):
        """`st` facts about the audio device (allocates; console only): its capture/playback counters where it
        keeps them, and the mic path's echo reference and echo return loss enhancement (uphone.media.aec)."""
        src, v = self.audio_src, self.voice
        if src is None or not (v or hasattr(src, "silent")):
            return []
        out = "audio"
        for k in ("frames_in", "silent", "dropped", "overrun"):
            x = getattr(src, k, None)
            if x is not None:
                out += " %s=%d" % (k, x)
        if v:
            st = v.proc.stats()
            out += " ref=%s erle_db=%.1f converged=%d" % (v.reference(), st["erle_db"], st["converged"])
        return [out]

    def audio_rate(self):
        return int(self.cfg.get("audio", _NO_AUDIO).get("rate", 8000))     # a shared {}: no dict per call

    def _frame_bufs(self, rate, zeros=0):
        # one preallocated frame per rate (zeros=1: a silent one that is never written, for calls we hold): the
        # frame pump never allocates (an int-keyed dict lookup; a "%d" attribute name would allocate a string)
        bufs = self._bufs
        if bufs is None:
            bufs = self._bufs = {}
        key = rate * 2 + zeros
        b = bufs.get(key)
        if b is None:
            b = bufs[key] = bytearray(rate // 1000 * _FRAME_MS * 2)
        return b

    def _resampler(self, c, m):
        """(media, mode, capture filter, playback filter, device frame in, codec frame, device frame out) for this
        call's MediaSession, made once per MediaSession. mode 0: the device runs at the codec's rate; 1: 16 kHz
        board, 8 kHz codec (decimate the microphone, interpolate the speaker); 2: the other way round."""
        r = getattr(c, "resample", None)
        if r is not None and r[0] is m:
            return r
        dev = self.audio_rate()
        if dev == m.rate:
            r = (m, 0, None, None, None, None, None)
        else:
            from uphone.media import resample
            fb = dev // 1000 * _FRAME_MS * 2
            mb = m.rate // 1000 * _FRAME_MS * 2
            if dev == 2 * m.rate:
                r = (m, 1, resample.Down(), resample.Up(), bytearray(fb), bytearray(mb), bytearray(fb))
            elif 2 * dev == m.rate:
                r = (m, 2, resample.Up(), resample.Down(), bytearray(fb), bytearray(mb), bytearray(fb))
            else:
                self.emit("err audio at %d Hz cannot carry %s at %d Hz: not resampled" % (dev, m.codec, m.rate))
                r = (m, 0, None, None, None, None, None)
        c.resample = r
        return r

    # -- SDP -------------------------------------------------------------------------------------------
    def codecs(self):
        m = self.cfg.get("media", {})
        cs = list(m.get("codecs", ["PCMU", "PCMA"]))
        if "G722" in cs and self.audio_rate() != 16000:
            cs.remove("G722")     # wideband only when the board's audio runs at 16 kHz
        return cs

    def dtmf_pt(self):
        return 101 if self.cfg.get("media", {}).get("dtmf", "rfc4733") == "rfc4733" else None

    def _sdp_ids(self, c):
        if c.sdp is None:
            c.sdp = [self.now & 0x7FFFFFFF or 1, 0]
        c.sdp[1] += 1          # every new SDP we send gets a higher o= version (RFC 3264 5)
        return c.sdp

    def make_offer(self, s):
        c = s.ctx
        sid, ver = self._sdp_ids(c)
        return sdp.make_offer(self.local_ip, c.rtp_port, codecs=self.codecs(), dtmf_pt=self.dtmf_pt(),
                              ptime=self.cfg.get("media", {}).get("ptime", 20), direction=c.local_dir,
                              sess_id=sid, sess_version=ver)

    def _offer_request(self, s, ev):
        """The request whose offer (or lack of one) this transition answers: the event's INVITE/UPDATE, or the
        ringing call's INVITE when the user accepts it."""
        msg = (ev or {}).get("msg")
        if msg is not None and msg.is_request and msg.method in ("INVITE", "UPDATE"):
            return msg
        return s.ctx.invite_stx and s.ctx.invite

    def a_GenerateLocalSDP(self, s, arg, ev):
        c = s.ctx
        if getattr(c, "answer", None) is not None:
            c.local_sdp, c.answer = c.answer, None
            return 0
        req = self._offer_request(s, ev)
        if req is not None and req.method == "UPDATE" and not _has_sdp(req):
            return 0                # an UPDATE without an offer (a session refresh) is answered without SDP
        # our initial offer, or our offer in the 200 to an INVITE that had none (answer comes in the ACK)
        c.local_sdp = self.make_offer(s)
        return 0

    def a_StoreRemoteSDP(self, s, arg, ev):
        msg = (ev or {}).get("msg")
        if msg is not None and msg.is_request and msg.method in ("INVITE", "UPDATE") and not _has_sdp(msg):
            # no offer (RFC 3261 13.2.1): ours goes in the 200, the answer in the ACK (UPDATE: a refresh)
            if msg.method == "INVITE":
                s.ctx.extra["ack_answer"] = True
            return 0
        if msg is None or not _has_sdp(msg):
            self.last_sdp_error = 488
            return ERR_FAILED
        s.ctx.remote_sdp = msg.body
        return 0

    def a_StoreAnswerFromACK(self, s, arg, ev):
        c = s.ctx
        if not c.extra.get("ack_answer"):
            return 0                # the usual ACK: the offer/answer was done in INVITE and 200
        c.extra["ack_answer"] = False
        msg = (ev or {}).get("msg")
        try:
            if msg is None or not _has_sdp(msg):
                raise sdp.SdpError("no SDP answer in the ACK")
            neg = sdp.process_answer(c.local_sdp, msg.body)
        except (sdp.SdpError, ValueError) as e:
            # RFC 3261 13.3.1.4: a UAS that cannot use the answer in the ACK ends the session with BYE
            self.emit("err %s %s: hanging up" % (s.sid, e))
            self.post(s, T.E_HangupCall)
            return 0
        c.remote_sdp = msg.body
        self.apply_negotiation(s, neg)
        if c.extra.pop("flow_on_ack", False):
            return self._start_flow(s)
        return 0

    def a_NegotiateSDPAsUAC(self, s, arg, ev):
        c = s.ctx
        try:
            neg = sdp.process_answer(c.local_sdp, c.remote_sdp)
        except (sdp.SdpError, ValueError) as e:
            self.emit("err %s SDP answer refused: %s" % (s.sid, e))
            return ERR_FAILED
        return self.apply_negotiation(s, neg)

    def a_NegotiateSDPAsUAS(self, s, arg, ev):
        c = s.ctx
        req = self._offer_request(s, ev)
        if req is not None and not _has_sdp(req):
            return 0                # nothing offered: GenerateLocalSDP makes the offer instead
        sid, ver = self._sdp_ids(c)
        try:
            c.answer, neg = sdp.answer(c.remote_sdp, self.local_ip, c.rtp_port, self.codecs(),
                                       dtmf_pt=self.dtmf_pt(), direction=c.local_dir,
                                       sess_id=sid, sess_version=ver)
        except (sdp.SdpError, ValueError) as e:
            self.last_sdp_error = 488
            self.emit("err %s SDP offer refused: %s" % (s.sid, e))
            return ERR_FAILED
        return self.apply_negotiation(s, neg)

    def a_StoreNegotiatedConfig(self, s, arg, ev):
        # a 200 after 183 may carry a different answer; otherwise the early negotiation stands
        msg = (ev or {}).get("msg")
        if msg is not None and msg.body and msg.body != s.ctx.remote_sdp:
            s.ctx.remote_sdp = msg.body
            return self.a_NegotiateSDPAsUAC(s, arg, ev)
        return 0 if s.ctx.neg is not None else ERR_FAILED

    def apply_negotiation(self, s, neg):
        c = s.ctx
        m = c.media
        if m is None or c.neg is None or c.neg.codec != neg.codec or c.neg.pt != neg.pt:
            muted = m is not None and m.muted       # a muted call's new codec stays muted (MuteCall is ours)
            if m is not None:
                m.close()
            rate = 16000 if neg.codec == "G722" else 8000
            mc = self.cfg.get("media", {})
            m = MediaSession(codec=neg.codec, pt=neg.pt, te_pt=neg.te_pt, rate=rate, ptime=neg.ptime,
                             dtmf_mode=mc.get("dtmf", "rfc4733"), rxbuf=c.rtp_buf,
                             rtp_timeout_ms=mc.get("rtp_timeout_s", 30) * 1000,
                             jitter_min_ms=mc.get("jitter_min_ms", 40), jitter_max_ms=mc.get("jitter_max_ms", 200),
                             mem=self._line_mem[c.line])
            if muted:
                m.mute(True)
            c.media = m
        old = c.neg
        c.neg = neg
        if old is not None and (old.remote_addr != neg.remote_addr or old.remote_port != neg.remote_port):
            self._rtp_unpin(s)              # the far end moved its media: learn the new peer
        if neg.remote_port:
            m.set_remote(neg.remote_addr, neg.remote_port)
        m.set_direction(neg.direction)
        return 0

    # -- lines: the calls that can have media at once, each with its buffers reserved when the phone starts ----------
    def _make_lines(self):
        mc = self.cfg.get("media", {})
        rate = 16000 if "G722" in self.codecs() else 8000
        n = line_bytes(rate, mc.get("jitter_max_ms", 200))
        self._line_mem = [memoryview(bytearray(n)) for _ in range(self.cfg.get("features", {}).get("lines", 2))]
        self._line_used = [False] * len(self._line_mem)

    def take_line(self):
        """-> the index of a free line, now in use, or -1 when every line is busy."""
        for i in range(len(self._line_used)):
            if not self._line_used[i]:
                self._line_used[i] = True
                return i
        return -1

    def line_free(self):
        return False in self._line_used

    # -- RTP sockets ---------------------------------------------------------------------------------
    def a_CreateMediaSession(self, s, arg, ev):
        c = s.ctx
        mc = self.cfg.get("media", {})
        lo, hi = mc.get("rtp_port_min", 20000), mc.get("rtp_port_max", 20100)
        span = max(2, (hi - lo) // 2 * 2)
        if c.line < 0:
            c.line = self.take_line()
            if c.line < 0:
                self.emit("err %s all %d lines are in use" % (s.sid, len(self._line_mem)))
                return ERR_FAILED
            c.rtp_buf = self._line_mem[c.line][:RX_MAX]     # RTP is read into this; the MediaSession parses it there
        for i in range(0, span, 2):
            port = lo + (self._rtp_next - lo + i) % span
            try:
                sock = self._rtp_open(s, port)
            except OSError:
                continue
            try:
                rtcp = self.rt.udp_open(self.local_ip, port + 1, lambda d, a, s=s: self.on_rtcp(s, d, a))
            except OSError:
                self.rt.udp_close(sock)
                continue
            c.rtp_sock, c.rtcp_sock, c.rtp_port = sock, rtcp, port
            self._rtp_next = lo + (port - lo + 2) % span
            return 0
        self.emit("err %s no free RTP port in %d-%d" % (s.sid, lo, hi))
        return ERR_FAILED

    def _rtp_open(self, s, port):
        c = s.ctx
        c.rtp_peer = None
        return self.rt.udp_open(self.local_ip, port, lambda n, a, s=s: self.on_rtp(s, n, a), c.rtp_buf)

    def _rtp_unpin(self, s):
        """Forget the RTP peer: the socket is opened again unconnected, so the next valid packet sets the peer."""
        c = s.ctx
        if c.rtp_peer is None or c.rtp_sock is None:
            return
        self.emit("media %s peer %s:%d released" % (s.sid, c.rtp_peer[0], c.rtp_peer[1]))
        self.rt.udp_close(c.rtp_sock)
        c.rtp_sock = None
        try:
            c.rtp_sock = self._rtp_open(s, c.rtp_port)
        except OSError as e:
            self.emit("err %s RTP port %d lost: %s" % (s.sid, c.rtp_port, e))

    def on_rtp(self, s, n, src):
        c = s.ctx
        m = c.media
        if m is None:
            return
        m.rx(c.rtp_buf, n, src, self.rt.now())
        # the first valid packet fixes the peer (the SDP address, or where it really sends from: symmetric RTP,
        # RFC 4961): the socket is connected to it, so other senders are dropped and reads allocate nothing
        if c.rtp_peer is None and m.rx_packets and m.remote == src and c.rtp_sock is not None:
            self.rt.udp_connect(c.rtp_sock, src)
            c.rtp_peer = src
            self.emit("media %s peer %s:%d" % (s.sid, src[0], src[1]))

    def on_rtcp(self, s, data, src):
        m = s.ctx.media
        if m is not None:
            m.rtcp_rx(data, self.rt.now())

    def release_media(self, s):
        c = s.ctx
        if c is None:
            return
        c.flowing = False
        c.tone = None
        c.resample = None
        if c.recording is not None:
            if c.media is not None:
                c.media.stop_recording()
            c.recording.close()
            c.recording = None
        if c.media is not None:
            st = c.media.stats()
            self.emit("media %s done sent=%d received=%d lost=%d jitter_ms=%.1f mos=%.2f" % (
                s.sid, st.get("sent", 0), st.get("received", 0), st.get("lost", 0), st.get("jitter_ms", 0.0),
                st.get("mos", 0.0)))
            c.media.close()
            c.media = None
        for attr in ("rtp_sock", "rtcp_sock"):
            sock = getattr(c, attr, None)
            if sock is not None:
                self.rt.udp_close(sock)
                setattr(c, attr, None)
        c.rtp_peer = None
        if c.line >= 0:
            self._line_used[c.line] = False
            c.line = -1
            c.rtp_buf = None

    def a_CleanupResources(self, s, arg, ev):
        self.release_media(s)
        return 0

    a_ReleaseAllResources = a_CleanupResources
    a_StartMediaCleanup = a_CleanupResources
    a_StartEmergencyCleanup = a_CleanupResources

    # -- media flow ---------------------------------------------------------------------------------
    def _start_flow(self, s):
        c = s.ctx
        if c.media is None:
            return ERR_FAILED
        if not c.flowing:
            c.flowing = True
            c.next_frame = self.now
            c.rtcp_next = ticks_add(self.now, 5000)
            self.emit("media %s %s pt=%d to %s:%d %s" % (s.sid, c.neg.codec, c.neg.pt, c.neg.remote_addr,
                                                        c.neg.remote_port, c.neg.direction))
        return 0

    def a_StartMediaFlow(self, s, arg, ev):
        c = s.ctx
        c.tone = None
        if c.media is None and c.extra.get("ack_answer"):
            c.extra["flow_on_ack"] = True     # delayed offer: media starts when the ACK brings the answer
            return 0
        return self._start_flow(s)

    a_StartMediaSession = a_StartMediaFlow
    a_StartEarlyMedia = a_StartMediaFlow

    def a_StopMediaFlow(self, s, arg, ev):
        s.ctx.flowing = False
        return 0

    def a_RestoreMediaFlow(self, s, arg, ev):
        c = s.ctx
        if c.media is not None and c.neg is not None:
            c.media.set_direction(c.neg.direction)
        return self._start_flow(s)

    def a_UpdateMediaDirection(self, s, arg, ev):
        c = s.ctx
        c.local_dir = arg[0]
        if c.media is not None:
            c.media.set_direction(arg[0])
        return 0

    def a_MuteLocalAudio(self, s, arg, ev):
        if s.ctx.media is None:
            return ERR_FAILED
        s.ctx.media.mute(True)
        return 0

    def a_UnmuteLocalAudio(self, s, arg, ev):
        if s.ctx.media is None:
            return ERR_FAILED
        s.ctx.media.mute(False)
        return 0

    def a_AttemptMediaRecovery(self, s, arg, ev):
        c = s.ctx
        if c.media is None or c.neg is None:
            return ERR_FAILED
        c.media.set_remote(c.neg.remote_addr, c.neg.remote_port)   # forget a learnt symmetric-RTP address
        self._rtp_unpin(s)
        c.flowing = True
        return 0

    # -- DTMF ---------------------------------------------------------------------------------------
    def a_SendDTMFTone(self, s, arg, ev):
        digits = (ev or {}).get("digits") or (ev or {}).get("digit") or ""
        if not digits or any(d not in _DIGITS for d in digits):
            self.emit("err %s SendDTMF needs digits=<0-9*#A-D>" % s.sid)
            return ERR_FAILED
        c = s.ctx
        if self.cfg.get("media", {}).get("dtmf") == "info":
            for d in digits:
                if self.a_SendINFO(s, None, {"digit": d}):
                    return ERR_FAILED
            return 0
        if c.media is None:
            return ERR_FAILED
        c.media.send_dtmf(digits)
        return 0

    def a_ReportDTMF(self, s, arg, ev):
        d = (ev or {}).get("digit")
        if not d:
            return ERR_FAILED
        s.ctx.digits += d
        self.emit("dtmf %s %s" % (s.sid, d))
        return 0

    # -- tones and recording ----------------------------------------------------------------------
    def a_StartTone(self, s, arg, ev):
        g = ToneGen(self.audio_rate())
        g.start(self.cfg.get("features", {}).get("tones_country", "eu"), arg[0])
        s.ctx.tone = g
        s.ctx.next_frame = self.now
        return 0

    def a_StopTone(self, s, arg, ev):
        s.ctx.tone = None
        return 0

    def start_call_waiting_tone(self, s):
        g = ToneGen(self.audio_rate())
        g.start(self.cfg.get("features", {}).get("tones_country", "eu"), "callwaiting")
        s.ctx.cw_tone = g

    def a_StartRecordingMedia(self, s, arg, ev):
        c = s.ctx
        if c.media is None or c.recording is not None:
            return ERR_FAILED
        path = (ev or {}).get("file") or ("%s/rec-%s.wav" % (self.base_dir or ".", s.sid))
        try:
            f = open(path, "wb")
        except OSError as e:
            self.emit("err %s cannot record to %s: %s" % (s.sid, path, e))
            return ERR_FAILED
        c.recording = f
        c.media.start_recording(f)
        self.emit("rec %s %s" % (s.sid, path))
        return 0

    def a_StopRecordingMedia(self, s, arg, ev):
        c = s.ctx
        if c.recording is None:
            return ERR_FAILED
        c.media.stop_recording()
        c.recording.close()
        c.recording = None
        return 0

    # -- the frame pump (runs every 20 ms from tick) -------------------------------------------------
    def media_deadline(self):
        d = None
        for s in self._sessions:
            c = s.ctx
            if c is not None and (c.flowing or c.tone is not None):
                if d is None or ticks_diff(c.next_frame, d) < 0:
                    d = c.next_frame
        return d

    def media_tick(self, now):
        if self.audio_src is None:
            self.audio_src = Silence()
        if self.audio_sink is None:
            self.audio_sink = Silence()
        # one call owns the handset's mic and speaker: the newest one we are not holding (or playing a tone);
        # calls we hold keep their RTP going with silence and are not heard (RFC 6337: no media to a held party)
        owner = None
        for s in self._sessions:
            c = s.ctx
            if c is not None and (c.tone is not None or (c.flowing and c.local_dir in ("sendrecv", "recvonly"))):
                owner = s
        for s in self._sessions:
            c = s.ctx
            if c is None or not (c.flowing or c.tone is not None):
                continue
            n = 0
            while ticks_diff(now, c.next_frame) >= 0 and n < 5:   # catch up at most 100 ms after a stall
                self._frame(s, c, now, s is owner)
                c.next_frame = ticks_add(c.next_frame, _FRAME_MS)
                n += 1
            if ticks_diff(now, c.next_frame) >= 0:
                c.next_frame = ticks_add(now, _FRAME_MS)
            if c.media is not None and c.flowing:
                for e in c.media.events():
                    if e[0] == "dtmf":
                        self.dispatch(s, T.E_DTMFReceived, {"digit": e[1]})
                    elif e[0] == "rtp_timeout":
                        self.emit("err %s no RTP for %d s" % (s.sid, self.cfg.get("media", {}).get("rtp_timeout_s", 30)))
                        self.dispatch(s, T.E_RTPTimeout)
                    elif e[0] == "flow":
                        self.dispatch(s, T.E_MediaFlowEstablished)
                    if s not in self._sessions or c.media is None:
                        break

    def _frame(self, s, c, now, owner=True):
        m = c.media
        if c.flowing and m is not None:
            r = self._resampler(c, m)
            if not owner:
                # a call we hold: silence out, what comes in is drained and not played
                buf = self._frame_bufs(m.rate, 1)
                pkt = m.tx(buf, now)
                if pkt is not None and m.remote is not None:
                    self.rt.sendto(c.rtp_sock, pkt, m.remote)
                m.play(now)
            elif r[1]:
                # the board's rate differs from the codec's: device frame -> filter -> codec frame, and back
                dev = r[4]
                self.audio_src.readinto(dev)
                if self.voice:
                    self.voice.mic(dev)         # echo canceller (reference: the frame played last), gate, AGC
                buf = r[5]
                r[2].process(dev, len(dev) >> 1, buf)
            else:
                buf = self._frame_bufs(m.rate)
                self.audio_src.readinto(buf)
                if self.voice:
                    self.voice.mic(buf)
            if owner:
                cw = getattr(c, "cw_tone", None)
                pkt = m.tx(buf, now)
                if pkt is not None and m.remote is not None:
                    self.rt.sendto(c.rtp_sock, pkt, m.remote)
                pcm = m.play(now)
                if r[1]:
                    out = r[6]
                    r[3].process(pcm, len(pcm) >> 1, out)
                    pcm = out
                if cw is not None and cw.active:
                    cw.fill(pcm, len(pcm) // 2)       # the waiting call's beep replaces this frame's audio
                self.audio_sink.write(pcm)
                if self.voice:
                    self.voice.played(pcm)
            # no RTCP to an RFC 2543 hold address (c=0.0.0.0)
            if ticks_diff(now, c.rtcp_next) >= 0 and m.remote is not None and m.remote[0] != "0.0.0.0":
                c.rtcp_next = ticks_add(now, 5000)
                pkt = m.rtcp_build(now)
                if pkt:
                    self.rt.sendto(c.rtcp_sock, pkt, (m.remote[0], m.remote[1] + 1))
        elif c.tone is not None:
            buf = self._frame_bufs(self.audio_rate())
            c.tone.fill(buf, len(buf) // 2)
            self.audio_sink.write(buf)
