# The publication kind: presence (RFC 3903 PUBLISH of an RFC 3863 PIDF document), one publication per account.
# The entity tag the server returns (SIP-ETag) is named in SIP-If-Match by every later PUBLISH: refreshes before the
# entry expires, modifications, the removal at unregister and shutdown. A 412 (the server lost the entry) publishes
# anew. Actions are the functions named after the table's, called as Action(ph, session, arg, evargs).
from uphone import table as T
from uphone.compat import const
from uphone.engine import ERR_FAILED
from uphone.sip import message as M
from uphone.sip import transport
from uphone.ua import request

_EXPIRES = const(3600)            # what we ask for; the server's 2xx says what it grants (RFC 3903 4.1)
_RETRY_S = const(30)              # first retry after a failure, doubling to _RETRY_MAX_S
_RETRY_MAX_S = const(1800)
_CTYPE = "application/pidf+xml"


def wanted(ph, acct_i):
    accts = ph.cfg.get("accounts") or []
    return acct_i < len(accts) and bool(accts[acct_i].get("presence"))


def session_of(ph, acct_i, make=False):
    """The publication of account acct_i (made when make and there is none)."""
    for s in ph.sessions():
        if s.kind == T.K_publication and s.ctx.account == acct_i:
            return s
    if not make:
        return None
    s = ph.new_session(T.K_publication, account=acct_i)
    c = s.ctx
    # one Call-ID and From tag for the publication's life, CSeq counting up, as a registration's (RFC 3903 does not
    # ask for it; a server or a sipp scenario then sees one conversation)
    c.call_id = transport.new_call_id(ph.local_ip)
    c.local_tag = transport.new_tag()
    c.extra["cseq"] = 0
    c.extra["basic"] = "open"
    c.extra["note"] = ""
    return s


def start(ph, acct_i, now=False):
    """Publish for account acct_i when its config asks for presence and it publishes nothing yet: at start for an
    account that does not register, once registered for one that does. now=False (from inside an action): queued,
    it runs once that transition is done."""
    if wanted(ph, acct_i) and session_of(ph, acct_i) is None:
        (ph.dispatch if now else ph.post)(session_of(ph, acct_i, True), T.E_PublishPresence)


def stop(ph, acct_i, now=False):
    """Take account acct_i's entry down (unregister, shutdown), when it has one (now: as start())."""
    s = session_of(ph, acct_i)
    if s is not None and s.state == T.S_Registered and s.ctx.extra.get("etag"):
        (ph.dispatch if now else ph.post)(s, T.E_Unpublish)


def _xml(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def pidf(entity, basic, note):
    """RFC 3863 3.2: one tuple with the basic status and, when there is one, a note."""
    n = "<note>%s</note>" % _xml(note) if note else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="%s">'
            '<tuple id="uphone"><status><basic>%s</basic></status>%s</tuple></presence>\r\n'
            % (_xml(entity), basic, n)).encode()


def _publish(ph, s, expires, body, purpose):
    c = s.ctx
    acct = request.account(ph, s)
    aor = request.aor(ph, acct)
    c.extra["cseq"] += 1
    dest = request.first_hop(ph, acct, aor)
    # RFC 3903 4.1: the Request-URI, From and To name the presentity's address of record
    hs = [("Via", request.via(ph, dest)), ("Max-Forwards", "70"), ("From", request.from_header(ph, acct, c.local_tag)),
          ("To", "<%s>" % aor), ("Call-ID", c.call_id), ("CSeq", "%d PUBLISH" % c.extra["cseq"]),
          ("Event", "presence"), ("Expires", str(expires))]
    etag = c.extra.get("etag")
    if etag:
        hs.append(("SIP-If-Match", etag))
    if body:
        hs.append(("Content-Type", _CTYPE))
    req = M.make_request("PUBLISH", aor, hs + request.common_headers(ph), body)
    auth = request.auth_client(ph, c.account)
    if auth is not None:
        auth.apply_cached(req)
    c.extra["sent_body"] = bool(body)
    ph.send_request(s, req, dest, purpose)
    return 0


def _drop_refresh(ph, s):
    ph.timers = [t for t in ph.timers if not (t[1] is s and t[3] == T.E_PublishPresence)]


# -- actions ---------------------------------------------------------------------------------------------------------
def SendPUBLISH(ph, s, arg, ev):
    """Initial (no ETag yet: the document), modification (basic=/note= given: the new document with SIP-If-Match)
    or refresh (the timer's: SIP-If-Match and no body, RFC 3903 4.3)."""
    ev = ev or {}
    x = s.ctx.extra
    basic = ev.get("basic")
    if basic is not None and basic not in ("open", "closed"):
        ph.emit("err %s PublishPresence basic=open|closed, got %r" % (s.sid, basic))
        return ERR_FAILED
    changed = basic is not None or "note" in ev
    if basic is not None:
        x["basic"] = basic
    if "note" in ev:
        x["note"] = ev["note"]
    body = b""
    if changed or not x.get("etag") or not ev.get("refresh"):
        body = pidf(request.aor(ph, request.account(ph, s)), x["basic"], x["note"])
    _drop_refresh(ph, s)        # this PUBLISH's answer arms the next one
    return _publish(ph, s, x.get("min_expires") or _EXPIRES, body, "publish")


def StoreETag(ph, s, arg, ev):
    msg = (ev or {}).get("msg")
    etag = msg.get("SIP-ETag") if msg is not None else None
    if not etag or msg is None:
        # RFC 3903 11.3: a 2xx to PUBLISH carries SIP-ETag; without one nothing later could name the entry
        ph.emit("err %s 2xx to PUBLISH without SIP-ETag" % s.sid)
        return ERR_FAILED
    x = s.ctx.extra
    try:
        exp = int(msg.get("Expires") or 0) or _EXPIRES
    except ValueError:
        exp = _EXPIRES
    x["etag"] = etag.strip()
    x["fails"] = 0
    x["expires"] = exp
    ph.emit("pub %s published %s etag=%s expires=%d" % (s.sid, x["basic"], x["etag"], exp))
    _drop_refresh(ph, s)
    # refresh before the entry expires: at 80%, at most 30 s early for long intervals (as registrations do)
    ms = max(1000, min(exp * 800, (exp - 30) * 1000 if exp > 150 else exp * 800))
    ph.start_timer(s, ms, T.E_PublishPresence, {"refresh": True})
    return 0


def HandlePublishFailure(ph, s, arg, ev):
    ev = ev or {}
    msg = ev.get("msg")
    st = ev.get("status", 0)
    x = s.ctx.extra
    refresh = not x.get("sent_body")
    if st == 412:
        # RFC 3903 4.4: the entry the ETag named is gone: publish the document anew, without SIP-If-Match
        x["etag"] = None
        ph.emit("pub %s 412: the entry is gone, publishing anew" % s.sid)
        ph.start_timer(s, 0, T.E_PublishPresence)
        return 0
    if st == 423 and msg is not None and msg.get("Min-Expires"):
        x["min_expires"] = int(msg.get("Min-Expires"))          # RFC 3903 4.2 (as RFC 3261 10.3): ask longer
        ph.start_timer(s, 0, T.E_PublishPresence, {"refresh": refresh})
        return 0
    n = x.get("fails", 0) + 1
    x["fails"] = n
    delay = min(_RETRY_S * (1 << min(n - 1, 6)), _RETRY_MAX_S)
    ra = msg.get("Retry-After") if msg is not None else None
    if ra and ra.split(";")[0].strip().isdigit():
        delay = int(ra.split(";")[0].strip())                    # RFC 3261 20.33: the server says when
    ph.emit("pub %s failed (%s), retry in %d s" % (s.sid, st or "timeout", delay))
    ph.start_timer(s, delay * 1000, T.E_PublishPresence, {"refresh": refresh})
    return 0


def SendUnpublish(ph, s, arg, ev):
    if not s.ctx.extra.get("etag"):
        return ERR_FAILED           # nothing published: nothing to remove
    _drop_refresh(ph, s)
    return _publish(ph, s, 0, b"", "unpublish")         # RFC 3903 4.5: SIP-If-Match, Expires: 0, no body


def ClearETag(ph, s, arg, ev):
    st = (ev or {}).get("status", 0)
    s.ctx.extra["etag"] = None
    _drop_refresh(ph, s)
    ph.emit("pub %s removed%s" % (s.sid, "" if st < 300 else " (refused %d: it expires on its own)" % st))
    return 0
