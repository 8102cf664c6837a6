# The call's media: RTP/RTCP sockets on the lines reserved at boot, SDP offer/answer into a MediaSession, media flow
# and direction, mute, DTMF (RFC 4733, SIP INFO, in-band), tones and recording. The frame pump is ua/audio.py.
# Actions are the functions named after the table's, called as Action(ph, session, arg, evargs).
from uphone.compat import ticks_add
from uphone.engine import ERR_FAILED
from uphone.sip import sdp
# the media modules load with the phone, not at a call's first packet: imported mid-call their objects land between
# the call's short-lived ones and leave the heap in pieces too small for a datagram buffer (seen in a 96 KB heap)
from uphone.media.session import MediaSession, RX_MAX, line_bytes
from uphone.media.tones import ToneGen
from uphone.media import dtmf
from uphone import table as T
from uphone.ua import audio, request

_DIGITS = "0123456789*#ABCD"


def _has_sdp(msg):
    return bool(msg.body) and "application/sdp" in (msg.get("Content-Type") or "").lower()


def init(ph):
    ph.rtp_next = ph.cfg["media"].get("rtp_port_min", 20000)
    _make_lines(ph)
    if srtp_mode(ph) != "off":
        import uphone.media.srtp  # noqa: F401  (loaded with the phone, not mid-call: see the imports above)


# -- SDP ---------------------------------------------------------------------------------------------------------
def codecs(ph):
    m = ph.cfg.get("media", {})
    cs = list(m.get("codecs", ["PCMU", "PCMA"]))
    if "G722" in cs and audio.rate(ph) != 16000:
        cs.remove("G722")     # wideband only when the board's audio runs at 16 kHz
    return cs


def dtmf_pt(ph):
    return 101 if ph.cfg.get("media", {}).get("dtmf", "rfc4733") == "rfc4733" else None


def _sdp_ids(ph, c):
    if c.sdp is None:
        c.sdp = [ph.now & 0x7FFFFFFF or 1, 0]
    c.sdp[1] += 1          # every new SDP we send gets a higher o= version (RFC 3264 5)
    return c.sdp


def srtp_mode(ph):
    return ph.cfg.get("media", {}).get("srtp", "off")


def _offer_keys(c):
    """The SDES keys of our offer (RFC 4568 7.1.4): a call that runs SRTP re-offers the key it sends with, so a
    hold or resume does not rekey; before that, the keys of our first offer (one per suite, kept for the call)."""
    n = c.neg
    if n is not None and n.srtp_tx is not None:
        return [sdp.Crypto(1, n.srtp_tx.suite, n.srtp_tx.key, n.srtp_tx.salt)]
    keys = c.extra.get("sdes")
    if keys is None:
        keys = c.extra["sdes"] = [sdp.new_crypto(i + 1, sdp.SRTP_SUITES[i]) for i in range(len(sdp.SRTP_SUITES))]
    return keys


def make_offer(ph, s):
    c = s.ctx
    sid, ver = _sdp_ids(ph, c)
    mode = srtp_mode(ph)
    return sdp.make_offer(ph.local_ip, c.rtp_port, codecs=codecs(ph), dtmf_pt=dtmf_pt(ph),
                          ptime=ph.cfg.get("media", {}).get("ptime", 20), direction=c.local_dir,
                          sess_id=sid, sess_version=ver, srtp=mode,
                          crypto=_offer_keys(c) if mode != "off" else None)


def offer_refused(ph, msg):
    """Why the SDP offer of an incoming INVITE cannot be answered (no common codec, SRTP required by one side and
    not offered or not enabled by the other), or None. Checked before the phone rings: such a call is refused with
    488 at once (RFC 3261 13.3.1.3) rather than ringing and failing when answered."""
    if not _has_sdp(msg):
        return None                 # no offer: ours goes in the 200 (RFC 3261 13.2.1)
    try:
        sdp.answer(msg.body, ph.local_ip, 0, codecs(ph), dtmf_pt=dtmf_pt(ph), srtp=srtp_mode(ph))
    except (sdp.SdpError, ValueError) as e:
        return str(e)
    return None


def _offer_request(s, ev):
    """The request whose offer (or lack of one) this transition answers: the event's INVITE/UPDATE, or the
    ringing call's INVITE when the user accepts it."""
    msg = (ev or {}).get("msg")
    if msg is not None and msg.is_request and msg.method in ("INVITE", "UPDATE"):
        return msg
    return s.ctx.invite_stx and s.ctx.invite


def GenerateLocalSDP(ph, s, arg, ev):
    c = s.ctx
    if getattr(c, "answer", None) is not None:
        c.local_sdp, c.answer = c.answer, None
        return 0
    req = _offer_request(s, ev)
    if req is not None and req.method == "UPDATE" and not _has_sdp(req):
        return 0                # an UPDATE without an offer (a session refresh) is answered without SDP
    # our initial offer, or our offer in the 200 to an INVITE that had none (answer comes in the ACK)
    c.local_sdp = make_offer(ph, s)
    return 0


def StoreRemoteSDP(ph, s, arg, ev):
    msg = (ev or {}).get("msg")
    if msg is not None and msg.is_request and msg.method in ("INVITE", "UPDATE") and not _has_sdp(msg):
        # no offer (RFC 3261 13.2.1): ours goes in the 200, the answer in the ACK (UPDATE: a refresh)
        if msg.method == "INVITE":
            s.ctx.extra["ack_answer"] = True
        return 0
    if msg is None or not _has_sdp(msg):
        ph.last_sdp_error = 488
        return ERR_FAILED
    s.ctx.remote_sdp = msg.body
    return 0


def StoreAnswerFromACK(ph, s, arg, ev):
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
        ph.emit("err %s %s: hanging up" % (s.sid, e))
        ph.post(s, T.E_HangupCall)
        return 0
    c.remote_sdp = msg.body
    apply_negotiation(ph, s, neg)
    if c.extra.pop("flow_on_ack", False):
        return _start_flow(ph, s)
    return 0


def NegotiateSDPAsUAC(ph, s, arg, ev):
    c = s.ctx
    try:
        neg = sdp.process_answer(c.local_sdp, c.remote_sdp)
        if neg.srtp_tx is None and srtp_mode(ph) == "mandatory":
            raise sdp.SdpError("SRTP is mandatory and the answer has none")
    except (sdp.SdpError, ValueError) as e:
        if (ev or {}).get("status", 0) // 100 == 2:
            # a 2xx whose answer we cannot use (a bad or missing crypto line, no common codec): the dialog exists,
            # so it is ACKed (RFC 3261 13.2.2.4) and then ended with BYE; no media in between (RFC 3264 has no
            # way to refuse an answer)
            ph.emit("err %s SDP answer refused: %s: hanging up" % (s.sid, e))
            c.extra["answer_refused"] = True
            ph.post(s, T.E_HangupCall)
            return 0
        ph.emit("err %s SDP answer refused: %s" % (s.sid, e))
        return ERR_FAILED
    return apply_negotiation(ph, s, neg)


def NegotiateSDPAsUAS(ph, s, arg, ev):
    c = s.ctx
    req = _offer_request(s, ev)
    if req is not None and not _has_sdp(req):
        return 0                # nothing offered: GenerateLocalSDP makes the offer instead
    sid, ver = _sdp_ids(ph, c)
    try:
        # an SRTP call keeps the key it sends with when the offer's suite allows (no rekey on hold/resume)
        c.answer, neg = sdp.answer(c.remote_sdp, ph.local_ip, c.rtp_port, codecs(ph),
                                   dtmf_pt=dtmf_pt(ph), direction=c.local_dir,
                                   sess_id=sid, sess_version=ver, srtp=srtp_mode(ph),
                                   crypto=c.neg.srtp_tx if c.neg is not None else None)
    except (sdp.SdpError, ValueError) as e:
        ph.last_sdp_error = 488
        ph.emit("err %s SDP offer refused: %s" % (s.sid, e))
        return ERR_FAILED
    return apply_negotiation(ph, s, neg)


def StoreNegotiatedConfig(ph, s, arg, ev):
    # a 200 after 183 may carry a different answer; otherwise the early negotiation stands
    msg = (ev or {}).get("msg")
    if msg is not None and msg.body and msg.body != s.ctx.remote_sdp:
        s.ctx.remote_sdp = msg.body
        return NegotiateSDPAsUAC(ph, s, arg, ev)
    return 0 if s.ctx.neg is not None else ERR_FAILED


def apply_negotiation(ph, s, neg):
    c = s.ctx
    m = c.media
    if m is None or c.neg is None or c.neg.codec != neg.codec or c.neg.pt != neg.pt:
        muted = m is not None and m.muted       # a muted call's new codec stays muted (MuteCall is ours)
        if m is not None:
            m.close()
        rate = 16000 if neg.codec == "G722" else 8000
        mc = ph.cfg.get("media", {})
        m = MediaSession(codec=neg.codec, pt=neg.pt, te_pt=neg.te_pt, rate=rate, ptime=neg.ptime,
                         dtmf_mode=mc.get("dtmf", "rfc4733"), rxbuf=c.rtp_buf,
                         rtp_timeout_ms=mc.get("rtp_timeout_s", 30) * 1000,
                         jitter_min_ms=mc.get("jitter_min_ms", 40), jitter_max_ms=mc.get("jitter_max_ms", 200),
                         mem=ph._line_mem[c.line])
        if muted:
            m.mute(True)
        c.media = m
    old = c.neg
    c.neg = neg
    _set_srtp(ph, s, m, neg)
    if old is not None and (old.remote_addr != neg.remote_addr or old.remote_port != neg.remote_port):
        _rtp_unpin(ph, s)              # the far end moved its media: learn the new peer
    if neg.remote_port:
        m.set_remote(neg.remote_addr, neg.remote_port)
    m.set_direction(neg.direction)
    return 0


def _set_srtp(ph, s, m, neg):
    """The call's SRTP contexts for what was agreed: kept while both keys stay (their rollover counters and replay
    windows go on), new ones when either key changed (a re-INVITE that rekeys, RFC 4568 7.1.4), none for plain
    RTP. Contexts are made at setup, never per packet (~4 KB of heap each on the 32-bit runtime)."""
    tx, rx = neg.srtp_tx, neg.srtp_rx
    keys = (tx.key + tx.salt, rx.key + rx.salt) if tx is not None and rx is not None else None
    if keys == getattr(m, "srtp_keys", None):
        return
    m.srtp_keys = keys
    if keys is None:
        m.set_srtp(None, None)
        return
    from uphone.media.srtp import Srtp
    m.set_srtp(Srtp(tx.key, tx.salt, tx.suite, lifetime=tx.lifetime),
               Srtp(rx.key, rx.salt, rx.suite, lifetime=rx.lifetime))
    ph.emit("media %s srtp %s" % (s.sid, tx.suite))


# -- lines: the calls that can have media at once, each with its buffers reserved when the phone starts --------------
def _make_lines(ph):
    mc = ph.cfg.get("media", {})
    rate = 16000 if "G722" in codecs(ph) else 8000
    n = line_bytes(rate, mc.get("jitter_max_ms", 200))
    ph._line_mem = [memoryview(bytearray(n)) for _ in range(ph.cfg.get("features", {}).get("lines", 2))]
    ph._line_used = [False] * len(ph._line_mem)


def take_line(ph):
    """-> the index of a free line, now in use, or -1 when every line is busy."""
    used = ph._line_used
    for i in range(len(used)):
        if not used[i]:
            used[i] = True
            return i
    return -1


def line_free(ph):
    return False in ph._line_used


# -- RTP sockets ---------------------------------------------------------------------------------------------------
def CreateMediaSession(ph, s, arg, ev):
    c = s.ctx
    mc = ph.cfg.get("media", {})
    lo, hi = mc.get("rtp_port_min", 20000), mc.get("rtp_port_max", 20100)
    span = max(2, (hi - lo) // 2 * 2)
    if c.line < 0:
        c.line = take_line(ph)
        if c.line < 0:
            ph.emit("err %s all %d lines are in use" % (s.sid, len(ph._line_mem)))
            return ERR_FAILED
        c.rtp_buf = ph._line_mem[c.line][:RX_MAX]     # RTP is read into this; the MediaSession parses it there
    for i in range(0, span, 2):
        port = lo + (ph.rtp_next - lo + i) % span
        try:
            sock = _rtp_open(ph, s, port)
        except OSError:
            continue
        try:
            rtcp = ph.rt.udp_open(ph.local_ip, port + 1, lambda d, a, s=s: on_rtcp(ph, s, d, a))
        except OSError:
            ph.rt.udp_close(sock)
            continue
        c.rtp_sock, c.rtcp_sock, c.rtp_port = sock, rtcp, port
        ph.rtp_next = lo + (port - lo + 2) % span
        return 0
    ph.emit("err %s no free RTP port in %d-%d" % (s.sid, lo, hi))
    return ERR_FAILED


def _rtp_open(ph, s, port):
    c = s.ctx
    c.rtp_peer = None
    return ph.rt.udp_open(ph.local_ip, port, lambda n, a, s=s: on_rtp(ph, s, n, a), c.rtp_buf)


def _rtp_unpin(ph, s):
    """Forget the RTP peer: the socket is opened again unconnected, so the next valid packet sets the peer."""
    c = s.ctx
    if c.rtp_peer is None or c.rtp_sock is None:
        return
    ph.emit("media %s peer %s:%d released" % (s.sid, c.rtp_peer[0], c.rtp_peer[1]))
    ph.rt.udp_close(c.rtp_sock)
    c.rtp_sock = None
    try:
        c.rtp_sock = _rtp_open(ph, s, c.rtp_port)
    except OSError as e:
        ph.emit("err %s RTP port %d lost: %s" % (s.sid, c.rtp_port, e))


def rebind(ph):
    """Our address changed: every call's RTP/RTCP sockets open again on it, same ports, unconnected (the peer is
    learnt anew)."""
    rt = ph.rt
    for s in ph.sessions():
        c = s.ctx
        if getattr(c, "rtp_sock", None) is None:
            continue
        rt.udp_close(c.rtp_sock)
        rt.udp_close(c.rtcp_sock)
        c.rtp_sock = _rtp_open(ph, s, c.rtp_port)
        c.rtcp_sock = rt.udp_open(ph.local_ip, c.rtp_port + 1, lambda d, a, s=s: on_rtcp(ph, s, d, a))


def on_rtp(ph, s, n, src):
    c = s.ctx
    m = c.media
    if m is None:
        return
    m.rx(c.rtp_buf, n, src, ph.rt.now())
    # the first valid packet fixes the peer (the SDP address, or where it really sends from: symmetric RTP,
    # RFC 4961): the socket is connected to it, so other senders are dropped and reads allocate nothing
    if c.rtp_peer is None and m.rx_packets and m.remote == src and c.rtp_sock is not None:
        ph.rt.udp_connect(c.rtp_sock, src)
        c.rtp_peer = src
        ph.emit("media %s peer %s:%d" % (s.sid, src[0], src[1]))
    if c.mix is not None:
        c.mix.rtp(ph, s, n)         # a bridge sends it on to its other leg at once (ua/bridge.py)


def on_rtcp(ph, s, data, src):
    m = s.ctx.media
    if m is not None:
        m.rtcp_rx(data, ph.rt.now())


def release(ph, s):
    """Everything media a session holds goes: recording, MediaSession, sockets, its line."""
    c = s.ctx
    if c is None:
        return
    if c.mix is not None:
        c.mix = None        # a conference or bridge it was in sees it gone (their progress hooks)
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
        ph.emit("media %s done sent=%d received=%d lost=%d jitter_ms=%.1f mos=%.2f" % (
            s.sid, st.get("sent", 0), st.get("received", 0), st.get("lost", 0), st.get("jitter_ms", 0.0),
            st.get("mos", 0.0)))
        c.media.close()
        c.media = None
    for attr in ("rtp_sock", "rtcp_sock"):
        sock = getattr(c, attr, None)
        if sock is not None:
            ph.rt.udp_close(sock)
            setattr(c, attr, None)
    c.rtp_peer = None
    if c.line >= 0:
        ph._line_used[c.line] = False
        c.line = -1
        c.rtp_buf = None


def CleanupResources(ph, s, arg, ev):
    release(ph, s)
    return 0


ReleaseAllResources = CleanupResources
StartMediaCleanup = CleanupResources
StartEmergencyCleanup = CleanupResources


# -- media flow ----------------------------------------------------------------------------------------------------
def _start_flow(ph, s):
    c = s.ctx
    if c.media is None:
        return ERR_FAILED
    if not c.flowing:
        c.flowing = True
        c.next_frame = ph.now
        c.rtcp_next = ticks_add(ph.now, 5000)
        ph.emit("media %s %s pt=%d to %s:%d %s" % (s.sid, c.neg.codec, c.neg.pt, c.neg.remote_addr,
                                                   c.neg.remote_port, c.neg.direction))
    return 0


def StartMediaFlow(ph, s, arg, ev):
    c = s.ctx
    c.tone = None
    if c.extra.get("answer_refused"):
        return 0                          # the call is being ended (NegotiateSDPAsUAC): no media
    if c.media is None and c.extra.get("ack_answer"):
        c.extra["flow_on_ack"] = True     # delayed offer: media starts when the ACK brings the answer
        return 0
    return _start_flow(ph, s)


StartMediaSession = StartMediaFlow
StartEarlyMedia = StartMediaFlow


def StopMediaFlow(ph, s, arg, ev):
    s.ctx.flowing = False
    return 0


def RestoreMediaFlow(ph, s, arg, ev):
    c = s.ctx
    if c.extra.get("answer_refused"):
        return 0
    if c.media is not None and c.neg is not None:
        c.media.set_direction(c.neg.direction)
    return _start_flow(ph, s)


def UpdateMediaDirection(ph, s, arg, ev):
    c = s.ctx
    c.local_dir = arg[0]
    if c.media is not None:
        c.media.set_direction(arg[0])
    return 0


def MuteLocalAudio(ph, s, arg, ev):
    if s.ctx.media is None:
        return ERR_FAILED
    s.ctx.media.mute(True)
    return 0


def UnmuteLocalAudio(ph, s, arg, ev):
    if s.ctx.media is None:
        return ERR_FAILED
    s.ctx.media.mute(False)
    return 0


def AttemptMediaRecovery(ph, s, arg, ev):
    c = s.ctx
    if c.media is None or c.neg is None:
        return ERR_FAILED
    # only the receive side lets go: media from any source is taken and answered (symmetric RTP) from the next
    # packet on. What we send keeps going where it went: a far end behind NAT that is only quiet (silence
    # suppression) still listens at its learnt address, not at the private one its SDP names
    _rtp_unpin(ph, s)
    c.flowing = True
    return 0


# -- DTMF ----------------------------------------------------------------------------------------------------------
def SendDTMFTone(ph, s, arg, ev):
    digits = (ev or {}).get("digits") or (ev or {}).get("digit") or ""
    if not digits or any(d not in _DIGITS for d in digits):
        ph.emit("err %s SendDTMF needs digits=<0-9*#A-D>" % s.sid)
        return ERR_FAILED
    c = s.ctx
    if ph.cfg.get("media", {}).get("dtmf") == "info":
        for d in digits:
            if SendINFO(ph, s, None, {"digit": d}):
                return ERR_FAILED
        return 0
    if c.media is None:
        return ERR_FAILED
    c.media.send_dtmf(digits)
    return 0


def SendINFO(ph, s, arg, ev):
    # one digit as SIP INFO (application/dtmf-relay): the PBXs that take DTMF only in signalling
    digit = (ev or {}).get("digit") or (ev or {}).get("digits", "")[:1]
    if s.ctx.dialog is None or not digit:
        return ERR_FAILED
    if digit not in _DIGITS:
        ph.emit("err %s SendInfo needs digit=<0-9*#A-D>" % s.sid)     # refused as an action, not as an exception
        return ERR_FAILED
    req, dest = request.dialog_request(ph, s, "INFO", dtmf.info_body(digit), "application/dtmf-relay")
    ph.send_request(s, req, dest, "info")
    return 0


def dtmf_from_info(msg):
    """The digit an INFO carries, or None when its body is not one we read."""
    return dtmf.parse_info(msg.body, msg.get("Content-Type") or "")


def ReportDTMF(ph, s, arg, ev):
    d = (ev or {}).get("digit")
    if not d:
        return ERR_FAILED
    s.ctx.digits += d
    ph.emit("dtmf %s %s" % (s.sid, d))
    return 0


# -- tones and recording -------------------------------------------------------------------------------------------
def StartTone(ph, s, arg, ev):
    g = ToneGen(audio.rate(ph))
    g.start(ph.cfg.get("features", {}).get("tones_country", "eu"), arg[0])
    s.ctx.tone = g
    s.ctx.next_frame = ph.now
    return 0


def StopTone(ph, s, arg, ev):
    s.ctx.tone = None
    return 0


def start_call_waiting_tone(ph, s):
    g = ToneGen(audio.rate(ph))
    g.start(ph.cfg.get("features", {}).get("tones_country", "eu"), "callwaiting")
    s.ctx.cw_tone = g


def StartRecordingMedia(ph, s, arg, ev):
    c = s.ctx
    if c.media is None or c.recording is not None:
        return ERR_FAILED
    path = (ev or {}).get("file") or ("%s/rec-%s.wav" % (ph.base_dir or ".", s.sid))
    try:
        f = open(path, "wb")
    except OSError as e:
        ph.emit("err %s cannot record to %s: %s" % (s.sid, path, e))
        return ERR_FAILED
    c.recording = f
    c.media.start_recording(f)
    ph.emit("rec %s %s" % (s.sid, path))
    return 0


def StopRecordingMedia(ph, s, arg, ev):
    c = s.ctx
    if c.recording is None:
        return ERR_FAILED
    c.media.stop_recording()
    c.recording.close()
    c.recording = None
    return 0
