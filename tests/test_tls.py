# SIP over TLS (RFC 3261 26.2, RFC 5630 sips:) against Kamailio's tls module on 127.0.0.1: two phones register over
# TLS (the server's certificate checked against sip.tls_ca) and call each other through it, audio both ways; a
# server whose certificate is expired, names another host, or chains to another CA is refused and the phone says
# why. Phones run on CPython and on the frozen MicroPython in a 96 KB heap (tests/proc.py); certificates are made on
# the spot (tests/pki.py).
import time
import wave

from tests import peers
from tests.pki import Pki
from tests.proc import phones  # noqa: F401  (fixture)
from uphone.media.goertzel import dominant_freq


def tls_account(user, kam):
    """An account at a tests.peers.Kamailio reached over TLS (its sips: URI as registrar and outbound proxy)."""
    return {"user": user, "domain": "127.0.0.1:%d" % kam.port, "password": "secret", "registrar": kam.tls_uri,
            "proxy": kam.tls_uri, "expires": 60, "register": True}


def tls_kamailio(tmp_path, pki, kind="good"):
    return peers.Kamailio(tmp_path / ("kam-" + kind), tls=(pki.path(kind + ".crt"), pki.path(kind + ".key"))).start()


def _heard(path, last_s=1.0):
    with wave.open(path) as w:
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    return data[-int(rate * last_s) * 2:], rate


def test_register_and_call_over_tls(phones, tmp_path):
    pki = Pki(tmp_path / "pki")
    kam = tls_kamailio(tmp_path, pki)
    try:
        sip = {"transport": "tls", "tls_ca": pki.path("ca.pem"), "keepalive": "crlf", "keepalive_s": 5}
        a = phones.add("alice", account=tls_account("alice", kam), sip=sip,
                       audio={"source": "tone:1000", "sink": "heard.wav"})
        b = phones.add("bob", account=tls_account("bob", kam), sip=sip,
                       audio={"source": "tone:440", "sink": "heard.wav"},
                       features={"auto_answer": True, "auto_answer_delay_ms": 0})
        for p in (a, b):
            assert p.wait_line("reg r1 registered", 15), p.tail()
            flows = [ln for ln in p.st()["lines"] if ln.startswith("flow ")]
            # one flow, to Kamailio's TLS port, its handshake over (TLS 1.2 on MicroPython's mbedtls)
            assert len(flows) == 1 and flows[0].startswith("flow 127.0.0.1:%d out tls TLSv1." % kam.tls_port), flows
        assert kam.auth_lines("authorized", "REGISTER", "alice") >= 1, kam.text()[-3000:]
        # the call: alice's INVITE over her TLS flow, Kamailio's to bob over HIS flow (the Via alias, RFC 5923:
        # bob does not listen for TLS)
        assert a.ev("MakeCall", target="bob").startswith("ok c1"), a.tail()
        assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 15), (a.tail(), b.tail())
        assert b.st()["leg"]["c1"]["routes"] != "0"          # Record-Routed by Kamailio: in-dialog requests too
        a.wait(lambda: False, 6)                             # audio, and a CRLF keepalive round over TLS
        assert a.saw("tr c1 Active MediaFlowEstablished") and b.saw("tr c1 Active MediaFlowEstablished")
        assert b.ev("HangupCall").startswith("ok c1 Terminating"), b.tail()   # bob's BYE over his TLS flow
        assert a.wait(lambda: a.state() == "-" and b.state() == "-", 10), (a.tail(), b.tail())
        for p in (a, b):
            assert not p.saw("no pong") and not p.saw("err tls"), p.tail()
            assert len([ln for ln in p.st()["lines"] if ln.startswith("flow ")]) == 1, p.tail()  # the same flow
        phones.close()
    finally:
        phones.close(check=False)
        kam.stop()
    for p, hz in ((a, 440), (b, 1000)):
        pcm, rate = _heard(p.dir + "/heard.wav")
        assert abs(dominant_freq(pcm, rate) - hz) < 20, (p.name, dominant_freq(pcm, rate))


# what each runtime's verifier says (CPython: OpenSSL's verify_message; MicroPython: mbedtls_x509_crt_verify_info)
REFUSALS = {
    "expired": ("certificate has expired", "validity has expired"),
    "wrong_name": ("mismatch", "does not match"),
    "other_ca": ("unable to get local issuer certificate", "not correctly signed by the trusted CA"),
}


def test_refused_servers_do_not_register_and_say_why(phones, tmp_path):
    pki = Pki(tmp_path / "pki")
    good = tls_kamailio(tmp_path, pki)
    expired = tls_kamailio(tmp_path, pki, "expired")
    wrong_name = tls_kamailio(tmp_path, pki, "wrong_name")
    try:
        ps = {}
        for case, kam, ca in (("expired", expired, "ca.pem"), ("wrong_name", wrong_name, "ca.pem"),
                              ("other_ca", good, "other_ca.pem")):
            ps[case] = phones.add(case, account=tls_account("alice", kam),
                                  sip={"transport": "tls", "tls_ca": pki.path(ca)})
        for case, p in ps.items():
            line = "err tls 127.0.0.1:"
            assert p.wait_line(line, 15), p.tail()
            why = [ln for ln in p.lines if ln.startswith(line)][0]
            assert "certificate refused" in why and any(w in why for w in REFUSALS[case]), (case, why)
        time.sleep(1)
        for case, p in ps.items():
            assert not p.saw("reg r1 registered") and p.st()["sessions"]["r1"] != "Registered", p.tail()
            assert not [ln for ln in p.st()["lines"] if " tls TLSv" in ln], p.tail()
        for kam in (good, expired, wrong_name):
            assert "uphone-test:" not in kam.text()     # no REGISTER reached any of them
        phones.close()
    finally:
        phones.close(check=False)
        for kam in (good, expired, wrong_name):
            kam.stop()


def test_missing_ca_file_is_reported(phones, tmp_path):
    pki = Pki(tmp_path / "pki")
    kam = tls_kamailio(tmp_path, pki)
    try:
        p = phones.add("alice", account=tls_account("alice", kam),
                       sip={"transport": "tls", "tls_ca": str(tmp_path / "nowhere.pem")})
        assert p.wait_line("err tls CA certificate %s: missing (sip.tls_ca)" % (tmp_path / "nowhere.pem"), 10), \
            p.tail()
        assert p.wait_line("err tls 127.0.0.1:%d" % kam.tls_port, 10), p.tail()   # the REGISTER's flow fails
        assert not p.saw("reg r1 registered"), p.tail()
        phones.close()
    finally:
        phones.close(check=False)
        kam.stop()


# -- where a request goes and how the phone names itself over TLS (sans-I/O) ------------------------------------------
class _Ph:
    def __init__(self, tport):
        self.tport, self.local_ip, self.local_port = tport, "192.0.2.7", 5070


def test_hops_contact_and_via_over_tls():
    from uphone.ua import request
    udp, tls = _Ph("udp"), _Ph("tls")
    # sips: is TLS whatever the phone's own transport, on 5061 unless the URI says (RFC 3261 26.2.2, 19.1.2)
    assert request.hop(udp, "sips:pbx.example.com") == ("pbx.example.com", 5061, "tls")
    assert request.hop(udp, "sips:pbx.example.com:5071") == ("pbx.example.com", 5071, "tls")
    assert request.hop(udp, "sip:pbx.example.com;transport=tls") == ("pbx.example.com", 5061, "tls")
    assert request.hop(udp, "sip:pbx.example.com") == ("pbx.example.com", 5060, "udp")
    assert request.hop(tls, "sip:pbx.example.com;lr") == ("pbx.example.com", 5061, "tls")
    assert request.hop(tls, "sip:pbx.example.com;transport=udp") == ("pbx.example.com", 5060, "udp")
    # a sips: Contact over TLS (RFC 5630 4.1); the Via asks for the connection to be reused (RFC 5923 alias)
    assert request.contact(tls, {"user": "alice"}) == "<sips:alice@192.0.2.7:5070>"
    assert request.contact(udp, {"user": "alice"}) == "<sip:alice@192.0.2.7:5070>"
    v = request.via(tls, ("pbx.example.com", 5061, "tls"))
    assert v.startswith("SIP/2.0/TLS 192.0.2.7:5070;rport;alias;branch=z9hG4bK"), v
    assert ";alias" not in request.via(udp, ("pbx.example.com", 5060, "udp"))


def test_loopback_net_refuses_tls_instead_of_pretending():
    from uphone.loopback import LoopNet, LoopRT
    net = LoopNet()
    rt = LoopRT(net)
    closed = []
    c = rt.tcp_connect("127.0.0.1", 5061, lambda c, d: None, closed.append, tls=(object(), "127.0.0.1"))
    net.t += 10
    net.deliver()
    assert closed == [c] and "not simulated" in c.error
