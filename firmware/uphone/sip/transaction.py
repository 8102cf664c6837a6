# SIP transaction layer (RFC 3261 17, RFC 6026): client/server transactions, timers A-K, the UAS core's 2xx
# retransmission (13.3.1.4) and its reliable provisional retransmission (RFC 3262 3). Sans-I/O: time comes in as
# int ms, bytes leave through send(data, dest).
from uphone.compat import TYPE_CHECKING, const, ticks_diff, ticks_add
from uphone.sip import message as M
from uphone.sip import headers as H
from uphone.sip import transport

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

# one state numbering for both sides; the INVITE client's "Calling" is _TRYING
_TRYING = const(0)
_PROCEEDING = const(1)
_COMPLETED = const(2)
_CONFIRMED = const(3)
_ACCEPTED = const(4)
_TIMER_D = const(32000)
# an INVITE client that saw a 1xx has no RFC timer; this bounds memory like a proxy's Timer C (> 3 min, 16.6)
_RING_GUARD = const(180000)
# a server transaction whose TU never answers is forgotten after this (the TU may still answer through it)
_UAS_GUARD = const(600000)
_MAX_SRV = const(8)         # server transactions kept at once (see TransactionLayer._evict)
# and the bytes of final responses they keep to answer repeats: a 400 to a request with 200 Via lines echoes them
# all (8.2.6.2), and eight such kept for 32 s took a fifth of a 96 KB heap under fuzzing
_SRV_BYTES = const(6144)


def _due(now, t):
    return t is not None and ticks_diff(now, t) >= 0


def _earlier(a, b):
    if a is None:
        return b
    if b is None or ticks_diff(a, b) < 0:
        return a
    return b


def _reliable(dest):
    return len(dest) > 2 and dest[2].lower() != "udp"


def _top_via(msg):
    vias = msg.get_all("Via")
    return vias[0] if vias else None


class ClientTxn:
    def __init__(self, layer, msg, dest, now):
        self.layer, self.request, self.dest, self.method = layer, msg, dest, msg.method
        self.key = (msg.branch, msg.method)
        self.state = _TRYING
        self.got_provisional = False
        self.data = msg.to_bytes()
        self.ack = None
        t1 = layer.t1
        self.interval = t1
        self.retx_at = None if _reliable(dest) else ticks_add(now, t1)
        self.end_at = ticks_add(now, 64 * t1)      # Timer B / F

    def completed(self):
        # the final response is in and the TU has taken what it needed (an auth retry clones the request): the
        # request is never sent again, so it is not kept for the seconds the transaction still absorbs repeats
        self.request = None
        self.data = None

    def _copy(self, method, to):
        """A request sharing this one's transaction identity: 9.1 (CANCEL) and 17.1.1.3 (ACK)."""
        req = self.request
        hs = [("Via", _top_via(req)), ("Max-Forwards", "70")]
        for r in req.get_all("Route"):
            hs.append(("Route", r))
        hs += [("From", req.get("From")), ("To", to), ("Call-ID", req.call_id),
               ("CSeq", "%d %s" % (req.cseq_num, method))]
        return M.make_request(method, req.uri, hs)

    def cancel_request(self):
        if self.state <= _PROCEEDING:
            # 9.1: without a final response 64*T1 after the CANCEL the INVITE transaction is given up
            self.end_at = _earlier(self.end_at, ticks_add(self.layer.now, 64 * self.layer.t1))
        return self._copy("CANCEL", self.request.get("To"))


class ServerTxn:
    # a reliable provisional awaits its PRACK until then (RFC 3262 3); a class default, so the transactions that
    # never send one (nearly all) carry no slot for it
    rel_end = None

    def __init__(self, layer, msg, src, key, now):
        self.layer, self.request, self.method, self.key = layer, msg, msg.method, key
        self.dest = transport.response_dest(msg, src)
        self.state = _TRYING
        self.cancel_target = None
        self.last = None
        self.to_tag = None        # of our final response: an RFC 2543 ACK matches on it
        self.req_to_tag = msg.to_tag    # the request's own: an RFC 2543 retransmission matches on it
        self.interval = layer.t1
        self.retx_at = None
        self.end_at = ticks_add(now, _UAS_GUARD if msg.method == "INVITE" else 64 * layer.t1)

    def respond(self, resp, now):
        lay = self.layer
        lay.now = now
        if self.state >= _COMPLETED:
            return                # a final response was already sent; the transaction owns it now
        data = resp.to_bytes()
        self.last = data
        lay._out(data, self.dest)
        st = resp.status
        self.retx_at = self.rel_end = None    # a newer answer ends a reliable provisional's retransmissions
        if st < 200:
            self.state = _PROCEEDING
            return
        self.to_tag = resp.to_tag
        self.request = None       # answered: matching and repeats need only the key, the tags and `last`
        t64 = 64 * lay.t1
        rel = _reliable(self.dest)
        if self.method == "INVITE" and st < 300:
            self.state = _ACCEPTED            # RFC 6026: INVITE retransmissions absorbed for 64*T1
            self.end_at = ticks_add(now, t64)
            self.last = None                  # the TU's 2xx retransmitter (send_2xx) answers them, not `last`
        elif self.method == "INVITE":
            self.state = _COMPLETED
            self.interval = lay.t1
            self.retx_at = None if rel else ticks_add(now, lay.t1)     # Timer G
            self.end_at = ticks_add(now, t64)                          # Timer H
        else:
            self.state = _COMPLETED
            self.end_at = ticks_add(now, 0 if rel else t64)            # Timer J
        lay._srv[self.key] = self         # back in the table even if the guard had dropped it
        if self.last is not None:
            while lay._kept() > _SRV_BYTES and lay._evict(self):
                pass


class TransactionLayer:
    def __init__(self, tu, send, t1=500, t2=4000, t4=5000):
        self.tu, self._send = tu, send
        self.t1, self.t2, self.t4 = t1, t2, t4
        self.now = 0
        self._cli = {}  # type: dict  # (branch, method) -> ClientTxn
        self._srv = {}  # type: dict  # see _skey -> ServerTxn
        self._ok = {}         # (call_id, cseq) -> [data, dest, interval, next_at, give_up_at]
        self._sending = False

    def _out(self, data, dest):
        # a send error may call on_transport_error() from inside this call; it then defers to tick()
        prev = self._sending
        self._sending = True
        try:
            self._send(data, dest)
        finally:
            self._sending = prev

    # -- client side ------------------------------------------------------------------------------------
    def request(self, msg, dest, now):
        self.now = now
        if msg.method == "ACK":
            self._out(msg.to_bytes(), dest)   # an ACK for a 2xx is not a transaction (17.1.1.1)
            return None
        c = ClientTxn(self, msg, dest, now)
        self._cli[c.key] = c                  # registered before sending, so a send error can find it
        self._out(c.data, dest)
        return c

    def _on_response(self, msg, now):
        c = self._cli.get((msg.branch, msg.cseq_method))
        st = msg.status
        if c is None:
            if msg.cseq_method == "INVITE" and 200 <= st < 300:
                self.tu.on_response(None, msg)    # 2xx retransmission or another fork (13.2.2.4)
            return
        live = c.state <= _PROCEEDING
        if st < 200:
            if live:
                c.state = _PROCEEDING
                c.got_provisional = True
                if c.method == "INVITE":
                    c.retx_at = None                              # Timer A stops
                    c.end_at = ticks_add(now, _RING_GUARD)
                else:
                    c.interval = self.t2                          # Timer E now runs at T2
                self.tu.on_response(c, msg)
            return
        if c.method == "INVITE":
            if st < 300:
                if live:
                    self._drop_cli(c)
                    # the transaction ends here (17.1.1.2) but the call keeps it (ctx.invite_ctx) for its whole
                    # life: its request bytes (the INVITE and its SDP, ~800 B) are never sent again, and a kept
                    # copy made every UAC call, and a transfer's new call, hold them until hang-up. The request
                    # stays: it is the call's ctx.invite too (a forked 2xx builds its dialog from it)
                    c.data = None
                    self.tu.on_response(c, msg)
                else:
                    self.tu.on_response(None, msg)
                return
            if not live:
                self._out(c.ack, c.dest)              # retransmitted final: ACK again
                return
            c.state = _COMPLETED
            c.ack = c._copy("ACK", msg.get("To")).to_bytes()
            c.retx_at = None
            c.end_at = ticks_add(now, 0 if _reliable(c.dest) else _TIMER_D)
            self._out(c.ack, c.dest)
            self.tu.on_response(c, msg)
            c.completed()
            return
        if not live:
            return                                    # retransmitted final absorbed in Completed
        c.state = _COMPLETED
        c.retx_at = None
        c.end_at = ticks_add(now, 0 if _reliable(c.dest) else self.t4)    # Timer K
        self.tu.on_response(c, msg)
        c.completed()

    def _drop_cli(self, c):
        k = c.key
        if self._cli.get(k) is c:
            del self._cli[k]

    def on_transport_error(self, dest):
        """ICMP unreachable / send failure: pending client transactions to dest time out (8.1.3.1)."""
        for c in list(self._cli.values()):
            if c.state > _PROCEEDING or c.dest[0] != dest[0] or c.dest[1] != dest[1]:
                continue
            if self._sending:
                c.retx_at = None
                c.end_at = self.now       # re-entered from our own send: fail on the next tick
            else:
                self._drop_cli(c)
                self.tu.on_timeout(c)

    # -- server side ------------------------------------------------------------------------------------
    def _skey(self, msg, via, method):
        b = via.branch
        if b and b.startswith(transport.MAGIC):
            return (b, via.host.lower(), via.port, method)
        # RFC 2543 peer (17.2.3): the To tag is checked separately since an ACK carries our tag
        return (msg.uri, msg.from_tag, msg.call_id, msg.cseq_num, _top_via(msg), method)

    def _match(self, msg, via, method, to_check):
        stx = self._srv.get(self._skey(msg, via, method))
        if stx is None or not to_check or (via.branch or "").startswith(transport.MAGIC):
            return stx
        want = stx.to_tag if msg.method == "ACK" else stx.req_to_tag
        return stx if msg.to_tag == want else None

    def _on_request(self, msg, src, now):
        top = _top_via(msg)
        if top is None:
            return
        try:
            via = H.parse_via(top)
        except ValueError:
            return
        m = msg.method
        if m == "ACK":
            stx = self._match(msg, via, "INVITE", True)
            if stx is None or stx.state == _ACCEPTED:
                self.tu.on_request(None, msg, src)       # ACK for a 2xx belongs to the UAS core
            elif stx.state == _COMPLETED:
                stx.state = _CONFIRMED
                stx.retx_at = None
                stx.end_at = ticks_add(now, 0 if _reliable(stx.dest) else self.t4)    # Timer I
            return
        key = self._skey(msg, via, m)
        stx = self._match(msg, via, m, True)
        if stx is not None:
            # a retransmission: answer with what we last said; never to the TU again
            if stx.state == _ACCEPTED:
                ok = self._ok.get((msg.call_id, msg.cseq_num))
                if ok is not None:
                    self._out(ok[0], ok[1])
            elif stx.last is not None:
                self._out(stx.last, stx.dest)
            return
        if len(self._srv) >= _MAX_SRV:
            self._evict()
        stx = ServerTxn(self, msg, src, key, now)
        self._srv[key] = stx
        if m == "CANCEL":
            stx.cancel_target = self._match(msg, via, "INVITE", True)
        elif m == "INVITE":
            stx.respond(M.make_response(msg, 100, "Trying"), now)    # 17.2.1: quench retransmissions
        self.tu.on_request(stx, msg, src)

    def _evict(self, keep=None):
        # Overload (a flood, a scanner, calls faster than 64*T1 apart): the answered transaction nearest its end is
        # forgotten first. Only its absorbing of retransmissions is lost (a repeat reaches the TU, which answers it
        # again); what the phone keeps stays bounded. -> whether one was forgotten.
        old = None
        for k in self._srv:
            x = self._srv[k]
            if x is not keep and x.state >= _COMPLETED and (old is None or ticks_diff(x.end_at, old.end_at) < 0):
                old = x
        if old is None:
            return False
        del self._srv[old.key]
        return True

    def shed(self):
        """The heap ran out (a MemoryError in the loop): forget every answered server transaction. They only absorb
        retransmissions (a repeat then reaches the TU, which answers it again), and their kept responses are the
        phone's largest droppable memory. -> how many were forgotten."""
        n = 0
        while self._evict():
            n += 1
        return n

    def _kept(self):
        n = 0
        for k in self._srv:
            x = self._srv[k].last
            if x is not None:
                n += len(x)
        return n

    def receive(self, msg, src, now):
        self.now = now
        if msg.is_request:
            self._on_request(msg, src, now)
        else:
            self._on_response(msg, now)

    # -- UAS core 2xx retransmission (13.3.1.4) ----------------------------------------------------------
    def send_2xx(self, resp, dest, now):
        self.now = now
        self._ok[(resp.call_id, resp.cseq_num)] = [resp.to_bytes(), dest, self.t1, ticks_add(now, self.t1),
                                                   ticks_add(now, 64 * self.t1)]

    def ack_received(self, call_id, cseq_num):
        self._ok.pop((call_id, cseq_num), None)

    # -- reliable provisional responses (RFC 3262 3) --------------------------------------------------------
    def keep_sending(self, stx, now):
        """The provisional response stx just sent is reliable: send it again at T1, doubling (no T2 cap: RFC 3262 3
        says it doubles), until prack_received(); after 64*T1 without one the TU hears on_prack_timeout(stx).
        Sent over TCP too: the RFC makes no exception, and the UAC drops repeats by their RSeq."""
        self.now = now
        stx.interval = self.t1
        stx.retx_at = ticks_add(now, self.t1)
        stx.rel_end = ticks_add(now, 64 * self.t1)

    def prack_received(self, stx):
        stx.retx_at = stx.rel_end = None

    @staticmethod
    def awaiting_prack(stx):
        return stx is not None and stx.rel_end is not None

    # -- timers -------------------------------------------------------------------------------------------
    def tick(self, now):
        self.now = now
        # called every loop pass: look for anything due without allocating (dict keys iterate in place; the
        # lists below are copies made only when a timer fires, since firing changes the dicts)
        d = self.next_deadline()
        if d is None or ticks_diff(now, d) < 0:
            return
        tu = self.tu
        for c in list(self._cli.values()):
            if _due(now, c.end_at):
                self._drop_cli(c)
                if c.state <= _PROCEEDING:
                    tu.on_timeout(c)                          # Timer B / F (or a deferred transport error)
            elif _due(now, c.retx_at):
                if c.method == "INVITE":
                    c.interval *= 2                           # Timer A doubles without a cap
                elif c.state == _PROCEEDING:
                    c.interval = self.t2
                else:
                    c.interval = min(c.interval * 2, self.t2)     # Timer E
                c.retx_at = ticks_add(now, c.interval)
                self._out(c.data, c.dest)
        for s in list(self._srv.values()):
            if _due(now, s.end_at):
                k = s.key
                if self._srv.get(k) is s:
                    del self._srv[k]                          # Timers H, I, J, Accepted, or the guard
            elif s.rel_end is not None:                       # a reliable provisional (RFC 3262 3)
                if _due(now, s.rel_end):
                    s.retx_at = s.rel_end = None
                    tu.on_prack_timeout(s)
                elif _due(now, s.retx_at):
                    s.interval *= 2
                    s.retx_at = _earlier(ticks_add(now, s.interval), s.rel_end)
                    self._out(s.last, s.dest)
            elif _due(now, s.retx_at):
                s.interval = min(s.interval * 2, self.t2)     # Timer G
                s.retx_at = ticks_add(now, s.interval)
                self._out(s.last, s.dest)
        for key in list(self._ok):
            r = self._ok.get(key)
            if r is None:
                continue
            if _due(now, r[4]):
                del self._ok[key]
                tu.on_ack_timeout(key)
            elif _due(now, r[3]):
                r[2] = min(r[2] * 2, self.t2)
                r[3] = ticks_add(now, r[2])
                self._out(r[0], r[1])

    def next_deadline(self):
        d = None
        cli, srv, ok = self._cli, self._srv, self._ok
        for k in cli:                   # keys, not .values(): a values view is an allocation on MicroPython
            c = cli[k]
            d = _earlier(_earlier(d, c.end_at), c.retx_at)
        for k in srv:
            x = srv[k]
            d = _earlier(_earlier(_earlier(d, x.end_at), x.retx_at), x.rel_end)
        for k in ok:
            r = ok[k]
            d = _earlier(_earlier(d, r[3]), r[4])
        return d

    def counts(self):
        """(client, server, 2xx retransmitters) alive: for tests and the console's status."""
        return len(self._cli), len(self._srv), len(self._ok)
