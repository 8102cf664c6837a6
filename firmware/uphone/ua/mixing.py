# A conference's mixing (ua/conference.py), imported when the first conference is made. Every 20 ms it decodes
# each leg's frame (its MediaSession's own buffer, in the line reserved at boot), reads the microphone, mixes them
# in place (media/mixer.py: viper on the phone) and encodes each leg's share back: no buffer of its own and no
# allocation per frame.
from uphone.compat import TYPE_CHECKING
from uphone.media import mixer
from uphone.media.jitter import zeros
from uphone.ua import audio

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)


class Conference:
    """The mixing of one conference (audio.tick steps it every 20 ms: see ph.mixes)."""
    conf = True                     # ph.mixes holds bridges too (ua/relay.py: conf = False)

    def __init__(self, ph, host):
        self.host = host
        self.legs = [host]
        self.muted = []             # participants whose voice is kept out of the mix
        self.handset = True         # the handset is in the mix (False while the conference is held)
        self.bufs = [None] * (len(ph._line_mem) + 1)  # type: list  # this frame's parties: every line, the handset
        self.wav = None  # type: Any  # recording (StartRecordingMixer): the sum of every party
        self.rec = None  # type: Any
        self.rec_file = None  # type: Any
        self.next_frame = ph.now

    def status(self):
        return "mix conf %s legs=%s hold=%d muted=%s rec=%d" % (
            self.host.sid, ",".join(x.sid for x in self.legs), 0 if self.handset else 1,
            ",".join(x.sid for x in self.muted) or "-", 1 if self.wav is not None else 0)

    def rtp(self, ph, s, n):
        pass                        # a conference takes its legs' audio from their jitter buffers, per frame

    def step(self, ph, now):
        legs = self.legs
        bufs = self.bufs
        k = 0
        for i in range(len(legs)):
            s = legs[i]
            m = s.ctx.media
            if m is None or not s.ctx.flowing:
                continue
            pcm = m.play(now)           # the leg's decoded frame, in its line's block; mixed in place below
            if s in self.muted:
                pcm[:] = zeros(len(pcm))
            bufs[k] = pcm
            k += 1
        hc = self.host.ctx
        hm = hc.media
        mic = None
        r = None  # type: Any
        if self.handset and hm is not None:
            r = audio.resampler(ph, hc, hm)
            if r[1]:                    # the board's rate is not the codec's: as audio._frame does
                dev = r[4]
                ph.audio_src.readinto(dev)
                audio.mic_frame(ph, dev)
                mic = r[5]
                r[2].process(dev, len(dev) >> 1, mic)
            else:
                mic = audio.frame_buf(ph, hm.rate)
                ph.audio_src.readinto(mic)
                audio.mic_frame(ph, mic)
            bufs[k] = mic
            k += 1
        if k == 0:
            return
        n = len(bufs[0]) >> 1
        if self.wav is not None and len(self.rec) == 2 * n:
            rec = self.rec
            rec[:] = bufs[0]
            for p in range(1, k):
                mixer.add(rec, bufs[p], n)
            self.wav.write(rec)
        mixer.mix(bufs, k, n)           # each party's buffer now holds what it hears
        j = 0
        for i in range(len(legs)):
            c = legs[i].ctx
            m = c.media
            if m is None or not c.flowing:
                continue
            pkt = m.tx(bufs[j], now)
            if pkt is not None and m.remote is not None:
                ph.rt.sendto(c.rtp_sock, pkt, m.remote)
            audio.send_rtcp(ph, c, m, now)
            j += 1
        if mic is not None:
            out = mic
            if r[1]:
                out = r[6]
                r[3].process(mic, len(mic) >> 1, out)
            ph.audio_sink.write(out)
            if ph.voice:
                ph.voice.played(out)

    def close(self):
        if self.wav is not None:
            self.wav.close()
            self.rec_file.close()
            self.wav = self.rec = self.rec_file = None
