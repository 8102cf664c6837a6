# SIP transports of the phone (RFC 3261 18, RFC 5626): the UDP socket, TCP out and in with one flow per (host, port)
# reused for requests and carrying the responses to what arrived on it, flow failure -> reconnect and re-REGISTER
# with backoff, and keepalives (CRLF ping/pong over TCP and TLS, CRLF NAT refresh over UDP, OPTIONS).
# TLS (RFC 3261 26.2, RFC 5630): flows the phone opens, the server's certificate checked against sip.tls_ca and the
# host of the URI it was reached by (RFC 5922 7.2). The phone has no certificate of its own, so it does not listen
# for TLS: requests reach it over the flow it opened to its registrar or proxy, whose Via carries RFC 5923's
# `alias` asking the proxy to send what is for our sent-by over this same connection.
# Functions of the phone `ph`; their state (ph.sock, ph.flows, ph.tcp_listener, the keepalive schedule) lives on it.
from uphone import table as T
from uphone.compat import const, ticks_add, ticks_diff
from uphone.sip import stream
from uphone.sip.transport import rand_ms
from uphone.ua import registration, request

_PONG_WAIT = const(10000)       # RFC 5626 4.4.1: no pong within 10 s -> the flow has failed
_MAX_FLOWS = const(16)          # connections kept at once (heap on the ESP32); more incoming ones are refused
_FLOW_STABLE = const(120000)    # a flow that lived this long resets the consecutive-failure count (RFC 5626 4.5)
_BACKOFF_MAX = const(1800000)


class Flow:
    """One TCP or TLS connection: its stream reader, who opened it, and the keepalive it waits on."""

    def __init__(self, conn, key, outgoing, now, proto="tcp"):
        self.conn = conn
        self.key = key                  # (host, port): the request target, or the peer's address when accepted
        self.outgoing = outgoing
        self.proto = proto              # "tcp" or "tls": what its messages are marked with (responses go back so)
        self.error = None               # why it could not be opened (no usable sip.tls_ca)
        self.reader = stream.StreamReader()
        self.opened = now
        self.pong_by = None             # deadline of the pong to our last ping


def init(ph):
    sip = ph.cfg["sip"]
    ph.tport = sip.get("transport", "udp")
    ph.keepalive = sip.get("keepalive", "off")
    ph.keepalive_ms = int(sip.get("keepalive_s", 30)) * 1000
    ph.sock = None                  # the SIP UDP socket
    ph.flows = {}                   # (host, port) -> Flow
    ph.tcp_listener = None
    ph.ka_at = None                 # next keepalive round; None when off or shut down
    ph.ka_sent = 0                  # keepalives sent (pings, UDP CRLFs, OPTIONS), for tests and the console
    ph.tp_failed = []               # flows whose send failed: reported from tick(), not from inside a send
    ph.tp_stopped = False
    ph.tls_ctx = None               # the verifying client context, made at the first TLS flow (certs.py)


def is_sip_socket(ph, s):
    return s is ph.sock


def status_lines(ph):
    """`st` lines for the TCP and TLS flows (allocates; console only)."""
    out = []
    for f in ph.flows.values():
        up = getattr(f.conn, "tls_up", None)
        out.append("flow %s:%d %s%s" % (f.key[0], f.key[1], "out" if f.outgoing else "in",
                                         " tls " + up if up else (" tls handshake" if f.proto == "tls" else "")))
    return out


def start(ph):
    """Open the SIP UDP socket (and learn its port when 0 was asked), listen on TCP too when TCP is the transport,
    start the keepalive schedule."""
    rt = ph.rt
    ph.sock = rt.udp_open(ph.local_ip, ph.local_port, ph.on_sip)
    if ph.local_port == 0:
        ph.local_port = rt.local_port(ph.sock)
    if ph.tport == "tcp":
        ph.tcp_listener = rt.tcp_listen(ph.local_ip, ph.local_port, lambda conn, peer: _on_accept(ph, conn, peer))
    if ph.keepalive != "off":
        ph.ka_at = ticks_add(ph.now, ph.keepalive_ms)
    if ph.tport == "tls" or ph.cfg["sip"].get("tls_ca"):
        # the CA and context are made now, on a heap calls and messages have not yet left in pieces
        try:
            tls_context(ph)
        except ValueError as e:
            ph.emit("err tls %s: no TLS connection can be verified" % e)


def stop(ph):
    """No more keepalives, and no reconnects: the phone is shutting down."""
    ph.tp_stopped = True
    ph.ka_at = None
    for f in ph.flows.values():
        f.pong_by = None


def close(ph, udp=False):
    """Close the TCP flows and listener (and the UDP socket when udp)."""
    stop(ph)
    for f in list(ph.flows.values()):
        ph.rt.tcp_close(f.conn)
    ph.flows = {}
    if ph.tcp_listener is not None:
        ph.rt.tcp_close(ph.tcp_listener)
        ph.tcp_listener = None
    if udp and ph.sock is not None and ph.rt is not None:
        ph.rt.udp_close(ph.sock)
        ph.sock = None


def rebind(ph):
    """Our address changed: the sockets are bound to the old one; open them again on the new one, same ports."""
    rt = ph.rt
    if ph.sock is not None:
        rt.udp_close(ph.sock)
        ph.sock = rt.udp_open(ph.local_ip, ph.local_port, ph.on_sip)
    for f in list(ph.flows.values()):
        rt.tcp_close(f.conn)
    ph.flows = {}
    if ph.tcp_listener is not None:
        rt.tcp_close(ph.tcp_listener)
        ph.tcp_listener = rt.tcp_listen(ph.local_ip, ph.local_port, lambda conn, peer: _on_accept(ph, conn, peer))


# -- out ---------------------------------------------------------------------------------------------------------
def send(ph, data, dest):
    if len(dest) > 2 and dest[2] != "udp":
        f = flow_for(ph, dest)
        if f.conn is None or not ph.rt.tcp_send(f.conn, data):
            _flow_closed(ph, f, True)
        return
    ph.rt.sendto(ph.sock, data, (dest[0], dest[1]))


def flow_for(ph, dest):
    """The open flow to dest (reused, RFC 3261 18.1.1), else a new connection (TLS when dest[2] is "tls"). A
    response whose connection is gone goes to the Via's sent-by (dest[3], RFC 3261 18.2.2)."""
    f = ph.flows.get((dest[0], dest[1]))
    if f is not None:
        return f
    key = (dest[0], dest[1])
    if len(dest) > 3 and dest[3]:
        key = (dest[3][0], dest[3][1])
        f = ph.flows.get(key)
        if f is not None:
            return f
    f = Flow(None, key, True, ph.now, "tls" if dest[2] == "tls" else "tcp")
    ph.flows[key] = f
    tls = None
    if f.proto == "tls":
        try:
            tls = (tls_context(ph), key[0])     # the name the certificate must carry: the URI's host
        except ValueError as e:
            f.error = str(e)
            return f                            # no connection: send() reports the flow failed
    f.conn = ph.rt.tcp_connect(key[0], key[1], lambda c, d: _flow_data(ph, f, d), lambda c: _flow_closed(ph, f),
                               tls)
    return f


def tls_context(ph):
    """The client context of every TLS flow, made once from sip.tls_ca (a path relative to the config's folder on
    the desktop, to / on the phone). ValueError says why there is none."""
    if ph.tls_ctx is None:
        from uphone.certs import load_ca, tls_context as make
        path = ph.cfg["sip"].get("tls_ca") or ""
        if not path:
            raise ValueError("no sip.tls_ca to check the server's certificate against")
        if ph.base_dir and not path.startswith("/"):
            path = ph.base_dir + "/" + path
        ph.tls_ctx = make(load_ca(path, "sip.tls_ca"))
    return ph.tls_ctx


# -- in ----------------------------------------------------------------------------------------------------------
def _on_accept(ph, conn, peer):
    if len(ph.flows) >= _MAX_FLOWS or ph.tp_stopped:
        return None
    f = Flow(conn, (peer[0], peer[1]), False, ph.rt.now())
    old = ph.flows.get(f.key)
    if old is not None:
        ph.rt.tcp_close(old.conn)
    ph.flows[f.key] = f
    return (lambda c, d: _flow_data(ph, f, d), lambda c: _flow_closed(ph, f))


def _flow_data(ph, f, data):
    ph.now = ph.rt.now()
    if ph.flows.get(f.key) is not f:
        return                      # a flow we already gave up on
    try:
        items = f.reader.feed(data)
    except stream.StreamError as e:
        ph.emit("err tcp %s:%d %s: closing" % (f.key[0], f.key[1], e))
        ph.rt.tcp_close(f.conn)
        _flow_closed(ph, f)
        return
    for kind, payload in items:
        if kind == stream.MSG:
            ph.on_sip(payload, f.key, f.proto)
        elif kind == stream.PING:
            ph.rt.tcp_send(f.conn, stream.PONG_BYTES)     # RFC 5626 4.4.1: one CRLF answers CRLFCRLF
        else:
            f.pong_by = None


def _flow_closed(ph, f, defer=False):
    if ph.flows.get(f.key) is not f:
        return
    del ph.flows[f.key]
    if defer:
        ph.tp_failed.append(f)      # inside a send: the transaction layer hears of it on the next tick
        return
    _flow_failed(ph, f)


def _flow_failed(ph, f):
    why = f.error or getattr(f.conn, "error", None)
    if why:
        ph.emit("err %s %s:%d %s" % (f.proto, f.key[0], f.key[1], why))   # e.g. the server's certificate refused
    else:
        ph.emit("%s %s:%d closed" % (f.proto, f.key[0], f.key[1]))
    if ph.txl is not None:
        ph.txl.on_transport_error((f.key[0], f.key[1], f.proto))
    if f.outgoing and not ph.tp_stopped:
        _reregister_after(ph, f)


def _reregister_after(ph, f):
    for s in ph.sessions():
        if s.kind != T.K_registration or s.state != T.S_Registered or registration.reg_key(ph, s) != f.key:
            continue
        up = ticks_diff(ph.now, f.opened)
        n = 1 if up >= _FLOW_STABLE else s.ctx.extra.get("flow_fails", 0) + 1
        s.ctx.extra["flow_fails"] = n
        ms = min(1000 << min(n - 1, 11), _BACKOFF_MAX)       # 1, 2, 4 ... s, capped; 50-100 % of it
        registration.refresh_now(ph, s, rand_ms(ms // 2, ms), "flow to %s:%d failed" % f.key)


def keepalive_failed(ph, s):
    """An OPTIONS keepalive timed out: the registrar is unreachable over this flow, register again."""
    ph.emit("ka %s OPTIONS timed out" % s.sid)
    f = ph.flows.get(registration.reg_key(ph, s))
    if f is not None:
        ph.rt.tcp_close(f.conn)
        del ph.flows[f.key]
    if s.state == T.S_Registered and not ph.tp_stopped:
        registration.refresh_now(ph, s, 0, "keepalive failed")


# -- time --------------------------------------------------------------------------------------------------------
def deadline(ph):
    if ph.tp_failed:
        return ph.now
    d = ph.ka_at
    flows = ph.flows
    for k in flows:                 # keys, not .values(): no view object per loop pass on MicroPython
        f = flows[k]
        if f.pong_by is not None and (d is None or ticks_diff(f.pong_by, d) < 0):
            d = f.pong_by
    return d


def tick(ph, now):
    while ph.tp_failed:
        _flow_failed(ph, ph.tp_failed.pop(0))
    flows = ph.flows
    for k in flows:
        f = flows[k]
        if f.pong_by is not None and ticks_diff(now, f.pong_by) >= 0:
            break
    else:
        f = None
    if f is not None:               # a pong is overdue: copy, since closing a flow changes the dict
        for f in list(flows.values()):
            if f.pong_by is not None and ticks_diff(now, f.pong_by) >= 0:
                ph.emit("ka %s:%d no pong in %d ms" % (f.key[0], f.key[1], _PONG_WAIT))
                ph.rt.tcp_close(f.conn)
                _flow_closed(ph, f)
    if ph.ka_at is None or ticks_diff(now, ph.ka_at) < 0:
        return
    ph.ka_at = ticks_add(now, ph.keepalive_ms)
    _keepalive_round(ph, now)


def _keepalive_round(ph, now):
    if ph.keepalive == "options":
        for s in list(ph.sessions()):
            if s.kind == T.K_registration and s.state == T.S_Registered and \
                    not any(p == "keepalive" for _c, p in s.ctx.txns):
                req, dest = request.out_of_dialog(ph, s, "OPTIONS", registration.reg_uri(ph, s))
                ph.ka_sent += 1
                ph.send_request(s, req, dest, "keepalive")
        return
    if ph.tport != "udp":
        for f in list(ph.flows.values()):
            if f.outgoing and f.pong_by is None and ph.rt.tcp_send(f.conn, f.reader.ping()):
                f.pong_by = ticks_add(now, _PONG_WAIT)
                ph.ka_sent += 1
        return
    seen = []
    for acct in ph.cfg.get("accounts") or []:
        uri = acct.get("registrar") or acct.get("proxy")
        if uri:
            h = request.first_hop(ph, acct, uri if uri.startswith("sip") else "sip:" + uri)
            if (h[0], h[1]) not in seen:
                seen.append((h[0], h[1]))
                ph.ka_sent += 1
                ph.rt.sendto(ph.sock, stream.PING_BYTES, (h[0], h[1]))     # NAT binding refresh
