# The registration kind (RFC 3261 10): REGISTER, refresh, backoff after a failure, unregister, register again when
# the network or the flow to the registrar changed; and the requests outside a dialog an account sends: OPTIONS and
# MESSAGE (RFC 3428). Actions are the functions named after the table's, called as Action(ph, session, arg, evargs).
from uphone import table as T
from uphone.engine import ERR_FAILED
from uphone.sip import headers as H
from uphone.sip import message as M
from uphone.sip import transport
from uphone.ua import publication, request


def start_accounts(ph):
    for i, a in enumerate(ph.cfg.get("accounts") or []):
        if a.get("registrar") and a.get("register", True):
            s = ph.new_session(T.K_registration, account=i)
            s.ctx.call_id = transport.new_call_id(ph.local_ip)   # one Call-ID per binding (RFC 3261 10.2.4)
            s.ctx.local_tag = transport.new_tag()
            s.ctx.extra["cseq"] = 0
            ph.dispatch(s, T.E_Register)
        elif a.get("presence"):
            publication.start(ph, i, True)   # no registrar to wait for: publish at once (RFC 3903 needs no binding)


def reg_uri(ph, s):
    reg = request.account(ph, s).get("registrar") or ""
    return reg if reg.startswith("sip") else "sip:" + reg


def reg_key(ph, s):
    """(host, port) of the first hop to s's registrar: the flow its binding lives on."""
    h = request.first_hop(ph, request.account(ph, s), reg_uri(ph, s))
    return (h[0], h[1])


def _register(ph, s, expires, purpose):
    c = s.ctx
    # this REGISTER (or un-REGISTER) supersedes any retry or refresh still armed: left running, a backoff retry
    # would register again by itself after the user had registered at once and then unregistered
    ph.timers = [t for t in ph.timers if not (t[1] is s and t[3] in (T.E_Register, T.E_RefreshRegistration))]
    acct = request.account(ph, s)
    c.extra["cseq"] = c.extra.get("cseq", 0) + 1
    aor = request.aor(ph, acct)
    uri = reg_uri(ph, s)
    dest = request.first_hop(ph, acct, uri)
    hs = [("Via", request.via(ph, dest)), ("Max-Forwards", "70"), ("From", "<%s>;tag=%s" % (aor, c.local_tag)),
          ("To", "<%s>" % aor), ("Call-ID", c.call_id), ("CSeq", "%d REGISTER" % c.extra["cseq"]),
          ("Contact", "%s;expires=%d" % (request.contact(ph, acct), expires)), ("Expires", str(expires)),
          ("Allow", ", ".join(request.ALLOW))] + request.common_headers(ph)
    req = M.make_request("REGISTER", uri, hs)
    auth = request.auth_client(ph, c.account)
    if auth is not None:
        auth.apply_cached(req)
    ph.send_request(s, req, dest, purpose)
    return 0


def SendREGISTER(ph, s, arg, ev):
    return _register(ph, s, int(s.ctx.extra.get("min_expires") or request.account(ph, s).get("expires", 600)),
                     "register")


def SendUnregister(ph, s, arg, ev):
    # the account goes offline: its presence entry goes first (RFC 3903 4.5), while the registrar still routes it
    publication.stop(ph, s.ctx.account)
    return _register(ph, s, 0, "unregister")


def StoreRegistration(ph, s, arg, ev):
    msg = (ev or {}).get("msg")
    if msg is None:
        return ERR_FAILED
    c = s.ctx
    want = int(request.account(ph, s).get("expires", 600))
    granted = None
    mine = "%s:%d" % (ph.local_ip, ph.local_port)
    for v in msg.get_all("Contact"):
        na = H.parse_name_addr(v)
        if mine in na.uri and "expires" in na.params:
            granted = int(na.params["expires"])
    if granted is None and msg.get("Expires"):
        granted = int(msg.get("Expires"))
    c.extra["expires"] = granted if granted is not None else want
    c.extra["fails"] = 0
    ph.emit("reg %s registered %s expires=%d" % (s.sid, request.aor(ph, request.account(ph, s)), c.extra["expires"]))
    if ph.cfg.get("features", {}).get("voicemail_uri") and not any(
            x.kind == T.K_subscription for x in ph.sessions()):
        sub = ph.new_session(T.K_subscription, account=c.account)
        ph.post(sub, T.E_Subscribe)
    publication.start(ph, c.account)
    return 0


def StartRegistrationRefreshTimer(ph, s, arg, ev):
    e = s.ctx.extra.get("expires", 600)
    # refresh with a margin: at 80% of the interval, at most 30 s before expiry for long ones
    ms = max(1000, min(e * 800, (e - 30) * 1000 if e > 150 else e * 800))
    if s.ctx.extra.pop("moved", False):
        ms = 0              # the network changed while this REGISTER was out: register the new Contact now
    ph.start_timer(s, ms, T.E_RefreshRegistration)
    return 0


def refresh_now(ph, s, ms, why):
    """Re-REGISTER after ms: the binding went with the flow (RFC 5626 4.5). Earlier refresh timers go."""
    ph.timers = [t for t in ph.timers if not (t[1] is s and t[3] == T.E_RefreshRegistration)]
    ph.emit("reg %s %s, re-register in %d ms" % (s.sid, why, ms))
    ph.start_timer(s, ms, T.E_RefreshRegistration, state=T.S_Registered)


def reregister(ph, s, why):
    """Register again now (the network came back): a refresh when registered, the waiting retry brought forward
    after a failure, and after the answer when a REGISTER is out (it went from the old address)."""
    c = s.ctx
    if s.state == T.S_Registered:
        refresh_now(ph, s, 0, why)
    elif s.state == T.S_Registering:
        c.extra["moved"] = True
    elif s.state == T.S_Idle and any(t[1] is s and t[3] == T.E_Register for t in ph.timers):
        ph.timers = [t for t in ph.timers if not (t[1] is s and t[3] == T.E_Register)]
        c.extra["fails"] = 0
        ph.emit("reg %s %s, register now" % (s.sid, why))
        ph.start_timer(s, 0, T.E_Register, state=T.S_Idle)


def HandleRegistrationFailure(ph, s, arg, ev):
    c = s.ctx
    msg = (ev or {}).get("msg")
    st = (ev or {}).get("status", 0)
    if st == 423 and msg is not None and msg.get("Min-Expires"):
        c.extra["min_expires"] = int(msg.get("Min-Expires"))     # RFC 3261 10.3: ask again, longer
        ph.start_timer(s, 0, T.E_Register)
        return 0
    n = c.extra.get("fails", 0) + 1
    c.extra["fails"] = n
    base = int(ph.cfg["sip"].get("register_retry_s", 30))
    delay = min(base * (1 << min(n - 1, 6)), 1800)      # exponential backoff, capped (RFC 5626 4.5 style)
    if c.extra.pop("moved", False):
        delay = 0           # it failed from the old address: the new one gets its chance at once
    ph.emit("reg %s failed (%s), retry in %d s" % (s.sid, st or "timeout", delay))
    ph.start_timer(s, delay * 1000, T.E_Register)
    return 0


def ClearRegistration(ph, s, arg, ev):
    s.ctx.extra.pop("expires", None)
    ph.emit("reg %s unregistered" % s.sid)
    return 0


# -- requests outside a dialog -------------------------------------------------------------------------------------
def SendOPTIONS(ph, s, arg, ev):
    acct = request.account(ph, s)
    uri = (ev or {}).get("to") or acct.get("registrar") or request.aor(ph, acct)
    req, dest = request.out_of_dialog(ph, s, "OPTIONS", uri, [("Accept", "application/sdp")])
    ph.send_request(s, req, dest, "options")
    return 0


def SendMESSAGE(ph, s, arg, ev):
    ev = ev or {}
    if not ev.get("to") or "body" not in ev:
        ph.emit("err %s SendMessage needs to=<uri> body=<text>" % s.sid)
        return ERR_FAILED
    uri = request.target_uri(ph, request.account(ph, s), ev["to"])
    req, dest = request.out_of_dialog(ph, s, "MESSAGE", uri, body=ev["body"].encode(), ctype="text/plain")
    ph.send_request(s, req, dest, "message")
    return 0
