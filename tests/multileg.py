# Helpers of the multi-leg tests (attended transfer, conference, bridge): tone files and detection, and the pieces
# of the sipp scenarios that play the far end of a leg.
import math
import wave

from uphone.media import g711, goertzel

RATE = 8000


def mic(hz, **more):
    """A phone's audio config playing a tone and recording what it hears. The mic path off: a steady tone is what
    the noise gate learns as noise and fades, and these tests are about what crosses the phone."""
    a = {"source": "tone:%d" % hz, "sink": "heard.wav", "aec": False, "agc": False, "noise_gate": False}
    a.update(more)
    return a


def heard(p):
    """What phone process p played to its speaker (its heard.wav), as int16 LE bytes."""
    with wave.open(p.dir + "/heard.wav") as w:
        return w.readframes(w.getnframes())


def levels(pcm, freqs=(440, 700, 1000), rate=RATE):
    """{hz: amplitude} of each tone in pcm (Goertzel)."""
    n = len(pcm) // 2
    return {hz: int(goertzel.power(pcm, n, rate, hz) ** 0.5) for hz in freqs}


def window(pcm, start_s, end_s):
    return pcm[int(start_s * RATE) * 2:int(end_s * RATE) * 2]


def hears(pcm, want, absent=(), floor=2000, leak=300, rate=RATE):
    """pcm carries each tone of want (amplitude >= floor) and none of absent (< leak); -> (bool, levels)."""
    lv = levels(pcm, tuple(want) + tuple(absent), rate)
    return all(lv[f] >= floor for f in want) and all(lv[f] < leak for f in absent), lv


def g711_tone(path, hz, seconds, law=g711.ULAW, amp=8000):
    """A raw G.711 file of a tone (what sipp's rtp_stream sends as it is)."""
    n = int(RATE * seconds)
    pcm = bytearray(2 * n)
    for i in range(n):
        v = int(amp * math.sin(2 * math.pi * hz * i / RATE)) & 0xFFFF
        pcm[2 * i] = v & 0xFF
        pcm[2 * i + 1] = v >> 8
    out = bytearray(n)
    g711.encode(law, pcm, out, n)
    with open(str(path), "wb") as f:
        f.write(out)
    return str(path)


# -- sipp as the far end of a call the phone made (a UAS scenario): answers, in-dialog requests, media -----------------
def sdp(pt=0, direction="sendrecv", version=1):
    name = {0: "PCMU", 8: "PCMA"}[pt]
    return ("v=0\no=sipp 1 %d IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\nm=audio [auto_media_port] RTP/AVP %d\n"
            "a=rtpmap:%d %s/8000\na=%s\n" % (version, pt, pt, name, direction))


def answer(code=200, reason="OK", body=None, tag=False, extra=""):
    """A response to the request just received (tag=True: the first answer, which gives sipp's To tag)."""
    to = "[last_To:];tag=[pid]SIPpTag01[call_number]" if tag else "[last_To:]"
    head = ("SIP/2.0 %d %s\n[last_Via:]\n[last_From:]\n%s\n[last_Call-ID:]\n[last_CSeq:]\n"
            "Contact: <sip:bob@[local_ip]:[local_port]>\n%s" % (code, reason, to, extra))
    if body:
        head += "Content-Type: application/sdp\nContent-Length: [len]\n\n" + body
    else:
        head += "Content-Length: 0\n\n"
    return "  <send%s><![CDATA[\n%s]]></send>\n" % (' retrans="500"' if code == 200 and body else "", head)


def request(method, cseq, body=None):
    """A request from sipp in the dialog the phone's INVITE made (the From/To/Contact saved by FIRST_INVITE)."""
    head = ("%s [$contact] SIP/2.0\nVia: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            "From: [$to];tag=[pid]SIPpTag01[call_number]\nTo: [$from]\n[last_Call-ID:]\nCSeq: %d %s\n"
            "Contact: <sip:bob@[local_ip]:[local_port]>\nMax-Forwards: 70\n" % (method, cseq, method))
    if body:
        head += "Content-Type: application/sdp\nContent-Length: [len]\n\n" + body
    else:
        head += "Content-Length: 0\n\n"
    return "  <send%s><![CDATA[\n%s]]></send>\n" % ("" if method == "ACK" else ' retrans="500"', head)


FIRST_INVITE = ('  <recv request="INVITE"><action>\n'
                '    <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>\n'
                '    <ereg regexp="[^;]*" search_in="hdr" header="To:" assign_to="to"/>\n'
                '    <ereg regexp="&lt;([^&gt;]*)&gt;" search_in="hdr" header="Contact:" assign_to="junk,contact"/>\n'
                '  </action></recv>\n')


def recv(what, timeout=None, optional=False):
    attrs = (' timeout="%d"' % timeout if timeout else "") + (' optional="true"' if optional else "")
    kind = "response" if what.isdigit() else "request"
    return '  <recv %s="%s"%s/>\n' % (kind, what, attrs)


def stream(path, pt=0):
    return '  <nop><action><exec rtp_stream="%s,1,%d"/></action></nop>\n' % (path, pt)


def pause(ms):
    return '  <pause milliseconds="%d"/>\n' % ms


def scenario(name, *parts):
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="%s">\n%s'
            '  <Reference variables="junk"/>\n</scenario>\n' % (name, "".join(parts)))
