# SIP messages (RFC 3261 7, 20, 25): parse bytes into a Message and serialise it back. Hand-written with
# find/slicing (MicroPython's re is too weak and slower); strict start lines, tolerant header values.
_COMPACT = {"i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length", "c": "Content-Type",
            "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via", "o": "Event", "u": "Allow-Events",
            "r": "Refer-To", "b": "Referred-By", "x": "Session-Expires", "y": "Identity", "a": "Accept-Contact"}
_CANON = {}
for _n in ("Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Length", "Content-Type",
           "Route", "Record-Route", "Allow", "Supported", "Require", "Proxy-Require", "Unsupported", "Accept",
           "Accept-Encoding", "Accept-Language", "Allow-Events", "Content-Encoding", "Content-Disposition",
           "Content-Language", "Expires", "Min-Expires", "User-Agent", "Server", "Subject", "Event",
           "Subscription-State", "WWW-Authenticate", "Proxy-Authenticate", "Authorization", "Proxy-Authorization",
           "Authentication-Info", "Refer-To", "Referred-By", "Replaces", "Session-Expires", "Min-SE", "Date",
           "Timestamp", "Warning", "Retry-After", "Organization", "Priority", "Reply-To", "In-Reply-To",
           "Call-Info", "Alert-Info", "Error-Info", "MIME-Version", "RSeq", "RAck", "Identity", "Accept-Contact",
           "Reason", "P-Asserted-Identity", "Privacy", "Path", "Service-Route"):
    _CANON[_n.lower()] = _n
# lower-case name (and compact form) -> canonical name; unknown names are remembered as first seen
_BYLOW = dict(_CANON)
for _k, _v in _COMPACT.items():
    _BYLOW[_k] = _v
_LIST = ("via", "route", "record-route", "contact", "allow", "supported", "require", "proxy-require",
         "unsupported", "accept", "accept-encoding", "accept-language", "allow-events", "content-encoding",
         "path", "service-route")
_SINGLE = ("content-length", "cseq", "call-id", "from", "to", "max-forwards", "content-type", "expires")
_SINGLE_C = ("Content-Length", "CSeq", "Call-ID", "From", "To", "Max-Forwards", "Content-Type", "Expires")
_NOCOMMA = ("Content-Length", "CSeq", "Call-ID", "Max-Forwards")
_TOKEN = "-.!%*_+`'~"
MAX_MESSAGE = 65535


class ParseError(Exception):
    def __init__(self, code, reason, partial=None):
        Exception.__init__(self, "%d %s" % (code, reason))
        self.code = code
        self.reason = reason
        self.partial = partial


def canon(name):
    c = _BYLOW.get(name)
    if c is not None:
        return c
    n = name.strip()
    low = n.lower()
    c = _BYLOW.get(low)
    if c is None:
        # an unknown header keeps the spelling it was first seen with, so every later lookup compares equal
        if len(_BYLOW) < 512:
            _BYLOW[low] = n
        c = n
    if len(_BYLOW) < 512:
        _BYLOW[name] = c
    return c


def is_token(s):
    if not s:
        return False
    for ch in s:
        if not (ch.isalpha() or ch.isdigit() or ch in _TOKEN):
            return False
    return True


def split_list(value):
    """Split a header value on commas that are outside quotes and <>."""
    if '"' not in value and "<" not in value:
        return [x.strip() for x in value.split(",") if x.strip()]
    out, start, q, ang, i, n = [], 0, False, False, 0, len(value)
    while i < n:
        ch = value[i]
        if q:
            if ch == "\\":
                i += 1
            elif ch == '"':
                q = False
        elif ch == '"':
            q = True
        elif ch == "<":
            ang = True
        elif ch == ">":
            ang = False
        elif ch == "," and not ang:
            part = value[start:i].strip()
            if part:
                out.append(part)
            start = i + 1
        i += 1
    if q:
        raise ValueError("unterminated quoted string")
    part = value[start:].strip()
    if part:
        out.append(part)
    return out


def parse_params(s):
    """';a=b;c' -> {'a': 'b', 'c': None} (keys lowercased, quotes kept off)."""
    out = {}
    for p in _split_semis(s):
        if not p:
            continue
        k, eq, v = p.partition("=")
        k = k.strip().lower()
        v = v.strip()
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        out[k] = v if eq else None
    return out


def _split_semis(s):
    if '"' not in s:
        return [x.strip() for x in s.split(";")]     # the common case: no quoted ';' to step over
    out, start, q, i = [], 0, False, 0
    while i < len(s):
        ch = s[i]
        if q:
            if ch == "\\":
                i += 1
            elif ch == '"':
                q = False
        elif ch == '"':
            q = True
        elif ch == ";":
            out.append(s[start:i].strip())
            start = i + 1
        i += 1
    out.append(s[start:].strip())
    return out


class Via:
    def __init__(self, transport, host, port, params):
        self.transport, self.host, self.port, self.params = transport, host, port, params

    @property
    def branch(self):
        return self.params.get("branch")

    def __str__(self):
        hp = self.host + (":%d" % self.port if self.port else "")
        return "SIP/2.0/%s %s%s" % (self.transport, hp, "".join(
            ";%s" % k if v is None else ";%s=%s" % (k, v) for k, v in self.params.items()))


def parse_via(value):
    v = value.strip()
    proto, _, rest = v.partition(" ")
    parts = proto.split("/")
    if len(parts) != 3 or parts[0].strip().upper() != "SIP" or not rest:
        # tolerate LWS around '/' (RFC 3261 25.1 allows SLASH with SWS)
        j = 0
        slash = 0
        while j < len(v) and slash < 2:
            if v[j] == "/":
                slash += 1
            j += 1
        k = j
        while k < len(v) and v[k] in " \t":
            k += 1
        while k < len(v) and v[k] not in " \t":
            k += 1
        proto, rest = v[:k], v[k:].strip()
        parts = [x.strip() for x in proto.split("/")]
        if len(parts) != 3 or parts[0].upper() != "SIP" or not rest:
            raise ValueError("bad Via: " + value)
    semi = rest.find(";")
    hp = (rest if semi < 0 else rest[:semi]).strip()
    params = parse_params(rest[semi + 1:]) if semi >= 0 else {}
    host, port = _hostport(hp)
    return Via(parts[2].strip().upper(), host, port, params)


def _hostport(hp):
    hp = hp.strip()
    if hp.startswith("["):
        end = hp.find("]")
        if end < 0:
            raise ValueError("bad IPv6 host")
        host, rest = hp[:end + 1], hp[end + 1:]
        port = int(rest[1:]) if rest.startswith(":") else None
    else:
        host, colon, p = hp.partition(":")
        port = int(p) if colon else None
    if not host or " " in host or (port is not None and not 0 < port < 65536):
        raise ValueError("bad host/port: " + hp)
    return host, port


class NameAddr:
    def __init__(self, display, uri, params):
        self.display, self.uri, self.params = display, uri, params

    @property
    def tag(self):
        return self.params.get("tag")

    def __str__(self):
        d = ('"%s" ' % self.display) if self.display else ""
        return "%s<%s>%s" % (d, self.uri, "".join(
            ";%s" % k if v is None else ";%s=%s" % (k, v) for k, v in self.params.items()))


def parse_name_addr(value):
    v = value.strip()
    display = ""
    if v.startswith('"'):
        i, n = 1, len(v)
        while i < n and v[i] != '"':
            if v[i] == "\\":
                i += 1
            i += 1
        if i >= n:
            raise ValueError("unterminated display name")
        display = v[1:i].replace('\\"', '"').replace("\\\\", "\\")
        v = v[i + 1:].strip()
        if not v.startswith("<"):
            raise ValueError("display name without <uri>")
    lt = v.find("<")
    if lt >= 0:
        if not display:
            tok = v[:lt].strip()
            for word in tok.split():
                if not is_token(word):
                    raise ValueError("bad display name")
            display = tok
        gt = v.find(">", lt)
        if gt < 0:
            raise ValueError("missing >")
        uri = v[lt + 1:gt]
        if uri != uri.strip():
            raise ValueError("spaces inside <addr-spec>")    # RFC 4475 3.1.2.14
        params = parse_params(v[gt + 1:].lstrip()[1:]) if v[gt + 1:].strip().startswith(";") else {}
        if v[gt + 1:].strip() and not v[gt + 1:].strip().startswith(";"):
            raise ValueError("garbage after >")
    else:
        # addr-spec: parameters after the URI are header parameters (RFC 3261 20.10)
        semi = v.find(";")
        uri = (v if semi < 0 else v[:semi]).strip()
        params = parse_params(v[semi + 1:]) if semi >= 0 else {}
        if " " in uri or "," in uri or "?" in uri:
            raise ValueError("addr-spec with special characters needs <>")
    if not uri or " " in uri or ":" not in uri:
        raise ValueError("bad URI in name-addr: %r" % uri)
    return NameAddr(display, uri, params)


class Message:
    def __init__(self):
        self.method = ""
        self.uri = ""
        self.status = 0
        self.reason = ""
        self.headers = []       # [[canonical name, value], ...] in wire order; callers may edit it directly
        self.body = b""
        self._memo = {}         # header value -> parsed Via / NameAddr (keyed by the value: edits stay correct)

    @property
    def is_request(self):
        return self.status == 0

    def get(self, name):
        c = canon(name)
        for h in self.headers:
            if h[0] == c:
                return h[1]
        if len(_BYLOW) >= 512:      # name cache full: unknown names may differ in case
            low = c.lower()
            for h in self.headers:
                if h[0].lower() == low:
                    return h[1]
        return None

    def get_all(self, name):
        c = canon(name)
        lst = c.lower() in _LIST
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

    @property
    def call_id(self):
        v = self.get("Call-ID")
        return v.strip() if v else None

    def _cseq(self):
        v = self.get("CSeq")
        if not v:
            return 0, ""
        num, _, meth = v.strip().partition(" ")
        try:
            return int(num), meth.strip()
        except ValueError:
            return 0, meth.strip()

    @property
    def cseq_num(self):
        return self._cseq()[0]

    @property
    def cseq_method(self):
        return self._cseq()[1]

    def _tag(self, name):
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
        try:
            v = self.top_via()
        except ValueError:
            return None
        return v.branch if v is not None else None

    def to_bytes(self):
        if self.status:
            out = ["SIP/2.0 %d %s\r\n" % (self.status, self.reason)]
        else:
            out = ["%s %s SIP/2.0\r\n" % (self.method, self.uri)]
        for h in self.headers:
            if h[0] != "Content-Length":
                out.append(h[0] + ": " + h[1] + "\r\n")
        out.append("Content-Length: %d\r\n\r\n" % len(self.body))
        return "".join(out).encode() + self.body

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


# ---- parsing ------------------------------------------------------------------------------------------------

def _split_head(data):
    """-> (head str, body bytes, separator found)."""
    i = data.find(b"\r\n\r\n")
    j = data.find(b"\n\n")
    if i >= 0 and (j < 0 or i <= j):
        return data[:i], data[i + 4:], True
    if j >= 0:
        return data[:j], data[j + 2:], True
    return data, b"", False


def parse(data):
    if len(data) > MAX_MESSAGE:
        raise ParseError(413, "Message Too Large")
    # leading CRLFs are allowed (keepalives, RFC 3261 7.5)
    k = 0
    while data[k:k + 2] == b"\r\n":
        k += 2
    if k or not isinstance(data, bytes):
        data = bytes(data[k:])
    head, body, _sep = _split_head(data)
    try:
        text = head.decode("utf-8")
    except UnicodeError:
        raise ParseError(400, "Bad Encoding")
    lines = (text.replace("\r\n", "\n") if "\r" in text else text).split("\n")
    m = Message()
    start = lines[0]
    # unfold header continuation lines (RFC 3261 7.3.1); most messages have none
    if "\n " in text or "\n\t" in text:
        raw = []
        for ln in lines[1:]:
            if ln[:1] in (" ", "\t") and raw:
                raw[-1] = raw[-1].rstrip() + " " + ln.strip()
            else:
                raw.append(ln)
    else:
        raw = lines[1:]
    errors = []
    hs = m.headers
    for ln in raw:
        colon = ln.find(":")
        if colon <= 0:
            if ln.strip():
                errors.append("header line without colon")
            continue
        name = ln[:colon]
        c = _BYLOW.get(name)        # known spelling: already a valid token, no checks needed
        if c is None:
            name = name.strip()
            if not is_token(name):
                errors.append("bad header name")
                continue
            c = canon(name)
        hs.append([c, ln[colon + 1:].strip()])
    # start line
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if len(parts) < 2 or parts[0] != "SIP/2.0" or len(parts[1]) != 3 or not parts[1].isdigit():
            raise ParseError(400, "Bad Status Line", None)
        m.status = int(parts[1])
        if not 100 <= m.status <= 699:
            raise ParseError(400, "Bad Status Code", None)
        m.reason = parts[2] if len(parts) > 2 else ""
        m.method = m.cseq_method
    else:
        parts = start.split(" ")
        if len(parts) != 3 or not all(parts):
            raise ParseError(400, "Bad Request Line", m if _answerable(m) else None)
        m.method, m.uri, ver = parts
        if not is_token(m.method):
            raise ParseError(400, "Bad Method", m if _answerable(m) else None)
        if ver != "SIP/2.0":
            if ver.upper().startswith("SIP/"):
                raise ParseError(505, "Version Not Supported", m if _answerable(m) else None)
            raise ParseError(400, "Bad Request Line", m if _answerable(m) else None)
        if "<" in m.uri or ">" in m.uri or ":" not in m.uri:
            raise ParseError(400, "Bad Request-URI", m if _answerable(m) else None)
        if m.uri[:4].lower() in ("sip:", "sips") and "?" in m.uri[m.uri.rfind("@") + 1:]:
            # headers are not allowed in a Request-URI (RFC 3261 19.1.5, RFC 4475 3.1.2.11)
            raise ParseError(400, "Bad Request-URI", m if _answerable(m) else None)
    if errors:
        raise ParseError(400, "Bad Header", m if m.is_request and _answerable(m) else None)
    # semantic checks every UA needs before it can use the message
    try:
        _check(m)
    except ValueError as e:
        raise ParseError(400, str(e), m if m.is_request and _answerable(m) else None)
    # body framing by Content-Length (UDP: extra octets are ignored, a short body is an error)
    cl = m.get("Content-Length")
    if cl is not None:
        n = int(cl)
        if n > len(body):
            raise ParseError(400, "Content-Length Too Large", m if m.is_request and _answerable(m) else None)
        m.body = body[:n]
    else:
        m.body = body
    return m


def _answerable(m):
    """Enough is readable to build a response (RFC 3261 8.2.6)."""
    try:
        vias = m.get_all("Via")
        if not vias:
            return False
        parse_via(vias[0])
        return bool(m.get("From") and m.get("To") and m.get("Call-ID") and m.get("CSeq"))
    except ValueError:
        return False


def _check(m):
    seen = {}
    for h in m.headers:
        n = h[0]
        if n in _SINGLE_C:
            if n in seen:
                raise ValueError("Multiple %s" % n)
            seen[n] = h[1]
    for n in _NOCOMMA:
        v = seen.get(n)
        if v is not None and "," in v:
            raise ValueError("Multiple %s" % n)
    cl = seen.get("Content-Length")
    if cl is not None:
        s = cl.strip()
        if not s.isdigit() or len(s) > 9:
            raise ValueError("Bad Content-Length")
    cseq = seen.get("CSeq")
    if cseq is not None:
        num, _, meth = cseq.strip().partition(" ")
        if not num.isdigit() or len(num) > 10 or int(num) > 0xFFFFFFFF or not is_token(meth.strip()):
            raise ValueError("Bad CSeq")
        if m.status == 0 and meth.strip() != m.method:
            raise ValueError("CSeq Method Mismatch")
    mf = seen.get("Max-Forwards")
    if mf is not None and (not mf.strip().isdigit() or int(mf.strip()) > 255):
        raise ValueError("Bad Max-Forwards")
    memo = m._memo
    for h in m.headers:
        n = h[0]
        if n == "Via":
            v = h[1]
            parts = split_list(v) if "," in v else (v,)
            for i, p in enumerate(parts):
                pv = parse_via(p)
                if i == 0 and v not in memo:
                    memo[v] = pv        # the top Via, read again by transaction matching
        elif n == "From" or n == "To":
            m.name_addr(h[1])
        elif n == "Contact":
            v = h[1]
            for p in (split_list(v) if "," in v else (v,)):
                if p.strip() != "*":
                    m.name_addr(p)
    exp = seen.get("Expires")
    if exp is not None and (not exp.strip().isdigit() or len(exp.strip()) > 10):
        raise ValueError("Bad Expires")


def split_stream(buf):
    """TCP framing: -> (message bytes or None, bytes consumed). Leading CRLFs (keepalives) are skipped."""
    k = 0
    while buf[k:k + 2] == b"\r\n":
        k += 2
    i = bytes(buf[k:]).find(b"\r\n\r\n")
    if i < 0:
        return None, 0
    head = bytes(buf[k:k + i]).decode("utf-8", "replace")
    n = 0
    for ln in head.split("\r\n")[1:]:
        name, colon, v = ln.partition(":")
        if colon and canon(name).lower() == "content-length":
            n = int(v.strip())
    end = k + i + 4 + n
    if len(buf) < end:
        return None, 0
    return bytes(buf[k:end]), end
