# SDES (RFC 4568) in sip/sdp.py: a=crypto parsing and writing, RTP/SAVP and best-effort RTP/AVP offers, the
# answerer's choice, the offerer's check of the answer, and the negotiated keys driving media/srtp.py both ways;
# on CPython and on the real MicroPython.
import binascii

import pytest

from uphone.media import srtp
from uphone.sip import sdp
from uphone.sip.sdp import SdpError

KEY = bytes(range(16))
SALT = bytes(range(100, 114))
B64 = binascii.b2a_base64(KEY + SALT).strip().decode()       # 40 characters: 30 bytes, no padding


def _offer(media, c="c=IN IP4 10.0.0.2\r\n"):
    return ("v=0\r\no=- 5 5 IN IP4 10.0.0.2\r\ns=-\r\n" + c + "t=0 0\r\n" + media).encode()


def _audio(proto, *crypto):
    return "m=audio 4000 %s 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n" % proto + \
        "".join("a=crypto:%s\r\n" % c for c in crypto)


def lines(b):
    return b.decode().split("\r\n")[:-1]


def crypto_lines(b):
    return [x[len("a=crypto:"):] for x in lines(b) if x.startswith("a=crypto:")]


# -- the attribute -------------------------------------------------------------------------------------------------
def test_crypto_value_round_trip_and_fresh_keys():
    c = sdp.Crypto(7, "AES_CM_128_HMAC_SHA1_80", KEY, SALT)
    assert c.value() == "7 AES_CM_128_HMAC_SHA1_80 inline:" + B64
    p = sdp.parse_crypto(c.value())
    assert (p.tag, p.suite, p.key, p.salt, p.lifetime) == (7, "AES_CM_128_HMAC_SHA1_80", KEY, SALT, None)
    assert B64 not in repr(p) and "AES_CM_128_HMAC_SHA1_80" in repr(p)      # logs never show a key
    a, b = sdp.new_crypto(1), sdp.new_crypto(1, "AES_CM_128_HMAC_SHA1_32")
    assert len(a.key) == 16 and len(a.salt) == 14 and a.key + a.salt != b.key + b.salt
    assert b.suite == "AES_CM_128_HMAC_SHA1_32"
    assert sdp.parse_crypto(b.value()).key == b.key


@pytest.mark.parametrize("value,lifetime", [
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s" % B64, None),
    ("1 AES_CM_128_HMAC_SHA1_32 inline:%s|2^31" % B64, 1 << 31),
    ("123456789 AES_CM_128_HMAC_SHA1_80 inline:%s|1048576" % B64, 1 << 20),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s|2^48 WSH=64" % B64, 1 << 48),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s -X-VENDOR=1" % B64, None),      # "-": optional (RFC 4568 6.3.7)
])
def test_crypto_lines_we_take(value, lifetime):
    c = sdp.parse_crypto(value)
    assert (c.key, c.salt, c.lifetime) == (KEY, SALT, lifetime)


@pytest.mark.parametrize("value,why", [
    ("1 AES_CM_128_HMAC_SHA1_80", "want"),
    ("x AES_CM_128_HMAC_SHA1_80 inline:%s" % B64, "tag"),
    ("1234567890 AES_CM_128_HMAC_SHA1_80 inline:%s" % B64, "tag"),
    ("1 F8_128_HMAC_SHA1_80 inline:%s" % B64, "suite"),
    ("1 AES_256_CM_HMAC_SHA1_80 inline:%s" % B64, "suite"),
    ("1 AES_CM_128_HMAC_SHA1_80 uri:http://k/%s" % B64, "inline"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s" % B64[:-1], "30 bytes"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s" % (B64[:-1] + "!"), "30 bytes"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s==" % B64, "30 bytes"),
    # RFC 4568 section 4's example line: a lifetime and an MKI
    ("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32", "MKI"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s|2^20|1:4;inline:%s|2^20|2:4" % (B64, B64), "MKI"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s|2^49" % B64, "lifetime"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s|2^x" % B64, "lifetime"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s|0" % B64, "lifetime"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s KDR=1" % B64, "KDR"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s UNENCRYPTED_SRTCP" % B64, "UNENCRYPTED"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s UNAUTHENTICATED_SRTP" % B64, "UNAUTHENTICATED"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s FEC_ORDER=FEC_SRTP" % B64, "FEC"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s NEWTHING" % B64, "NEWTHING"),  # unknown, no "-": mandatory
    ("1 AES_CM_128_HMAC_SHA1_80 inline:%s WSH=x" % B64, "WSH"),
])
def test_crypto_lines_we_refuse(value, why):
    with pytest.raises(SdpError, match=why):
        sdp.parse_crypto(value)


# -- offers --------------------------------------------------------------------------------------------------------
def test_offers_by_mode():
    off = sdp.make_offer("10.0.0.1", 20000)
    assert "m=audio 20000 RTP/AVP 0 8 101" in lines(off) and not crypto_lines(off)
    mand = sdp.make_offer("10.0.0.1", 20000, srtp="mandatory")
    assert "m=audio 20000 RTP/SAVP 0 8 101" in lines(mand)
    cl = [sdp.parse_crypto(v) for v in crypto_lines(mand)]
    assert [(c.tag, c.suite) for c in cl] == [(1, "AES_CM_128_HMAC_SHA1_80"), (2, "AES_CM_128_HMAC_SHA1_32")]
    assert cl[0].key != cl[1].key                                   # a key per line (RFC 4568 6.1)
    opt = sdp.make_offer("10.0.0.1", 20000, srtp="optional", crypto=[sdp.Crypto(3, sdp.SRTP_SUITES[0], KEY, SALT)])
    assert "m=audio 20000 RTP/AVP 0 8 101" in lines(opt)
    assert crypto_lines(opt) == ["3 AES_CM_128_HMAC_SHA1_80 inline:" + B64]
    assert sdp.make_offer("10.0.0.1", 2, srtp="mandatory") != mand  # fresh keys every time
    with pytest.raises(SdpError):
        sdp.make_offer("10.0.0.1", 20000, srtp="sometimes")


@pytest.mark.parametrize("mode", ["mandatory", "optional"])
def test_offer_answer_keys_both_ways(mode):
    """Each side sends with its own key and receives with the other's; the negotiated keys run SRTP both ways."""
    offer = sdp.make_offer("10.0.0.1", 20000, srtp=mode)
    ans, nb = sdp.answer(offer, "10.0.0.2", 30000, ["PCMU"], srtp="optional")
    proto = "RTP/SAVP" if mode == "mandatory" else "RTP/AVP"
    assert "m=audio 30000 %s 0 101" % proto in lines(ans) and nb.proto == proto
    assert len(crypto_lines(ans)) == 1
    na = sdp.process_answer(offer, ans)
    offered = [sdp.parse_crypto(v) for v in crypto_lines(offer)]
    assert (nb.srtp_rx.tag, nb.srtp_rx.suite, nb.srtp_rx.key) == (1, offered[0].suite, offered[0].key)
    assert (na.srtp_tx.key, na.srtp_rx.key) == (nb.srtp_rx.key, nb.srtp_tx.key)
    assert na.srtp_tx.key != na.srtp_rx.key
    a_tx = srtp.Srtp(na.srtp_tx.key, na.srtp_tx.salt, na.srtp_tx.suite)
    b_rx = srtp.Srtp(nb.srtp_rx.key, nb.srtp_rx.salt, nb.srtp_rx.suite)
    b_tx = srtp.Srtp(nb.srtp_tx.key, nb.srtp_tx.salt, nb.srtp_tx.suite)
    a_rx = srtp.Srtp(na.srtp_rx.key, na.srtp_rx.salt, na.srtp_rx.suite)
    for tx, rx in ((a_tx, b_rx), (b_tx, a_rx)):
        pkt = bytes([0x80, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4]) + bytes(range(160))
        buf = bytearray(pkt) + bytearray(10)
        n = tx.protect(buf, len(pkt))
        assert rx.unprotect(buf, n) == len(pkt) and bytes(buf[:len(pkt)]) == pkt
    assert nb.srtp_tx.suite in repr(nb) and binascii.b2a_base64(nb.srtp_tx.key).strip().decode() not in repr(nb)


def test_answer_takes_the_first_usable_line_in_the_offerers_order():
    off = _offer(_audio("RTP/SAVP", "1 F8_128_HMAC_SHA1_80 inline:%s" % B64,
                        "2 AES_CM_128_HMAC_SHA1_32 inline:%s|2^30" % B64,
                        "3 AES_CM_128_HMAC_SHA1_80 inline:%s" % B64))
    ans, neg = sdp.answer(off, "10.0.0.1", 5000, ["PCMU"], srtp="mandatory")
    assert (neg.srtp_rx.tag, neg.srtp_rx.suite, neg.srtp_rx.lifetime) == (2, "AES_CM_128_HMAC_SHA1_32", 1 << 30)
    (mine,) = crypto_lines(ans)
    assert mine.startswith("2 AES_CM_128_HMAC_SHA1_32 inline:") and B64 not in mine
    assert neg.srtp_tx.tag == 2 and neg.srtp_tx.key != KEY


def test_answer_keeps_our_key_when_asked():
    """A re-INVITE with SDES: the key we already send with stays when the suite does (crypto=)."""
    mine = sdp.Crypto(9, "AES_CM_128_HMAC_SHA1_80", bytes(16), bytes(14))
    off = _offer(_audio("RTP/SAVP", "4 AES_CM_128_HMAC_SHA1_80 inline:%s" % B64))
    ans, neg = sdp.answer(off, "10.0.0.1", 5000, ["PCMU"], srtp="optional", crypto=mine)
    assert (neg.srtp_tx.tag, neg.srtp_tx.key) == (4, bytes(16))
    assert crypto_lines(ans) == [sdp.Crypto(4, mine.suite, mine.key, mine.salt).value()]


@pytest.mark.parametrize("mode", ["optional", "mandatory"])
def test_savp_with_nothing_usable_is_refused(mode):
    for crypto in ((), ("1 AES_CM_128_HMAC_SHA1_80 inline:%s KDR=2" % B64,),
                   ("1 AES_CM_128_HMAC_SHA1_80 inline:short", "2 F8_128_HMAC_SHA1_80 inline:%s" % B64)):
        with pytest.raises(SdpError, match="no acceptable SRTP"):
            sdp.answer(_offer(_audio("RTP/SAVP", *crypto)), "10.0.0.1", 5000, ["PCMU"], srtp=mode)


def test_srtp_off_refuses_savp_and_ignores_crypto_on_avp():
    with pytest.raises(SdpError, match="not enabled"):
        sdp.answer(_offer(_audio("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80 inline:%s" % B64)), "10.0.0.1", 5000,
                   ["PCMU"])
    ans, neg = sdp.answer(_offer(_audio("RTP/AVP", "1 AES_CM_128_HMAC_SHA1_80 inline:%s" % B64)), "10.0.0.1",
                          5000, ["PCMU"])
    assert not crypto_lines(ans) and neg.srtp_tx is None and neg.srtp_rx is None and neg.proto == "RTP/AVP"


def test_mandatory_refuses_plain_rtp_and_optional_takes_it():
    off = _offer(_audio("RTP/AVP"))
    with pytest.raises(SdpError, match="SRTP required"):
        sdp.answer(off, "10.0.0.1", 5000, ["PCMU"], srtp="mandatory")
    ans, neg = sdp.answer(off, "10.0.0.1", 5000, ["PCMU"], srtp="optional")
    assert not crypto_lines(ans) and neg.srtp_tx is None
    # a best-effort offer whose crypto line we cannot use: plain RTP, as the offerer allowed
    off = _offer(_audio("RTP/AVP", "1 AES_CM_128_HMAC_SHA1_80 inline:%s|2^20|1:4" % B64))
    ans, neg = sdp.answer(off, "10.0.0.1", 5000, ["PCMU"], srtp="optional")
    assert not crypto_lines(ans) and neg.srtp_rx is None


def test_savp_stream_chosen_beside_plain_ones():
    off = _offer(_audio("RTP/AVP") + "m=audio 4002 RTP/SAVP 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n"
                 % B64)
    ans, neg = sdp.answer(off, "10.0.0.1", 5000, ["PCMA"], srtp="mandatory")
    assert [x for x in lines(ans) if x.startswith("m=")] == ["m=audio 0 RTP/AVP 0 8 101", "m=audio 5000 RTP/SAVP 8"]
    assert neg.remote_port == 4002 and neg.srtp_rx.key == KEY


# -- the offerer's check of the answer -----------------------------------------------------------------------------
def _answer_to(offer, media):
    return ("v=0\r\no=- 9 9 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n" + media).encode()


def test_best_effort_offer_answered_plain():
    offer = sdp.make_offer("10.0.0.1", 20000, srtp="optional")
    neg = sdp.process_answer(offer, _answer_to(offer, "m=audio 7000 RTP/AVP 0\r\n"))
    assert neg.srtp_tx is None and neg.srtp_rx is None and neg.codec == "PCMU"


@pytest.mark.parametrize("media,why", [
    ("m=audio 7000 RTP/SAVP 0\r\n", "without a crypto line"),
    ("m=audio 7000 RTP/AVP 0\r\n", "offer had RTP/SAVP"),
    ("m=audio 7000 RTP/SAVP 0\r\na=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n" % B64, "not offered"),
    ("m=audio 7000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:%s\r\n" % B64, "not offered"),
    ("m=audio 7000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n"
     "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:%s\r\n" % (B64, B64), "want one"),
    ("m=audio 7000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s|2^20|1:4\r\n" % B64, "MKI"),
])
def test_bad_answers_to_an_savp_offer(media, why):
    offer = sdp.make_offer("10.0.0.1", 20000, srtp="mandatory")
    with pytest.raises(SdpError, match=why):
        sdp.process_answer(offer, _answer_to(offer, media))


def test_answer_crypto_ignored_when_we_offered_none():
    offer = sdp.make_offer("10.0.0.1", 20000)
    neg = sdp.process_answer(offer, _answer_to(offer, "m=audio 7000 RTP/AVP 0\r\na=crypto:1 junk\r\n"))
    assert neg.srtp_tx is None


def test_baresip_style_offer():
    """The shape baresip (mediaenc=srtp-mand) offers: RTP/SAVP, two suites, a=rtcp-mux-less audio."""
    off = ("v=0\r\no=- 1234 5678 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 10002 RTP/SAVP 0 8 101\r\nb=AS:64\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
           "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=label:1\r\na=ssrc:99 cname:x\r\n"
           "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:%s\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n"
           "a=ptime:20\r\n" % (B64, B64)).encode()
    ans, neg = sdp.answer(off, "127.0.0.1", 4000, ["PCMU", "PCMA"], srtp="mandatory")
    assert (neg.codec, neg.srtp_rx.tag, neg.srtp_rx.suite) == ("PCMU", 1, "AES_CM_128_HMAC_SHA1_32")
    assert "m=audio 4000 RTP/SAVP 0 101" in lines(ans)


MP_SDES = """
from uphone.sip import sdp
from uphone.media import srtp
offer = sdp.make_offer('10.0.0.1', 20000, srtp='mandatory')
ans, nb = sdp.answer(offer, '10.0.0.2', 30000, ['PCMU'], srtp='optional')
na = sdp.process_answer(offer, ans)
print('KEYS', na.srtp_tx.key == nb.srtp_rx.key, na.srtp_rx.key == nb.srtp_tx.key, na.srtp_tx.key != na.srtp_rx.key,
      len(na.srtp_tx.key), len(na.srtp_tx.salt), na.proto)
tx = srtp.Srtp(na.srtp_tx.key, na.srtp_tx.salt, na.srtp_tx.suite)
rx = srtp.Srtp(nb.srtp_rx.key, nb.srtp_rx.salt, nb.srtp_rx.suite)
b = bytearray(12 + 160 + 10)
b[0] = 0x80
n = tx.protect(b, 172)
print('RT', rx.unprotect(b, n))
for bad in ('1 AES_CM_128_HMAC_SHA1_80 inline:' + 'A' * 39, '1 AES_CM_128_HMAC_SHA1_80 inline:' + 'A' * 40 + ' KDR=1'):
    try:
        sdp.parse_crypto(bad)
        print('TOOK', bad)
    except sdp.SdpError as e:
        print('REFUSED')
c = sdp.parse_crypto('1 AES_CM_128_HMAC_SHA1_32 inline:' + 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd' + '|2^31')
print('PARSED', c.key == bytes(range(16)), c.salt == bytes(range(16, 30)), c.lifetime == 1 << 31)
"""


def test_sdes_on_micropython(mp):
    out = mp(MP_SDES)
    assert "KEYS True True True 16 14 RTP/SAVP" in out
    assert "RT 172" in out
    assert out.count("REFUSED") == 2 and "TOOK" not in out
    assert "PARSED True True True" in out
