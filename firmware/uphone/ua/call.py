# The call kind: a call leg's signalling. Incoming INVITE and CANCEL, the answers to our INVITE (its forks' early
# dialogs kept apart, RFC 3261 13.2.2.4), re-INVITE and BYE as table events, and the SIP actions of the call (INVITE,
# ACK, CANCEL, BYE, responses, re-INVITE with glare, UPDATE). Its media actions are ua/media.py, REFER and redirects
# ua/transfer.py, reliable provisionals ua/prack.py.
# Actions are the functions named after the table's, called as Action(ph, session, arg, evargs).
from uphone import table as T
from uphone.engine import OK, ERR_FAILED, ROLE_UAS
from uphone.sip import headers as H
from uphone.sip import message as M
from uphone.sip import transport
from uphone.sip.dialog import Dialog
from uphone.ua import media, request

_ACTIVE = (T.S_Idle, T.S_Terminated, T.S_Cancelled, T.S_Failed)


# ua/prack.py and ua/sessiontimer.py are loaded the first time a call needs them (a reliable provisional, a
# Session-Expires, a timer the config asks for): a phone whose calls use neither keeps neither on its heap (the
# 96 KB heap test has about a kilobyte to spare).
def _prack():
    from uphone.ua import prack
    return prack


def _timers():
    from uphone.ua import sessiontimer
    return sessiontimer


def _asks_timer(ph):
    return ph.cfg["sip"].get("session_expires_s", 0) > 0


def early_dialog(c, tag):
    """The early dialog of To tag `tag` (one per fork, RFC 3261 13.2.2.4), the current one when it is that."""
    if c.dialog is not None and c.dialog.remote_tag == tag:
        return c.dialog
    early = c.extra.get("early")
    return early.get(tag) if early else None


def _reliable_wanted(ph, msg):
    """Whether our provisional answer to INVITE msg goes reliably (RFC 3262 3: MUST when the caller requires 100rel,
    MAY when it supports it: we do when sip.100rel is "required"). A substring test: no list built per INVITE."""
    mode = ph.cfg["sip"].get("100rel", "supported")
    if mode == "off":
        return False
    return "100rel" in (msg.get("Require") or "") or (mode == "required" and "100rel" in (msg.get("Supported") or ""))


def _has_sdp(msg):
    ct = msg.get("Content-Type") or ""
    return bool(msg.body) and "application/sdp" in ct.lower()


# -- incoming --------------------------------------------------------------------------------------------------------
def incoming_invite(ph, stx, msg, src):
    feats = ph.cfg.get("features", {})
    busy = [x for x in ph.calls() if x.state not in _ACTIVE]
    old = None
    if msg.get("Replaces") is not None:
        from uphone.ua import replaces          # loaded by the first INVITE with Replaces (heap)
        old = replaces.match(ph, stx, msg)      # the call it takes the place of (RFC 3891), else it was answered
        if old is None:
            return
    elif feats.get("dnd"):
        return ph.respond(stx, msg, 486, "Busy Here", [("Warning", '399 uphone "Do not disturb"')])
    ringing = False
    for x in busy:
        if x.role == ROLE_UAS and x.state in (T.S_Ringing, T.S_WaitingForPRACK):
            ringing = True
    if (busy and not feats.get("call_waiting", True)) or ringing or not media.line_free(ph):
        # every line carries a call (features.lines), or a call already rings (or waits): a handset has one ringer
        # and one answer key, so no session is made for one more (RFC 3261 21.4.24: 486, the callee is busy).
        # This is what bounds a sweep of INVITEs: at most `lines` sessions, one of them ringing
        return ph.respond(stx, msg, 486, "Busy Here")
    if not ph.room():
        return ph.respond(stx, msg, 503, "Service Unavailable", [("Retry-After", "30")])
    why = media.offer_refused(ph, msg)
    if why is not None:
        ph.emit("refused call from %s: %s" % (msg.get("From"), why))
        text = why[:80].replace("\\", "/").replace('"', "'")  # quoted-string, RFC 3261 20.43
        return ph.respond(stx, msg, 488, "Not Acceptable Here", [("Warning", '305 uphone "%s"' % text)])
    mn = _timers().too_small(ph, msg) if msg.get("Session-Expires") else None
    if mn:
        return ph.respond(stx, msg, 422, "Session Interval Too Small", [("Min-SE", str(mn))])    # RFC 4028 8.1
    s = ph.new_session(T.K_call, ROLE_UAS)
    c = s.ctx
    c.invite, c.invite_stx, c.call_id = msg, stx, msg.call_id
    c.local_tag = transport.new_tag()
    c.remote_uri = H.parse_name_addr(msg.get("From")).uri
    c.dialog = Dialog.uas(msg, c.local_tag, request.contact(ph, request.account(ph, s)))
    if _has_sdp(msg):
        s.cond |= T.C_HasRemoteSDP
    if old is not None:
        c.extra["replaces"] = old       # answered as soon as it would ring (NotifyUser); old ends then (replaces.py)
    ph.last_sdp_error = 0
    # a caller that needs our provisional answers reliable (RFC 3262) gets a reliable 180 and waits for our PRACK
    ev = T.E_IncomingCall100rel if _reliable_wanted(ph, msg) else T.E_IncomingCall
    res = ph.dispatch(s, ev, {"msg": msg, "from": c.remote_uri})
    if res != OK:
        if ph.last_sdp_error:
            ph.respond(stx, msg, 488, "Not Acceptable Here")
        else:
            ph.respond(stx, msg, 500, "Server Internal Error")
        ph.drop_session(s)


def incoming_cancel(ph, stx, msg):
    target = getattr(stx, "cancel_target", None)
    s = None
    for x in ph.calls():
        if target is not None and x.ctx.invite_stx is target:
            s = x
    if s is None:
        return ph.respond(stx, msg, 481, "Call/Transaction Does Not Exist")
    ph.respond(stx, msg, 200, "OK")
    # no "stx" in the args: the table's 487 goes to the INVITE, not to the CANCEL (RFC 3261 9.2)
    ph.dispatch(s, T.E_DialogCANCEL, {"msg": msg})


# -- answers to our requests -> table events -------------------------------------------------------------------------
def response_event(ph, s, purpose, msg):
    """A response to our INVITE, re-INVITE or BYE -> the table event it is, -1 for none (the phone settles the
    session), or None when there is nothing to do at all."""
    st = msg.status
    c = s.ctx
    if purpose == "invite":
        if st < 200:
            if c.cancel_pending:
                # hung up before any answer: the first provisional, a 100 Trying too, lets the CANCEL go (9.1)
                c.cancel_pending = False
                send_cancel(ph, s)
            if st == 100:
                return None
            d = None
            if msg.to_tag:
                d = early_dialog(c, msg.to_tag)
                if d is None and c.extra.get("early"):
                    # another fork answers (a forking proxy): its own early dialog beside the others
                    ph.dispatch(s, T.E_DialogForked, {"msg": msg})
                    d = early_dialog(c, msg.to_tag)
                    if d is None:
                        return None     # a state that takes no fork (the call is being cancelled)
                elif d is None:
                    d = Dialog.uac(c.invite, msg)
                    c.extra["early"] = {msg.to_tag: d}
                c.dialog = d            # the newest early dialog is the one the call's rows act on
                if msg.get("RSeq") is not None and _prack().reliable_1xx(ph, s, d, msg) is False:
                    return None         # a repeat of a reliable 1xx already acknowledged, or one past a gap
            if st == 183 and _has_sdp(msg):
                s.cond |= T.C_HasRemoteSDP
                return T.E_Dialog183SessionProgress
            return T.E_Dialog180Ringing
        if st < 300:
            # the first 2xx decides the call (RFC 3261 13.2.2.4): its early dialog, if it had one, is confirmed (it
            # keeps the CSeq its PRACKs used); the other forks' early dialogs go, and their 2xx are ACKed and BYEd
            d = early_dialog(c, msg.to_tag)
            if d is None:
                c.dialog = Dialog.uac(c.invite, msg)
            else:
                d.confirm(msg)
                c.dialog = d
            c.extra.pop("early", None)
            if msg.get("Session-Expires") or c.extra.get("se"):
                _timers().answered(ph, s, msg, c.invite)
            if _has_sdp(msg):
                s.cond |= T.C_HasRemoteSDP
            return T.E_Dialog200OK
        c.extra.pop("early", None)
        if st == 422 and _timers().retry_422(ph, s, msg):
            SendINVITE(ph, s, None, None)       # RFC 4028 7.4: again at once, with the interval the 422 asks
            return -1
        c.extra["final"] = (st, msg.reason)     # a transferor hears how the call it asked for ended
        ph.emit("resp %s invite %d %s" % (s.sid, st, msg.reason))
        # a 3xx that reaches the table could not be followed (loop, no Contact, 305/380; see
        # transfer.follow_redirect): it fails like a 4xx. The seed TODO's Redirecting state is not needed
        return request.final_event(st)
    if purpose == "reinvite":
        if st < 200:
            return None
        if c.extra.pop("reinvite_next", False):
            # the answer to an offer the user has since changed (hold, then resume): ACK a 2xx, keep the table
            # where it is and send the newer offer, whose answer then moves the call
            if st < 300:
                ack_2xx(ph, s, msg)
            ph.emit("reinvite %s %d to a superseded offer: sending the newer one" % (s.sid, st))
            SendReINVITE(ph, s, None, None)
            return -1
        if st < 300:
            if _has_sdp(msg):
                s.cond |= T.C_HasRemoteSDP
            if msg.get("Session-Expires") or c.extra.get("se"):
                _timers().answered(ph, s, msg, c.reinvite)
            return T.E_Dialog200OK
        if st == 491:
            return T.E_Dialog491Glare
        if st in (408, 481):
            return T.E_DialogTimeout       # RFC 3261 14.1: the dialog is gone
        if st == 422 and c.extra.get("se") and _timers().refresh_422(ph, s, msg):
            SendReINVITE(ph, s, None, None)     # RFC 4028 7.4: again, with the interval the 422 asks
            return -1
        return T.E_Dialog4xxFailure
    if purpose == "update":         # our UPDATE (RFC 3311): a 2xx with SDP answers its offer
        if st < 200:
            return None
        ph.emit("resp %s update %d %s" % (s.sid, st, msg.reason))
        if st < 300:
            if msg.get("Session-Expires") or c.extra.get("se"):
                _timers().answered(ph, s, msg, None)
            return T.E_Update200OK if _has_sdp(msg) else -1
        if st in (408, 481):
            return T.E_DialogTimeout
        return -1               # refused: the session stays as it was (RFC 3311 5.2)
    if purpose == "refresh":        # our UPDATE refreshing the session (RFC 4028)
        if st < 200:
            return None
        if st < 300:
            _timers().answered(ph, s, msg, c.extra.get("se_sent"))
            return T.E_SessionRefreshed
        ph.emit("resp %s refresh %d %s" % (s.sid, st, msg.reason))
        if st == 422 and _timers().refresh_422(ph, s, msg):
            RefreshSession(ph, s, None, None)
            return -1
        if st == 491:
            return T.E_Dialog491Glare
        if st in (408, 481):
            return T.E_DialogTimeout
        return T.E_Dialog4xxFailure
    # BYE
    if st >= 200 and s.state in (T.S_Terminating, T.S_Replaced):
        return T.E_InternalCleanupComplete
    return -1


def stray_2xx(ph, msg):
    """A 2xx with no transaction: a retransmission (re-ACK) or another fork's answer (ACK, then BYE)."""
    for s in ph.calls():
        c = s.ctx
        if c.call_id != msg.call_id:
            continue
        if c.dialog is not None and c.dialog.remote_tag == msg.to_tag and c.acked:
            ack_2xx(ph, s, msg)         # built again, with the CSeq of the INVITE this 2xx answers
            return
        if c.invite is not None:
            ph.emit("fork %s 2xx from tag %s after the call was answered: ACK and BYE" % (s.sid, msg.to_tag))
            d = Dialog.uac(c.invite, msg)
            ack, nxt = d.create_request("ACK")
            try:
                dest = request.hop(ph, nxt)
            except ValueError as e:
                # its Contact or Record-Route names no place to send to: nothing can be ACKed or BYEd there
                # (the fork's UAS gives up at Timer H); the answered call goes on
                ph.emit("err %s fork's 2xx unusable: %s" % (s.sid, e))
                return
            ack.add_first("Via", request.via(ph, dest))
            ph.send_sip(ack.to_bytes(), dest)
            bye, nxt = d.create_request("BYE")
            bye.add_first("Via", request.via(ph, dest))
            ph.txl.request(bye, dest, ph.now)
            return


def ack_2xx(ph, s, msg):
    """ACK a 2xx to our INVITE or re-INVITE (RFC 3261 13.2.2.4): a new request in the dialog."""
    c = s.ctx
    if msg is not None and (c.dialog is None or c.dialog.remote_tag != msg.to_tag):
        c.dialog = Dialog.uac(c.invite, msg)
    if c.dialog is None:
        return ERR_FAILED
    ack, nxt = c.dialog.create_request("ACK")
    if msg is not None:
        ack.set("CSeq", "%d ACK" % msg.cseq_num)   # the ACK carries the CSeq number of the INVITE it answers
    dest = request.hop(ph, nxt)
    ack.add_first("Via", request.via(ph, dest))
    auth = request.auth_client(ph, c.account)
    if auth is not None:
        auth.apply_cached(ack)
    # not kept as bytes: a UAC call held its last ACK (~400 B) for its whole life to answer 2xx retransmissions,
    # which end 64*T1 after the 2xx (13.3.1.4); stray_2xx builds the ACK again for the rare one that comes
    c.acked = True
    ph.send_sip(ack.to_bytes(), dest)
    return 0


def send_cancel(ph, s):
    c = s.ctx
    cancel = c.invite_ctx.cancel_request()
    ph.send_request(s, cancel, c.invite_ctx.dest, "cancel")


# -- actions ---------------------------------------------------------------------------------------------------------
def CreateDialog(ph, s, arg, ev):
    c = s.ctx
    acct = request.account(ph, s)
    try:
        c.remote_uri = request.target_uri(ph, acct, (ev or {}).get("target", ""))
    except ValueError:
        ph.emit("err %s bad target %r" % (s.sid, (ev or {}).get("target")))
        return ERR_FAILED
    c.call_id = transport.new_call_id(ph.local_ip)
    c.local_tag = transport.new_tag()
    c.extra["cseq"] = 1
    return 0


def SendINVITE(ph, s, arg, ev):
    c = s.ctx
    acct = request.account(ph, s)
    dest = request.first_hop(ph, acct, c.remote_uri)
    hs = [("Via", request.via(ph, dest)), ("Max-Forwards", "70"), ("From", request.from_header(ph, acct, c.local_tag)),
          ("To", "<%s>" % c.remote_uri), ("Call-ID", c.call_id), ("CSeq", "%d INVITE" % c.extra["cseq"]),
          ("Contact", request.contact(ph, acct)), ("Allow", ", ".join(request.ALLOW)),
          ("Supported", ", ".join(request.supported(ph))), ("Content-Type", "application/sdp")]
    if ph.cfg["sip"].get("100rel") == "required":
        hs.append(("Require", "100rel"))        # RFC 3262 4: a UAC that insists requires it
    if _asks_timer(ph) or c.extra.get("se_422"):
        hs += _timers().invite_headers(ph, s)
    hs += request.common_headers(ph)
    hs += list((ev or {}).get("headers", ()))    # e.g. Replaces / Referred-By carried by a REFER's Refer-To
    req = M.make_request("INVITE", c.remote_uri, hs, c.local_sdp)
    auth = request.auth_client(ph, c.account)
    if auth is not None:
        auth.apply_cached(req)
    c.invite = req
    c.invite_ctx = ph.send_request(s, req, dest, "invite")
    ph.emit("call %s to %s" % (s.sid, c.remote_uri))
    return 0


def SendCANCEL(ph, s, arg, ev):
    c = s.ctx
    if c.invite_ctx is None:
        return ERR_FAILED
    if getattr(c.invite_ctx, "got_provisional", False):
        send_cancel(ph, s)
    else:
        c.cancel_pending = True      # RFC 3261 9.1: wait for a provisional response before cancelling
    return 0


def SendACK(ph, s, arg, ev):
    return ack_2xx(ph, s, (ev or {}).get("msg"))


def SendBYE(ph, s, arg, ev):
    if s.ctx.dialog is None:
        return ERR_FAILED
    why = (ev or {}).get("reason")
    # the phone ending a call for its own reason (a bridge that failed) says why (RFC 3326)
    extra = [("Reason", 'SIP;cause=503;text="%s"' % why.replace('"', "'"))] if why else ()
    bye, dest = request.dialog_request(ph, s, "BYE", extra=extra)
    ph.send_request(s, bye, dest, "bye")
    return 0


def SendSIPResponse(ph, s, arg, ev):
    ev = ev or {}
    stx = ev.get("stx") or s.ctx.invite_stx
    req = ev.get("msg") if ev.get("stx") else s.ctx.invite
    if stx is None or req is None:
        return ERR_FAILED
    hs = []
    if req.method == "INVITE" and arg[0] < 300:
        hs.append(("Contact", request.contact(ph, request.account(ph, s))))
    ph.respond(stx, req, arg[0], arg[1], hs)
    return 0


def Send200OK(ph, s, arg, ev):
    ev = ev or {}
    c = s.ctx
    stx = ev.get("stx") or c.invite_stx
    req = ev.get("msg") if ev.get("stx") else c.invite
    if stx is None or req is None:
        return ERR_FAILED
    hs = [("Contact", request.contact(ph, request.account(ph, s)))]
    body = b""
    if req.method in ("INVITE", "UPDATE"):
        hs.append(("Allow", ", ".join(request.ALLOW)))
        if req.get("Session-Expires") or c.extra.get("se") or (req.method == "INVITE" and _asks_timer(ph)):
            hs += _timers().answer_headers(ph, s, req)      # the interval and refresher agreed (RFC 4028 9)
        # our answer, or our offer to an INVITE without one; an UPDATE without an offer gets no SDP
        if req.method == "INVITE" or _has_sdp(req):
            body = c.local_sdp or b""
    resp = ph.respond(stx, req, 200, "OK", hs, body)
    if req.method == "INVITE":
        # the UAS core keeps the 2xx alive until the ACK (RFC 3261 13.3.1.4)
        ph.txl.send_2xx(resp, stx.dest if hasattr(stx, "dest") else transport.response_dest(req, None), ph.now)
    return 0


def SendReINVITE(ph, s, arg, ev):
    c = s.ctx
    if c.dialog is None:
        return ERR_FAILED
    if ph.busy(s, "reinvite"):
        # RFC 3261 14.1: no new INVITE while one is in progress (resume pressed before the hold was answered):
        # it goes out when that one ends, with the offer for the state we are in then (see response_event)
        c.extra["reinvite_next"] = True
        return 0
    c.local_sdp = media.make_offer(ph, s)
    req, dest = request.dialog_request(ph, s, "INVITE", c.local_sdp, "application/sdp",
                                       [("Allow", ", ".join(request.ALLOW))]
                                       + (_timers().request_headers(ph, s) if c.extra.get("se") else []))
    ph.send_request(s, req, dest, "reinvite")
    c.reinvite = req
    return 0


def SendUPDATE(ph, s, arg, ev):
    """An UPDATE (RFC 3311) in the call's dialog, early or confirmed: a new offer for the session as it is now (the
    answer in its 2xx moves the media, Update200OK), or with sdp=0 none (a bare target or session refresh)."""
    c = s.ctx
    if c.dialog is None or ph.busy(s, "update"):
        return ERR_FAILED       # one offer at a time (RFC 3311 5.1)
    if str((ev or {}).get("sdp", "1")) == "0":
        req, dest = request.dialog_request(ph, s, "UPDATE")
    else:
        c.local_sdp = media.make_offer(ph, s)
        req, dest = request.dialog_request(ph, s, "UPDATE", c.local_sdp, "application/sdp",
                                           [("Allow", ", ".join(request.ALLOW))])
    ph.send_request(s, req, dest, "update")
    return 0


def RefreshSession(ph, s, arg, ev):
    """A session refresh of ours (RFC 4028 7.4/9): an UPDATE without SDP when the far end allows UPDATE, else a
    re-INVITE with the offer for the state the call is in (every re-INVITE carries the interval, ua/sessiontimer)."""
    if _timers().refresh_by_update(ph, s):
        return 0
    return SendReINVITE(ph, s, arg, ev)


def StartGlareTimer(ph, s, arg, ev):
    # RFC 3261 14.1: the Call-ID owner waits 2.1-4 s, the other side 0-2 s
    ms = transport.rand_ms(2100, 4000) if s.role != ROLE_UAS else transport.rand_ms(0, 2000)
    ph.start_timer(s, ms, T.E_GlareRetry)
    return 0


def NotifyUser(ph, s, arg, ev):
    """The phone rings (a waiting-call tone in the call in progress, if any), for the ring timeout, and answers by
    itself with features.auto_answer; after the PRACK when our 180 was reliable (the caller is sure to hear it)."""
    old = s.ctx.extra.get("replaces")
    if old is not None:
        # RFC 3891 3: an INVITE with Replaces is accepted at once, without ringing (the user is talking to that
        # party already); the old call ends once this one is up (ua/replaces.py)
        ph.emit("ring %s from %s replacing %s" % (s.sid, s.ctx.remote_uri, old.sid))
        ph.post(s, T.E_AcceptCall)
        return 0
    feats = ph.cfg.get("features", {})
    others = [x for x in ph.calls() if x is not s and x.state not in _ACTIVE]
    if others and others[0].ctx.media is not None:
        media.start_call_waiting_tone(ph, others[0])
    ph.emit("ring %s from %s%s" % (s.sid, s.ctx.remote_uri, " (call waiting)" if others else ""))
    ph.start_timer(s, int(feats.get("ring_timeout_s", 60)) * 1000, T.E_DialogTimeout, state=T.S_Ringing)
    if feats.get("auto_answer"):
        ph.start_timer(s, int(feats.get("auto_answer_delay_ms", 0)), T.E_AcceptCall, state=T.S_Ringing)
    return 0


def SendPRACK(ph, s, arg, ev):
    """The PRACK of a reliable provisional (RFC 3262 7.2), in the early dialog it came in (ua/prack.py)."""
    ev = ev or {}
    msg = ev.get("msg")
    d = early_dialog(s.ctx, msg.to_tag) if msg is not None else None
    if d is None or ev.get("rseq") is None:
        return ERR_FAILED
    return _prack().send_prack(ph, s, d, msg, ev["rseq"])


def SendReliableProvisional(ph, s, arg, ev):
    """Our provisional answer, reliably (RFC 3262 3; ua/prack.py): repeated until its PRACK."""
    return _prack().send_reliable(ph, s, arg)


def prack_matches(ph, s, msg):
    return _prack().prack_matches(ph, s, msg)


def prack_timeout(ph, stx):
    return _prack().prack_timeout(ph, stx)


def too_small(ph, msg):
    """The Min-SE a 422 to in-dialog request msg names when its Session-Expires is too small (RFC 4028), or None."""
    return _timers().too_small(ph, msg) if msg.get("Session-Expires") else None


def timers_deadline(ph):
    return _timers().deadline(ph) if ph.timers_used else None


def timers_tick(ph, now):
    if ph.timers_used:
        _timers().tick(ph, now)


def HandleForkedResponse(ph, s, arg, ev):
    """A provisional answer from another fork: its early dialog is kept beside the others (RFC 3261 12.1.2, 13.2.2.4),
    with its own route set, target and RSeq; the newest is the one the call acts on until a 2xx decides."""
    msg = (ev or {}).get("msg")
    early = s.ctx.extra.get("early")
    if msg is None or early is None or not msg.to_tag:
        return ERR_FAILED
    early[msg.to_tag] = Dialog.uac(s.ctx.invite, msg)
    ph.emit("fork %s early dialog %s (%d at once)" % (s.sid, msg.to_tag, len(early)))
    return 0


def StartDialogCleanup(ph, s, arg, ev):
    # timers of this call (ring timeout, auto-answer, glare) end with the dialog
    ph.timers = [t for t in ph.timers if t[1] is not s]
    s.ctx.cancel_pending = s.ctx.cancel_pending and s.state != T.S_Terminating
    return 0
