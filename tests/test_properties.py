# Property tests: hypothesis builds SIP messages, SDP bodies, RTP and RTCP packets and console lines, well formed and
# not; the firmware's parsers run on both runtimes (CPython in this process, the frozen MicroPython runtime as a
# worker process) and must give the same answer, and that answer is a result or the parser's own refusal, never
# another exception. Console lines go to phone processes, one per runtime: each line gets one ok/err answer and the
# loop catches nothing. About 10,000 cases per runtime; derandomized so CI runs the same ones (make fuzz is the
# random, long run).
import os
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import hyp_worker
from tests.proc import ROOT, Phones, runtime_cmd

SCALE = float(os.environ.get("UPHONE_PROPERTY_SCALE", "1"))


def cases(n):
    return settings(max_examples=max(10, int(n * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


class Worker:
    """hyp_worker on the MicroPython runtime (96 KB heap), answering one line per input."""

    def __init__(self):
        code = "import sys\nsys.path.append(%r)\nimport hyp_worker\nhyp_worker.main()\n" % os.path.join(ROOT, "tests")
        self.p = subprocess.Popen(runtime_cmd("micropython", code), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1, cwd=ROOT)

    def ask(self, kind, data):
        self.p.stdin.write(hyp_worker.encode(kind, data))
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise AssertionError("the MicroPython worker died: %s" % self.p.stderr.read()[-2000:])
        return line.rstrip("\n")

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


@pytest.fixture(scope="module")
def mp():
    w = Worker()
    yield w
    w.close()


def both(mp, kind, data):
    here = hyp_worker.summary(kind, data)
    there = mp.ask(kind, data)
    assert not here.startswith("exc "), (here, data)
    assert not there.startswith("exc "), (there, data)
    assert here == there, (here, there, data)
    return here


# -- SIP ---------------------------------------------------------------------------------------------------------
_WEIRD = " \t;,<>\"=\\:@[]%\x00\x7f\xe9\u2603"
token = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"),
                min_size=1, max_size=12)
weird = st.text(st.sampled_from("abcxyz0123456789" + _WEIRD), max_size=24)
host = st.one_of(st.just("127.0.0.1"), st.just("example.com"), st.just("[::1]"), token,
                 st.builds("{}.{}.{}.{}".format, *[st.integers(0, 300)] * 4))
port = st.one_of(st.none(), st.integers(0, 70000))
uri = st.builds(lambda sch, user, h, p, params: "%s:%s%s%s%s" % (sch, user + "@" if user else "", h,
                                                                   ":%d" % p if p is not None else "", params),
                st.sampled_from(["sip", "sips", "tel", "SIP", "x"]), st.one_of(st.just(""), token, weird), host,
                port, st.sampled_from(["", ";transport=udp", ";lr", ";user=phone", ";maddr=1.2.3.4", ";=", ";x"]))
name_addr = st.builds(lambda dn, u, tag: '%s<%s>%s' % (dn, u, ";tag=" + tag if tag else ""),
                      st.sampled_from(["", '"Alice" ', '"a\\"b" ', "Bob ", '"unterminated ']), uri,
                      st.one_of(st.none(), token, weird))
via = st.builds(lambda proto, h, p, br, extra: "SIP/2.0/%s %s%s;branch=%s%s" % (proto, h, ":%d" % p if p else "",
                                                                              br, extra),
                st.sampled_from(["UDP", "TCP", "TLS", "udp", "XYZ"]), host, port,
                st.one_of(st.builds("z9hG4bK{}".format, token), token, st.just("")),
                st.sampled_from(["", ";rport", ";rport=5060", ";received=1.2.3.4", ";ttl=1", ";;", ";x=\"y\""]))
METHODS = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK", "REFER", "NOTIFY",
           "SUBSCRIBE", "MESSAGE", "PUBLISH"]
method = st.one_of(st.sampled_from(METHODS), token)
cseq = st.builds(lambda n, m: "%s %s" % (n, m), st.one_of(st.integers(-5, 2 ** 33), weird), method)
header = st.one_of(
    st.tuples(st.sampled_from(["Via", "v"]), via), st.tuples(st.sampled_from(["From", "f", "To", "t"]), name_addr),
    st.tuples(st.sampled_from(["Contact", "m", "Route", "Record-Route", "Refer-To", "r"]),
              st.one_of(name_addr, st.just("*"), weird)),
    st.tuples(st.sampled_from(["Call-ID", "i"]), st.one_of(token, weird)), st.tuples(st.just("CSeq"), cseq),
    st.tuples(st.sampled_from(["Max-Forwards", "Expires", "Content-Length", "l", "RSeq", "Min-SE"]),
              st.one_of(st.integers(-3, 2 ** 40).map(str), weird)),
    st.tuples(st.sampled_from(["Content-Type", "c", "Event", "o", "Subscription-State", "Supported", "k",
                               "Require", "Session-Expires", "x", "RAck", "Replaces", "Authorization",
                               "WWW-Authenticate", "Proxy-Authenticate"]),
              st.one_of(st.sampled_from(["application/sdp", "message/sipfrag", "refer", "active;expires=60",
                                         "100rel, timer", "90;refresher=uac", "1 1 INVITE", "abc;to-tag=1;from-tag=2",
                                         'Digest realm="x", nonce="y", qop="auth"', "Digest ,,,="]), weird)),
    st.tuples(token, weird))


good_uri = st.builds("sip:{}@{}:{}".format, token, st.sampled_from(["127.0.0.1", "example.com"]),
                     st.integers(1, 65535))
good_header = st.one_of(
    st.tuples(st.just("Contact"), good_uri.map("<{}>".format)), st.tuples(st.just("Max-Forwards"), st.just("70")),
    st.tuples(st.sampled_from(["Supported", "Allow"]), st.just("100rel, timer, replaces")),
    st.tuples(st.just("Expires"), st.integers(0, 7200).map(str)), st.tuples(st.just("User-Agent"), token),
    st.tuples(st.just("Record-Route"), good_uri.map("<{};lr>".format)), st.tuples(token, token))


@st.composite
def sip_message(draw):
    """Half well formed (what a PBX sends, every part valid), half built from odd parts."""
    good = draw(st.booleans())
    m = draw(st.sampled_from(METHODS)) if good else draw(method)
    if draw(st.booleans()):
        start = "%s %s SIP/2.0" % (m, draw(good_uri if good else uri))
    else:
        start = "SIP/2.0 %s %s" % (draw(st.integers(100, 699) if good else
                                        st.one_of(st.integers(0, 999), st.integers(-1, 10 ** 6))),
                                   "OK" if good else draw(weird))
    if good:
        base = [("Via", "SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s" % (draw(st.integers(1, 65535)), draw(token))),
                ("From", "<%s>;tag=%s" % (draw(good_uri), draw(token))),
                ("To", "<%s>%s" % (draw(good_uri), draw(st.sampled_from(["", ";tag=x1"])))),
                ("Call-ID", draw(token)), ("CSeq", "%d %s" % (draw(st.integers(0, 2 ** 31 - 1)), m))]
        hs = draw(st.lists(good_header, max_size=8, unique_by=lambda h: h[0].lower()))
    else:
        base = [("Via", draw(via)), ("From", draw(name_addr)), ("To", draw(name_addr)),
                ("Call-ID", draw(token)), ("CSeq", draw(cseq))]
        hs = draw(st.lists(header, max_size=12))
    headers = draw(st.permutations(base + hs)) if draw(st.booleans()) else base + hs
    body = draw(st.one_of(st.just(b""), st.binary(max_size=200), sdp_body))
    cl = "right" if good else draw(st.sampled_from(["right", "none", "wrong"]))
    if cl == "right":
        headers.append(("Content-Length", str(len(body))))
    elif cl == "wrong":
        headers.append(("Content-Length", str(draw(st.integers(0, 400)))))
    sep = draw(st.sampled_from([": ", ":", " : ", ":\t"]))
    eol = draw(st.sampled_from(["\r\n", "\r\n", "\n"]))
    text = start + eol + "".join(n + sep + v + eol for n, v in headers) + eol
    return text.encode("utf-8", "surrogatepass") + body


# -- SDP ---------------------------------------------------------------------------------------------------------
codec_line = st.builds(lambda pt, name, rate: "a=rtpmap:%s %s/%s" % (pt, name, rate),
                       st.one_of(st.integers(0, 130), weird),
                       st.sampled_from(["PCMU", "PCMA", "G722", "telephone-event", "opus", "", "pcmu"]),
                       st.sampled_from(["8000", "16000", "48000/2", "", "x"]))
sdp_line = st.one_of(
    st.builds(lambda p, proto, fmts: "m=audio %s %s %s" % (p, proto, fmts), st.one_of(st.integers(0, 70000), weird),
              st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVP", "x"]),
              st.lists(st.one_of(st.integers(0, 130).map(str), token), max_size=6).map(" ".join)),
    st.builds(lambda a: "c=IN IP4 %s" % a, host), st.just("c=IN IP6 ::1"), st.just("c=IN"),
    codec_line, st.sampled_from(["a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv", "a=ptime:20",
                                 "a=ptime:0", "a=ptime:x", "a=fmtp:101 0-16", "a=rtcp:9", "m=video 9 RTP/AVP 96",
                                 "t=0 0", "s=-", "b=AS:64", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
                                 "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
                                 "a=crypto:x AES inline:", "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:!!!"]),
    st.builds("a={}".format, weird), st.builds("{}".format, weird))


@st.composite
def sdp_text(draw):
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
             "m=audio %d RTP/AVP 0 8 101" % draw(st.integers(0, 65535))]
    lines = draw(st.permutations(lines)) if draw(st.integers(0, 9)) == 0 else lines
    lines += draw(st.lists(sdp_line, max_size=10))
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    return (eol.join(lines) + eol).encode("utf-8", "surrogatepass")


sdp_body = sdp_text()


# -- RTP / RTCP ----------------------------------------------------------------------------------------------------
@st.composite
def rtp_packet(draw):
    v = draw(st.sampled_from([2, 2, 2, 0, 1, 3]))
    pad, ext, cc = draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 15))
    b0 = v << 6 | pad << 5 | ext << 4 | cc
    b1 = draw(st.booleans()) << 7 | draw(st.sampled_from([0, 8, 9, 101, 13, 127, 72, 200]))
    out = bytes([b0, b1]) + draw(st.binary(min_size=10, max_size=10)) + draw(st.binary(max_size=4 * cc + 4))
    if ext:
        out += draw(st.binary(min_size=2, max_size=2)) + draw(st.integers(0, 65535)).to_bytes(2, "big")
        out += draw(st.binary(max_size=40))
    out += draw(st.binary(max_size=200))
    if pad:
        out += bytes([draw(st.integers(0, 255))])
    return out[:draw(st.integers(0, len(out)))] if draw(st.integers(0, 9)) == 0 else out


@st.composite
def rtcp_compound(draw):
    out = b""
    for _ in range(draw(st.integers(1, 4))):
        pt = draw(st.sampled_from([200, 201, 202, 203, 204, 205, 0, 255]))
        count = draw(st.integers(0, 31))
        body = draw(st.binary(max_size=120))
        if pt in (200, 201) and draw(st.booleans()):
            body = draw(st.binary(min_size=4, max_size=4)) + (draw(st.binary(min_size=20, max_size=20))
                                                               if pt == 200 else b"") + \
                draw(st.binary(min_size=24 * min(count, 3), max_size=24 * min(count, 3)))
        pad = draw(st.booleans())
        words = (len(body) + 4 + 3) // 4 - 1 if draw(st.integers(0, 3)) else draw(st.integers(0, 65535))
        v = draw(st.sampled_from([2, 2, 2, 1]))
        pkt = bytes([v << 6 | pad << 5 | count, pt]) + (words & 0xffff).to_bytes(2, "big") + body
        pkt += b"\0" * (-len(pkt) % 4)
        if pad:
            pkt = pkt[:-1] + bytes([draw(st.integers(0, 255))])
        out += pkt
    return out


@cases(3000)
@given(sip_message())
def test_sip_messages(mp, data):
    both(mp, "sip", data)


@cases(2000)
@given(st.one_of(sdp_text(), st.binary(max_size=300)))
def test_sdp_bodies(mp, data):
    both(mp, "sdp", data)


@cases(2000)
@given(rtp_packet())
def test_rtp_packets(mp, data):
    both(mp, "rtp", data)


@cases(2000)
@given(rtcp_compound())
def test_rtcp_packets(mp, data):
    both(mp, "rtcp", data)


# -- console lines -------------------------------------------------------------------------------------------------
EVENTS = ["MakeCall", "HangupCall", "HoldCall", "ResumeCall", "SendDTMF", "MuteCall", "AcceptCall", "Bogus", ""]
console_line = st.one_of(
    st.builds(lambda sid, ev, args: " ".join(w for w in ["ev", sid, ev] + args if w),
              st.sampled_from(["", "c1", "c99", "r1", "x"]), st.sampled_from(EVENTS),
              st.lists(st.builds("{}={}".format, st.sampled_from(["target", "digits", "x", ""]),
                                 st.sampled_from(["sip:nobody@127.0.0.1:9", "123#", "", "=", "\xe9", "a b"])),
                       max_size=3)),
    st.sampled_from(["st", "mem", "mem gc", "mem bogus", "cov", "echo", "echo x", "help", "", "ev", "reset",
                     "new", "cond", "fail"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=80))


@pytest.fixture(scope="module")
def console_phones(tmp_path_factory):
    out = []
    for runtime in ("cpython", "micropython"):
        ps = Phones(runtime, tmp_path_factory.mktemp("console-" + runtime))
        ps.add("con", features={"auto_answer": False})
        out.append(ps)
    yield [ps["con"] for ps in out]
    for ps in out:
        ps.close()


@cases(1000)
@given(console_line)
def test_console_lines(console_phones, line):
    for p in console_phones:
        ans, _ = p.cmd(line.strip() or "echo blank")
        assert ans.startswith(("ok", "err ")), (p.runtime, line, ans)
        assert not ans.startswith("err internal"), (p.runtime, line, ans, p.tail())
