# SIP transport helpers (RFC 3261 18, RFC 3581): random branch/tag/Call-ID tokens and waits, our Via, the
# received/rport stamp on incoming requests and where a response goes. Sans-I/O: no sockets here.
from uphone.compat import TYPE_CHECKING, ticks_ms
from uphone.sip.headers import split_list, parse_via

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

MAGIC = "z9hG4bK"

try:
    import os as _os
except ImportError:
    _os = None  # type: ignore[assignment]  # ports without os: tokens come from the fallback generator
try:
    import random as _random
except (ImportError, OSError):      # the MicroPython VM reports a missing module as OSError(ENOENT)
    _random = None  # type: ignore[assignment]

# which entropy source works is found once: os.urandom can exist and still fail (WASI has no /dev/urandom)
_src = [-1]
_xs = [0]


def _rand32():
    if _src[0] < 0:
        _src[0] = 2
        if _os is not None:
            try:
                _os.urandom(4)
                _src[0] = 0
            except (AttributeError, OSError):
                pass
        if _src[0] == 2 and _random is not None and hasattr(_random, "getrandbits"):
            _src[0] = 1
        if _src[0] == 2:
            # ticks_ms is an int (the stubs give it a type of its own)
            t = ticks_ms()  # type: Any
            _xs[0] = ((t * 2654435761) ^ (id(_xs) << 7) ^ 0x9E3779B9) & 0xFFFFFFFF or 1
    if _src[0] == 0:
        b = _os.urandom(4)
        return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
    if _src[0] == 1:
        return _random.getrandbits(32)
    # last resort xorshift32: tokens only need to be unique, not secret, where no entropy source exists
    x = _xs[0]
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    _xs[0] = x
    return x


def rand_ms(lo, hi):
    """A random wait of lo..hi ms (RFC 3261 14.1 glare, RFC 5626 4.5 backoff) from the tokens' entropy source, which
    works on every port (the WASI VM has neither random nor os.urandom)."""
    return lo + _rand32() % (hi - lo + 1)


def _hex(words):
    return "".join("%08x" % _rand32() for _ in range(words))


def new_branch():
    """RFC 3261 8.1.1.7: unique per transaction, starting with the magic cookie."""
    return MAGIC + _hex(3)


def new_tag():
    return _hex(2)


def new_call_id(host):
    return "%s@%s" % (_hex(4), host)


def _bracket(host):
    return "[%s]" % host if ":" in host and not host.startswith("[") else host


def make_via(host, port, transport, branch):
    """Our Via; rport is always asked for so NATed replies come back to the source port (RFC 3581 3)."""
    return "SIP/2.0/%s %s:%d;rport;branch=%s" % (transport.upper(), _bracket(host), port, branch)


def _split_params(s):
    """';'-split outside quotes (a Via param may be a quoted string)."""
    out, start, q, i = [], 0, False, 0
    while i < len(s):
        ch = s[i]
        if ch == '"':
            q = not q
        elif ch == "\\" and q:
            i += 1
        elif ch == ";" and not q:
            out.append(s[start:i])
            start = i + 1
        i += 1
    out.append(s[start:])
    return out


def stamp_received(msg, src_host, src_port):
    """RFC 3261 18.2.1 + RFC 3581 4 on the top Via of a received request; edits msg.headers in place."""
    for h in msg.headers:
        if h[0].lower() == "via":
            break
    else:
        return
    vals = split_list(h[1])
    if not vals:
        return
    try:
        via = parse_via(vals[0])
    except ValueError:
        return
    has_rport = "rport" in via.params
    sent = via.host[1:-1] if via.host.startswith("[") else via.host
    if not has_rport and sent.lower() == src_host.lower():
        return
    parts = _split_params(vals[0])
    out = [parts[0].rstrip()]
    for p in parts[1:]:
        k = p.partition("=")[0].strip().lower()
        if k == "received":
            continue            # replaced by the address we saw
        if k == "rport" and not (via.params.get("rport") or ""):
            p = "rport=%d" % src_port
        out.append(p.strip())
    out.append("received=" + src_host)
    vals[0] = ";".join(out)
    h[1] = ", ".join(vals)


def response_dest(req, src):
    """(host, port, "udp") for a response to req: RFC 3261 18.2.2 (maddr, received) with RFC 3581 4 (rport).
    A request that came over a connection (src (host, port, "tcp")) is answered on it: (host, port, "tcp",
    (sent-by host, port)), the last item being where 18.2.2 sends it once that connection is gone."""
    d = _udp_dest(req, src)
    if src is not None and len(src) > 2 and src[2] != "udp":
        return (src[0], src[1], src[2], (d[0], d[1]))
    return d


def _udp_dest(req, src):
    vias = req.get_all("Via")
    try:
        via = parse_via(vias[0]) if vias else None
    except ValueError:
        via = None
    if via is None:
        if src is None:
            raise ValueError("no Via to answer to")
        return (src[0], src[1], "udp")
    p = via.params
    port = via.port or 5060
    rport = p.get("rport")
    if rport:
        try:
            port = int(rport)
        except ValueError:
            pass
    elif "rport" in p and src is not None:
        port = src[1]           # not stamped yet: the source port is what rport asks for
    if p.get("maddr"):
        return (p["maddr"], via.port or 5060, "udp")
    if p.get("received"):
        return (p["received"], port, "udp")
    host = via.host[1:-1] if via.host.startswith("[") else via.host
    if "rport" in p and src is not None:
        host = src[0]
    return (host, port, "udp")
