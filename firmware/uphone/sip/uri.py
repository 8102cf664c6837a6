# SIP URIs (RFC 3261 19.1): sip:user:password@host:port;params?headers. Other schemes keep their opaque part.


class Uri:
    def __init__(self):
        self.scheme = ""
        self.user = None
        self.password = None
        self.host = ""
        self.port = None
        self.params = {}
        self.headers = {}
        self.opaque = ""

    def __str__(self):
        if self.scheme not in ("sip", "sips"):
            return "%s:%s" % (self.scheme, self.opaque)
        s = self.scheme + ":"
        if self.user is not None:
            s += self.user + (":" + self.password if self.password is not None else "") + "@"
        s += self.host
        if self.port:
            s += ":%d" % self.port
        for k, v in self.params.items():
            s += ";" + k if v is None else ";%s=%s" % (k, v)
        if self.headers:
            s += "?" + "&".join("%s=%s" % kv for kv in self.headers.items())
        return s


def unescape(s):
    out, i = "", 0
    while i < len(s):
        if s[i] == "%" and i + 2 < len(s) + 0 and _hex(s[i + 1:i + 3]):
            out += chr(int(s[i + 1:i + 3], 16))
            i += 3
        else:
            out += s[i]
            i += 1
    return out


# characters a URI header value keeps as they are (RFC 3261 25.1: hvalue = *(hnv-unreserved / unreserved / escaped))
_HVALUE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()[]/?:+$"


def escape(s):
    """A URI header value with everything else %-escaped: a Replaces value's ';', '=' and '@' (RFC 5589 7)."""
    out = ""
    for ch in s:
        out += ch if ch in _HVALUE else "%%%02X" % ord(ch)
    return out


def _hex(t):
    return len(t) == 2 and all(c in "0123456789abcdefABCDEF" for c in t)


def parse_uri(s):
    s = s.strip()
    if not s or " " in s or "\t" in s or "<" in s or ">" in s:
        raise ValueError("bad URI: %r" % s)
    colon = s.find(":")
    if colon <= 0:
        raise ValueError("URI without scheme: %r" % s)
    u = Uri()
    u.scheme = s[:colon].lower()
    rest = s[colon + 1:]
    if u.scheme not in ("sip", "sips"):
        u.opaque = rest
        return u
    q = rest.find("?")
    if q >= 0:
        for kv in rest[q + 1:].split("&"):
            k, _, v = kv.partition("=")
            u.headers[k] = v
        rest = rest[:q]
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1:]
        user, c2, pw = userinfo.partition(":")
        u.user = user
        u.password = pw if c2 else None
    semi = rest.find(";")
    hp = rest if semi < 0 else rest[:semi]
    if semi >= 0:
        for p in rest[semi + 1:].split(";"):
            if p:
                k, eq, v = p.partition("=")
                u.params[k.lower()] = v if eq else None
    if hp.startswith("["):
        end = hp.find("]")
        if end < 0:
            raise ValueError("bad IPv6 reference")
        u.host, tail = hp[:end + 1], hp[end + 1:]
        if tail:
            if not tail.startswith(":") or not tail[1:].isdigit():
                raise ValueError("bad port")
            u.port = int(tail[1:])
    else:
        host, c3, port = hp.partition(":")
        u.host = host
        if c3:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("bad port in %r" % s)
            u.port = int(port)
    if not u.host:
        raise ValueError("URI without host: %r" % s)
    return u
