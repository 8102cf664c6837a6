# SIP header names and values (RFC 3261 7.3, 20, 25): canonical names, comma lists, parameters, Via and
# name-addr. Hand-written with find/slicing (MicroPython's re is too weak and slower); tolerant of the LWS the
# grammar allows, strict where RFC 4475 says a phone must refuse.
# Header names: the lower-case and compact (RFC 3261 7.3.3) spellings -> the canonical one. A literal: on the phone
# its strings are interned in flash and only the table takes heap (a cache of every spelling seen, as before, grew
# with each new name a scanner sent). A name not listed keeps the spelling it arrived with.
CANON = {"via": "Via", "v": "Via", "from": "From", "f": "From", "to": "To", "t": "To", "call-id": "Call-ID",
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
         "service-route": "Service-Route", "sip-etag": "SIP-ETag", "sip-if-match": "SIP-If-Match"}
LISTS = ("via", "route", "record-route", "contact", "allow", "supported", "require", "proxy-require",
         "unsupported", "accept", "accept-encoding", "accept-language", "allow-events", "content-encoding",
         "path", "service-route")
_TOKEN = "-.!%*_+`'~"


def canon(name):
    c = CANON.get(name)
    if c is None:
        n = name.strip()
        c = CANON.get(n.lower())
        if c is None:
            c = title(n)
    return c


def title(n):
    # a name we do not list, in one spelling whatever case it came in (names are case-insensitive, RFC 3261 7.3.1),
    # so equal names compare equal: "x-zebra-THING" -> "X-Zebra-Thing"
    return "-".join([w[:1].upper() + w[1:].lower() for w in n.split("-")])


# Scanners below look at the UTF-8 bytes, not at str characters: on MicroPython `s[i]` and `for ch in s` make each
# character a 1-char str, and it interns those (a qstr, in the heap, never freed: 16 B per distinct character). A
# peer's text then grew the heap for good: one 2 KB datagram of header names starting with 250 distinct non-ASCII
# characters kept ~4 KB, and two of them left a 96 KB phone unable to take a datagram ("err heap"). Bytes index to
# ints, which allocate nothing.
_TOKEN_B = _TOKEN.encode()


def is_token(s):
    """RFC 3261 25.1 token: ASCII letters, digits and -.!%*_+`'~ (a non-ASCII letter is not one, on either runtime)."""
    if not s:
        return False
    b = s.encode()
    if len(b) != len(s):
        return False        # not ASCII
    if s.isalpha():         # the common case (methods, most header names): one C call instead of a loop
        return True
    for x in b:
        if not (97 <= x <= 122 or 65 <= x <= 90 or 48 <= x <= 57 or x in _TOKEN_B):
            return False
    return True


def _split_outside(value, sep, angle):
    """Split on sep outside quoted strings (and outside <> when angle) -> (stripped parts, a quote left open)."""
    # on the UTF-8 bytes (see is_token): the separators are ASCII, so every cut falls between characters
    b = value.encode()
    sp = ord(sep)
    out, start, q, ang, i, n = [], 0, False, False, 0, len(b)
    while i < n:
        ch = b[i]
        if q:
            if ch == 92:            # backslash
                i += 1
            elif ch == 34:          # "
                q = False
        elif ch == 34:
            q = True
        elif angle and ch == 60:    # <
            ang = True
        elif angle and ch == 62:    # >
            ang = False
        elif ch == sp and not ang:
            out.append(value[start:i].strip() if n == len(value) else b[start:i].decode().strip())
            start = i + 1
        i += 1
    out.append(value[start:].strip() if n == len(value) else b[start:].decode().strip())
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
    out = {}  # type: dict
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
            # an escape before the closing quote: step over quoted-pairs, from one backslash to the next with find()
            # (not character by character: see is_token)
            i = 1
            while True:
                q = v.find('"', i)
                b = v.find("\\", i)
                if q < 0 or b < 0 or b > q:
                    i = q
                    break
                i = b + 2               # the escaped character, whatever it is, is passed over
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
