# The subscription kind: message-waiting indication (RFC 3842 over RFC 6665). SUBSCRIBE, refresh, unsubscribe, retry
# after a failure, and the message-summary NOTIFYs that light the lamp (subscribed, or unsolicited as Asterisk sends
# them). Actions are the functions named after the table's, called as Action(ph, session, arg, evargs).
from uphone import table as T
from uphone.compat import text
from uphone.engine import OK, ERR_FAILED
from uphone.sip import message as M
from uphone.sip import transport
from uphone.sip.dialog import Dialog
from uphone.ua import request


def _mwi_uri(ph, s):
    return ph.cfg.get("features", {}).get("voicemail_uri") or request.aor(ph, request.account(ph, s))


def SendSUBSCRIBE(ph, s, arg, ev):
    c = s.ctx
    if ph.busy(s, "subscribe"):
        # one SUBSCRIBE at a time: a target refresh asked for while one is out (our address changed under it)
        # goes when that one is answered (StoreSubscription / HandleSubscriptionFailure)
        c.extra["resubscribe"] = True
        return 0
    hs = [("Event", "message-summary"), ("Accept", "application/simple-message-summary"),
          ("Expires", "3600")]
    if c.dialog is not None:
        req, dest = request.dialog_request(ph, s, "SUBSCRIBE", extra=hs)
    else:
        acct = request.account(ph, s)
        c.call_id = transport.new_call_id(ph.local_ip)
        c.local_tag = transport.new_tag()
        uri = _mwi_uri(ph, s)
        dest = request.first_hop(ph, acct, uri)
        req = M.make_request("SUBSCRIBE", uri, [
            ("Via", request.via(ph, dest)), ("Max-Forwards", "70"),
            ("From", request.from_header(ph, acct, c.local_tag)), ("To", "<%s>" % uri), ("Call-ID", c.call_id),
            ("CSeq", "1 SUBSCRIBE"), ("Contact", request.contact(ph, acct))] + hs + request.common_headers(ph))
        c.invite = req
    ph.send_request(s, req, dest, "subscribe")
    return 0


def StoreSubscription(ph, s, arg, ev):
    c = s.ctx
    msg = (ev or {}).get("msg")
    if msg is None:
        return ERR_FAILED
    if c.dialog is None and c.invite is not None:
        c.dialog = Dialog.uac(c.invite, msg)
    exp = int(msg.get("Expires") or 3600)
    # an early refresh (a new address) answered: its timer replaces the one still waiting
    ph.timers = [t for t in ph.timers if not (t[1] is s and t[3] == T.E_RefreshSubscription)]
    ms = 0 if c.extra.pop("resubscribe", False) else max(1000, exp * 800)
    ph.start_timer(s, ms, T.E_RefreshSubscription)
    return 0


def SendUnsubscribe(ph, s, arg, ev):
    if s.ctx.dialog is None:
        return ERR_FAILED
    req, dest = request.dialog_request(ph, s, "SUBSCRIBE", extra=[("Event", "message-summary"), ("Expires", "0")])
    ph.send_request(s, req, dest, "unsubscribe")
    return 0


def ProcessNotification(ph, s, arg, ev):
    msg = (ev or {}).get("msg")
    if msg is None:
        return ERR_FAILED
    c = s.ctx
    if c.dialog is None and c.invite is not None:
        # the NOTIFY overtook the 2xx (RFC 6665 4.1.2.4): its From tag is the remote tag
        c.dialog = Dialog.uac_from_notify(c.invite, msg) if hasattr(Dialog, "uac_from_notify") else c.dialog
    process_mwi(ph, msg.body)
    return 0


def HandleSubscriptionFailure(ph, s, arg, ev):
    s.ctx.dialog = None
    # it failed from the old address (its answer went there): the new one gets its chance at once
    ph.start_timer(s, 0 if s.ctx.extra.pop("resubscribe", False) else 60000, T.E_Subscribe)
    return 0


def incoming_notify(ph, stx, msg, s):
    """A message-summary NOTIFY; s: the session whose dialog it is in, or None."""
    if s is not None and s.kind == T.K_subscription:
        res = ph.dispatch(s, T.E_DialogNOTIFY, {"msg": msg, "stx": stx})
        if res == OK and "terminated" in (msg.get("Subscription-State") or "").lower():
            ph.dispatch(s, T.E_SubscriptionTerminated)
        if res == OK:
            return
    # unsolicited MWI (Asterisk sends these without a subscription): light the lamp, say 200
    process_mwi(ph, msg.body)
    ph.respond(stx, msg, 200, "OK")


def process_mwi(ph, body):
    waiting, counts = False, ""
    for line in text(body).splitlines():
        k, _, v = line.partition(":")
        k, v = k.strip().lower(), v.strip()
        if k == "messages-waiting":
            waiting = v.lower() == "yes"
        elif k == "voice-message":
            counts = v.split()[0] if v else ""
    ph.mwi = (waiting, counts)
    ph.emit("mwi %s %s" % ("on" if waiting else "off", counts or "-"))
