# SIP messages (RFC 3261 7, 20, 25): parse bytes into a Message and serialise it back. Hand-written with
# find/slicing (MicroPython's re is too weak and slower); strict start lines, tolerant header values.
# Header names: the lower-case and compact (RFC 3261 7.3.3) spellings -> the canonical one. A literal: on the phone
# its strings are interned in flash and only the table takes heap (a cache of every spelling seen, as before, grew
# with each new name a scanner sent). A name not listed keeps the spelling it arrived with.
_BYLOW = {"via": "Via", "v": "Via", "from": "From", "f": "From", "to": "To", "t": "To", "call-id": "Call-ID",
          "i": "Call-ID", "cseq": "CSeq", "contact": "Contact", "m": "Contact", "max-forwards": "Max-Forwards",
          "content-length": "Content-Length", "l": "Content-Length", "content-type": "Content-Type",
          "c": "Content-Type", "route": "Route", "record-route": "Record-Route", "allow": "Allow",
          "supported": "Supported", "k": "Supported", "require": "Require", "proxy-require": "Proxy-Require",
          "unsupported": "Unsupported", "accept": "Accept", "accept-encoding": "Accept-Encoding",
          "accept-language": "Accept-Language", "allow-events": "Allow-Events", "u": "Allow-Events",
          "content-encoding": "Content-Encoding", "e": "Content-Encoding",
          "content-disposition": "Content-Disposition", "content-language": "Content-Language", "expires": "Expires",
          "min-expires": "Min-Expires", "user-agent": "User-Agent", "server": "Server", "subject": "Subject",
          "s": "Subject", "event": "Event", "o": "Event", "subscription-state": "Subscription-State",
          "www-authenticate": "WWW-Authenticate", "proxy-authenticate": "Proxy-Authenticate",
          "authorization": "Authorization", "proxy-authorization": "Proxy-Authorization",
          "authentication-info": "Authentication-Info", "refer-to": "Refer-To", "r": "Refer-To",
          "referred-by": "Referred-By", "b": "Referred-By", "replaces": "Replaces",
          "session-expires": "Session-Expires", "x": "Session-Expires", "min-se": "Min-SE", "date": "Date",
          "timestamp": "Timestamp", "warning": "Warning", "retry-after": "Retry-After",
          "organization": "Organization", "priority": "Priority", "reply-to": "Reply-To",
          "in-reply-to": "In-Reply-To", "call-info": "Call-Info", "alert-info": "Alert-Info",
          "error-info": "Error-Info", "mime-version": "MIME-Version", "rseq": "RSeq", "rack": "RAck",
          "identity": "Identity", "y": "Identity", "accept-contact": "Accept-Contact", "a": "Accept-Contact",
          "reason": "Reason", "p-asserted-identity": "P-Asserted-Identity", "privacy": "Privacy", "path": "Path",
          "service-route": "Service-Route"}
_LIST = ("via", "route", "record-route", "contact", "allow", "supported", "require", "proxy-require",
         "unsupported", "accept", "accept-encoding", "accept-language", "allow-events", "content-encoding",
         "path", "service-route")
_TOKEN = "-.!%*_+`'~"
MAX_MESSAGE = 65535


class ParseError(Exception):
    def __init__(self, code, reason, partial=None):
        # super(), not Exception.__init__: MicroPython's Exception has no __init__ attribute (AttributeError)
        super().__init__("%d %s" % (code, reason))
        self.code = code
        self.reason = reason
        self.partial = partial


def canon(name):
    c = _BYLOW.get(name)
    if c is None:
        n = name.strip()
        c = _BYLOW.get(n.lower())
        if c is None:
            c = _title(n)
    return c


def _title(n):
    # a name we do not list, in one spelling whatever case it came in (names are case-insensitive, RFC 3261 7.3.1),
    # so equal names compare equal: "x-zebra-THING" -> "X-Zebra-Thing"
    return "-".join([w[:1].upper() + w[1:].lower() for w in n.split("-")])


def is_token(s):
    if not s:
        return False
    if s.isalpha():     # the common case (methods, most header names): one C call instead of a loop
        return True
    for ch in s:
        if not (ch.isalpha() or ch.isdigit() or ch in _TOKEN):
            return False
    return True


def _split_outside(value, sep, angle):
    """Split on sep outside quoted strings (and outside <> when angle) -> (stripped parts, a quote left open)."""
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
        elif angle and ch == "<":
            ang = True
        elif angle and ch == ">":
            ang = False
        elif ch == sep and not ang:
            out.append(value[start:i].strip())
            start = i + 1
        i += 1
    out.append(value[start:].strip())
    return out, q


def split_list(value):
    """Split a header value on commas that are outside quotes and <>."""
    if '"' not in value and "<" not in value:
        return [x.strip() for x in value.split(",") if x.strip()]
    parts, open_quote = _split_outside(value, ",", True)
    if open_quote:
        raise ValueError("unterminated quoted string")
    return [x for x in parts if x]


def parse_params(s):
    """';a=b;c' -> {'a': 'b', 'c': None} (keys lowercased, quotes kept off)."""
    out = {}
    if '"' in s:
        for p in _split_semis(s):
            eq = p.find("=")
            if eq < 0:
                if p:
                    out[p.lower()] = None
                continue
            v = p[eq + 1:].strip()
            if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                v = v[1:-1]
            out[p[:eq].strip().lower()] = v
        return out
    # no quotes anywhere (the usual case): no quoted value to take apart either
    for p in (s.split(";") if ";" in s else (s,)):
        eq = p.find("=")
        if eq < 0:
            p = p.strip()
            if p:
                out[p.lower()] = None
        else:
            out[p[:eq].strip().lower()] = p[eq + 1:].strip()
    return out


def _split_semis(s):
    if '"' not in s:
        return [x.strip() for x in s.split(";")]     # the common case: no quoted ';' to step over
    return _split_outside(s, ";", False)[0]


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
    sp = v.find(" ")
    if v[:8] == "SIP/2.0/" and sp > 8 and "/" not in v[8:sp]:
        # the usual spelling: what the general split below gives, without building its pieces
        transport, rest = v[8:sp], v[sp + 1:]
    else:
        transport, rest = _via_proto(value, v)
    semi = rest.find(";")
    if semi < 0:
        hp, params = rest.strip(), {}
    else:
        hp, params = rest[:semi].strip(), parse_params(rest[semi + 1:])
    if hp[:1] == "[":
        host, port = _hostport(hp)
    else:
        colon = hp.find(":")
        if colon < 0:
            host, port = hp, None
        else:
            host, port = hp[:colon], int(hp[colon + 1:])
        if not host or " " in host or (port is not None and not 0 < port < 65536):
            raise ValueError("bad host/port: " + hp)
    return Via(transport.strip().upper(), host, port, params)


def _via_proto(value, v):
    """'SIP / 2.0 / UDP host...' -> (transport, rest), tolerating the LWS RFC 3261 25.1 allows."""
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
    return parts[2], rest


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
    if v[:1] == '"':
        i = v.find('"', 1)
        b = v.find("\\", 1)
        if b >= 0 and (i < 0 or b < i):
            # an escape before the closing quote: step over quoted-pairs one by one
            i, n = 1, len(v)
            while i < n and v[i] != '"':
                if v[i] == "\\":
                    i += 1
                i += 1
            if i >= n:
                i = -1
        if i < 0:
            raise ValueError("unterminated display name")
        display = v[1:i]
        if "\\" in display:
            display = display.replace('\\"', '"').replace("\\\\", "\\")
        v = v[i + 1:].strip()
        if v[:1] != "<":
            raise ValueError("display name without <uri>")
    lt = v.find("<")
    if lt >= 0:
        if not display and lt > 0:
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
        params = {}
        if gt + 1 < len(v):
            t = v[gt + 1:].strip()      # v is stripped: no trailing blanks
            if t:
                if t[0] != ";":
                    raise ValueError("garbage after >")
                params = parse_params(t[1:])
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


# ---- parsing ------------------------------------------------------------------------------------------------

# headers the parser checks (RFC 3261 7.3, 20): canonical name -> kind; 1-4 are parsed, 2-3 and 5-10 are single
_KIND = {"Via": 1, "From": 2, "To": 3, "Contact": 4, "Content-Length": 5, "CSeq": 6, "Call-ID": 7,
         "Max-Forwards": 8, "Content-Type": 9, "Expires": 10}


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
    if data[:2] == b"\r\n" or not isinstance(data, bytes):
        k = 0
        while data[k:k + 2] == b"\r\n":
            k += 2
        data = bytes(data[k:])
    # head/body split, decode and line split. The usual case: CRLF line ends only, so splitting the head at the
    # first CRLFCRLF and the lines on CRLF is what the general path below gives (no LF outside a CRLF means no
    # LFLF before that CRLFCRLF either)
    text = None
    i = data.find(b"\r\n\r\n")
    if i >= 0:
        try:
            text = data[:i].decode("utf-8")
        except UnicodeError:
            pass
        if text is not None:
            lines = text.split("\r\n")
            if text.count("\n") == len(lines) - 1:
                body = data[i + 4:]
            else:
                text = None
    if text is None:
        head, body, _sep = _split_head(data)
        try:
            text = head.decode("utf-8")
        except UnicodeError:
            raise ParseError(400, "Bad Encoding")
        lines = (text.replace("\r\n", "\n") if "\r" in text else text).split("\n")
        fold = "\n " in text or "\n\t" in text
    else:
        fold = False        # folded lines are found by _scan (a line starting with SP/HT is never a known name)
    start = lines[0]
    m = Message()
    r = _scan(m, _unfold(lines) if fold else lines[1:], fold, text)
    if r is None:
        m = Message()
        r = _scan(m, _unfold(lines), True, text)
    errors, sv, dup, perr = r
    # start line
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if len(parts) < 2 or parts[0] != "SIP/2.0" or len(parts[1]) != 3 or not parts[1].isdigit():
            raise ParseError(400, "Bad Status Line", None)
        m.status = int(parts[1])
        if not 100 <= m.status <= 699:
            raise ParseError(400, "Bad Status Code", None)
        m.reason = parts[2] if len(parts) > 2 else ""
        cs = sv[6]
        m.method = cs.partition(" ")[2].strip() if cs else ""
    else:
        parts = start.split(" ")
        if len(parts) != 3:
            raise ParseError(400, "Bad Request Line", m if _answerable(m) else None)
        method, uri, ver = parts
        if not (method and uri and ver):
            raise ParseError(400, "Bad Request Line", m if _answerable(m) else None)
        m.method = method
        m.uri = uri
        if not method.isalpha() and not is_token(method):
            raise ParseError(400, "Bad Method", m if _answerable(m) else None)
        if ver != "SIP/2.0":
            if ver.upper().startswith("SIP/"):
                raise ParseError(505, "Version Not Supported", m if _answerable(m) else None)
            raise ParseError(400, "Bad Request Line", m if _answerable(m) else None)
        if "<" in uri or ">" in uri or ":" not in uri:
            raise ParseError(400, "Bad Request-URI", m if _answerable(m) else None)
        if "?" in uri and uri[:4].lower() in ("sip:", "sips") and "?" in uri[uri.rfind("@") + 1:]:
            # headers are not allowed in a Request-URI (RFC 3261 19.1.5, RFC 4475 3.1.2.11)
            raise ParseError(400, "Bad Request-URI", m if _answerable(m) else None)
    if errors:
        raise ParseError(400, "Bad Header", m if m.is_request and _answerable(m) else None)
    # semantic checks every UA needs before it can use the message
    bad = _check(m, sv, dup, perr)
    if bad is not None:
        raise ParseError(400, bad, m if m.is_request and _answerable(m) else None)
    # body framing by Content-Length (UDP: extra octets are ignored, a short body is an error)
    cl = sv[5]
    if cl is not None:
        n = int(cl)
        if n > len(body):
            raise ParseError(400, "Content-Length Too Large", m if m.is_request and _answerable(m) else None)
        m.body = body[:n]
    else:
        m.body = body
    return m


def _unfold(lines):
    """Header lines after the start line, continuation lines joined (RFC 3261 7.3.1)."""
    raw = []
    for ln in lines[1:]:
        if ln[:1] in (" ", "\t") and raw:
            raw[-1] = raw[-1].rstrip() + " " + ln.strip()
        else:
            raw.append(ln)
    return raw


def _scan(m, raw, fold, text):
    """Header lines -> m.headers; -> (bad lines?, single values, duplicate name, parse error) or None when a
    folded line shows up and fold is False."""
    # one pass over the header lines: split name/value, and do the per-header checks of _check on the way
    # (their failures are only remembered here, and reported below in the order the message checks run)
    errors = False
    hs = m.headers
    append = hs.append
    memo = m._memo
    sv = [None] * 11        # kind -> first value of a single-valued header
    dup = None              # first single-valued header seen twice
    perr = None             # first Via / From / To / Contact that does not parse
    for ln in raw:
        name, colon, v = ln.partition(":")
        if not colon or not name:
            if not fold and ln[:1] in (" ", "\t") and ("\n " in text or "\n\t" in text):
                return None         # a folded line: start again on the unfolded lines
            if ln.strip():
                errors = True
            continue
        c = _BYLOW.get(name)            # a lower-case or compact spelling
        if c is None:
            if not fold and ln[:1] in (" ", "\t") and ("\n " in text or "\n\t" in text):
                return None
            name = name.strip()
            c = _BYLOW.get(name.lower())
            if c is None:
                if not is_token(name):
                    errors = True
                    continue
                c = _title(name)
        k = _KIND.get(c)
        v = v.strip()
        append([c, v])
        if k is None:
            continue
        if k != 1 and k != 4:
            if sv[k] is None:
                sv[k] = v
            elif dup is None:
                dup = c
        if k < 5 and perr is None:
            try:
                if k == 1:
                    if "," in v:
                        first = True
                        for p in split_list(v):
                            pv = parse_via(p)
                            if first and v not in memo:
                                memo[v] = pv
                            first = False
                    else:
                        pv = parse_via(v)
                        if v not in memo:
                            memo[v] = pv        # the top Via, read again by transaction matching
                elif k == 4:
                    for p in (split_list(v) if "," in v else (v,)):
                        if p.strip() != "*" and p not in memo:
                            memo[p] = parse_name_addr(p)
                elif v not in memo:
                    memo[v] = parse_name_addr(v)
            except ValueError as e:
                perr = e
    return errors, sv, dup, perr


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


def _check(m, sv, dup, perr):
    """The reason a parsed message is unusable, or None. sv/dup/perr come from parse's header pass; header
    values there are already stripped."""
    if dup is not None:
        return "Multiple %s" % dup
    cl, cseq, mf = sv[5], sv[6], sv[8]
    if cl is not None and "," in cl:
        return "Multiple Content-Length"
    if cseq is not None and "," in cseq:
        return "Multiple CSeq"
    v = sv[7]
    if v is not None and "," in v:
        return "Multiple Call-ID"
    if mf is not None and "," in mf:
        return "Multiple Max-Forwards"
    if cl is not None and (not cl.isdigit() or len(cl) > 9):
        return "Bad Content-Length"
    if cseq is not None:
        num, _, meth = cseq.partition(" ")
        meth = meth.strip()
        if not num.isdigit() or len(num) > 10 or int(num) > 0xFFFFFFFF or not (meth.isalpha() or is_token(meth)):
            return "Bad CSeq"
        if m.status == 0 and meth != m.method:
            return "CSeq Method Mismatch"
        m._cs = (cseq, (int(num), meth))       # what cseq_num / cseq_method read next
    if mf is not None and (not mf.isdigit() or int(mf) > 255):
        return "Bad Max-Forwards"
    if perr is not None:
        return str(perr)
    exp = sv[10]
    if exp is not None and (not exp.isdigit() or len(exp) > 10):
        return "Bad Expires"
    return None


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
