# What the property tests ask of the firmware's parsers, as one function both runtimes run: CPython imports it,
# the MicroPython runtime runs it as a worker (stdin: "<kind> <hex>" lines; stdout: one summary line each). A summary
# says what the parser made of the input, so the two runtimes can be compared; an exception other than the
# parser's own refusal shows as "exc <Type>", which the tests never accept.
import sys
from binascii import hexlify, unhexlify

from uphone.sip import parse as P
from uphone.sip import sdp as S
from uphone.media import rtp as R
from uphone.media import rtcp as RC


def _sip(data):
    try:
        m = P.parse(data)
    except P.ParseError as e:
        return "perr %d" % e.code
    # what the UA reads from every message, and the message written back out must parse the same
    head = "req %s %s" % (m.method, m.uri) if m.is_request else "resp %d" % m.status
    out = "%s cid=%s cseq=%d %s ft=%s tt=%s br=%s" % (head, m.call_id, m.cseq_num, m.cseq_method, m.from_tag,
                                                     m.to_tag, m.branch)
    again = P.parse(m.to_bytes())
    if again.call_id != m.call_id or again.cseq_num != m.cseq_num or again.body != m.body:
        return "exc RoundTrip"
    return out + " body=%d" % len(m.body)


def _sdp(data):
    try:
        attrs, media = S.parse(data)
    except S.SdpError:
        return "sdperr"
    out = "sdp attrs=%d media=%d" % (len(attrs), len(media))
    try:
        ans, neg = S.answer(data, "127.0.0.1", 4000, ["PCMU", "PCMA", "G722"])
    except S.SdpError:
        return out + " refused"
    return out + " %s/%d %s %s:%d len=%d" % (neg.codec, neg.pt, neg.direction, neg.remote_addr, neg.remote_port,
                                             len(ans))


def _rtp(data):
    r = R.parse(data, len(data))
    return "rtp %r" % (r,)


def _rtcp(data):
    out = []
    for pt, ssrc, off, ln in RC.walk(data, len(data)):
        out.append("%d:%d:%d" % (pt, off, ln))
        if pt in (200, 201):
            skip = 20 if pt == 200 else 0           # an SR's sender info comes before its report blocks
            out.append("%d" % len(RC.report_blocks(data, off + skip, ln - skip)))
    r = RC.Rtcp(0x11223344)
    r.rx(data, len(data), 1000)
    return "rtcp %s bye=%d" % (",".join(out), 1 if r.bye else 0)


KINDS = {"sip": _sip, "sdp": _sdp, "rtp": _rtp, "rtcp": _rtcp}


def summary(kind, data):
    try:
        return KINDS[kind](data)
    except Exception as e:          # anything but the parser's own refusal is a bug the test reports
        return "exc %s %s" % (type(e).__name__, e)


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        kind, _, hx = line.strip().partition(" ")
        print(summary(kind, unhexlify(hx)))


def encode(kind, data):
    return "%s %s\n" % (kind, hexlify(data).decode())
