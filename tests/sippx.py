# sipp scenarios for the in-dialog extension tests (RFC 3262 PRACK, RFC 4028 session timers, forking, UPDATE and
# INFO): sipp as the phone's far end, answering its INVITE or calling it, checking what the phone sends with regular
# expressions (sipp fails the call when one does not match) and answering the way each test needs.
from tests import peers


def attr(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class Scenario:
    """A sipp scenario built step by step. Every variable a check or capture assigns is referenced at the end (sipp
    refuses a variable assigned and never used)."""

    def __init__(self, name):
        self.name = name
        self.parts = []
        self.vars = []
        self.n = 0              # sipp's message index of the next step (for [branch-N])

    def _var(self):
        v = "v%d" % len(self.vars)
        self.vars.append(v)
        return v

    def recv(self, kind, value, must=(), must_not=(), capture=(), optional=False, more=""):
        """<recv request=|response=value>: every regexp of must found in the message, none of must_not; capture:
        [(variable, header, regexp with one group)] assigns the group, found in that header's value, to [$variable]
        for later steps."""
        acts = []
        for rx in must:
            acts.append('<ereg regexp="%s" search_in="msg" check_it="true" assign_to="%s"/>' % (attr(rx), self._var()))
        for rx in must_not:
            acts.append('<ereg regexp="%s" search_in="msg" check_it_inverse="true" assign_to="%s"/>'
                        % (attr(rx), self._var()))
        for name, header, rx in capture:
            acts.append('<ereg regexp="%s" search_in="hdr" header="%s:" check_it="true" assign_to="%s,%s"/>'
                        % (attr(rx), header, self._var(), name))
            self.vars.append(name)
        opt = ' optional="true"' if optional else ""
        if acts:
            self.parts.append('  <recv %s="%s"%s%s>\n    <action>\n      %s\n    </action>\n  </recv>\n'
                              % (kind, value, opt, more, "\n      ".join(acts)))
        else:
            self.parts.append('  <recv %s="%s"%s%s/>\n' % (kind, value, opt, more))
        self.n += 1
        return self

    def send(self, text, retrans=False):
        self.parts.append("  <send%s><![CDATA[\n%s\n]]></send>\n" % (' retrans="500"' if retrans else "",
                                                                   text.strip("\n") + "\n"))
        self.n += 1
        return self

    def raw(self, xml, counts=True):
        self.parts.append(xml if xml.endswith("\n") else xml + "\n")
        self.n += 1 if counts else 0
        return self

    def pause(self, ms):
        return self.raw('  <pause milliseconds="%d"/>' % ms)

    def xml(self):
        refs = '  <Reference variables="%s"/>\n' % ",".join(self.vars) if self.vars else ""
        return peers.sipp_scenario(self.name, *(self.parts + [refs] if refs else self.parts))


# -- sipp answering the phone's INVITE (sipp is the UAS): the INVITE's Via, From, To and CSeq are captured when it
#    arrives, so answers to it can still be sent after other requests (PRACK, ACK) came in between
INVITE_CAPTURE = (("ivia", "Via", " *(.*)"), ("ito", "To", " *(.*)"), ("icseq", "CSeq", " *(.*)"))


def recv_invite(sc, must=(), must_not=()):
    return sc.recv("request", "INVITE", must, must_not, capture=INVITE_CAPTURE, more=' rrs="true"')


def answer(code, reason, tag, extra=(), body=None):
    """A response to the phone's INVITE from the fork with To tag `tag` (the INVITE's headers captured above)."""
    head = ["SIP/2.0 %d %s" % (code, reason), "Via: [$ivia]", "[last_From:]", "To: [$ito];tag=%s" % tag,
            "[last_Call-ID:]", "CSeq: [$icseq]", "Contact: <sip:sipp@[local_ip]:[local_port]>"] + list(extra)
    if body:
        head += ["Content-Type: application/sdp", "Content-Length: [len]", "", body]
    else:
        head += ["Content-Length: 0", ""]
    return "\n".join(head)


def reply(code, reason, extra=(), body=None, ctype="application/sdp"):
    """A response to the request sipp received last (any method, in the dialog: its To already has its tag)."""
    head = ["SIP/2.0 %d %s" % (code, reason), "[last_Via:]", "[last_From:]", "[last_To:]", "[last_Call-ID:]",
            "[last_CSeq:]", "Contact: <sip:sipp@[local_ip]:[local_port]>"] + list(extra)
    if body:
        head += ["Content-Type: %s" % ctype, "Content-Length: [len]", "", body]
    else:
        head += ["Content-Length: 0", ""]
    return "\n".join(head)


def reply_tagged(code, reason, tag, extra=(), body=None):
    """A response to the request sipp received last when that request is a new dialog's (its To has no tag yet)."""
    return reply(code, reason, extra, body).replace("[last_To:]", "[last_To:];tag=%s" % tag, 1)


# -- sipp calling the phone (sipp is the UAC): peers.sipp_send, and the ACK of a non-2xx final answer, which reuses
#    the INVITE's branch (RFC 3261 17.1.1.3)
def ack_non2xx(sc, invite_index, user="bob"):
    text = ("ACK sip:%s@[remote_ip]:[remote_port] SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-%d]\n"
            "From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n[last_To:]\n"
            "Call-ID: [call_id]\nCSeq: 1 ACK\nMax-Forwards: 70\nContent-Length: 0\n" % (user, sc.n - invite_index))
    return sc.send(text)


def invite(sc, extra=(), body=None, user="bob"):
    """sipp's INVITE to the phone whose user is `user` (the first message of a UAC scenario): -> its message index."""
    i = sc.n
    sc.raw(peers.sipp_send("INVITE", 1, peers.sdp() if body is None else body, first=True, extra=extra, user=user))
    return i


def in_dialog(sc, method, cseq, extra=(), body=None, ctype="application/sdp"):
    return sc.raw(peers.sipp_send(method, cseq, body, extra=extra, ctype=ctype))
