# The handset's audio path: the 20 ms frame pump between the audio device and the calls' MediaSessions (resampled
# where the board's rate is not the codec's, the microphone through the echo canceller, gate and AGC), and tones
# while no media flows. Functions of the phone `ph`; the devices and frame buffers live on it (init()).
from uphone import table as T
from uphone.compat import ticks_diff, ticks_add
from uphone.media import aec, gain

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


def init(ph):
    ph.audio_src = None
    ph.audio_sink = None
    ph.frame_bufs = None
    ph.voice = False    # the device's mic processing (uphone.media.aec.MicPath), made by set_audio; False: off
    ph.mic_gain = gain.percent_to_q12(ph.cfg.get("audio", _NO_AUDIO).get("volume_mic", 70))     # media/gain.py


def status_lines(ph):
    """`st` facts about the audio device (allocates; console only): its capture/playback counters where it keeps
    them, and the mic path's echo reference and echo return loss enhancement (uphone.media.aec)."""
    src, v = ph.audio_src, ph.voice
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


def set_audio(ph, src, sink):
    ph.audio_src, ph.audio_sink = src, sink
    # the mic path (echo canceller, gate, AGC; see config audio.*) is made with the device, not mid-call: its
    # kilobytes are best placed before calls have left the heap in pieces
    ph.voice = aec.mic_path(ph.cfg.get("audio", _NO_AUDIO), rate(ph), src) or False


def mic_frame(ph, buf):
    # a captured frame: the user's mic level first (as an analog gain would be), then echo canceller, gate, AGC
    g = ph.mic_gain
    if g != gain.UNITY:
        gain.apply(buf, len(buf) >> 1, g)
    if ph.voice:
        ph.voice.mic(buf)         # reference: the frame played last (or the codec's loopback channel)


def rate(ph):
    return int(ph.cfg.get("audio", _NO_AUDIO).get("rate", 8000))     # a shared {}: no dict per call


def frame_buf(ph, r, zeros=0):
    # one preallocated frame per rate (zeros=1: a silent one that is never written, for calls we hold): the
    # frame pump never allocates (an int-keyed dict lookup; a "%d" attribute name would allocate a string)
    bufs = ph.frame_bufs
    if bufs is None:
        bufs = ph.frame_bufs = {}
    key = r * 2 + zeros
    b = bufs.get(key)
    if b is None:
        b = bufs[key] = bytearray(r // 1000 * _FRAME_MS * 2)
    return b


def resampler(ph, c, m):
    """(media, mode, capture filter, playback filter, device frame in, codec frame, device frame out) for this
    call's MediaSession, made once per MediaSession. mode 0: the device runs at the codec's rate; 1: 16 kHz
    board, 8 kHz codec (decimate the microphone, interpolate the speaker); 2: the other way round."""
    r = getattr(c, "resample", None)
    if r is not None and r[0] is m:
        return r
    dev = rate(ph)
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
            ph.emit("err audio at %d Hz cannot carry %s at %d Hz: not resampled" % (dev, m.codec, m.rate))
            r = (m, 0, None, None, None, None, None)
    c.resample = r
    return r


# -- the frame pump (runs every 20 ms from the phone's tick) ---------------------------------------------------------
def deadline(ph):
    d = None
    for s in ph.sessions():
        c = s.ctx
        if c is not None and c.mix is None and (c.flowing or c.tone is not None):
            if d is None or ticks_diff(c.next_frame, d) < 0:
                d = c.next_frame
    for x in ph.mixes:
        if d is None or ticks_diff(x.next_frame, d) < 0:
            d = x.next_frame
    return d


def send_rtcp(ph, c, m, now):
    """A call's RTCP report every 5 s (none to an RFC 2543 hold address, c=0.0.0.0)."""
    if ticks_diff(now, c.rtcp_next) >= 0 and m.remote is not None and m.remote[0] != "0.0.0.0":
        c.rtcp_next = ticks_add(now, 5000)
        pkt = m.rtcp_build(now)
        if pkt:
            ph.rt.sendto(c.rtcp_sock, pkt, (m.remote[0], m.remote[1] + 1))


def tick(ph, now):
    if ph.audio_src is None:
        ph.audio_src = Silence()
    if ph.audio_sink is None:
        ph.audio_sink = Silence()
    sessions = ph.sessions()
    # one call owns the handset's mic and speaker: a conference that is not held, else the newest call we are not
    # holding (or playing a tone); calls we hold keep their RTP going with silence and are not heard (RFC 6337: no
    # media to a held party). Calls in a conference or bridge are pumped by it.
    owner = None
    hand = False
    for x in ph.mixes:
        n = 0
        while ticks_diff(now, x.next_frame) >= 0 and n < 5:
            x.step(ph, now)
            x.next_frame = ticks_add(x.next_frame, _FRAME_MS)
            n += 1
        if ticks_diff(now, x.next_frame) >= 0:
            x.next_frame = ticks_add(now, _FRAME_MS)
        hand = hand or x.handset
    if ph.queue:
        ph.drain()          # what a step posted (a bridge's monitoring found a leg silent)
    for s in sessions:
        c = s.ctx
        if hand:
            break
        if c is not None and c.mix is None and (c.tone is not None or (
                c.flowing and c.local_dir in ("sendrecv", "recvonly"))):
            owner = s
    for s in sessions:
        c = s.ctx
        if c is None or not (c.flowing or c.tone is not None):
            continue
        n = 0
        while c.mix is None and ticks_diff(now, c.next_frame) >= 0 and n < 5:   # catch up at most 100 ms
            _frame(ph, s, c, now, s is owner)
            c.next_frame = ticks_add(c.next_frame, _FRAME_MS)
            n += 1
        if ticks_diff(now, c.next_frame) >= 0:
            c.next_frame = ticks_add(now, _FRAME_MS)
        if c.media is not None and c.flowing:
            for e in c.media.events():
                if e[0] == "dtmf":
                    ph.dispatch(s, T.E_DTMFReceived, {"digit": e[1]})
                elif e[0] == "rtp_timeout":
                    ph.emit("err %s no RTP for %d s" % (s.sid, ph.cfg.get("media", {}).get("rtp_timeout_s", 30)))
                    ph.dispatch(s, T.E_RTPTimeout)
                elif e[0] == "flow":
                    ph.dispatch(s, T.E_MediaFlowEstablished)
                elif e[0] == "rtp_silent":
                    # half the RTP timeout without media: the table's MediaError recovery lets the fixed peer
                    # go (ua/media.py AttemptMediaRecovery), so media from wherever the far end sends now is heard
                    ph.emit("media %s no RTP for %d ms" % (s.sid, c.media.rtp_timeout_ms >> 1))
                    ph.dispatch(s, T.E_MediaError)
                if s not in sessions or c.media is None:
                    break


def _frame(ph, s, c, now, owner=True):
    m = c.media
    if c.flowing and m is not None:
        r = resampler(ph, c, m)
        if not owner:
            # a call we hold: silence out, what comes in is drained and not played
            buf = frame_buf(ph, m.rate, 1)
            pkt = m.tx(buf, now)
            if pkt is not None and m.remote is not None:
                ph.rt.sendto(c.rtp_sock, pkt, m.remote)
            m.play(now)
        elif r[1]:
            # the board's rate differs from the codec's: device frame -> filter -> codec frame, and back
            dev = r[4]
            ph.audio_src.readinto(dev)
            mic_frame(ph, dev)
            buf = r[5]
            r[2].process(dev, len(dev) >> 1, buf)
        else:
            buf = frame_buf(ph, m.rate)
            ph.audio_src.readinto(buf)
            mic_frame(ph, buf)
        if owner:
            cw = getattr(c, "cw_tone", None)
            pkt = m.tx(buf, now)
            if pkt is not None and m.remote is not None:
                ph.rt.sendto(c.rtp_sock, pkt, m.remote)
            pcm = m.play(now)
            if r[1]:
                out = r[6]
                r[3].process(pcm, len(pcm) >> 1, out)
                pcm = out
            if cw is not None and cw.active:
                cw.fill(pcm, len(pcm) // 2)       # the waiting call's beep replaces this frame's audio
            ph.audio_sink.write(pcm)
            if ph.voice:
                ph.voice.played(pcm)
        send_rtcp(ph, c, m, now)
    elif c.tone is not None and owner:
        buf = frame_buf(ph, rate(ph))
        c.tone.fill(buf, len(buf) // 2)
        ph.audio_sink.write(buf)
