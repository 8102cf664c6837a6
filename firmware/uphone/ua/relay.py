# A bridge's media (ua/bridge.py), imported when the first bridge is made: the packet relay between its two legs,
# the law-to-law transcoding on the way, and the monitoring that sees a leg's media stop. audio.tick steps it every
# 20 ms with the conferences (ph.mixes); media.on_rtp hands it each packet a leg receives.
from uphone import table as T
from uphone.compat import TYPE_CHECKING, ticks_add, ticks_diff
from uphone.media.rtp import RtpInfo
from uphone.ua import audio

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

_MAX_RECOVERIES = 2


class Relay:
    """A bridge session's media: its legs, the packet relay, the transcoder, the monitoring (audio.tick steps it
    every 20 ms, with the conferences: see ph.mixes)."""
    handset = False
    conf = False                    # ph.mixes holds conferences too (ua/mixing.py: conf = True)

    def __init__(self, ph, b, inbound, outbound):
        self.s = b
        self.legs = [inbound, outbound]
        self.on = False             # relaying (ConnectMediaStreams .. a recovery or the end)
        self.xc = None              # Transcoder of the legs' laws (SetupTranscoder)
        self.xfn = None  # type: Any  # its (inbound -> outbound, outbound -> inbound) methods, bound once
        self.pair = None  # type: Any  # (inbound codec, outbound codec) self.xc was made for
        self.xcode = False          # packets go through self.xc (UpdateMediaPath)
        self.info = RtpInfo()
        self.delta = [None, None]  # type: list  # per direction (0: inbound -> outbound): timestamp offset as 16-bit halves
        self.view = [None, None]    # per direction: the received payload's view, kept while the layout stays
        self.vkey = [-1, -1]
        self.relayed = [0, 0]
        self.monitor = 0            # ms without RTP on a leg before the bridge is repaired (0: not watching)
        self.seen = [0, 0]
        self.quiet = [0, 0]
        self.flowed = [False, False]
        self.mon_next = ph.now
        self.recoveries = 0
        self.posted = -1            # the event last posted to the bridge, until it moves
        self.next_frame = ph.now

    def other(self, i):
        return self.legs[1 - i]

    def status(self):
        a, b = self.legs
        ca, cb = (x.ctx.neg.codec if x.ctx.neg is not None else "-" for x in self.legs)
        path = "-" if not self.on else "copy" if ca == cb else "%s>%s" % (ca, cb) if self.xcode else "waiting"
        return "mix bridge %s in=%s out=%s path=%s relayed=%d,%d recoveries=%d" % (
            self.s.sid, a.sid, b.sid, path, self.relayed[0], self.relayed[1], self.recoveries)

    def rtp(self, ph, s, n):
        """A packet leg s received (in its line's receive buffer, parsed by its MediaSession already): sent on to
        the other leg. Allocates nothing once a direction's first packet fixed its timestamp offset."""
        if not self.on:
            return
        i = 0 if s is self.legs[0] else 1
        c = s.ctx
        oc = self.legs[1 - i].ctx
        m, om = c.media, oc.media
        if m is None or om is None or om.remote is None or oc.rtp_sock is None:
            return
        inf = self.info
        if not inf.parse(c.rtp_buf, n):
            return
        pt = inf.pt
        xc = False
        if pt == m.pt:
            opt = om.pt
            if m.codec != om.codec:
                p = self.pair
                if not self.xcode or p[i] != m.codec or p[1 - i] != om.codec:
                    return              # no transcoder for these codecs yet (TranscodingRequired is on its way)
                xc = True
        elif m.te_pt is not None and pt == m.te_pt and om.te_pt is not None:
            opt = om.te_pt              # RFC 4733 events go through as they are, under the other leg's type
        else:
            return
        off, ln = inf.offset, inf.length
        dst = om.sender.payload
        if ln <= 0 or ln > len(dst):
            return                      # more than the other leg's packet buffer (its ptime) holds
        key = (off << 12) | ln
        v = self.view[i]
        if v is None or self.vkey[i] != key:
            v = self.view[i] = c.rtp_buf[off:off + ln]     # the same layout every packet: one view, reused
            self.vkey[i] = key
        if xc:
            self.xfn[i](v, ln, dst)
        else:
            dst[:ln] = v
        hi = (inf.ts_hi << 14) | (inf.ts30 >> 16)
        lo = inf.ts30 & 0xFFFF
        mark = inf.marker
        d = self.delta[i]
        if d is None:
            # the first packet after (re)connecting continues the other leg's own RTP clock, marked (RFC 3550
            # 5.1: a new talkspurt); later ones keep the source's spacing, gaps included
            th, tl = om.clock16()
            d = self.delta[i] = ((th - hi - (1 if tl < lo else 0)) & 0xFFFF, (tl - lo) & 0xFFFF)
            mark = True
        lo += d[1]
        hi = (hi + d[0] + (lo >> 16)) & 0xFFFF
        pkt = om.forward(ln, opt, hi, lo & 0xFFFF, mark)
        if pkt is not None:
            ph.rt.sendto(oc.rtp_sock, pkt, om.remote)
            self.relayed[i] += 1

    def step(self, ph, now):
        for i in range(2):
            c = self.legs[i].ctx
            if c.media is not None:
                audio.send_rtcp(ph, c, c.media, now)
        if not self.monitor or ticks_diff(now, self.mon_next) < 0:
            return
        self.mon_next = ticks_add(now, 1000)
        broken = -1
        for i in range(2):
            m = self.legs[i].ctx.media
            rx = m.rx_packets if m is not None else 0
            if rx != self.seen[i]:
                self.seen[i] = rx
                self.quiet[i] = now
                self.flowed[i] = True
            elif ticks_diff(now, self.quiet[i]) >= self.monitor:
                broken = i
        if self.flowed[0] and self.flowed[1]:
            self.recoveries = 0         # media came back on both legs since the last repair
        if broken >= 0:
            self.monitor = 0
            leg = self.legs[broken]
            ph.emit("bridge %s no RTP from %s for %d ms" % (self.s.sid, leg.sid, ticks_diff(now, self.quiet[broken])))
            self.post(ph, T.E_HangupCall if self.recoveries >= _MAX_RECOVERIES else T.E_BridgeFailed,
                      {"why": "no media from %s" % leg.sid})

    def post(self, ph, ev, args=None):
        """ev to the bridge session, once until it moves (its progress resets posted)."""
        if self.posted != ev:
            self.posted = ev
            ph.post(self.s, ev, args)
