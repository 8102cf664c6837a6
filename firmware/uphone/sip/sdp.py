# uPhone: SDP (RFC 4566) parsing/writing and the RFC 3264 offer/answer model for one audio stream.
# Payload types: PCMU 0, PCMA 8, G722 9 (8000 Hz RTP clock, RFC 3551 4.5.2) and RFC 4733 telephone-event.
_STATIC = {"PCMU": 0, "PCMA": 8, "G722": 9}
_BY_PT = {0: "PCMU", 8: "PCMA", 9: "G722"}
_TE = "TELEPHONE-EVENT"
# direction as bits from the speaker's side: 1 = it sends, 2 = it receives
_DIRS = ("inactive", "sendonly", "recvonly", "sendrecv")
_CLOCK = 8000


class SdpError(ValueError):
    pass


class Negotiated:
    def __init__(self, codec, pt, te_pt, ptime, direction, remote_addr, remote_port):
        self.codec = codec
        self.pt = pt
        self.te_pt = te_pt
        self.ptime = ptime
        self.direction = direction        # ours: what WE may do
        self.remote_addr = remote_addr
        self.remote_port = remote_port
        self.clock = _CLOCK               # G722 included: its RTP clock is 8000 by RFC 3551

    def __repr__(self):
        return "<Negotiated %s/%d te=%r ptime=%d %s %s:%d>" % (
            self.codec, self.pt, self.te_pt, self.ptime, self.direction, self.remote_addr, self.remote_port)


class _Media:
    def __init__(self, kind, port, proto, fmts):
        self.kind, self.port, self.proto, self.fmts = kind, port, proto, fmts
        self.addr = None
        self.attrs = []


def _dir_bits(name):
    for i in range(4):
        if _DIRS[i] == name:
            return i
    raise SdpError("bad direction %r" % (name,))


def _mirror(d):
    return ((d & 1) << 1) | ((d >> 1) & 1)


def _parse_c(v):
    p = v.split()
    if len(p) < 3 or p[0] != "IN" or p[1] not in ("IP4", "IP6"):
        raise SdpError("bad c= line")
    addr = p[2].split("/")[0]
    if p[1] == "IP4" and addr[:1].isdigit():
        q = addr.split(".")
        if len(q) != 4 or not all(x.isdigit() and int(x) < 256 for x in q):
            raise SdpError("bad c= address")
    return addr


def _parse_m(v):
    p = v.split()
    if len(p) < 4:
        raise SdpError("bad m= line")
    try:
        port = int(p[1].split("/")[0])
    except ValueError:
        raise SdpError("bad m= port")
    if not 0 <= port < 65536:
        raise SdpError("bad m= port")
    return _Media(p[0].lower(), port, p[2], p[3:])


def parse(data):
    """-> (session attributes [(name, value)], [_Media]); c= is resolved to media level."""
    if not isinstance(data, str):
        try:
            data = bytes(data).decode("utf-8")
        except (UnicodeError, ValueError, TypeError):
            raise SdpError("SDP is not UTF-8")
    sess_addr, sess_attrs, media, seen_v = None, [], [], False
    for ln in data.split("\n"):
        ln = ln.rstrip("\r")
        if not ln.strip():
            continue
        if len(ln) < 2 or ln[1] != "=" or not ln[0].isalpha():
            raise SdpError("bad SDP line %r" % ln[:20])
        k, v = ln[0], ln[2:]
        if not seen_v:
            if k != "v" or v.strip() != "0":
                raise SdpError("SDP must start with v=0")
            seen_v = True
        elif k == "m":
            media.append(_parse_m(v))
        elif k == "c":
            if media:
                media[-1].addr = _parse_c(v)
            else:
                sess_addr = _parse_c(v)
        elif k == "a":
            name, _, val = v.partition(":")
            (media[-1].attrs if media else sess_attrs).append((name.strip().lower(), val.strip()))
        # o= s= t= b= i= u= e= p= k= r= z= carry nothing we act on; b= is deliberately not echoed
    if not seen_v:
        raise SdpError("empty SDP")
    if not media:
        raise SdpError("no m= line")
    for m in media:
        if m.addr is None:
            m.addr = sess_addr
    return sess_attrs, media


def _attr(m, sattrs, name):
    for a in m.attrs:
        if a[0] == name:
            return a[1]
    for a in sattrs:
        if a[0] == name:
            return a[1]
    return None


def _direction(m, sattrs):
    # media-level wins over session-level (RFC 4566 6); the last one given on a level counts
    for attrs in (m.attrs, sattrs):
        d = None
        for a in attrs:
            if a[0] in _DIRS:
                d = a[0]
        if d is not None:
            return _dir_bits(d)
    return 3


def _ptime(m, sattrs, default):
    v = _attr(m, sattrs, "ptime")
    try:
        p = int(float(v)) if v else default
    except ValueError:
        return default
    return p if 10 <= p <= 60 and p % 10 == 0 else default   # the frame pump works in 10 ms multiples


def _rtpmap(m):
    out = {}
    for a in m.attrs:
        if a[0] == "rtpmap":
            pt, _, enc = a[1].partition(" ")
            p = enc.strip().split("/")
            try:
                out[pt.strip()] = (p[0].upper(), int(p[1]) if len(p) > 1 else 0)
            except ValueError:
                continue
    return out


def _fmt_name(fmt, rtpmap):
    """Codec name of one payload format: static types by number, dynamic ones by rtpmap name."""
    try:
        pt = int(fmt)
    except ValueError:
        return None, None, None
    if pt in _BY_PT:
        return pt, _BY_PT[pt], _CLOCK
    e = rtpmap.get(fmt)
    if e is None or pt < 96 or pt > 127:
        return pt, None, None
    return pt, e[0], e[1]


def _choose(m, ours):
    """-> (codec, pt, te_pt or None) taking the first format in the SENDER's order that we support.
    RFC 3264 6.1: the answer's codecs come from the offer, and the offerer listed its preference first;
    honouring it lets a PBX steer transcoding. Our own list only decides what is acceptable at all."""
    rm = _rtpmap(m)
    codec = pt = te = None
    for f in m.fmts:
        p, name, clock = _fmt_name(f, rm)
        if name is None:
            continue
        if name == _TE:
            if te is None and clock == _CLOCK:
                te = p
        elif codec is None and name in ours and clock == _CLOCK:
            codec, pt = name, p
    return codec, pt, te


def _is_hold_addr(addr):
    return addr in ("0.0.0.0", "::")


def _ip_type(ip):
    return "IP6" if ":" in ip else "IP4"


def _head(ip, sess_id, sess_version):
    t = _ip_type(ip)
    return ["v=0", "o=- %d %d IN %s %s" % (sess_id, sess_version, t, ip), "s=uPhone",
            "c=IN %s %s" % (t, ip), "t=0 0"]


def _audio_lines(port, proto, pts, codec_pt, te_pt, ptime, direction):
    out = ["m=audio %d %s %s" % (port, proto, " ".join(str(p) for p in pts))]
    for name, pt in codec_pt:
        out.append("a=rtpmap:%d %s/%d" % (pt, name, _CLOCK))
    if te_pt is not None:
        out.append("a=rtpmap:%d telephone-event/%d" % (te_pt, _CLOCK))
        out.append("a=fmtp:%d 0-16" % te_pt)
    out.append("a=ptime:%d" % ptime)
    out.append(direction)
    return out


def _join(lines):
    return ("\r\n".join(lines) + "\r\n").encode()


def make_offer(ip, port, codecs=("PCMU", "PCMA"), dtmf_pt=101, ptime=20, direction="sendrecv",
               sess_id=1, sess_version=1):
    _dir_bits(direction)
    cp = []
    for c in codecs:
        n = c.upper()
        if n not in _STATIC:
            raise SdpError("unsupported codec %r" % (c,))
        cp.append((n, _STATIC[n]))
    if not cp:
        raise SdpError("no codecs to offer")
    pts = [p for _, p in cp] + ([dtmf_pt] if dtmf_pt is not None else [])
    return _join(_head(ip, sess_id, sess_version) +
                 _audio_lines(port, "RTP/AVP", pts, cp, dtmf_pt, ptime, "a=" + direction))


def answer(offer, ip, port, codecs, dtmf_pt=101, direction="sendrecv", sess_id=1, sess_version=1):
    """-> (answer bytes, Negotiated). dtmf_pt only says we take telephone-event: the offer's number is kept
    (RFC 3264 6.1). One audio stream is accepted; every other m= line is refused with port 0, in order."""
    local = _dir_bits(direction)
    ours = [c.upper() for c in codecs]
    sattrs, media = parse(offer)
    pick = None
    for want_port in (True, False):       # a live stream first; a disabled one (port 0) only if nothing else
        for i in range(len(media)):
            m = media[i]
            if m.kind != "audio" or m.proto.upper() != "RTP/AVP" or (m.port != 0) != want_port:
                continue
            codec, pt, te = _choose(m, ours)
            if codec is not None:
                pick = (i, codec, pt, te)
                break
        if pick is not None:
            break
    if pick is None:
        if not any(m.kind == "audio" for m in media):
            raise SdpError("no audio stream")
        raise SdpError("no common codec")
    idx, codec, pt, te = pick
    m = media[idx]
    if m.addr is None:
        raise SdpError("no c= line for audio")
    if dtmf_pt is None:
        te = None
    theirs = _direction(m, sattrs)
    if _is_hold_addr(m.addr):
        theirs &= 1       # RFC 2543 hold: the offerer cannot receive, so we must not send
    mine = _mirror(theirs) & local if m.port else 0
    ptime = _ptime(m, sattrs, 20)
    lines = _head(ip, sess_id, sess_version)
    for i in range(len(media)):
        x = media[i]
        if i == idx:
            pts = [pt] + ([te] if te is not None else [])
            lines += _audio_lines(port if x.port else 0, x.proto, pts, [(codec, pt)], te, ptime,
                                  "a=" + _DIRS[mine])
        else:
            lines.append("m=%s 0 %s %s" % (x.kind, x.proto, " ".join(x.fmts)))
    neg = Negotiated(codec, pt, te, ptime, _DIRS[mine], m.addr, m.port)
    return _join(lines), neg


def process_answer(offer, answer_sdp):
    """Our offer + their answer -> Negotiated (direction from our side)."""
    osattrs, omedia = parse(offer)
    asattrs, amedia = parse(answer_sdp)
    idx = None
    for i in range(len(omedia)):
        if omedia[i].kind == "audio" and omedia[i].port:
            idx = i
            break
    if idx is None:
        raise SdpError("our offer has no audio stream")
    if len(amedia) != len(omedia):
        raise SdpError("answer has %d m= lines, offer had %d" % (len(amedia), len(omedia)))
    om, am = omedia[idx], amedia[idx]
    if am.kind != "audio" or am.port == 0:
        raise SdpError("audio stream rejected")
    if am.addr is None:
        raise SdpError("no c= line for audio")
    offered, orm = [], _rtpmap(om)
    for f in om.fmts:
        name = _fmt_name(f, orm)[1]
        if name is not None:
            offered.append(name)
    codec, pt, te = _choose(am, [n for n in offered if n != _TE])
    if codec is None:
        raise SdpError("no common codec")
    if _TE not in offered:
        te = None
    theirs = _direction(am, asattrs)
    mine = _mirror(theirs) & _direction(om, osattrs)
    if _is_hold_addr(am.addr):
        mine &= 2         # they gave no address to send to
    ptime = _ptime(am, asattrs, _ptime(om, osattrs, 20))
    return Negotiated(codec, pt, te, ptime, _DIRS[mine], am.addr, am.port)
