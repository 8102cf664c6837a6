# Session timers (RFC 4028, option tag "timer") for the call kind, both roles; loaded by ua/call.py the first
# time a call deals with one. The INVITE that sets a session up, and every re-INVITE or UPDATE after it, agrees
# an interval (Session-Expires, never below the Min-SE either side asks)
# and which side refreshes (refresher=uac|uas, relative to that request). The refresher sends a refresh (UPDATE
# when the far end allows it, else a re-INVITE with the current offer) halfway through (SessionTimerExpired, the
# Refreshing state); the other side ends the call with BYE when no refresh came by the interval minus
# min(32 s, a third) (SessionExpired, RFC 4028 10), and so does a refresher whose refresh got no 2xx by then.
# An interval below our sip.min_se_s gets 422 with Min-SE (UAS); a 422 to our INVITE is tried again once with the
# interval it asks for (UAC, 7.4). The timer belongs to the dialog, not a state: hold and mute keep it running.
# Config: sip.session_expires_s (0 = not asked for; the phone still answers a far end that asks), sip.min_se_s.
# Its action, RefreshSession, is in ua/call.py (a refresh may be a re-INVITE).
from uphone import table as T
from uphone.compat import ticks_add, ticks_diff
from uphone.sip import headers as H
from uphone.ua import request

TAG = "timer"


def _cfg(ph):
    sip = ph.cfg["sip"]
    mn = int(sip.get("min_se_s", 90))
    return int(sip.get("session_expires_s", 1800)), mn


def _tags(msg, name):
    return [x.strip().lower() for x in msg.get_all(name)]


def parse_se(msg):
    """Session-Expires of msg -> (seconds, refresher or None), or None when absent or malformed."""
    v = msg.get("Session-Expires") if msg is not None else None
    if not v:
        return None
    i = v.find(";")
    try:
        n = int((v if i < 0 else v[:i]).strip())
    except ValueError:
        return None
    r = H.parse_params(v[i + 1:]).get("refresher") if i >= 0 else None
    return n, (r.lower() if r else None)


def _min_se(msg):
    try:
        return int((msg.get("Min-SE") or "").split(";")[0].strip())
    except ValueError:
        return 0


def _allows_update(msg):
    return msg is not None and "UPDATE" in [x.strip().upper() for x in msg.get_all("Allow")]


# -- UAC: our INVITE and its answers ----------------------------------------------------------------------------------
def invite_headers(ph, s):
    """Session-Expires and Min-SE for our INVITE (7.1): what the config asks, or what a 422 told us to."""
    se, mn = _cfg(ph)
    want = s.ctx.extra.get("se_422")
    if want:
        se, mn = max(se, want), max(mn, want)
    if se <= 0:
        return []
    return [("Session-Expires", str(max(se, mn))), ("Min-SE", str(mn))]


def retry_422(ph, s, msg):
    """A 422 to our INVITE (7.4): True when it is to be sent again at once (by the caller), new CSeq, with the
    Min-SE the 422 names."""
    c = s.ctx
    want = _min_se(msg)
    if want <= 0 or c.extra.get("se_422") or want > 86400:
        return False
    c.extra["se_422"] = want
    c.extra["cseq"] += 1
    ph.emit("timer %s 422: INVITE again with Session-Expires %d" % (s.sid, want))
    return True


def refresh_422(ph, s, msg):
    """A 422 to our refresh (7.4 applies to every request that carries Session-Expires): True when the refresh is to
    go again at once with the larger interval it names (once per Min-SE: a far end raising it forever gets no loop)."""
    c = s.ctx
    want = _min_se(msg)
    se = c.extra.get("se")
    if se is None or want <= se[0] or want > 86400 or want == c.extra.get("se_422"):
        return False
    c.extra["se_422"] = want
    c.extra["se"] = (want, se[1])
    ph.emit("timer %s 422 to our refresh: again with Session-Expires %d" % (s.sid, want))
    return True


def answered(ph, s, msg, sent):
    """A 2xx to our INVITE, re-INVITE or UPDATE `sent` (8.2 / 7.2): arm the timer it agrees, if any. A 2xx without
    Session-Expires to a refresh of ours keeps the timer we had (the far end does not do timers: we refresh)."""
    c = s.ctx
    got = parse_se(msg)
    old = c.extra.get("se")
    if got is None and old is None:
        return                  # no timer, none asked for: nothing allocated on the way (the heap test's margin)
    if _allows_update(msg):
        c.extra["se_update"] = True
    if got is None:
        if parse_se(sent) is not None:
            _arm(ph, s, old[0], True)
        return
    _arm(ph, s, got[0], got[1] != "uas")        # we sent the request: "uac" (or none, 7.2) is us


# -- UAS: a request that asks for (or may get) a timer ----------------------------------------------------------------
def too_small(ph, msg):
    """An INVITE (or refresh) whose Session-Expires is below our Min-SE and whose sender supports timers -> the
    Min-SE to answer 422 with (8.1), else None."""
    got = parse_se(msg)
    if got is None:
        return None
    _se, mn = _cfg(ph)
    if got[0] >= mn or TAG not in _tags(msg, "Supported") + _tags(msg, "Require"):
        return None
    return mn


def answer_headers(ph, s, req):
    """Headers of our 2xx to an INVITE, re-INVITE or UPDATE (9): the interval and refresher, and the timer armed."""
    c = s.ctx
    got = parse_se(req)
    se, mn = _cfg(ph)
    old = c.extra.get("se")
    if got is None and (req.method != "INVITE" or (se <= 0 and old is None)):
        return []               # an UPDATE without it changes nothing; nobody wants a timer
    supports = TAG in _tags(req, "Supported") + _tags(req, "Require")
    if _allows_update(req):
        c.extra["se_update"] = True
    if got is None:
        # a re-INVITE without one from a far end we agreed a timer with keeps ours; else we may ask (9)
        n = old[0] if old is not None else max(se, mn)
        refresher = "uac" if supports else "uas"
    else:
        n = max(got[0], mn)
        refresher = got[1] or ("uac" if supports else "uas")
    _arm(ph, s, n, refresher == "uas")          # we answer: "uas" is us
    hs = [("Session-Expires", "%d;refresher=%s" % (n, refresher))]
    if supports:
        hs.append(("Require", TAG))             # MUST with refresher=uac; the UAC knows timers, so always
    return hs


# -- the timer itself -------------------------------------------------------------------------------------------------
def _arm(ph, s, n, we_refresh):
    c = s.ctx
    ph.timers_used = True       # from now on the loop asks this module for its deadlines (ua/call.py)
    c.extra["se"] = (n, we_refresh)
    c.extra["se_t0"] = ph.now
    if we_refresh:
        c.extra["se_due"] = (ticks_add(ph.now, n * 500), T.E_SessionTimerExpired)
    else:
        c.extra["se_due"] = (ticks_add(ph.now, _expiry_ms(n)), T.E_SessionExpired)
    ph.emit("timer %s %d s, %s refresh" % (s.sid, n, "we" if we_refresh else "they"))


def _expiry_ms(n):
    return (n - min(32, n // 3)) * 1000          # the BYE goes before the interval ends (10)


def request_headers(ph, s):
    """What a refresh of ours (or any re-INVITE once a timer runs) carries: the interval, us as refresher."""
    se = s.ctx.extra.get("se")
    if se is None:
        return []
    _x, mn = _cfg(ph)
    # the largest Min-SE a 422 in this dialog named stays in every refresh (7.4)
    mn = max(mn, s.ctx.extra.get("se_422") or 0)
    return [("Session-Expires", "%d;refresher=uac" % se[0]), ("Min-SE", str(mn)), ("Supported", TAG)]


def deadline(ph):
    # called each loop pass: walks the sessions in place (no list per pass; the heap test's 96 KB counts it)
    d = None
    for s in ph.sessions():
        if s.kind == T.K_call:
            due = s.ctx.extra.get("se_due")
            if due is not None and (d is None or ticks_diff(due[0], d) < 0):
                d = due[0]
    return d


def tick(ph, now):
    for s in ph.sessions():
        if s.kind == T.K_call:
            due = s.ctx.extra.get("se_due")
            if due is not None and ticks_diff(now, due[0]) >= 0:
                break
    else:
        return
    c = s.ctx
    if due[1] == T.E_SessionTimerExpired:
        # the refresh goes now; if no 2xx re-arms the timer, the session still ends at its expiry
        c.extra["se_due"] = (ticks_add(c.extra["se_t0"], _expiry_ms(c.extra["se"][0])), T.E_SessionExpired)
        ph.emit("timer %s refresh due" % s.sid)
    else:
        del c.extra["se_due"]
        ph.emit("timer %s expired: no refresh came" % s.sid)
    ph.dispatch(s, due[1])
    ph.settle(s)


def refresh_by_update(ph, s):
    """The refresh as an UPDATE without SDP (RFC 4028 7.4 / 9) when the far end allows UPDATE -> True when sent; the
    caller sends a re-INVITE otherwise."""
    c = s.ctx
    if not c.extra.get("se_update") or c.dialog is None:
        return False
    req, dest = request.dialog_request(ph, s, "UPDATE", extra=request_headers(ph, s))
    ph.send_request(s, req, dest, "refresh")
    c.extra["se_sent"] = req
    return True
