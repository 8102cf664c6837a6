# SIP transports of the phone (RFC 3261 18, RFC 5626): UDP and TCP out, one TCP flow per (host, port) reused for
# requests and carrying the responses to what arrived on it, flow failure -> reconnect and re-REGISTER with backoff,
# and keepalives (CRLF ping/pong over TCP, CRLF NAT refresh over UDP, OPTIONS). Mixed into uphone.phone.Phone.
from uphone import table as T
from uphone.compat import const, ticks_add, ticks_diff
from uphone.sip import stream

_PONG_WAIT = const(10000)       # RFC 5626 4.4.1: no pong within 10 s -> the flow has failed
_MAX_FLOWS = const(16)          # connections kept at once (heap on the ESP32); more incoming ones are refused
_FLOW_STABLE = const(120000)    # a flow that lived this long resets the consecutive-failure count (RFC 5626 4.5)
_BACKOFF_MAX = const(1800000)


class Flow:
    """One TCP connection: its stream reader, who opened it, and the keepalive it waits on."""

    def __init__(self, conn, key, outgoing, now):
        self.conn = conn
        self.key = key                  # (host, port): the request target, or the peer's address when accepted
        self.outgoing = outgoing
        self.reader = stream.StreamReader()
        self.opened = now
        self.pong_by = None             # deadline of the pong to our last ping


class TransportMixin:
    tport = "udp"

    def transport_init(self):
        sip = self.cfg["sip"]
        self.tport = sip.get("transport", "udp")
        self.keepalive = sip.get("keepalive", "off")
        self.keepalive_ms = int(sip.get("keepalive_s", 30)) * 1000
        self.flows = {}                 # (host, port) -> Flow
        self.tcp_listener = None
        self.ka_at = None               # next keepalive round; None when off or shut down
        self.ka_sent = 0                # keepalives sent (pings, UDP CRLFs, OPTIONS), for tests and the console
        self._failed = []               # flows whose send failed: reported from tick(), not from inside a send
        self._tp_stopped = False

    def open_transports(self):
        """After the UDP socket: listen on TCP too when TCP is the transport, start the keepalive schedule."""
        if self.tport == "tcp":
            self.tcp_listener = self.rt.tcp_listen(self.local_ip, self.local_port, self._on_accept)
        if self.keepalive != "off":
            self.ka_at = ticks_add(self.now, self.keepalive_ms)

    def stop_keepalives(self):
        self._tp_stopped = True
        self.ka_at = None
        for f in self.flows.values():
            f.pong_by = None

    def close_transports(self):
        self.stop_keepalives()
        for f in list(self.flows.values()):
            self.rt.tcp_close(f.conn)
        self.flows = {}
        if self.tcp_listener is not None:
            self.rt.tcp_close(self.tcp_listener)
            self.tcp_listener = None

    # -- out ---------------------------------------------------------------------------------------------------
    def _send_sip(self, data, dest):
        if len(dest) > 2 and dest[2] == "tcp":
            f = self.flow_for(dest)
            if not self.rt.tcp_send(f.conn, data):
                self._flow_closed(f, True)
            return
        self.rt.sendto(self.sock, data, (dest[0], dest[1]))

    def flow_for(self, dest):
        """The open flow to dest (reused, RFC 3261 18.1.1), else a new connection. A response whose connection is
        gone goes to the Via's sent-by (dest[3], RFC 3261 18.2.2)."""
        f = self.flows.get((dest[0], dest[1]))
        if f is not None:
            return f
        key = (dest[0], dest[1])
        if len(dest) > 3 and dest[3]:
            key = (dest[3][0], dest[3][1])
            f = self.flows.get(key)
            if f is not None:
                return f
        f = Flow(None, key, True, self.now)
        self.flows[key] = f
        f.conn = self.rt.tcp_connect(key[0], key[1], lambda c, d: self._flow_data(f, d),
                                     lambda c: self._flow_closed(f))
        return f

    # -- in ----------------------------------------------------------------------------------------------------
    def _on_accept(self, conn, peer):
        if len(self.flows) >= _MAX_FLOWS or self._tp_stopped:
            return None
        f = Flow(conn, (peer[0], peer[1]), False, self.rt.now())
        old = self.flows.get(f.key)
        if old is not None:
            self.rt.tcp_close(old.conn)
        self.flows[f.key] = f
        return (lambda c, d: self._flow_data(f, d), lambda c: self._flow_closed(f))

    def _flow_data(self, f, data):
        self.now = self.rt.now()
        if self.flows.get(f.key) is not f:
            return                      # a flow we already gave up on
        try:
            items = f.reader.feed(data)
        except stream.StreamError as e:
            self.emit("err tcp %s:%d %s: closing" % (f.key[0], f.key[1], e))
            self.rt.tcp_close(f.conn)
            self._flow_closed(f)
            return
        for kind, payload in items:
            if kind == stream.MSG:
                self.on_sip(payload, f.key, "tcp")
            elif kind == stream.PING:
                self.rt.tcp_send(f.conn, stream.PONG_BYTES)     # RFC 5626 4.4.1: one CRLF answers CRLFCRLF
            else:
                f.pong_by = None

    def _flow_closed(self, f, defer=False):
        if self.flows.get(f.key) is not f:
            return
        del self.flows[f.key]
        if defer:
            self._failed.append(f)      # inside a send: the transaction layer hears of it on the next tick
            return
        self._flow_failed(f)

    def _flow_failed(self, f):
        self.emit("tcp %s:%d closed" % (f.key[0], f.key[1]))
        if self.txl is not None:
            self.txl.on_transport_error((f.key[0], f.key[1], "tcp"))
        if f.outgoing and not self._tp_stopped:
            self._reregister_after(f)

    def reg_uri(self, s):
        reg = self.account(s).get("registrar") or ""
        return reg if reg.startswith("sip") else "sip:" + reg

    def reg_key(self, s):
        h = self.first_hop(self.account(s), self.reg_uri(s))
        return (h[0], h[1])

    def _reg_refresh_now(self, s, ms, why):
        """Re-REGISTER after ms: the binding went with the flow (RFC 5626 4.5). Earlier refresh timers go."""
        self.timers = [t for t in self.timers if not (t[1] is s and t[3] == T.E_RefreshRegistration)]
        self.emit("reg %s %s, re-register in %d ms" % (s.sid, why, ms))
        self.start_timer(s, ms, T.E_RefreshRegistration, state=T.S_Registered)

    def _reregister_after(self, f):
        from uphone.phone import rand_ms
        for s in self._sessions:
            if s.kind != T.K_registration or s.state != T.S_Registered or self.reg_key(s) != f.key:
                continue
            up = ticks_diff(self.now, f.opened)
            n = 1 if up >= _FLOW_STABLE else s.ctx.extra.get("flow_fails", 0) + 1
            s.ctx.extra["flow_fails"] = n
            ms = min(1000 << min(n - 1, 11), _BACKOFF_MAX)       # 1, 2, 4 ... s, capped; 50-100 % of it
            self._reg_refresh_now(s, rand_ms(ms // 2, ms), "flow to %s:%d failed" % f.key)

    def keepalive_failed(self, s):
        """An OPTIONS keepalive timed out: the registrar is unreachable over this flow, register again."""
        self.emit("ka %s OPTIONS timed out" % s.sid)
        f = self.flows.get(self.reg_key(s))
        if f is not None:
            self.rt.tcp_close(f.conn)
            del self.flows[f.key]
        if s.state == T.S_Registered and not self._tp_stopped:
            self._reg_refresh_now(s, 0, "keepalive failed")

    # -- time --------------------------------------------------------------------------------------------------
    def transport_deadline(self):
        if self._failed:
            return self.now
        d = self.ka_at
        flows = self.flows
        for k in flows:                 # keys, not .values(): no view object per loop pass on MicroPython
            f = flows[k]
            if f.pong_by is not None and (d is None or ticks_diff(f.pong_by, d) < 0):
                d = f.pong_by
        return d

    def transport_tick(self, now):
        while self._failed:
            self._flow_failed(self._failed.pop(0))
        flows = self.flows
        for k in flows:
            f = flows[k]
            if f.pong_by is not None and ticks_diff(now, f.pong_by) >= 0:
                break
        else:
            f = None
        if f is not None:               # a pong is overdue: copy, since closing a flow changes the dict
            for f in list(flows.values()):
                if f.pong_by is not None and ticks_diff(now, f.pong_by) >= 0:
                    self.emit("ka %s:%d no pong in %d ms" % (f.key[0], f.key[1], _PONG_WAIT))
                    self.rt.tcp_close(f.conn)
                    self._flow_closed(f)
        if self.ka_at is None or ticks_diff(now, self.ka_at) < 0:
            return
        self.ka_at = ticks_add(now, self.keepalive_ms)
        self._keepalive_round(now)

    def _keepalive_round(self, now):
        if self.keepalive == "options":
            for s in list(self._sessions):
                if s.kind == T.K_registration and s.state == T.S_Registered and \
                        not any(p == "keepalive" for _c, p in s.ctx.txns):
                    req, dest = self._out_of_dialog(s, "OPTIONS", self.reg_uri(s))
                    self.ka_sent += 1
                    self.send_request(s, req, dest, "keepalive")
            return
        if self.tport == "tcp":
            for f in list(self.flows.values()):
                if f.outgoing and f.pong_by is None and self.rt.tcp_send(f.conn, f.reader.ping()):
                    f.pong_by = ticks_add(now, _PONG_WAIT)
                    self.ka_sent += 1
            return
        seen = []
        for acct in self.cfg.get("accounts") or []:
            uri = acct.get("registrar") or acct.get("proxy")
            if uri:
                h = self.first_hop(acct, uri if uri.startswith("sip") else "sip:" + uri)
                if (h[0], h[1]) not in seen:
                    seen.append((h[0], h[1]))
                    self.ka_sent += 1
                    self.rt.sendto(self.sock, stream.PING_BYTES, (h[0], h[1]))     # NAT binding refresh
