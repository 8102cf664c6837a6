# Reliable provisional responses (RFC 3262, option tag 100rel) for the call kind, both roles, loaded by ua/call.py
# the first time a call needs it. As UAC: a 1xx with Require: 100rel and an RSeq one above the last of its early
# dialog is acknowledged by a PRACK in that dialog (repeats and gaps are dropped, 4). As UAS: the 180 goes reliably
# (Require: 100rel, RSeq) when the caller requires it, or supports it and sip.100rel says "required"; the transaction
# layer sends it again at T1 doubling until the PRACK matches (RAck), and after 64*T1 the call fails with a 5xx (3).
# Config sip.100rel: off (not supported: an INVITE requiring it gets 420), supported (the default), required (our
# INVITEs require it; our 180 is reliable for every caller that supports it). The table's actions SendPRACK and
# SendReliableProvisional are ua/call.py's, which call send_prack and send_reliable here.
from uphone import table as T
from uphone.engine import ERR_FAILED
from uphone.sip import transport
from uphone.ua import request

TAG = "100rel"


def _tags(msg, name):
    return [x.strip().lower() for x in msg.get_all(name)]


# -- UAC --------------------------------------------------------------------------------------------------------------
def reliable_1xx(ph, s, d, msg):
    """A 1xx in early dialog d: -> None when it is not reliable, True when it is new (the table hears PRACKRequired
    after the 1xx's own row), False when it must be dropped whole: a repeat of one acknowledged, or one past a gap
    (RFC 3262 4)."""
    if ph.cfg["sip"].get("100rel", "supported") == "off" or TAG not in _tags(msg, "Require"):
        return None
    try:
        rseq = int((msg.get("RSeq") or "").strip())
    except ValueError:
        return False            # Require: 100rel without a usable RSeq: nothing to acknowledge it with
    if d.rseq is not None and rseq != d.rseq + 1:
        return False
    d.rseq = rseq
    ph.post(s, T.E_PRACKRequired, {"msg": msg, "rseq": rseq})
    return True


def send_prack(ph, s, d, msg, rseq):
    # RFC 3262 7.2: RAck names the response's RSeq and the CSeq of the INVITE it answers
    req, dest = request.dialog_request(ph, s, "PRACK", extra=[("RAck", "%d %d INVITE" % (rseq, msg.cseq_num))],
                                       dialog=d)
    ph.send_request(s, req, dest, "prack")
    return 0


# -- UAS --------------------------------------------------------------------------------------------------------------
def send_reliable(ph, s, arg):
    c = s.ctx
    stx, req = c.invite_stx, c.invite
    if stx is None or req is None:
        return ERR_FAILED
    rseq = c.extra.get("rseq")
    # RFC 3262 3: the first RSeq is random (1 .. 2**31-1; kept under 2**30, a small int on a 32-bit MicroPython),
    # each next one of the same INVITE one higher
    rseq = rseq + 1 if rseq else transport.rand_ms(1, 0x3FFFFFFF)
    hs = [("Contact", request.contact(ph, request.account(ph, s))), ("Require", TAG), ("RSeq", str(rseq)),
          ("Allow", ", ".join(request.ALLOW))]
    ph.respond(stx, req, arg[0], arg[1], hs)
    ph.txl.keep_sending(stx, ph.now)
    c.extra["rseq"] = rseq
    return 0


def prack_matches(ph, s, msg):
    """A PRACK for s: True (its retransmissions stop) when its RAck names the reliable provisional still waiting;
    False means 481 (RFC 3262 3)."""
    c = s.ctx
    stx = c.invite_stx
    if not ph.txl.awaiting_prack(stx) or c.invite is None:
        return False
    w = (msg.get("RAck") or "").split()
    if len(w) != 3 or w[0] != str(c.extra.get("rseq")) or w[1] != str(c.invite.cseq_num) or w[2] != "INVITE":
        return False
    ph.txl.prack_received(stx)
    return True


def prack_timeout(ph, stx):
    """64*T1 without the PRACK: the table answers the INVITE with a 5xx (RFC 3262 3)."""
    for s in ph.calls():
        if s.ctx.invite_stx is stx:
            ph.emit("prack %s no PRACK came for our reliable provisional" % s.sid)
            ph.dispatch(s, T.E_PRACKTimeout)
            ph.settle(s)
            return
