# Digest auth (RFC 2617 / 7616 / 8760 for SIP) and the pure-Python MD5, on CPython and on the real MicroPython.
import hashlib

import pytest

from uphone.sip import auth as A
from uphone.sip.auth import DigestClient, parse_challenges
from uphone.sip.md5 import md5 as pymd5
from uphone.sip.message import Message, make_request

RFC2617 = ('Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
           'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
R7616 = ('realm="http-auth@example.org", qop="auth, auth-int", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
         'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
C7616 = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def resp(status, *challenges):
    m = Message()
    m.status, m.reason = status, "Unauthorized" if status == 401 else "Proxy Authentication Required"
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    for c in challenges:
        m.add(name, c)
    return m


def req(method="REGISTER", uri="sip:example.com", body=b""):
    return make_request(method, uri, [("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx"),
                                      ("CSeq", "1 %s" % method)], body)


def creds(r, name="Authorization"):
    """-> list of param dicts of the digest credentials in header `name`."""
    return [parse_challenges(h[1])[0][1] for h in r.headers if h[0] == name]


def H(fn, s):
    return fn(s.encode() if isinstance(s, str) else s).hexdigest()


def test_rfc2617_worked_example():
    c = DigestClient("Mufasa", "Circle Of Life", cnonce=lambda: "0a4f113b")
    r = req("GET", "/dir/index.html")
    assert c.authorize(resp(401, RFC2617), r)
    (p,) = creds(r)
    assert p["response"] == "6629fae49393a05397450978507c4ef1"
    assert (p["qop"], p["nc"], p["cnonce"], p["uri"]) == ("auth", "00000001", "0a4f113b", "/dir/index.html")
    assert p["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41" and p["algorithm"] == "MD5"
    assert p["username"] == "Mufasa" and p["realm"] == "testrealm@host.com"


def test_a_stored_ha1_answers_as_the_password_would():
    # accounts.ha1: the phone keeps MD5(user:realm:password), never the password (RFC 2617's worked example again)
    ha1 = H(hashlib.md5, "Mufasa:testrealm@host.com:Circle Of Life")
    c = DigestClient("Mufasa", None, cnonce=lambda: "0a4f113b", ha1=ha1.upper())
    r = req("GET", "/dir/index.html")
    assert c.authorize(resp(401, RFC2617), r)
    (p,) = creds(r)
    assert p["response"] == "6629fae49393a05397450978507c4ef1"
    # SHA-256 needs the password: with only an MD5 HA1 the MD5 challenge of the two is answered
    c = DigestClient("Mufasa", None, cnonce=lambda: C7616, ha1=H(hashlib.md5, "Mufasa:http-auth@example.org:x"))
    r = req("GET", "/dir/index.html")
    assert c.authorize(resp(401, "Digest " + R7616 + ", algorithm=SHA-256", "Digest " + R7616 + ", algorithm=MD5"), r)
    assert creds(r)[0]["algorithm"] == "MD5"
    assert not DigestClient("Mufasa", None, ha1="0" * 32).authorize(resp(401, "Digest " + R7616 +
                                                                         ", algorithm=SHA-256"), req())


def test_rfc7616_sha256_preferred_when_listed_first():
    c = DigestClient("Mufasa", "Circle of Life", cnonce=lambda: C7616)
    r = req("GET", "/dir/index.html")
    assert c.authorize(resp(401, "Digest " + R7616 + ", algorithm=SHA-256", "Digest " + R7616 + ", algorithm=MD5"), r)
    (p,) = creds(r)
    assert p["algorithm"] == "SHA-256"
    assert p["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def test_rfc7616_md5_when_server_lists_it_first():
    # RFC 8760 2.4: the topmost challenge the client supports wins, so the server's order decides
    c = DigestClient("Mufasa", "Circle of Life", cnonce=lambda: C7616)
    r = req("GET", "/dir/index.html")
    assert c.authorize(resp(401, "Digest " + R7616 + ", algorithm=MD5, Digest " + R7616 + ", algorithm=SHA-256"), r)
    (p,) = creds(r)
    assert p["algorithm"] == "MD5" and p["response"] == "8ca523f5e9506fed4657c9700eebdbec"


@pytest.mark.parametrize("alg,fn", [("MD5-sess", hashlib.md5), ("SHA-256-sess", hashlib.sha256)])
def test_sess_algorithms(alg, fn):
    c = DigestClient("alice", "secret", cnonce=lambda: "cafe01")
    r = req("REGISTER", "sip:pbx.local")
    assert c.authorize(resp(401, 'Digest realm="pbx", nonce="n1", qop="auth", algorithm=%s' % alg), r)
    (p,) = creds(r)
    ha1 = H(fn, "%s:n1:cafe01" % H(fn, "alice:pbx:secret"))
    ha2 = H(fn, "REGISTER:sip:pbx.local")
    assert p["algorithm"] == alg
    assert p["response"] == H(fn, "%s:n1:00000001:cafe01:auth:%s" % (ha1, ha2))


def test_rfc2069_no_qop():
    c = DigestClient("bob", "pw")
    r = req("INVITE", "sip:carol@x")
    assert c.authorize(resp(401, 'Digest realm="x", nonce="abc"'), r)
    (p,) = creds(r)
    md = hashlib.md5
    assert p["response"] == H(md, "%s:abc:%s" % (H(md, "bob:x:pw"), H(md, "INVITE:sip:carol@x")))
    assert "nc" not in p and "cnonce" not in p and "qop" not in p and "opaque" not in p


def test_auth_int_only_hashes_the_body():
    c = DigestClient("bob", "pw", cnonce=lambda: "c1")
    body = b"v=0\r\n"
    r = req("INVITE", "sip:carol@x", body)
    assert c.authorize(resp(401, 'Digest realm="x", nonce="abc", qop="auth-int"'), r)
    (p,) = creds(r)
    md = hashlib.md5
    ha2 = H(md, "INVITE:sip:carol@x:%s" % H(md, body))
    assert p["qop"] == "auth-int"
    assert p["response"] == H(md, "%s:abc:00000001:c1:auth-int:%s" % (H(md, "bob:x:pw"), ha2))


def test_407_uses_proxy_authorization_and_cached_header_name_is_kept():
    c = DigestClient("bob", "pw")
    r = req("INVITE", "sip:carol@x")
    assert c.authorize(resp(407, 'Digest realm="proxy", nonce="p1", qop="auth"'), r)
    assert creds(r, "Proxy-Authorization") and not creds(r, "Authorization")
    bye = req("BYE", "sip:carol@10.0.0.9")
    c.apply_cached(bye)
    (p,) = creds(bye, "Proxy-Authorization")
    assert p["nc"] == "00000002" and p["uri"] == "sip:carol@10.0.0.9"


def test_several_challenges_answer_every_realm():
    c = DigestClient("bob", "pw")
    r = req("INVITE", "sip:carol@x")
    ch = resp(407, 'Digest realm="a", nonce="1", qop="auth", Digest realm="b", nonce="2", algorithm=SHA-512-256, '
                   'Digest realm="b", nonce="3", algorithm=SHA-256', 'Basic realm="c"')
    assert c.authorize(ch, r)
    got = {p["realm"]: p for p in creds(r, "Proxy-Authorization")}
    assert sorted(got) == ["a", "b"]
    assert got["b"]["nonce"] == "3" and got["b"]["algorithm"] == "SHA-256"
    assert got["a"]["algorithm"] == "MD5"


def test_stale_true_retries_and_wrong_password_stops():
    c = DigestClient("bob", "wrong")
    r = req()
    ch = resp(401, 'Digest realm="pbx", nonce="n1", qop="auth"')
    assert c.authorize(ch, r)
    # the retry (carrying our answer) gets the same challenge again: the password is wrong
    assert not c.authorize(ch, r)
    # a fresh nonce without stale after our answer is still a refusal (servers that re-nonce every 401)
    assert not c.authorize(resp(401, 'Digest realm="pbx", nonce="n2", qop="auth"'), r)
    # stale=true: the credentials were fine, only the nonce expired
    assert c.authorize(resp(401, 'Digest realm="pbx", nonce="n2", qop="auth", stale=TRUE'), r)
    (p,) = creds(r)                     # the earlier header for this realm was replaced, not duplicated
    assert p["nonce"] == "n2" and p["nc"] == "00000001"


def test_cached_nonce_expired_without_stale_gets_one_retry():
    c = DigestClient("bob", "pw")
    assert c.authorize(resp(401, 'Digest realm="pbx", nonce="n1", qop="auth"'), req())
    r2 = req()
    c.apply_cached(r2)                  # proactive, nc=2
    assert c.authorize(resp(401, 'Digest realm="pbx", nonce="n9", qop="auth"'), r2)
    assert creds(r2)[0]["nonce"] == "n9"
    assert not c.authorize(resp(401, 'Digest realm="pbx", nonce="n9", qop="auth"'), r2)


def test_apply_cached_increments_nc_and_skips_ack_cancel():
    c = DigestClient("bob", "pw", cnonce=lambda: "cc")
    empty = req()
    c.apply_cached(empty)
    assert not creds(empty)
    assert c.authorize(resp(401, 'Digest realm="pbx", nonce="n1", qop="auth"'), req())
    ncs = []
    for _ in range(3):
        r = req()
        c.apply_cached(r)
        ncs.append(creds(r)[0]["nc"])
    assert ncs == ["00000002", "00000003", "00000004"]
    for m in ("ACK", "CANCEL"):
        r = req(m, "sip:carol@x")
        c.apply_cached(r)
        assert not creds(r)
    r = req()
    c.apply_cached(r)
    c.apply_cached(r)                   # applying twice replaces, never stacks
    assert len(creds(r)) == 1 and creds(r)[0]["nc"] == "00000006"


def test_not_understood_returns_false():
    c = DigestClient("bob", "pw")
    assert not c.authorize(resp(401, 'Basic realm="x"'), req())
    assert not c.authorize(resp(401, 'Digest realm="x", nonce="1", algorithm=SHA-512-256'), req())
    assert not c.authorize(resp(401, 'Digest realm="x", nonce="1", qop="auth-conf"'), req())
    assert not c.authorize(resp(401), req())
    ok = Message()
    ok.status, ok.reason = 200, "OK"
    assert not c.authorize(ok, req())


def test_password_never_leaks():
    pw = "S3cr3t-Pa55"
    c = DigestClient("bob", pw)
    assert pw not in repr(c) and pw not in str(c)
    r = req("INVITE", "sip:carol@x", b"v=0\r\n")
    assert c.authorize(resp(401, 'Digest realm="a", nonce="1", qop="auth", userhash=true'), r)
    assert c.authorize(resp(407, 'Digest realm="b", nonce="2", algorithm=MD5-sess'), r)
    c.apply_cached(r)
    wire = r.to_bytes()
    assert pw.encode() not in wire
    assert pw not in repr(c)
    p = creds(r)[0]
    assert p["userhash"] == "true" and p["username"] == H(hashlib.md5, "bob:a")


def test_parse_challenges_quoting():
    got = parse_challenges('Digest realm="a \\"q\\", b", nonce=abc , stale=true,Digest realm="z",nonce="2", '
                           'Basic dXNlcjpwYXNz==')
    assert got[0] == ("digest", {"realm": 'a "q", b', "nonce": "abc", "stale": "true"})
    assert got[1] == ("digest", {"realm": "z", "nonce": "2"})
    assert got[2][0] == "basic"
    with pytest.raises(ValueError):
        parse_challenges('Digest realm="open')
    assert A._quote('a"b\\c') == '"a\\"b\\\\c"'


@pytest.mark.parametrize("n", [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 5000])
def test_md5_matches_hashlib(n):
    data = bytes((i * 7 + 3) & 0xFF for i in range(n))
    assert pymd5(data).hexdigest() == hashlib.md5(data).hexdigest()
    assert pymd5(data).digest() == hashlib.md5(data).digest()
    h = pymd5()
    for i in range(0, n, 13):
        h.update(data[i:i + 13])
    assert h.hexdigest() == hashlib.md5(data).hexdigest()
    assert h.hexdigest() == h.copy().hexdigest()       # digest() does not disturb the state


def test_runs_in_micropython(mp):
    out = mp(
        "from uphone.sip import auth, sdp, md5\n"
        "from uphone.sip.message import Message, make_request\n"
        "print('md5', md5.md5(b'abc').hexdigest())\n"
        "m = Message(); m.status = 401\n"
        "m.add('WWW-Authenticate', %r)\n"
        "r = make_request('GET', '/dir/index.html', [])\n"
        "c = auth.DigestClient('Mufasa', 'Circle Of Life', cnonce=lambda: '0a4f113b')\n"
        "print('ok', c.authorize(m, r))\n"
        "print(r.get('Authorization'))\n"
        "o = sdp.make_offer('10.0.0.1', 20000)\n"
        "a, n = sdp.answer(o, '10.0.0.2', 30000, ['PCMA', 'PCMU'])\n"
        "p = sdp.process_answer(o, a)\n"
        "print('sdp', n.codec, n.te_pt, p.remote_port, p.direction)\n" % RFC2617)
    assert "md5 900150983cd24fb0d6963f7d28e17f72" in out
    assert "ok True" in out
    assert 'response="6629fae49393a05397450978507c4ef1"' in out
    assert "sdp PCMU 101 30000 sendrecv" in out
