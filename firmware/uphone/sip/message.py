# SIP messages (RFC 3261 7, 20): the Message a parsed or built request/response is, its header access, and
# building requests and responses (serialising back to bytes is Message.to_bytes). Parsing is sip/parse.py.
from uphone.sip.headers import LISTS, canon, split_list, parse_via, parse_name_addr


class Message:
    def __init__(self):
        self.method = ""
        self.uri = ""
        self.status = 0
        self.reason = ""
        self.headers = []       # [[canonical name, value], ...] in wire order; callers may edit it directly
        self.body = b""
        self._memo = {}         # header value -> parsed Via / NameAddr (keyed by the value: edits stay correct)
        self._cs = None         # (CSeq value, (number, method)): keyed by the value, so edits stay correct

    @property
    def is_request(self):
        return self.status == 0

    def get(self, name):
        for h in self.headers:          # callers name headers canonically: found without a lookup
            if h[0] == name:
                return h[1]
        c = canon(name)
        if c != name:
            for h in self.headers:
                if h[0] == c:
                    return h[1]
        return None

    def get_all(self, name):
        c = canon(name)
        lst = c.lower() in LISTS
        out = []
        for h in self.headers:
            if h[0] == c:
                if lst:
                    out.extend(split_list(h[1]))
                else:
                    out.append(h[1])
        return out

    def set(self, name, value):
        c = canon(name)
        for i, h in enumerate(self.headers):
            if h[0] == c:
                self.headers[i] = [c, value]
                self.headers = [x for j, x in enumerate(self.headers) if j <= i or x[0] != c]
                return
        self.headers.append([c, value])

    def add(self, name, value):
        self.headers.append([canon(name), value])

    def add_first(self, name, value):
        c = canon(name)
        for i, h in enumerate(self.headers):
            if h[0] == c:
                self.headers.insert(i, [c, value])
                return
        self.headers.insert(0, [c, value])

    def remove(self, name):
        c = canon(name)
        self.headers = [h for h in self.headers if h[0] != c]

    def name_addr(self, value):
        """parse_name_addr, memoised per message (From/To are read many times per message)."""
        na = self._memo.get(value)
        if na is None:
            na = parse_name_addr(value)
            self._memo[value] = na
        return na

    def top_via(self):
        v = self.get("Via")
        if v is None:
            return None
        r = self._memo.get(v)
        if r is None:
            first = v
            if "," in v:
                parts = split_list(v)
                first = parts[0] if parts else ""
            r = parse_via(first)
            self._memo[v] = r
        return r

    # The properties below are read for every message: each scans for its header inline (get() does the same
    # scan, and is the fallback for the rare cases) and takes the parsed value from the per-value caches.
    @property
    def call_id(self):
        for h in self.headers:
            if h[0] == "Call-ID":
                v = h[1]
                break
        else:
            v = self.get("Call-ID")
        return v.strip() if v else None

    def _cseq(self):
        v = self.get("CSeq")
        if not v:
            return 0, ""
        c = self._cs
        if c is not None and c[0] == v:
            return c[1]
        num, _, meth = v.strip().partition(" ")
        try:
            r = int(num), meth.strip()
        except ValueError:
            r = 0, meth.strip()
        self._cs = (v, r)
        return r

    @property
    def cseq_num(self):
        for h in self.headers:
            if h[0] == "CSeq":
                c = self._cs
                if c is not None and c[0] == h[1]:
                    return c[1][0]
                break
        return self._cseq()[0]

    @property
    def cseq_method(self):
        for h in self.headers:
            if h[0] == "CSeq":
                c = self._cs
                if c is not None and c[0] == h[1]:
                    return c[1][1]
                break
        return self._cseq()[1]

    def _tag(self, name):
        # name is canonical ("From"/"To"): the first such header's memoised parse answers without a get()
        for h in self.headers:
            if h[0] == name:
                na = self._memo.get(h[1])
                if na is not None:
                    return na.params.get("tag")
                break
        v = self.get(name)
        if not v:
            return None
        try:
            return self.name_addr(v).params.get("tag")
        except ValueError:
            return None

    @property
    def from_tag(self):
        return self._tag("From")

    @property
    def to_tag(self):
        return self._tag("To")

    @property
    def branch(self):
        for h in self.headers:
            if h[0] == "Via":
                r = self._memo.get(h[1])
                if r is not None:
                    return r.branch
                break
        try:
            v = self.top_via()
        except ValueError:
            return None
        return v.branch if v is not None else None

    def to_bytes(self):
        if self.status:
            s = "SIP/2.0 %d %s\r\n" % (self.status, self.reason)
        else:
            s = "%s %s SIP/2.0\r\n" % (self.method, self.uri)
        out = [h[0] + ": " + h[1] for h in self.headers if h[0] != "Content-Length"]
        body = self.body
        out.append("Content-Length: %d\r\n\r\n" % len(body))
        return (s + "\r\n".join(out)).encode() + body

    def __repr__(self):
        return "<Message %s>" % (("%d %s" % (self.status, self.reason)) if self.status else
                                 "%s %s" % (self.method, self.uri))


def make_request(method, uri, headers, body=b""):
    m = Message()
    m.method, m.uri = method, uri
    for h in headers:
        m.headers.append([canon(h[0]), h[1]])
    m.body = body
    return m


def make_response(req, status, reason, to_tag=None, headers=(), body=b""):
    """RFC 3261 8.2.6: Via (all, in order), From, To (+tag), Call-ID and CSeq copied from the request."""
    m = Message()
    m.status, m.reason = status, reason
    m.method = req.cseq_method or req.method
    for h in req.headers:
        low = h[0].lower()
        if low in ("via", "from", "call-id", "cseq"):
            m.headers.append([h[0], h[1]])
        elif low == "to":
            v = h[1]
            if to_tag and ";tag=" not in v.replace(" ", "").lower():
                v = v + ";tag=" + to_tag
            m.headers.append([h[0], v])
        elif low == "record-route" and 100 < status < 300:
            m.headers.append([h[0], h[1]])    # a UAS copies Record-Route into dialog-forming responses (12.1.1)
    for h in headers:
        m.headers.append([canon(h[0]), h[1]])
    m.body = body
    return m
