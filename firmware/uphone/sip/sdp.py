# uPhone: SDP (RFC 4566) parsing/writing and the RFC 3264 offer/answer model for one audio stream.
# Payload types: PCMU 0, PCMA 8, G722 9 (8000 Hz RTP clock, RFC 3551 4.5.2) and RFC 4733 telephone-event.
# SRTP keys by SDES (RFC 4568): a=crypto lines on RTP/SAVP (SRTP required) or, best effort, on RTP/AVP.
import binascii

_STATIC = {"PCMU": 0, "PCMA": 8, "G722": 9}
_BY_PT = {0: "PCMU", 8: "PCMA", 9: "G722"}
_TE = "TELEPHONE-EVENT"
# direction as bits from the speaker's side: 1 = it sends, 2 = it receives
_DIRS = ("inactive", "sendonly", "recvonly", "sendrecv")
_CLOCK = 8000


class SdpError(ValueError):
    pass


class Negotiated:
    def __init__(self, codec, pt, te_pt, ptime, direction, remote_addr, remote_port, proto="RTP/AVP",
                 srtp_tx=None, srtp_rx=None):
        self.codec = codec
        self.pt = pt
        self.te_pt = te_pt
        self.ptime = ptime
        self.direction = direction        # ours: what WE may do
        self.remote_addr = remote_addr
        self.remote_port = remote_port
        self.clock = _CLOCK               # G722 included: its RTP clock is 8000 by RFC 3551
        self.proto = proto                # the m= line's transport: RTP/AVP or RTP/SAVP
        self.srtp_tx = srtp_tx            # Crypto: our key, what we send with (None: plain RTP)
        self.srtp_rx = srtp_rx            # Crypto: the peer's key, what we receive with

    def __repr__(self):
        return "<Negotiated %s/%d te=%r ptime=%d %s %s:%d %s%s>" % (
            self.codec, self.pt, self.te_pt, self.ptime, self.direction, self.remote_addr, self.remote_port,
            self.proto, " " + self.srtp_tx.suite if self.srtp_tx else "")


# -- SDES (RFC 4568) -----------------------------------------------------------------------------------------------
SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")    # media/srtp.py's; offered in this order
SRTP_MODES = ("off", "optional", "mandatory")
_AVP = "RTP/AVP"
_SAVP = "RTP/SAVP"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_MAX_LIFETIME = 1 << 48           # RFC 4568 6.2.1, 6.2.2: the most SRTP packets one key may protect in these suites


class Crypto:
    """One SDES crypto attribute (RFC 4568 4, 6.1): tag, suite, the 16-byte master key and 14-byte master salt,
    the key's lifetime in packets (None: the suite's maximum). repr() never shows the key."""

    def __init__(self, tag, suite, key, salt, lifetime=None):
        self.tag = tag
        self.suite = suite
        self.key = bytes(key)
        self.salt = bytes(salt)
        self.lifetime = lifetime

    def value(self):
        """The a=crypto value: `<tag> <suite> inline:<base64 key||salt>` (no lifetime, no MKI, no parameters)."""
        b64 = binascii.b2a_base64(self.key + self.salt).strip().decode()
        return "%d %s inline:%s" % (self.tag, self.suite, b64)

    def __repr__(self):
        return "<Crypto %d %s>" % (self.tag, self.suite)


def new_crypto(tag, suite=SRTP_SUITES[0]):
    """A fresh master key and salt from os.urandom (CPython: the OS; MicroPython on the ESP32: its hardware RNG,
    which is true random while the radio is on, as it is on a phone). No weaker fallback: no good random source,
    no SRTP."""
    try:
        import os
        ks = os.urandom(30)
    except (ImportError, AttributeError, OSError, NotImplementedError):
        raise SdpError("no random source for SRTP keys")
    if len(ks) != 30:
        raise SdpError("no random source for SRTP keys")
    return Crypto(tag, suite, ks[:16], ks[16:])


def _lifetime(v):
    if v.startswith("2^"):
        e = v[2:]
        if not e.isdigit() or len(e) > 2:
            raise SdpError("crypto: bad lifetime %r" % (v,))
        n = 1 << int(e)
    elif v.isdigit() and len(v) <= 15:
        n = int(v)
    else:
        raise SdpError("crypto: bad lifetime %r" % (v,))
    if n < 1 or n > _MAX_LIFETIME:
        raise SdpError("crypto: lifetime %s out of range" % (v,))
    return n


def parse_crypto(value):
    """An a=crypto value -> Crypto, or SdpError saying why it is malformed or not one we can use (RFC 4568 9.2):
    our suites only, one inline key of 30 bytes (16 + 14), a lifetime up to 2^48, no MKI; session parameters:
    WSH (a window hint) and unknown ones marked optional with "-" are ignored; KDR (rekeying), UNENCRYPTED_*/
    UNAUTHENTICATED_SRTP (weaker than what we do), FEC_* and any other unknown one make the attribute unusable
    (RFC 4568 6.3.7: an unknown parameter without "-" is mandatory)."""
    p = value.split()
    if len(p) < 3:
        raise SdpError("crypto: want <tag> <suite> <key-params>")
    tag, suite, kp = p[0], p[1], p[2]
    if not tag.isdigit() or len(tag) > 9:
        raise SdpError("crypto: bad tag %r" % (tag[:12],))
    if suite not in SRTP_SUITES:
        raise SdpError("crypto: suite %s not supported" % (suite[:40],))
    if ";" in kp:
        raise SdpError("crypto: more than one key (MKI) not supported")
    if not kp.startswith("inline:"):
        raise SdpError("crypto: key method must be inline")
    f = kp[7:].split("|")
    b64 = f[0]
    if len(b64) != 40 or any(ch not in _B64 for ch in b64):
        raise SdpError("crypto: the inline key||salt must be 30 bytes of base64")
    ks = binascii.a2b_base64(b64)
    lifetime = None
    for x in f[1:]:
        if ":" in x:
            raise SdpError("crypto: MKI not supported")
        if lifetime is not None:
            raise SdpError("crypto: bad key parameters")
        lifetime = _lifetime(x)
    for sp in p[3:]:
        if sp.startswith("WSH="):
            if not sp[4:].isdigit():
                raise SdpError("crypto: bad WSH")
        elif sp[:1] != "-":
            raise SdpError("crypto: session parameter %s not supported" % (sp[:40],))
    return Crypto(int(tag), suite, ks[:16], ks[16:], lifetime)


def _cryptos(m):
    """-> ([Crypto] we can use, in the offer's order, the reason the last unusable one was refused or None)."""
    out, why = [], None
    for a in m.attrs:
        if a[0] == "crypto":
            try:
                out.append(parse_crypto(a[1]))
            except SdpError as e:
                why = str(e)
    return out, why


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
    sess_addr, seen_v = None, False
    sess_attrs = []  # type: list
    media = []  # type: list
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


def _audio_lines(port, proto, pts, codec_pt, te_pt, ptime, direction, crypto=()):
    out = ["m=audio %d %s %s" % (port, proto, " ".join(str(p) for p in pts))]
    for name, pt in codec_pt:
        out.append("a=rtpmap:%d %s/%d" % (pt, name, _CLOCK))
    if te_pt is not None:
        out.append("a=rtpmap:%d telephone-event/%d" % (te_pt, _CLOCK))
        out.append("a=fmtp:%d 0-16" % te_pt)
    out.append("a=ptime:%d" % ptime)
    out.append(direction)
    for c in crypto:
        out.append("a=crypto:" + c.value())
    return out


def _join(lines):
    return ("\r\n".join(lines) + "\r\n").encode()


def make_offer(ip, port, codecs=("PCMU", "PCMA"), dtmf_pt=101, ptime=20, direction="sendrecv",
               sess_id=1, sess_version=1, srtp="off", crypto=None):
    """Our offer. srtp: "off" (RTP/AVP), "mandatory" (RTP/SAVP with a=crypto: a peer without SRTP refuses the
    stream) or "optional" (RTP/AVP with a=crypto: SRTP when the answer has a crypto line, else plain RTP).
    crypto: the Crypto list to offer (keep ours across a re-offer); None: a fresh key per suite of SRTP_SUITES.
    Our keys are read back from this offer when the answer comes (process_answer)."""
    _dir_bits(direction)
    if srtp not in SRTP_MODES:
        raise SdpError("srtp mode %r: want one of %s" % (srtp, ", ".join(SRTP_MODES)))
    offered = []  # type: list
    if srtp != "off":
        offered = crypto if crypto is not None else [new_crypto(i + 1, SRTP_SUITES[i])
                                                     for i in range(len(SRTP_SUITES))]
        if not offered:
            raise SdpError("no SRTP keys to offer")
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
                 _audio_lines(port, _SAVP if srtp == "mandatory" else _AVP, pts, cp, dtmf_pt, ptime,
                              "a=" + direction, offered))


def answer(offer, ip, port, codecs, dtmf_pt=101, direction="sendrecv", sess_id=1, sess_version=1, srtp="off",
           crypto=None):
    """-> (answer bytes, Negotiated). dtmf_pt only says we take telephone-event: the offer's number is kept
    (RFC 3264 6.1). One audio stream is accepted; every other m= line is refused with port 0, in order.
    srtp: "off": RTP/AVP streams only, crypto lines ignored; "optional": RTP/SAVP, and RTP/AVP with or without
    crypto lines; "mandatory": RTP/SAVP, or RTP/AVP with a crypto line we can use. The first crypto line we can
    use, in the offerer's order, is taken (RFC 4568 7.1.2): its tag and suite come back with our key (crypto: our
    Crypto to keep, e.g. across a re-INVITE, when its suite is the one taken; else a fresh key). No stream we can
    take because of its crypto lines: SdpError saying why (the caller answers 488)."""
    if srtp not in SRTP_MODES:
        raise SdpError("srtp mode %r: want one of %s" % (srtp, ", ".join(SRTP_MODES)))
    local = _dir_bits(direction)
    ours = [c.upper() for c in codecs]
    sattrs, media = parse(offer)
    pick = None
    why = None
    for want_port in (True, False):       # a live stream first; a disabled one (port 0) only if nothing else
        for i in range(len(media)):
            m = media[i]
            proto = m.proto.upper()
            if m.kind != "audio" or proto not in (_AVP, _SAVP) or (m.port != 0) != want_port:
                continue
            theirs_c = None
            if srtp == "off":
                if proto == _SAVP:
                    why = why or "SRTP (RTP/SAVP) offered but not enabled"
                    continue
            else:
                cs, bad = _cryptos(m)
                if cs:
                    theirs_c = cs[0]
                elif proto == _SAVP or srtp == "mandatory":
                    why = bad or ("RTP/SAVP without a crypto line" if proto == _SAVP else "SRTP required")
                    continue
            codec, pt, te = _choose(m, ours)
            if codec is not None:
                pick = (i, codec, pt, te, theirs_c)
                break
        if pick is not None:
            break
    if pick is None:
        if not any(m.kind == "audio" for m in media):
            raise SdpError("no audio stream")
        if why is not None:
            raise SdpError("no acceptable SRTP: %s" % (why,))
        raise SdpError("no common codec")
    idx, codec, pt, te, theirs_c = pick
    m = media[idx]
    if m.addr is None:
        raise SdpError("no c= line for audio")
    if dtmf_pt is None:
        te = None
    ours_c = None
    if theirs_c is not None:
        if crypto is not None and crypto.suite == theirs_c.suite:
            ours_c = Crypto(theirs_c.tag, crypto.suite, crypto.key, crypto.salt)
        else:
            ours_c = new_crypto(theirs_c.tag, theirs_c.suite)
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
                                  "a=" + _DIRS[mine], (ours_c,) if ours_c is not None else ())
        else:
            lines.append("m=%s 0 %s %s" % (x.kind, x.proto, " ".join(x.fmts)))
    neg = Negotiated(codec, pt, te, ptime, _DIRS[mine], m.addr, m.port, m.proto.upper(), ours_c, theirs_c)
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
    tx, rx = _answer_crypto(om, am)
    return Negotiated(codec, pt, te, ptime, _DIRS[mine], am.addr, am.port, om.proto.upper(), tx, rx)


def _answer_crypto(om, am):
    """Our offered m= line and the answer's -> (our Crypto, theirs) or (None, None) for plain RTP: one crypto line
    with a tag and suite we offered (RFC 4568 7.1.3); required when we offered RTP/SAVP."""
    offered = _cryptos(om)[0]
    if not offered:
        return None, None                 # we offered no SRTP: any crypto line in the answer means nothing
    proto = om.proto.upper()
    if am.proto.upper() != proto:
        raise SdpError("answer has %s, offer had %s" % (am.proto, om.proto))
    lines = [a[1] for a in am.attrs if a[0] == "crypto"]
    if not lines:
        if proto == _SAVP:
            raise SdpError("SRTP answer without a crypto line")
        return None, None                 # best effort (RTP/AVP with crypto): they answered plain RTP
    if len(lines) != 1:
        raise SdpError("answer has %d crypto lines, want one" % len(lines))
    theirs = parse_crypto(lines[0])
    for c in offered:
        if c.tag == theirs.tag and c.suite == theirs.suite:
            return c, theirs
    raise SdpError("answer's crypto %d %s was not offered" % (theirs.tag, theirs.suite))
