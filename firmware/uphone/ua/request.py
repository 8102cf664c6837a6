# What every session kind sends with: who the phone is on the wire (account, From, Contact, Via, User-Agent, what it
# allows) and where a request goes (RFC 3261 8.1.2 outbound proxy, 18.1.1 transport); requests outside and inside a
# dialog with the cached credentials, and one sent again with credentials after a 401/407 (RFC 3261 22.2).
# Functions of the phone `ph` (uphone.phone.Phone); what they keep (credentials per account) lives on it.
from uphone import table as T
from uphone.sip import message as M
from uphone.sip import parse as P
from uphone.sip import transport
from uphone.sip.auth import DigestClient
from uphone.sip.uri import parse_uri

ALLOW = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "NOTIFY", "MESSAGE", "REFER", "PRACK")
ACCEPT = ("application/sdp", "application/dtmf-relay", "application/simple-message-summary", "message/sipfrag",
          "text/plain")


def supported(ph):
    """The option tags the phone supports (Supported, and what a request's Require may name, RFC 3261 8.2.2.3):
    100rel (RFC 3262) unless sip.100rel is off, replaces (RFC 3891 6.2: an INVITE may take another dialog's place,
    ua/replaces.py) and timer (RFC 4028)."""
    return ("replaces", "timer") if ph.cfg["sip"].get("100rel", "supported") == "off" else \
        ("100rel", "replaces", "timer")


def account(ph, s):
    accts = ph.cfg.get("accounts") or [{}]
    return accts[min(s.ctx.account, len(accts) - 1)]


def aor(ph, acct):
    return "sip:%s@%s" % (acct.get("user", "uphone"), acct.get("domain", ph.local_ip))


def from_header(ph, acct, tag):
    disp = acct.get("display_name") or ""
    return ('"%s" <%s>;tag=%s' % (disp, aor(ph, acct), tag)) if disp else "<%s>;tag=%s" % (aor(ph, acct), tag)


def contact(ph, acct):
    """Over TLS a sips: Contact (RFC 5630 3.1.3, 4.1: reach me over TLS; transport=tls is deprecated there);
    over TCP transport=tcp (RFC 3261 19.1.1)."""
    if ph.tport == "tls":
        return "<sips:%s@%s:%d>" % (acct.get("user", "uphone"), ph.local_ip, ph.local_port)
    tp = ";transport=tcp" if ph.tport == "tcp" else ""
    return "<sip:%s@%s:%d%s>" % (acct.get("user", "uphone"), ph.local_ip, ph.local_port, tp)


def via(ph, dest=None):
    """Our Via for a request going to dest (its transport, RFC 3261 18.1.1), else over sip.transport. Over TLS
    it asks for connection reuse (RFC 5923 `alias`): the phone does not listen for TLS (it has no certificate),
    so requests for our sent-by must come back over the connection we opened."""
    tp = dest[2] if dest is not None and len(dest) > 2 else ph.tport
    v = transport.make_via(ph.local_ip, ph.local_port, tp.upper(), transport.new_branch())
    return v.replace(";rport;", ";rport;alias;") if tp == "tls" else v


def common_headers(ph):
    return [("User-Agent", ph.cfg["sip"].get("user_agent", "uPhone/0.1"))]


def target_uri(ph, acct, target):
    """A dialled number or user becomes sip:<it>@<domain>; a full URI stays."""
    t = target.strip()
    if t.startswith("<") and t.endswith(">"):
        t = t[1:-1]
    if not (t.startswith("sip:") or t.startswith("sips:")):
        t = "sip:%s@%s" % (t, acct.get("domain", ph.local_ip))
    parse_uri(t)     # refuse garbage before anything is sent (ValueError)
    return t


def hop(ph, uri):
    """(host, port, transport) of the next hop to uri: the URI's transport, else ours (RFC 3263 4.1, short of
    DNS); a sips: URI is TLS on every hop (RFC 3261 26.2.2, RFC 5630 3.1.2), and TLS's port is 5061 (RFC 3261
    19.1.2)."""
    u = parse_uri(uri)
    host = u.params.get("maddr") or u.host
    tp = (u.params.get("transport") or "").lower()
    if u.scheme == "sips" or tp == "tls":
        tp = "tls"
    elif tp not in ("udp", "tcp"):
        tp = ph.tport
    return (host, u.port or (5061 if tp == "tls" else 5060), tp)


def first_hop(ph, acct, uri):
    """Outbound proxy when configured (RFC 3261 8.1.2), else the request URI's host."""
    return hop(ph, acct.get("proxy") or uri)


def auth_client(ph, i):
    """The digest client of account i (made once, it caches the last challenge), or None without a password or
    its HA1."""
    cache = ph.auth
    if cache is None:
        cache = ph.auth = {}
    if i not in cache:
        accts = ph.cfg.get("accounts") or []
        if i >= len(accts) or not (accts[i].get("password") or accts[i].get("ha1")):
            return None
        a = accts[i]
        cache[i] = DigestClient(a.get("auth_user") or a["user"], a.get("password"), ha1=a.get("ha1"))
    return cache[i]


def final_event(status):
    """The table event of a final response to one of our requests: a 3xx that was not followed fails like a 4xx."""
    return (T.E_Dialog200OK if status < 300 else T.E_Dialog4xxFailure if status < 500 else
            T.E_Dialog5xxFailure if status < 600 else T.E_Dialog6xxFailure)


def clone_request(req):
    return P.parse(req.to_bytes())


def out_of_dialog(ph, s, method, uri, extra=(), body=b"", ctype=None):
    """A request outside any dialog (OPTIONS, MESSAGE, keepalives) -> (request, first hop)."""
    acct = account(ph, s)
    dest = first_hop(ph, acct, uri)
    hs = [("Via", via(ph, dest)), ("Max-Forwards", "70"),
          ("From", from_header(ph, acct, transport.new_tag())), ("To", "<%s>" % uri),
          ("Call-ID", transport.new_call_id(ph.local_ip)), ("CSeq", "1 %s" % method)] + list(extra)
    if ctype:
        hs.append(("Content-Type", ctype))
    req = M.make_request(method, uri, hs + common_headers(ph), body)
    return req, dest


def dialog_request(ph, s, method, body=b"", ctype=None, extra=(), dialog=None):
    """A request in session s's dialog (or in `dialog`, one early dialog of several) -> (request, next hop)."""
    c = s.ctx
    hs = list(extra) + common_headers(ph)
    msg, nxt = (dialog or c.dialog).create_request(method, contact=contact(ph, account(ph, s)), body=body,
                                                   content_type=ctype, extra=hs)
    dest = hop(ph, nxt)
    msg.add_first("Via", via(ph, dest))
    auth = auth_client(ph, c.account)
    if auth is not None:
        auth.apply_cached(msg)
    return msg, dest


def retry_with_auth(ph, s, t, resp):
    """401/407: add credentials and send the request again (RFC 3261 22.2); False when we cannot."""
    ctx, purpose = t
    acct_i = s.ctx.account
    auth = auth_client(ph, acct_i)
    if auth is None:
        return False
    req = clone_request(ctx.request)
    if not auth.authorize(resp, req):
        ph.emit("auth %s %s refused by %d %s" % (s.sid, purpose, resp.status, resp.reason))
        return False
    ph.emit("auth %s %s challenged by %d: answered" % (s.sid, purpose, resp.status))
    dest = ctx.dest if hasattr(ctx, "dest") else first_hop(ph, account(ph, s), req.uri)
    req.set("Via", via(ph, dest))
    num = req.cseq_num + 1
    req.set("CSeq", "%d %s" % (num, req.method))
    if s.ctx.dialog is not None and purpose not in ("invite", "register", "unregister"):
        s.ctx.dialog.local_cseq = num
    if purpose == "invite":
        s.ctx.invite = req
    if purpose in ("register", "unregister", "publish", "unpublish"):
        s.ctx.extra["cseq"] = num      # these kinds number their requests themselves
    c2 = ph.send_request(s, req, dest, purpose)
    if purpose == "invite":
        s.ctx.invite_ctx = c2
    return True
