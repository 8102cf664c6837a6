# uPhone: HTTP digest client for SIP (RFC 3261 22, RFC 2617, RFC 7616, RFC 8760): answers 401/407
# challenges per realm, caches nonces for proactive credentials, never puts the password on the wire.
from binascii import hexlify
from hashlib import sha256

try:
    from hashlib import md5
except ImportError:
    from uphone.sip.md5 import md5  # type: ignore[assignment]  # the MicroPython VM's hashlib has only sha256

# lowercased algorithm token -> (canonical name, hash constructor, is -sess)
_ALGS = {"md5": ("MD5", md5, False), "md5-sess": ("MD5-sess", md5, True),
         "sha-256": ("SHA-256", sha256, False), "sha-256-sess": ("SHA-256-sess", sha256, True)}
_NO_AUTH = ("ACK", "CANCEL")
_SEP = " \t,="


def _h(fn, data):
    if isinstance(data, str):
        data = data.encode()
    return hexlify(fn(data).digest()).decode()


def _quote(v):
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _skip_ws(s, i):
    while i < len(s) and s[i] in " \t":
        i += 1
    return i


def parse_challenges(value):
    """'Digest realm="a", nonce="1", Digest realm="b", ...' -> [(scheme lowercased, {param: value})]."""
    out, cur, i, n = [], None, 0, len(value)
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        j = i
        while j < n and value[j] not in _SEP:
            j += 1
        tok = value[i:j]
        i = _skip_ws(value, j)
        if i < n and value[i] == "=" and tok:
            i = _skip_ws(value, i + 1)
            if i < n and value[i] == '"':
                i += 1
                buf = []
                while i < n and value[i] != '"':
                    if value[i] == "\\" and i + 1 < n:
                        i += 1
                    buf.append(value[i])
                    i += 1
                if i >= n:
                    raise ValueError("unterminated quoted string")
                i += 1
                v = "".join(buf)
            else:
                j = i
                while j < n and value[j] != ",":
                    j += 1
                v = value[i:j].strip()
                i = j
            if cur is not None:
                cur[1][tok.lower()] = v
        elif tok:
            cur = (tok.lower(), {})   # a token not followed by '=' starts the next challenge
            out.append(cur)
        else:
            i += 1                    # stray '=' (e.g. token68 padding of another scheme)
    return out


def _realm_of(value):
    try:
        for scheme, p in parse_challenges(value):
            if scheme == "digest":
                return p.get("realm"), p.get("nonce"), p.get("response")
    except ValueError:
        pass
    return None, None, None


class _Realm:
    def __init__(self, hdr, p, alg, qop):
        self.hdr = hdr                    # "Authorization" (401) or "Proxy-Authorization" (407)
        self.realm = p.get("realm", "")
        self.nonce = p.get("nonce", "")
        self.opaque = p.get("opaque")
        self.userhash = (p.get("userhash") or "").lower() == "true"
        self.alg = alg
        self.qop = qop
        self.nc = 0
        self.cnonce = None


class DigestClient:
    """password, or ha1: the hex MD5 of user:realm:password, so the phone never holds the password (a config
    provisioned that way answers MD5 and MD5-sess challenges of that realm only: SHA-256 needs the password)."""

    def __init__(self, user, password, cnonce=None, ha1=None):
        self.user = user
        self._pw = password
        self._ha1 = ha1.lower() if ha1 else None
        self._cnonce_fn = cnonce      # tests pass a fixed cnonce source; the phone uses random bytes
        self._realms = {}             # realm -> _Realm, in challenge order
        self._answered = {}           # realm -> response value our last authorize() produced

    def __repr__(self):
        return "<DigestClient user=%r realms=%r>" % (self.user, list(self._realms))

    def _new_cnonce(self):
        if self._cnonce_fn is not None:
            return self._cnonce_fn()
        try:
            from os import urandom
            return hexlify(urandom(8)).decode()
        except (ImportError, AttributeError, OSError):
            import random
            return "%08x%08x" % (random.getrandbits(32), random.getrandbits(32))

    def authorize(self, resp, req):
        """Add credentials for every realm challenged in a 401/407; False when retrying cannot help."""
        if resp.status == 407:
            chal_hdr, hdr = "Proxy-Authenticate", "Proxy-Authorization"
        elif resp.status == 401:
            chal_hdr, hdr = "WWW-Authenticate", "Authorization"
        else:
            return False
        picked, order = {}, []
        for line in resp.get_all(chal_hdr):
            try:
                chals = parse_challenges(line)
            except ValueError:
                continue
            for scheme, p in chals:
                realm = p.get("realm")
                if scheme != "digest" or realm is None or not p.get("nonce"):
                    continue
                if realm not in order:
                    order.append(realm)
                if realm in picked:
                    continue      # RFC 8760 2.4: the topmost challenge we support for a realm wins
                alg = _ALGS.get((p.get("algorithm") or "MD5").lower())
                if alg is not None and self._pw is None and alg[1] is not md5:
                    alg = None    # only a stored MD5 HA1: a SHA-256 challenge cannot be answered
                qop = self._pick_qop(p.get("qop"))
                if alg is not None and qop != "":
                    picked[realm] = (p, alg, qop)
        if not picked:
            return False
        sent = {}
        for h in req.headers:
            if h[0].lower() == hdr.lower():
                r, nonce, response = _realm_of(h[1])
                if r is not None:
                    sent[r] = (nonce, response)
        for realm in order:
            if realm not in picked:
                continue
            p, alg, qop = picked[realm]
            stale = (p.get("stale") or "").lower() == "true"
            if realm in sent and not stale:
                nonce, response = sent[realm]
                # same nonce rejected, or our own answer to the last challenge rejected: wrong credentials
                if nonce == p["nonce"] or response == self._answered.get(realm):
                    return False
        for realm in order:
            if realm not in picked:
                continue
            p, alg, qop = picked[realm]
            old = self._realms.get(realm)
            if old is not None and old.nonce == p["nonce"] and old.hdr == hdr:
                ent = old         # the same nonce again (e.g. two requests challenged at once): keep counting
                ent.alg, ent.qop = alg, qop
            else:
                ent = _Realm(hdr, p, alg, qop)
                self._realms[realm] = ent
            self._answered[realm] = self._put(req, ent)
        return True

    @staticmethod
    def _pick_qop(offer):
        """None = RFC 2069 style (no qop); "" = nothing we understand."""
        if offer is None:
            return None
        opts = [x.strip().lower() for x in offer.split(",")]
        if "auth" in opts:
            return "auth"
        if "auth-int" in opts:
            return "auth-int"
        return ""

    def apply_cached(self, req):
        """Proactive credentials for every realm we hold a nonce for (next nc), so no new challenge is needed."""
        if req.method in _NO_AUTH:
            return
        for ent in self._realms.values():
            self._put(req, ent)

    def _put(self, req, ent):
        value, response = self._header(req, ent)
        keep = []
        for h in req.headers:
            n = h[0].lower()
            if (n == "authorization" or n == "proxy-authorization") and _realm_of(h[1])[0] == ent.realm:
                continue          # replace an earlier answer for this realm (either header name)
            keep.append(h)
        req.headers = keep
        req.add(ent.hdr, value)
        return response

    def _header(self, req, ent):
        name, fn, sess = ent.alg
        realm, nonce, uri = ent.realm, ent.nonce, req.uri
        user = _h(fn, "%s:%s" % (self.user, realm)) if ent.userhash else self.user
        ha1 = self._ha1 if self._pw is None else _h(fn, "%s:%s:%s" % (self.user, realm, self._pw))
        if ent.qop is not None or sess:
            ent.nc += 1
            if ent.cnonce is None:
                ent.cnonce = self._new_cnonce()   # one cnonce per nonce: -sess keys stay stable
        if sess:
            ha1 = _h(fn, "%s:%s:%s" % (ha1, nonce, ent.cnonce))
        if ent.qop == "auth-int":
            ha2 = _h(fn, "%s:%s:%s" % (req.method, uri, _h(fn, bytes(req.body or b""))))
        else:
            ha2 = _h(fn, "%s:%s" % (req.method, uri))
        nc = "%08x" % ent.nc
        if ent.qop is None:
            response = _h(fn, "%s:%s:%s" % (ha1, nonce, ha2))
        else:
            response = _h(fn, "%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc, ent.cnonce, ent.qop, ha2))
        parts = ["Digest username=" + _quote(user), "realm=" + _quote(realm), "nonce=" + _quote(nonce),
                 "uri=" + _quote(uri), 'response="%s"' % response, "algorithm=" + name]
        if ent.qop is not None:
            parts.append("cnonce=" + _quote(ent.cnonce))
            parts.append("qop=" + ent.qop)
            parts.append("nc=" + nc)
        elif sess:
            parts.append("cnonce=" + _quote(ent.cnonce))
        if ent.opaque is not None:
            parts.append("opaque=" + _quote(ent.opaque))
        if ent.userhash:
            parts.append("userhash=true")
        return ", ".join(parts), response
