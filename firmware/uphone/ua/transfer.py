# Calls that move to another target: transferring (REFER out, RFC 3515), being transferred (REFER in, RFC 5589 blind
# transfer: accept, call the Refer-To target as a new call instance, report in sipfrag NOTIFYs) and redirection (3xx:
# RFC 3261 8.1.3.4). Actions are the functions named after the table's, called as Action(ph, session, arg, evargs).
from uphone import table as T
from uphone.engine import OK, ERR_FAILED, ROLE_UAC
from uphone.sip import headers as H
from uphone.sip.uri import parse_uri, unescape
from uphone.ua import media, request

_FINAL = (T.S_Terminated, T.S_Cancelled, T.S_Failed)
_MAX_REDIRECTS = 3         # a redirect loop ends as a failed call, not a storm of INVITEs
# headers a Refer-To URI may carry into the INVITE it triggers (RFC 3515 2.1); anything else is ignored
_PASS = ("replaces", "referred-by", "accept-contact")


def SendREFER(ph, s, arg, ev):
    c = s.ctx
    target = (ev or {}).get("target")
    if c.dialog is None or not target:
        ph.emit("err %s BlindTransfer needs target=<uri>" % s.sid)
        return ERR_FAILED
    acct = request.account(ph, s)
    try:
        uri = request.target_uri(ph, acct, target)
    except ValueError:
        return ERR_FAILED
    req, dest = request.dialog_request(ph, s, "REFER", extra=[("Refer-To", "<%s>" % uri),
                                                              ("Referred-By", "<%s>" % request.aor(ph, acct))])
    ph.send_request(s, req, dest, "refer")
    c.refer_target = uri
    return 0


def AcceptTransfer(ph, s, arg, ev):
    ev = ev or {}
    msg, stx = ev.get("msg"), ev.get("stx")
    if msg is None or stx is None:
        return ERR_FAILED
    target, headers = _refer_target(msg.get("Refer-To"))
    if target is None:
        ph.fail_answer = (400, "Bad Refer-To")
        ph.emit("err %s REFER without a usable Refer-To: %r" % (s.sid, msg.get("Refer-To")))
        return ERR_FAILED
    if msg.get("Referred-By") and not any(h[0] == "Referred-By" for h in headers):
        headers.append(("Referred-By", msg.get("Referred-By")))
    why = None
    if not media.line_free(ph):
        why = "no free line"
    elif not ph.room():
        why = "heap short (%d bytes free)" % ph.heap_free()
    if why:
        # the new call could not be made: refused now rather than accepted and failed in a NOTIFY
        ph.fail_answer = (503, "Service Unavailable")
        ph.emit("err %s REFER refused: %s for the new call" % (s.sid, why))
        return ERR_FAILED
    ph.respond(stx, msg, 202, "Accepted")
    s.ctx.extra["refer_id"] = msg.cseq_num       # the implicit subscription's id (RFC 3515 2.4.6)
    notify(ph, s, 100, "Trying", final=False)
    n = ph.new_session(T.K_call, ROLE_UAC, s.ctx.account)
    n.ctx.extra["refer_of"] = s
    ph.emit("xfer %s to %s as %s" % (s.sid, target, n.sid))
    # the new call goes through the table like any dialled call (Idle x MakeCall)
    ph.post(n, T.E_MakeCall, {"target": target, "headers": headers})
    return 0


def incoming_notify(ph, stx, msg, s):
    """A NOTIFY of the REFER we sent from call s: its sipfrag says how the transfer went (RFC 3515 2.4.5)."""
    res = ph.dispatch(s, T.E_DialogNOTIFY, {"msg": msg, "stx": stx})
    if res != OK:
        ph.respond(stx, msg, 200, "OK")
        return
    code = _sipfrag_status(msg.body)
    if code >= 300:
        ph.dispatch(s, T.E_TransferFailed, {"status": code})
    elif code >= 200:
        ph.dispatch(s, T.E_TransferSuccess, {"status": code})


def follow_redirect(ph, s, t, resp):
    """3xx to our INVITE: send it again to the first Contact (RFC 3261 8.1.3.4, a call forwarded by the far end
    or the PBX); False when it cannot be followed and the 3xx fails the call like a 4xx."""
    ctx, purpose = t
    c = s.ctx
    if purpose != "invite" or resp.status in (305, 380) or c.cancel_pending or \
            c.extra.get("redirects", 0) >= _MAX_REDIRECTS:
        return False
    target = None
    for v in resp.get_all("Contact"):
        try:
            uri = H.parse_name_addr(v).uri
            if parse_uri(uri).scheme in ("sip", "sips"):
                target = uri
                break
        except ValueError:
            continue
    if target is None:
        return False
    c.extra["redirects"] = c.extra.get("redirects", 0) + 1
    req = request.clone_request(ctx.request)
    req.uri = target                    # To stays: the same call, sent on to where it was forwarded
    dest = request.first_hop(ph, request.account(ph, s), target)
    req.set("Via", request.via(ph, dest))
    req.set("CSeq", "%d INVITE" % (req.cseq_num + 1))
    c.dialog = None                     # an early dialog with the redirecting side ends here
    c.invite = req
    c.invite_ctx = ph.send_request(s, req, dest, "invite")
    ph.emit("redirect %s %d to %s" % (s.sid, resp.status, target))
    return True


def notify(ph, s, code, reason, final=True):
    """NOTIFY in the REFER's dialog (call s) with the new call's progress as a sipfrag status line."""
    c = s.ctx
    if c.dialog is None or s.state in _FINAL:
        return
    sub = "terminated;reason=noresource" if final else "active;expires=60"
    ev = "refer;id=%d" % c.extra.get("refer_id", 0)
    body = ("SIP/2.0 %d %s\r\n" % (code, reason)).encode()
    req, dest = request.dialog_request(ph, s, "NOTIFY", body, "message/sipfrag",
                                       [("Event", ev), ("Subscription-State", sub)])
    ph.send_request(s, req, dest, "notify")


def progress(ph, s):
    """Called after each transition of a call: a call started by a REFER reports its outcome once."""
    x = s.ctx.extra
    orig = x.get("refer_of")
    if orig is None or x.get("refer_told"):
        return
    if s.state == T.S_Active:
        x["refer_told"] = True
        notify(ph, orig, 200, "OK")
    elif s.state in _FINAL:
        x["refer_told"] = True
        code, reason = x.get("final") or (503, "Service Unavailable")
        notify(ph, orig, code, reason)
    if x.get("refer_told"):
        # told: the transferor's call is not needed any more, and holding it would keep its whole session (the
        # INVITE, SDP, transactions: ~8 KB on MicroPython) alive for as long as the new call lasts
        x["refer_of"] = None


def _refer_target(value):
    """Refer-To value -> (target URI without headers, [(header, value)]) or (None, None)."""
    if not value:
        return None, None
    try:
        uri = H.parse_name_addr(value).uri
        u = parse_uri(uri)
    except ValueError:
        return None, None
    if u.scheme not in ("sip", "sips"):
        return None, None
    headers = []
    for k, v in u.headers.items():
        if k.lower() in _PASS:
            headers.append((H.canon(k), unescape(v)))
    u.headers = {}
    return str(u), headers


def _sipfrag_status(body):
    # "SIP/2.0 200 OK" -> 200 (RFC 3515 2.4.5)
    try:
        line = body.split(b"\n", 1)[0].decode()
        return int(line.split()[1])
    except (ValueError, IndexError):
        return 0
