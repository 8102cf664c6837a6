# SDP offer/answer (RFC 4566 / RFC 3264): round trips, hold directions, codec choice, DTMF, rejects, errors.
import pytest

from uphone.sip import sdp
from uphone.sip.sdp import SdpError


def _offer(media, session="", c="c=IN IP4 10.0.0.2\r\n"):
    return ("v=0\r\no=- 5 5 IN IP4 10.0.0.2\r\ns=-\r\n" + c + "t=0 0\r\n" + session + media).encode()


AUDIO = "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"


def lines(b):
    assert b.endswith(b"\r\n") and b"\n" not in b.replace(b"\r\n", b"")
    return b.decode().split("\r\n")[:-1]


def test_make_offer_layout():
    o = sdp.make_offer("192.168.1.5", 20000, codecs=("PCMU", "PCMA", "G722"), dtmf_pt=101, ptime=20,
                       sess_id=7, sess_version=3)
    ls = lines(o)
    assert ls[0] == "v=0"
    assert ls[1] == "o=- 7 3 IN IP4 192.168.1.5"
    assert ls[2].startswith("s=")
    assert "c=IN IP4 192.168.1.5" in ls and "t=0 0" in ls
    assert "m=audio 20000 RTP/AVP 0 8 9 101" in ls
    for want in ("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:9 G722/8000",
                 "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv"):
        assert want in ls
    assert not any(x.startswith("b=") for x in ls)


def test_make_offer_without_dtmf_and_bad_codec():
    ls = lines(sdp.make_offer("10.0.0.1", 3000, codecs=("PCMA",), dtmf_pt=None, direction="sendonly"))
    assert "m=audio 3000 RTP/AVP 8" in ls and "a=sendonly" in ls
    assert not any("telephone-event" in x for x in ls)
    with pytest.raises(SdpError):
        sdp.make_offer("10.0.0.1", 3000, codecs=("OPUS",))


def test_round_trip_offer_answer():
    offer = sdp.make_offer("10.0.0.1", 20000, codecs=("PCMU", "PCMA"), dtmf_pt=101)
    ans, neg_b = sdp.answer(offer, "10.0.0.2", 30000, ["PCMA", "PCMU"], sess_id=9, sess_version=2)
    # the offerer's order wins (RFC 3264 6.1): PCMU, although the answerer prefers PCMA
    assert (neg_b.codec, neg_b.pt, neg_b.te_pt) == ("PCMU", 0, 101)
    assert (neg_b.remote_addr, neg_b.remote_port, neg_b.direction) == ("10.0.0.1", 20000, "sendrecv")
    assert neg_b.ptime == 20 and neg_b.clock == 8000
    ls = lines(ans)
    assert "o=- 9 2 IN IP4 10.0.0.2" in ls and "m=audio 30000 RTP/AVP 0 101" in ls
    neg_a = sdp.process_answer(offer, ans)
    assert (neg_a.codec, neg_a.pt, neg_a.te_pt) == ("PCMU", 0, 101)
    assert (neg_a.remote_addr, neg_a.remote_port, neg_a.direction) == ("10.0.0.2", 30000, "sendrecv")


def test_codec_choice_skips_unsupported():
    off = _offer("m=audio 4000 RTP/AVP 18 9 8 0\r\na=rtpmap:18 G729/8000\r\n")
    _, neg = sdp.answer(off, "10.0.0.1", 5000, ["PCMU", "PCMA"])
    assert (neg.codec, neg.pt, neg.te_pt) == ("PCMA", 8, None)
    _, neg = sdp.answer(off, "10.0.0.1", 5000, ["PCMU", "G722"])
    assert neg.codec == "G722" and neg.pt == 9 and neg.clock == 8000


def test_dynamic_payload_matched_by_name_and_te_kept():
    off = _offer("m=audio 4000 RTP/AVP 96 97 98\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:97 pcma/8000\r\n"
                 "a=rtpmap:98 Telephone-Event/8000\r\n")
    ans, neg = sdp.answer(off, "10.0.0.1", 5000, ["PCMU", "PCMA"])
    assert (neg.codec, neg.pt, neg.te_pt) == ("PCMA", 97, 98)
    ls = lines(ans)
    assert "m=audio 5000 RTP/AVP 97 98" in ls
    assert "a=rtpmap:97 PCMA/8000" in ls and "a=rtpmap:98 telephone-event/8000" in ls


def test_no_dtmf_when_not_offered_or_not_wanted():
    _, neg = sdp.answer(_offer("m=audio 4000 RTP/AVP 0\r\n"), "10.0.0.1", 5000, ["PCMU"])
    assert neg.te_pt is None
    ans, neg = sdp.answer(_offer(AUDIO), "10.0.0.1", 5000, ["PCMU"], dtmf_pt=None)
    assert neg.te_pt is None and b"telephone-event" not in ans


def test_no_common_codec():
    with pytest.raises(SdpError, match="no common codec"):
        sdp.answer(_offer("m=audio 4000 RTP/AVP 18 96\r\na=rtpmap:96 opus/48000/2\r\n"), "10.0.0.1", 5000,
                   ["PCMU", "PCMA"])
    assert issubclass(SdpError, ValueError)


def test_video_rejected_with_port_zero():
    off = _offer("m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n" + AUDIO +
                 "m=application 5000 UDP/BFCP *\r\n")
    ans, neg = sdp.answer(off, "10.0.0.1", 5000, ["PCMU"])
    ms = [x for x in lines(ans) if x.startswith("m=")]
    assert ms == ["m=video 0 RTP/AVP 96", "m=audio 5000 RTP/AVP 0 101", "m=application 0 UDP/BFCP *"]
    assert neg.remote_port == 4000
    assert sdp.process_answer(off, ans).codec == "PCMU"


def test_second_audio_line_and_srtp_only_line_refused():
    off = _offer("m=audio 4000 RTP/SAVP 0\r\nm=audio 4002 RTP/AVP 8\r\nm=audio 4004 RTP/AVP 0\r\n")
    ans, neg = sdp.answer(off, "10.0.0.1", 5000, ["PCMU", "PCMA"])
    ms = [x for x in lines(ans) if x.startswith("m=")]
    assert ms == ["m=audio 0 RTP/SAVP 0", "m=audio 5000 RTP/AVP 8", "m=audio 0 RTP/AVP 0"]
    assert (neg.codec, neg.remote_port) == ("PCMA", 4002)


@pytest.mark.parametrize("offered,local,want", [
    ("sendrecv", "sendrecv", "sendrecv"),
    ("sendonly", "sendrecv", "recvonly"),      # they hold us
    ("recvonly", "sendrecv", "sendonly"),
    ("inactive", "sendrecv", "inactive"),
    ("sendrecv", "sendonly", "sendonly"),      # we hold them while they offer sendrecv
    ("sendonly", "sendonly", "inactive"),      # both hold
    ("recvonly", "recvonly", "inactive"),
    ("sendrecv", "inactive", "inactive"),
])
def test_answer_directions(offered, local, want):
    ans, neg = sdp.answer(_offer(AUDIO + "a=%s\r\n" % offered), "10.0.0.1", 5000, ["PCMU"], direction=local)
    assert neg.direction == want
    assert "a=" + want in lines(ans)


def test_session_level_direction_and_media_override():
    ans, neg = sdp.answer(_offer(AUDIO, session="a=sendonly\r\n"), "10.0.0.1", 5000, ["PCMU"])
    assert neg.direction == "recvonly"
    _, neg = sdp.answer(_offer(AUDIO + "a=sendrecv\r\n", session="a=sendonly\r\n"), "10.0.0.1", 5000, ["PCMU"])
    assert neg.direction == "sendrecv"


def test_rfc2543_hold_address():
    ans, neg = sdp.answer(_offer(AUDIO, c="c=IN IP4 0.0.0.0\r\n"), "10.0.0.1", 5000, ["PCMU"])
    assert neg.direction == "recvonly" and neg.remote_addr == "0.0.0.0"
    _, neg = sdp.answer(_offer(AUDIO + "a=recvonly\r\n", c="c=IN IP4 0.0.0.0\r\n"), "10.0.0.1", 5000, ["PCMU"])
    assert neg.direction == "inactive"


def test_media_level_c_overrides_session():
    _, neg = sdp.answer(_offer(AUDIO + "c=IN IP4 10.9.9.9\r\na=rtcp:4001\r\nb=AS:64\r\n"), "10.0.0.1", 5000,
                        ["PCMU"])
    assert neg.remote_addr == "10.9.9.9"
    _, neg = sdp.answer(_offer(AUDIO + "c=IN IP4 10.9.9.9\r\n", c=""), "10.0.0.1", 5000, ["PCMU"])
    assert neg.remote_addr == "10.9.9.9"


def test_offer_port_zero_answers_inactive_port_zero():
    ans, neg = sdp.answer(_offer("m=audio 0 RTP/AVP 0\r\n"), "10.0.0.1", 5000, ["PCMU"])
    assert "m=audio 0 RTP/AVP 0" in lines(ans)
    assert neg.remote_port == 0 and neg.direction == "inactive"


def test_ptime_from_offer():
    ans, neg = sdp.answer(_offer(AUDIO + "a=ptime:30\r\n"), "10.0.0.1", 5000, ["PCMU"])
    assert neg.ptime == 30 and "a=ptime:30" in lines(ans)
    _, neg = sdp.answer(_offer(AUDIO + "a=ptime:7\r\n"), "10.0.0.1", 5000, ["PCMU"])
    assert neg.ptime == 20


@pytest.mark.parametrize("ours,theirs", [
    ("sendonly", "recvonly"), ("sendrecv", "recvonly"), ("sendrecv", "sendonly"), ("recvonly", "sendonly"),
    ("sendrecv", "inactive"), ("sendonly", "sendrecv")])
def test_process_answer_directions(ours, theirs):
    offer = sdp.make_offer("10.0.0.1", 20000, direction=ours)
    ans = _offer("m=audio 6000 RTP/AVP 0\r\na=%s\r\n" % theirs)
    want = {("sendonly", "recvonly"): "sendonly", ("sendrecv", "recvonly"): "sendonly",
            ("sendrecv", "sendonly"): "recvonly", ("recvonly", "sendonly"): "recvonly",
            ("sendrecv", "inactive"): "inactive", ("sendonly", "sendrecv"): "sendonly"}[(ours, theirs)]
    assert sdp.process_answer(offer, ans).direction == want


def test_process_answer_codec_and_errors():
    offer = sdp.make_offer("10.0.0.1", 20000, codecs=("PCMU", "PCMA"), dtmf_pt=101)
    neg = sdp.process_answer(offer, _offer("m=audio 6000 RTP/AVP 8 0\r\n"))
    assert (neg.codec, neg.pt, neg.te_pt) == ("PCMA", 8, None)
    neg = sdp.process_answer(offer, _offer("m=audio 6000 RTP/AVP 9 0 100\r\na=rtpmap:100 telephone-event/8000\r\n"))
    assert (neg.codec, neg.pt, neg.te_pt) == ("PCMU", 0, 100)     # G722 was never offered
    neg = sdp.process_answer(offer, _offer("m=audio 6000 RTP/AVP 0\r\n", c="c=IN IP4 0.0.0.0\r\n"))
    assert neg.direction == "recvonly"
    with pytest.raises(SdpError):
        sdp.process_answer(offer, _offer("m=audio 0 RTP/AVP 0\r\n"))
    with pytest.raises(SdpError, match="no common codec"):
        sdp.process_answer(offer, _offer("m=audio 6000 RTP/AVP 18\r\n"))
    with pytest.raises(SdpError):
        sdp.process_answer(offer, _offer("m=audio 6000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n"))


@pytest.mark.parametrize("bad", [
    b"",
    b"garbage",
    b"\xff\xfe\x00",
    b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n",            # no m=
    b"v=0\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",                                # no c=
    b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
    b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
    b"v=0\r\nc=IN IP4 1.2.3\r\nm=audio 4000 RTP/AVP 0\r\n",
    b"v=0\r\nc=IN\r\nm=audio 4000 RTP/AVP 0\r\n",
    b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000\r\n",
    b"o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n",
    b"v=0\r\nc=IN IP4 1.2.3.4\r\nthis is not sdp\r\nm=audio 4000 RTP/AVP 0\r\n",
    b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 4000 RTP/AVP 96\r\n",
])
def test_malformed_offers_raise(bad):
    with pytest.raises(SdpError):
        sdp.answer(bad, "10.0.0.1", 5000, ["PCMU"])
    offer = sdp.make_offer("10.0.0.1", 20000)
    with pytest.raises(SdpError):
        sdp.process_answer(offer, bad)


def test_lf_only_and_ipv6():
    off = b"v=0\no=- 1 1 IN IP6 ::1\ns=-\nc=IN IP6 2001:db8::5\nt=0 0\nm=audio 4000 RTP/AVP 8\n"
    ans, neg = sdp.answer(off, "2001:db8::1", 5000, ["PCMA"])
    assert neg.remote_addr == "2001:db8::5"
    assert "c=IN IP6 2001:db8::1" in lines(ans)
