# The target side of an attended transfer: an incoming INVITE with a Replaces header (RFC 3891) takes the place of
# the call it names. match() finds that call or answers the INVITE itself (RFC 3891 3); the new call is answered at
# once (no ringing: the user is already talking to that party), and once it is up the replaced call gets
# DialogReplaced, which ends it with BYE (the table's Replaced state), or, when it was our own call still ringing
# at the far end, HangupCall, which CANCELs it.
from uphone import table as T
from uphone.engine import ROLE_UAC

_EARLY = (T.S_Idle, T.S_Initiating, T.S_Ringing, T.S_EarlyMedia)
_OVER = (T.S_Terminating, T.S_Replaced, T.S_Terminated, T.S_Cancelled, T.S_Failed)


def parse(value):
    """`callid;to-tag=x;from-tag=y[;early-only]` -> (call-id, to-tag, from-tag, early_only), or None when a part
    is missing (both tags name the dialog: RFC 3891 6.1)."""
    parts = value.split(";")
    cid = parts[0].strip()
    to_tag = from_tag = None
    early = False
    for p in parts[1:]:
        k, eq, v = p.strip().partition("=")
        k = k.strip().lower()          # parameter names are case-insensitive, values are not (RFC 3261 7.3.1)
        if k == "to-tag" and eq:
            to_tag = v.strip()
        elif k == "from-tag" and eq:
            from_tag = v.strip()
        elif k == "early-only":
            early = True
    if not cid or not to_tag or not from_tag:
        return None
    return cid, to_tag, from_tag, early


def match(ph, stx, msg):
    """The call an INVITE's Replaces names, or None once the INVITE has been answered with why it cannot have it."""
    vals = msg.get_all("Replaces")
    rep = parse(vals[0]) if len(vals) == 1 else None
    if rep is None:
        # more than one Replaces, or one without both tags: RFC 3891 3 / 6.1
        ph.respond(stx, msg, 400, "Bad Request", [("Warning", '399 uphone "one Replaces with both tags"')])
        return None
    cid, to_tag, from_tag, early_only = rep
    found = []
    for s in ph.calls():
        # the to-tag is compared with our tag, the from-tag with the far end's (RFC 3891 3): the transferor built
        # the header from its own side of the dialog, where the tags sit the other way round
        c = s.ctx
        if c.call_id == cid and c.local_tag == to_tag and c.dialog is not None and c.dialog.remote_tag == from_tag:
            found.append(s)
    if len(found) != 1:
        # no such dialog (or, impossibly, two: then no match either, RFC 3891 3); dialogs that were not made by an
        # INVITE are never calls here, so they fall in this case too
        ph.respond(stx, msg, 481, "Call/Transaction Does Not Exist")
        return None
    s = found[0]
    if s.state in _OVER:
        ph.respond(stx, msg, 603, "Declined")       # the dialog already ended (RFC 3891 3)
        return None
    if s.state in _EARLY:
        if s.role == ROLE_UAC and s.state != T.S_Idle:
            return s        # our own call, still early: the new one is answered, this one CANCELled (RFC 3891 3)
        # an early dialog the far end started (a call ringing here) gets 481 and stays as it is (RFC 3891 3)
        ph.respond(stx, msg, 481, "Call/Transaction Does Not Exist",
                   [("Warning", '399 uphone "early dialog not initiated by this UA"')])
        return None
    if early_only:
        ph.respond(stx, msg, 486, "Busy Here")       # confirmed, and the sender wanted only an early one (3)
        return None
    if s.state != T.S_Active:
        # held, muted, in a conference or bridged here: the user is doing something with that call; the table has
        # no Replaced row for it, so it is not taken from under them
        ph.respond(stx, msg, 486, "Busy Here", [("Warning", '399 uphone "that call is %s"' % T.STATES[s.state])])
        return None
    return s


def progress(ph, s):
    """After each transition of a call: once the call that replaces another is answered, the old one ends."""
    old = s.ctx.extra.get("replaces")
    if old is None or s.state not in (T.S_Active, T.S_Terminated, T.S_Cancelled, T.S_Failed):
        return
    del s.ctx.extra["replaces"]
    if s.state != T.S_Active or old not in ph.sessions():
        return
    if old.state == T.S_Active:
        ph.emit("replaced %s by %s" % (old.sid, s.sid))
        ph.post(old, T.E_DialogReplaced)
    elif old.state in _EARLY and old.role == ROLE_UAC:
        ph.emit("replaced %s by %s" % (old.sid, s.sid))
        ph.post(old, T.E_HangupCall)        # our early call: CANCEL (its own rows)
