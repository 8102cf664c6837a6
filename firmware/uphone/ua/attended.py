# Attended transfer as the transferor (RFC 5589 6): the call to transfer is held while a consultation call to the
# target goes on; completing it sends the transferee a REFER whose Refer-To carries Replaces with the consultation's
# dialog (RFC 3891), so the transferee's INVITE takes that dialog's place at the target. Progress comes back in
# NOTIFYs (ua/transfer.py). A REFER refused outright (405/501/403) makes the phone bridge the two calls itself
# (ua/bridge.py). Actions are the functions named after the table's, called as Action(ph, session, arg, evargs).
from uphone import table as T
from uphone.engine import ERR_FAILED, ROLE_UAC
from uphone.sip.uri import escape
from uphone.ua import call, media, request

_OVER = (T.S_Terminating, T.S_Replaced, T.S_Terminated, T.S_Cancelled, T.S_Failed)
# states whose dialog is confirmed: the consultation must be answered before its dialog can be replaced
_UP = (T.S_Active, T.S_OnHold, T.S_Resuming, T.S_Muted)
# REFER answers that mean "this peer does not transfer": the bridged fallback (the others fail the transfer)
_NO_REFER = (403, 405, 501)


def consultation(ph, s):
    """The consultation call of s (held for an attended transfer), while it exists."""
    n = s.ctx.extra.get("consult")
    return n if n is not None and n in ph.sessions() else None


def CreateConsultationCall(ph, s, arg, ev):
    target = (ev or {}).get("target")
    if not target:
        ph.emit("err %s StartAttendedTransfer needs target=<uri>" % s.sid)
        return ERR_FAILED
    try:
        uri = request.target_uri(ph, request.account(ph, s), target)
    except ValueError:
        ph.emit("err %s bad target %r" % (s.sid, target))
        return ERR_FAILED
    if not media.line_free(ph) or not ph.room():
        ph.emit("err %s no free line or heap for a consultation call" % s.sid)
        return ERR_FAILED
    n = ph.new_session(T.K_call, ROLE_UAC, s.ctx.account)
    n.ctx.extra["consult_of"] = s
    s.ctx.extra["consult"] = n
    ph.emit("consult %s to %s as %s" % (s.sid, uri, n.sid))
    # the consultation is dialled like any call (Idle x MakeCall), after this transition
    ph.post(n, T.E_MakeCall, {"target": uri})
    return 0


def HoldCurrentCall(ph, s, arg, ev):
    # hold as HoldCall does (sendonly offer, RFC 6337); its answer comes in ConsultationCall x Dialog200OK
    media.UpdateMediaDirection(ph, s, ("sendonly",), ev)
    return call.SendReINVITE(ph, s, None, ev)


def SendREFERWithReplaces(ph, s, arg, ev):
    n = consultation(ph, s)
    if n is None or n.state not in _UP or n.ctx.dialog is None or s.ctx.dialog is None:
        ph.emit("err %s no answered consultation call to transfer to" % s.sid)
        return ERR_FAILED
    d = n.ctx.dialog
    # the Replaces names the consultation dialog as the target sees it: its to-tag is the target's own tag (our
    # remote tag), its from-tag ours (RFC 3891 3, RFC 5589 7.1); escaped into the Refer-To URI's header part
    rep = "%s;to-tag=%s;from-tag=%s" % (d.call_id, d.remote_tag, d.local_tag)
    # the target's Contact, which reaches the very device in that dialog (RFC 5589 7.1), without URI headers
    uri = d.remote_target.partition("?")[0]
    acct = request.account(ph, s)
    req, dest = request.dialog_request(ph, s, "REFER", extra=[
        ("Refer-To", "<%s?Replaces=%s>" % (uri, escape(rep))), ("Referred-By", "<%s>" % request.aor(ph, acct))])
    ph.send_request(s, req, dest, "refer")
    s.ctx.refer_target = uri
    ph.emit("xfer %s attended to %s replacing %s" % (s.sid, uri, n.sid))
    return 0


# how long a transfer that succeeded leaves the target to end the consultation itself (RFC 5589 6: the target's
# BYE follows its 2xx to the Replaces INVITE, which the transferee's NOTIFY may overtake)
_GRACE_MS = 3000


def TerminateConsultationCall(ph, s, arg, ev):
    # the consultation ends with its own table row (CANCEL while ringing, BYE once answered); none left: nothing.
    # After a transfer that succeeded the target ends it; only one still up after _GRACE_MS is hung up here (our
    # BYE at once would cross the target's)
    n = consultation(ph, s)
    s.ctx.extra.pop("consult", None)
    if n is not None and n.state not in _OVER and n.state != T.S_Idle:
        n.ctx.extra.pop("consult_of", None)
        if s.state == T.S_Transferring:
            ph.start_timer(n, _GRACE_MS, T.E_HangupCall, state=n.state)
        else:
            ph.post(n, T.E_HangupCall)
    return 0


def ResumeOriginalCall(ph, s, arg, ev):
    c = s.ctx
    n = consultation(ph, s)
    if n is not None and n.state == T.S_Active:
        ph.post(n, T.E_HoldCall)        # one conversation at a time: the consultation waits on hold
    if c.local_dir == "sendrecv":
        return 0                        # never held (a blind transfer that failed): nothing to resume
    media.UpdateMediaDirection(ph, s, ("sendrecv",), ev)
    return call.SendReINVITE(ph, s, None, ev)      # its answer arrives in Active (Active x Dialog200OK)


def refer_failed_event(ph, s, status):
    """The table event for a final failure to our REFER: an attended transfer that the peer does not do at all is
    bridged by the phone instead (InitiateBridge); any other failure is TransferFailed."""
    if status in _NO_REFER and consultation(ph, s) is not None and s.state == T.S_Transferring:
        ph.emit("xfer %s refused by %d: bridging instead" % (s.sid, status))
        return T.E_InitiateBridge
    return T.E_TransferFailed


def consult_failed(ph, n):
    """The consultation call could not even be dialled: the transfer is abandoned, the original call resumed."""
    orig = n.ctx.extra.pop("consult_of", None)
    ph.drop_session(n)
    if orig is not None and orig.state == T.S_ConsultationCall:
        ph.post(orig, T.E_HangupCall)


def progress(ph, s):
    """After each transition of a call: a consultation that ended (the target hung up, refused or never answered)
    while the transfer was not yet asked for abandons it, as if the user had hung it up (ConsultationCall x
    HangupCall resumes the original)."""
    orig = s.ctx.extra.get("consult_of")
    if orig is None or s.state not in _OVER:
        return
    del s.ctx.extra["consult_of"]
    if orig in ph.sessions() and orig.state == T.S_ConsultationCall:
        ph.emit("consult %s ended: back to %s" % (s.sid, orig.sid))
        ph.post(orig, T.E_HangupCall)
