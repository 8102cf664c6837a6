# SIP dialog state (RFC 3261 12, RFC 6665 4.1.2.4): Call-ID, tags, URIs, remote target, route set and CSeq
# counters, and in-dialog request construction with loose and strict routing (12.2.1.1).
from uphone.sip import message as M
from uphone.sip import headers as H
from uphone.sip.uri import parse_uri


def _uri(value):
    return H.parse_name_addr(value).uri


def _contact_uri(msg):
    for c in msg.get_all("Contact"):
        if c.strip() == "*":
            continue
        try:
            return _uri(c)
        except ValueError:
            return None
    return None


def _is_loose(route):
    try:
        return "lr" in parse_uri(_uri(route)).params
    except ValueError:
        return False


class Dialog:
    rseq = None     # RSeq of the last reliable provisional taken in this early dialog (RFC 3262 4); set when one is

    def __init__(self):
        self.call_id = ""
        self.local_tag = ""
        self.remote_tag = None
        self.local_uri = ""
        self.remote_uri = ""
        self.remote_target = ""
        self.local_contact = None
        self.route_set = []
        self.local_cseq = 1
        self.remote_cseq = None
        self.secure = False

    def __repr__(self):
        return "<Dialog %s %s/%s>" % (self.call_id, self.local_tag, self.remote_tag)

    @property
    def id(self):
        return (self.call_id, self.local_tag, self.remote_tag)

    @staticmethod
    def uas(invite, local_tag, contact=None):
        """12.1.1: the dialog a UAS forms by answering invite (a request received)."""
        d = Dialog()
        d.call_id = invite.call_id
        d.local_tag = local_tag
        d.remote_tag = invite.from_tag
        d.local_uri = _uri(invite.get("To"))
        d.remote_uri = _uri(invite.get("From"))
        d.remote_target = _contact_uri(invite) or d.remote_uri
        d.local_contact = contact
        d.route_set = invite.get_all("Record-Route")        # in order for the UAS
        d.remote_cseq = invite.cseq_num
        d.local_cseq = 1       # 12.1.1: our own numbering starts fresh
        return d

    @staticmethod
    def uac(req, resp):
        """12.1.2: the dialog a UAC forms from a 1xx/2xx (with a To tag) to its request."""
        d = Dialog._uac_base(req)
        d.remote_tag = resp.to_tag
        d.remote_target = _contact_uri(resp) or req.uri
        rr = resp.get_all("Record-Route")
        rr.reverse()
        d.route_set = rr
        return d

    @staticmethod
    def uac_from_notify(subscribe, notify):
        """RFC 6665 4.1.2.4: a NOTIFY that overtook the 2xx creates the dialog; it is a request, so the
        Record-Route order is kept as received."""
        d = Dialog._uac_base(subscribe)
        d.remote_tag = notify.from_tag
        d.remote_target = _contact_uri(notify) or subscribe.uri
        d.route_set = notify.get_all("Record-Route")
        d.remote_cseq = notify.cseq_num
        return d

    @staticmethod
    def _uac_base(req):
        d = Dialog()
        d.call_id = req.call_id
        d.local_tag = req.from_tag
        d.local_uri = _uri(req.get("From"))
        d.remote_uri = _uri(req.get("To"))
        d.local_cseq = req.cseq_num
        cs = req.get_all("Contact")
        d.local_contact = cs[0] if cs else None
        return d

    def confirm(self, resp):
        """12.1.2: the 2xx confirming an early dialog decides the route set and remote target."""
        rr = resp.get_all("Record-Route")
        rr.reverse()
        self.route_set = rr
        t = _contact_uri(resp)
        if t:
            self.remote_target = t

    def refresh_target(self, msg):
        """Target refresh (12.2, RFC 3311): a Contact in a re-INVITE/UPDATE or its 2xx moves the remote target."""
        t = _contact_uri(msg)
        if t:
            self.remote_target = t

    def check_remote_cseq(self, msg):
        """12.2.2: False (answer 500) when the CSeq went backwards; otherwise remember it."""
        if msg.method in ("ACK", "CANCEL"):
            return True
        n = msg.cseq_num
        if self.remote_cseq is not None and n < self.remote_cseq:
            return False
        self.remote_cseq = n
        return True

    def route(self):
        """(Request-URI, Route values, next-hop URI) per 12.2.1.1 for the current route set."""
        rs = self.route_set
        if not rs:
            return self.remote_target, [], self.remote_target
        if _is_loose(rs[0]):
            return self.remote_target, list(rs), _uri(rs[0])
        # strict router (RFC 2543): it goes in the Request-URI, the remote target becomes the last Route
        first = _uri(rs[0])
        ruri = first.partition("?")[0]     # headers are not allowed in a Request-URI (19.1.5)
        return ruri, list(rs[1:]) + ["<%s>" % self.remote_target], ruri

    def create_request(self, method, contact=None, body=b"", content_type=None, extra=()):
        """An in-dialog request without Via (the caller adds it) -> (Message, next-hop URI)."""
        if method not in ("ACK", "CANCEL"):
            self.local_cseq += 1       # ACK and CANCEL reuse the number of the request they belong to
        ruri, routes, hop = self.route()
        to = "<%s>" % self.remote_uri
        if self.remote_tag:
            to += ";tag=" + self.remote_tag
        hs = [("Max-Forwards", "70")]
        for r in routes:
            hs.append(("Route", r))
        hs += [("From", "<%s>;tag=%s" % (self.local_uri, self.local_tag)), ("To", to),
               ("Call-ID", self.call_id), ("CSeq", "%d %s" % (self.local_cseq, method))]
        if contact:
            hs.append(("Contact", contact))
        for h in extra:
            hs.append((h[0], h[1]))
        if body:
            hs.append(("Content-Type", content_type or "application/sdp"))
        return M.make_request(method, ruri, hs, body), hop
