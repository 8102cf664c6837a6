# SIP messages in and out (firmware/uphone/sip/parse.py, message.py, headers.py): header spellings, folding, lists,
# quoting, the per-value caches after edits, Content-Length framing and TCP stream splitting.
import pytest

from uphone.sip import message as M
from uphone.sip import parse as P
from uphone.sip import headers as H

INVITE = (b"INVITE sip:bob@127.0.0.1:5064 SIP/2.0\r\n"
          b"Via: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bK776asdhds\r\n"
          b"Max-Forwards: 70\r\n"
          b'From: "Alice" <sip:alice@127.0.0.1>;tag=1928301774\r\n'
          b"To: <sip:bob@127.0.0.1>\r\n"
          b"Call-ID: a84b4c76e66710@127.0.0.1\r\n"
          b"CSeq: 314159 INVITE\r\n"
          b"Contact: <sip:alice@127.0.0.1:5062>\r\n"
          b"Content-Type: application/sdp\r\n"
          b"Content-Length: 4\r\n\r\nv=0\n")


def req(*headers, start=b"OPTIONS sip:bob@127.0.0.1 SIP/2.0", body=b"", cl=True):
    base = [b"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKx1", b"From: <sip:a@127.0.0.1>;tag=1",
            b"To: <sip:bob@127.0.0.1>", b"Call-ID: c1@127.0.0.1", b"CSeq: 1 OPTIONS"]
    names = [h.split(b":")[0].lower() for h in headers]
    lines = [h for h in base if h.split(b":")[0].lower() not in names] + list(headers)
    if cl:
        lines.append(b"Content-Length: %d" % len(body))
    return start + b"\r\n" + b"".join(x + b"\r\n" for x in lines) + b"\r\n" + body


def fields(m):
    return (m.call_id, m.cseq_num, m.cseq_method, m.branch, m.from_tag, m.to_tag)


def test_round_trip_and_fields():
    m = P.parse(INVITE)
    assert m.is_request and (m.method, m.uri) == ("INVITE", "sip:bob@127.0.0.1:5064")
    assert fields(m) == ("a84b4c76e66710@127.0.0.1", 314159, "INVITE", "z9hG4bK776asdhds", "1928301774", None)
    assert m.to_bytes() == INVITE
    assert P.parse(m.to_bytes()).headers == m.headers
    v = m.top_via()
    assert (v.transport, v.host, v.port, v.params) == ("UDP", "127.0.0.1", 5062,
                                                       {"rport": None, "branch": "z9hG4bK776asdhds"})
    na = m.name_addr(m.get("From"))
    assert (na.display, na.uri, na.tag) == ("Alice", "sip:alice@127.0.0.1", "1928301774")


def test_response_takes_method_from_cseq():
    data = (b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bKr\r\nFrom: <sip:a@h>;tag=1\r\n"
            b"To: <sip:b@h>;tag=2\r\nCall-ID: r1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n")
    m = P.parse(data)
    assert (m.status, m.reason, m.method, m.is_request) == (180, "Ringing", "INVITE", False)
    assert fields(m) == ("r1", 7, "INVITE", "z9hG4bKr", "1", "2")
    assert m.to_bytes() == data


def test_compact_forms():
    data = (b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKc\r\n"
            b"f: <sip:a@h>;tag=ff\r\nt: <sip:b@h>\r\ni: compact@h\r\nCSeq: 3 OPTIONS\r\nm: <sip:a@h:5062>\r\n"
            b"c: text/plain\r\nk: timer\r\nl: 2\r\n\r\nhiEXTRA")
    m = P.parse(data)
    assert [h[0] for h in m.headers] == ["Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type",
                                         "Supported", "Content-Length"]
    assert fields(m) == ("compact@h", 3, "OPTIONS", "z9hG4bKc", "ff", None)
    assert m.body == b"hi"
    assert m.get("i") == m.get("Call-ID") == m.get("call-id") == "compact@h"
    out = m.to_bytes()
    assert b"\r\nCall-ID: compact@h\r\n" in out and out.endswith(b"Content-Length: 2\r\n\r\nhi")


def test_case_insensitive_names():
    m = P.parse(req(b"cseq: 9 OPTIONS", b"CALL-ID: up@h", b"vIA: SIP/2.0/UDP h;branch=z9hG4bKci",
                    b"fROM: <sip:a@h>;tag=lc", b"to: <sip:b@h>;TAG=UP", b"mAX-fORWARDS: 10"))
    assert fields(m) == ("up@h", 9, "OPTIONS", "z9hG4bKci", "lc", "UP")    # param names are case-insensitive
    for n in ("Max-Forwards", "max-forwards", "MAX-FORWARDS"):
        assert m.get(n) == "10"
    assert "Max-Forwards" in [h[0] for h in m.headers]


def test_unknown_header_names_any_case():
    m = P.parse(req(b"X-Zebra-Thing: one", b"x-zebra-thing: two", b"P-Odd-Header :  spaced  "))
    assert m.get("X-ZEBRA-THING") == "one" and m.get("x-zebra-thing") == "one"
    assert m.get_all("X-Zebra-Thing") == ["one", "two"]
    assert m.get("p-odd-header") == "spaced"
    m.set("X-ZEBRA-THING", "three")
    assert m.get_all("x-Zebra-thing") == ["three"]
    m.add("x-new-one", "4")
    assert m.get("X-New-One") == "4"
    m.remove("X-NEW-ONE")
    assert m.get("x-new-one") is None
    assert P.parse(m.to_bytes()).get("X-Zebra-Thing") == "three"


def test_bad_header_name_and_line():
    with pytest.raises(P.ParseError) as e:
        P.parse(req(b"Bad Name: x"))
    assert (e.value.code, e.value.reason) == (400, "Bad Header")
    with pytest.raises(P.ParseError) as e:
        P.parse(req(b"no colon here"))
    assert e.value.code == 400 and e.value.partial is not None     # still answerable: Via/From/To/... are fine


def test_folding():
    data = (b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n ;branch=z9hG4bKfold\r\n"
            b"From: <sip:a@h>\r\n\t;tag=f1\r\nTo: <sip:b@h>\r\nCall-ID: fold@h\r\nCSeq: 1\r\n   OPTIONS\r\n"
            b"Subject: a\r\n  long\r\n\tsubject\r\nContent-Length: 0\r\n\r\n")
    m = P.parse(data)
    assert fields(m) == ("fold@h", 1, "OPTIONS", "z9hG4bKfold", "f1", None)
    assert m.get("Subject") == "a long subject"
    assert b"\r\n " not in m.to_bytes() and P.parse(m.to_bytes()).headers == m.headers


def test_bare_lf_line_ends():
    data = INVITE.replace(b"\r\n", b"\n")
    m = P.parse(data)
    assert fields(m) == fields(P.parse(INVITE)) and m.body == b"v=0\n"
    assert m.to_bytes() == INVITE


def test_multi_value_headers():
    data = req(b"Via: SIP/2.0/UDP p1:5060;branch=z9hG4bKtop, SIP/2.0/TCP p2;branch=z9hG4bK2",
               b"Via: SIP/2.0/UDP p3;branch=z9hG4bK3", b"Allow: INVITE, ACK ,BYE", b"Allow: CANCEL",
               b'Contact: "A, B" <sip:a@h>;q=0.5, <sip:b@h>', b"Record-Route: <sip:r1;lr>, <sip:r2;lr>")
    m = P.parse(data)
    assert m.branch == "z9hG4bKtop" and m.top_via().host == "p1"
    assert [H.parse_via(v).host for v in m.get_all("Via")] == ["p1", "p2", "p3"]
    assert m.get_all("Allow") == ["INVITE", "ACK", "BYE", "CANCEL"]
    assert m.get_all("Contact") == ['"A, B" <sip:a@h>;q=0.5', "<sip:b@h>"]
    assert m.get_all("Record-Route") == ["<sip:r1;lr>", "<sip:r2;lr>"]
    assert P.parse(m.to_bytes()).get_all("Via") == m.get_all("Via")


def test_quoted_strings_escapes_and_commas():
    v = '"Al \\"the\\" Ice, Jr; x" <sip:alice@h>;tag=q1;x="a;b,c"'
    na = H.parse_name_addr(v)
    assert na.display == 'Al "the" Ice, Jr; x' and na.uri == "sip:alice@h"
    assert na.params == {"tag": "q1", "x": "a;b,c"}
    assert H.split_list(v + ", <sip:b@h>") == [v, "<sip:b@h>"]
    m = P.parse(req(b"From: " + v.encode()))
    assert m.from_tag == "q1" and m.get("From") == v
    assert P.parse(m.to_bytes()).from_tag == "q1"
    with pytest.raises(ValueError):
        H.split_list('"open, <sip:a@h>')
    with pytest.raises(P.ParseError):
        P.parse(req(b'From: "unterminated <sip:a@h>;tag=1'))


def test_parse_params_and_helpers():
    assert H.parse_params("a=b; C ; d = \"q;r\"") == {"a": "b", "c": None, "d": "q;r"}
    assert H.parse_params("") == {}
    assert H.canon("v") == "Via" and H.canon("CONTENT-length") == "Content-Length"
    assert H.is_token("INVITE") and H.is_token("x-y.z!%*_+`'~1") and not H.is_token("a b") and not H.is_token("")
    assert H.parse_name_addr("sip:a@h;tag=9").tag == "9"
    v = H.parse_via("SIP / 2.0 / tcp [::1]:5061;branch=z9hG4bKv6")
    assert (v.transport, v.host, v.port, v.branch) == ("TCP", "[::1]", 5061, "z9hG4bKv6")
    for bad in ("SIP/2.0/UDP", "HTTP/1.1/TCP h", "SIP/2.0/UDP h:0", "SIP/2.0/UDP h:99999", "SIP/2.0/UDP h:x"):
        with pytest.raises(ValueError):
            H.parse_via(bad)


def test_edits_are_seen_by_fields_and_to_bytes():
    m = P.parse(INVITE)
    assert fields(m)[1:3] == (314159, "INVITE")        # fills the caches
    m.set("CSeq", "314160 BYE")
    assert (m.cseq_num, m.cseq_method) == (314160, "BYE")
    m.headers[0][1] = "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKnew;received=10.0.0.9"   # like stamp_received
    assert m.branch == "z9hG4bKnew" and m.top_via().params["received"] == "10.0.0.9"
    m.add_first("Via", "SIP/2.0/TCP proxy;branch=z9hG4bKproxy")
    assert m.branch == "z9hG4bKproxy" and len(m.get_all("Via")) == 2
    m.set("From", "<sip:carol@h>;tag=c2")
    m.set("To", '"Bob" <sip:bob@h>;tag=b2')
    assert (m.from_tag, m.to_tag) == ("c2", "b2")
    for h in m.headers:
        if h[0] == "Call-ID":
            h[1] = "changed@h"
        if h[0] == "CSeq":
            h[1] = "5 ACK"
    assert (m.call_id, m.cseq_num, m.cseq_method) == ("changed@h", 5, "ACK")
    m.headers = [h for h in m.headers if h[0] != "Contact"] + [["X-Added", "1"]]
    m.remove("Content-Type")
    m.add("Subject", "hi")
    m.body = b"abc"
    m.method = "ACK"
    out = m.to_bytes()
    assert out.startswith(b"ACK sip:bob@127.0.0.1:5064 SIP/2.0\r\nVia: SIP/2.0/TCP proxy;branch=z9hG4bKproxy\r\n")
    assert b"Contact:" not in out and b"Content-Type:" not in out and out.endswith(
        b"X-Added: 1\r\nSubject: hi\r\nContent-Length: 3\r\n\r\nabc")
    m2 = P.parse(out)
    assert fields(m2) == ("changed@h", 5, "ACK", "z9hG4bKproxy", "c2", "b2") and m2.body == b"abc"
    m.remove("CSeq")
    m.remove("Via")
    assert (m.cseq_num, m.cseq_method, m.branch, m.top_via()) == (0, "", None, None)
    m.headers.insert(0, ["CSeq", "77 INFO"])
    assert (m.cseq_num, m.cseq_method) == (77, "INFO")


def test_make_request_response():
    r = M.make_request("OPTIONS", "sip:b@h", [("v", "SIP/2.0/UDP h;branch=z9hG4bKm"), ("f", "<sip:a@h>;tag=1"),
                                             ("t", "<sip:b@h>"), ("i", "mk@h"), ("CSeq", "4 OPTIONS")])
    assert fields(r) == ("mk@h", 4, "OPTIONS", "z9hG4bKm", "1", None)
    ok = M.make_response(P.parse(r.to_bytes()), 200, "OK", to_tag="tt")
    assert (ok.status, ok.method, ok.to_tag, ok.branch) == (200, "OPTIONS", "tt", "z9hG4bKm")
    assert P.parse(ok.to_bytes()).to_tag == "tt"


def test_content_length_framing():
    m = P.parse(req(body=b"hello") + b"trailing junk after the datagram body")
    assert m.body == b"hello"
    assert P.parse(req(body=b"", cl=False) + b"xyz").body == b"xyz"     # no Content-Length: the rest
    short = req(body=b"hello")[:-2]
    with pytest.raises(P.ParseError) as e:
        P.parse(short)
    assert (e.value.code, e.value.reason) == (400, "Content-Length Too Large")
    for bad in (b"Content-Length: -1", b"Content-Length: 1x", b"Content-Length: 1, 2"):
        with pytest.raises(P.ParseError) as e:
            P.parse(req(bad, cl=False))
        assert e.value.code == 400
    with pytest.raises(P.ParseError) as e:
        P.parse(b"x" * (P.MAX_MESSAGE + 1))
    assert e.value.code == 413


def test_leading_crlf_and_buffer_types():
    m = P.parse(b"\r\n\r\n" + INVITE)
    assert m.to_bytes() == INVITE
    assert P.parse(bytearray(INVITE)).to_bytes() == INVITE
    assert P.parse(memoryview(INVITE)).to_bytes() == INVITE


@pytest.mark.parametrize("extra,reason", [
    (b"CSeq: 2 OPTIONS", "Multiple CSeq"),
    (b"Call-ID: a, b", "Multiple Call-ID"),
    (b"Max-Forwards: 256", "Bad Max-Forwards"),
    (b"Expires: soon", "Bad Expires"),
])
def test_rejections(extra, reason):
    data = req(extra) if not extra.startswith(b"CSeq") else req(b"CSeq: 1 OPTIONS", extra)
    with pytest.raises(P.ParseError) as e:
        P.parse(data)
    assert (e.value.code, e.value.reason) == (400, reason)


def test_rejections_order_and_start_lines():
    with pytest.raises(P.ParseError) as e:
        P.parse(req(b"CSeq: 1 INVITE"))
    assert e.value.reason == "CSeq Method Mismatch"
    with pytest.raises(P.ParseError) as e:
        P.parse(req(b"CSeq: x OPTIONS"))
    assert e.value.reason == "Bad CSeq"
    # a duplicate single header is reported before a bad Via further up
    with pytest.raises(P.ParseError) as e:
        P.parse(req(b"Via: nonsense", b"To: <sip:b@h>", b"To: <sip:c@h>"))
    assert e.value.reason == "Multiple To"
    with pytest.raises(P.ParseError) as e:
        P.parse(req(start=b"OPTIONS sip:bob@127.0.0.1 SIP/3.0"))
    assert e.value.code == 505 and e.value.partial is not None
    for start in (b"OPTIONS  sip:b@h SIP/2.0", b"OPTIONS <sip:b@h> SIP/2.0", b"OPT@ONS sip:b@h SIP/2.0",
                  b"SIP/2.0 99 Low", b"SIP/2.0 2000 OK", b"OPTIONS sip:b@h?x=y SIP/2.0"):
        with pytest.raises(P.ParseError) as e:
            P.parse(req(start=start))
        assert e.value.code == 400, start
    with pytest.raises(P.ParseError) as e:
        P.parse(b"OPTIONS sip:b@h SIP/2.0\r\nFrom: \xff\r\n\r\n")
    assert e.value.reason == "Bad Encoding"


def test_split_stream_several_messages_and_partial():
    a = req(body=b"one")
    b = INVITE
    c = req(b"Call-ID: third@h")
    buf = b"\r\n" + a + b + c
    got = []
    while True:
        msg, used = P.split_stream(buf)
        if msg is None:
            break
        got.append(msg)
        buf = buf[used:]
    assert got == [a, b, c] and buf == b""
    assert [P.parse(x).call_id for x in got] == ["c1@127.0.0.1", "a84b4c76e66710@127.0.0.1", "third@h"]
    # one message arriving in pieces: nothing until the last byte of its body
    stream = bytearray()
    for i in range(0, len(b), 37):
        stream += b[i:i + 37]
        msg, used = P.split_stream(stream)
        if len(stream) < len(b):
            assert (msg, used) == (None, 0)
    assert (msg, used) == (b, len(b))
    # compact Content-Length counts too
    d = b"MESSAGE sip:b@h SIP/2.0\r\nl: 2\r\n\r\nhiMESSAGE"
    assert P.split_stream(d) == (b"MESSAGE sip:b@h SIP/2.0\r\nl: 2\r\n\r\nhi", len(d) - 7)


def test_same_results_in_micropython(mp):
    code = ("from uphone.sip import parse as P\n"
            "m = P.parse(%r)\n"
            "print(m.call_id, m.cseq_num, m.cseq_method, m.branch, m.from_tag, m.to_tag)\n"
            "m.set('CSeq', '9 BYE'); m.headers[0][1] = 'SIP/2.0/UDP h;branch=z9hG4bKmp'\n"
            "print(m.cseq_num, m.cseq_method, m.branch, m.to_bytes() == %r)\n"
            "try:\n    P.parse(%r)\nexcept P.ParseError as e:\n    print(e.code, e.reason)\n") % (
        INVITE, None, req(b"CSeq: 1 INVITE"))
    m = P.parse(INVITE)
    m.set("CSeq", "9 BYE")
    m.headers[0][1] = "SIP/2.0/UDP h;branch=z9hG4bKmp"
    code = code.replace("== None", "== %r" % m.to_bytes())
    out = mp(code)
    assert out.split("\n")[:3] == ["a84b4c76e66710@127.0.0.1 314159 INVITE z9hG4bK776asdhds 1928301774 None",
                                   "9 BYE z9hG4bKmp True", "400 CSeq Method Mismatch"]


def test_a_token_is_ascii_and_lists_split_around_non_ascii_text():
    # sip/headers.py scans bytes (MicroPython would intern each character a str scan makes): same answers
    assert H.is_token("X-Foo_2.b!%*+`'~") and H.is_token("INVITE")
    assert not H.is_token("\u00fcber") and not H.is_token("a b") and not H.is_token("")
    text = '"J\u00fcrgen, \\"Z\u00e9\" <sip:a@h>'
    assert H.split_list(text + ', <sip:b@h>') == [text, '<sip:b@h>']
    na = H.parse_name_addr(text + ';tag=1')
    assert na.display == 'J\u00fcrgen, "Z\u00e9' and na.uri == "sip:a@h", na
