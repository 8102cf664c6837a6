# Who may talk to the phone: a per-source rate limit on requests (before they are parsed), SIP scanners dropped
# unanswered, requests from outside the configured proxy/registrar refused (sip.accept_from), requests for a user the
# phone does not have answered 404. Functions of the phone `ph`; what they keep (buckets, counters) lives on it.
from uphone.compat import const, ticks_diff
from uphone.sip.uri import parse_uri
from uphone.ua import request

_MAX_SOURCES = const(16)    # sources with a bucket at once: a flood from many ports cannot grow the table
_BURST_MS = const(2000)     # a bucket holds two seconds' worth of requests (a call set-up's burst passes)
_TRUST_MS = const(300000)   # the proxy's address is looked up again after this (as the loop's DNS cache)
# User-Agent words of SIP scanners (SIPVicious and its copies, sipcli, sundayddr, iWar, VaxSIP, smap, pplsip): they
# sweep the internet for phones and PBXs to guess passwords and place toll calls; an answer only confirms a target
_SCANNERS = ("friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sundayddr", "iwar", "vaxsipuseragent",
             "smap", "pplsip")


def init(ph):
    sip = ph.cfg["sip"]
    ph.rate_limit = int(sip.get("rate_limit", 20))
    mode = sip.get("accept_from", "auto")
    if mode == "auto":
        # an account that registers has a proxy that routes its calls: nobody else has reason to call the phone
        mode = "proxy" if any(a.get("registrar") and a.get("register", True)
                              for a in (ph.cfg.get("accounts") or [])) else "any"
    ph.proxy_only = mode == "proxy"
    ph.buckets = {}             # (host, port) -> [tokens * 1000, ms of the last refill]
    ph.trusted = None           # [(ip, port)] of the accounts' proxies and registrars (see trusted())
    ph.trusted_at = 0
    ph.gate = [0, 0, 0, 0]      # requests dropped by the limit, scanners dropped, strangers refused, unknown users


def status_lines(ph):
    g = ph.gate
    return ["gate limited=%d scanners=%d strangers=%d unknown_user=%d accept_from=%s rate_limit=%d" % (
        g[0], g[1], g[2], g[3], "proxy" if ph.proxy_only else "any", ph.rate_limit)]


# -- before parsing ----------------------------------------------------------------------------------------------
def admit(ph, data, src):
    """A datagram or framed message from src (host, port, transport): False when its source is over the rate limit.
    Only requests count, and not ACK: a response belongs to a transaction of ours and an ACK is never answered, so
    neither can make the phone work or send for a stranger. Over the limit the request is dropped unanswered, not
    answered 503: the source may be forged (UDP), and every answer would be a packet sent for the attacker at our
    cost (RFC 3261 26.1.5; a 503's Retry-After, 21.5.4, binds only the well-behaved). To a real peer a drop is a
    lost datagram, which its transaction repeats (17.1.1.2)."""
    rate = ph.rate_limit
    if rate <= 0 or data.startswith(b"SIP/") or data.startswith(b"ACK "):
        return True
    if is_trusted(ph, src):
        return True             # the proxy carries everyone's calls: its own overload control is not ours to do
    key = (src[0], src[1])
    b = ph.buckets.get(key)
    now = ph.now
    cap = rate * _BURST_MS
    if b is None:
        if len(ph.buckets) >= _MAX_SOURCES:
            _forget_one(ph, now, rate, cap)
        b = ph.buckets[key] = [cap, now]
    else:
        _refill(b, now, rate, cap)
    if b[0] < 1000:
        ph.gate[0] += 1
        return False
    b[0] -= 1000
    return True


def _refill(b, now, rate, cap):
    el = ticks_diff(now, b[1])
    if el > _BURST_MS:
        el = _BURST_MS          # bounded before multiplying: the product stays a small int on MicroPython
    if el > 0:
        t = b[0] + el * rate
        b[0] = cap if t > cap else t
        b[1] = now


def _forget_one(ph, now, rate, cap):
    # the source with the fullest bucket goes: an idle one, rather than one being held back right now
    best = None
    for k in ph.buckets:
        b = ph.buckets[k]
        _refill(b, now, rate, cap)
        if best is None or b[0] > ph.buckets[best][0]:
            best = k
    del ph.buckets[best]


# -- after parsing -----------------------------------------------------------------------------------------------
def scanner(ph, msg):
    """A request from a SIP scanner (its User-Agent says so): dropped unanswered, counted."""
    ua = msg.get("User-Agent")
    if ua:
        ua = ua.lower()
        for w in _SCANNERS:
            if w in ua:
                ph.gate[1] += 1
                return True
    return False


def check(ph, msg, src):
    """A request (not ACK) parsed from src -> None (go on) or (code, reason, headers) to answer statelessly."""
    if msg.to_tag or msg.method == "CANCEL":
        # in a dialog: its tags decide (the phone answers 481 to one it has not); a CANCEL must match a transaction
        return None
    if ph.proxy_only and not is_trusted(ph, src):
        ph.gate[2] += 1
        return (403, "Forbidden", ())       # RFC 3261 21.4.4: understood, and refused
    if not _user_ok(ph, msg.uri):
        ph.gate[3] += 1
        return (404, "Not Found", ())       # RFC 3261 8.2.2.1: not an address this UAS accepts requests for
    return None


def _user_ok(ph, uri):
    """A Request-URI without a user part names the device; with one, it must be one of the accounts' users (the
    Contact the phone registers carries that user, so a proxy's requests carry it too). Compared as RFC 3261 19.1.4
    says: the user part case-sensitively, parameters of a telephone-subscriber user left out."""
    try:
        user = parse_uri(uri).user
    except ValueError:
        return False
    if user is None:
        return True
    user = user.split(";")[0]
    for a in ph.cfg.get("accounts") or []:
        if user == a.get("user") or user == a.get("auth_user"):
            return True
    return False


def is_trusted(ph, src):
    """src (host, port, transport) is one of the accounts' proxies or registrars. Over UDP the address and port must
    be the configured ones (a proxy sends from the port it listens on); over TCP the address only: a proxy opens
    its connections to the phone from any port, and TCP's handshake keeps a forged address out."""
    tr = ph.trusted
    if tr is None or ticks_diff(ph.now, ph.trusted_at) > _TRUST_MS:
        tr = _trusted(ph)
    tcp = len(src) > 2 and src[2] == "tcp"
    for ip, port in tr:
        if ip == src[0] and (tcp or port == src[1]):
            return True
    return False


def _trusted(ph):
    out = []
    for a in ph.cfg.get("accounts") or []:
        for uri in (a.get("proxy"), a.get("registrar")):
            if not uri:
                continue
            try:
                h = request.hop(ph, uri if uri.startswith("sip") else "sip:" + uri)
                ip = _ip(ph, h[0], h[1])
            except (ValueError, OSError):
                continue
            if (ip, h[1]) not in out:
                out.append((ip, h[1]))
    ph.trusted = out
    ph.trusted_at = ph.now
    return out


def _ip(ph, host, port):
    """The dotted address of host: a name is looked up through the loop (its cache)."""
    if host and not host.replace(".", "").isdigit() and ph.rt is not None:
        sa = ph.rt.resolve((host, port))
        if isinstance(sa, tuple):
            return sa[0]
        if len(sa) >= 8:        # MicroPython: a struct sockaddr_in as bytes (family, port, address)
            return "%d.%d.%d.%d" % (sa[4], sa[5], sa[6], sa[7])
    return host
