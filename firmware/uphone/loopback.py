# A network and clock in memory: phones exchange datagrams and TCP byte streams without sockets. Used by tests, the
# MicroPython VM benchmarks and anything that wants whole calls run deterministically (the same Phone code as on a
# real loop). TCP is modelled as ordered, lossless byte streams whose segment boundaries tests can choose.


class LoopConn:
    """One end of a TCP connection (or a listener) on a LoopNet; .peer is the other end's (host, port)."""

    def __init__(self, local, peer, on_data=None, on_close=None):
        self.local = local
        self.peer = peer
        self.other = None           # the peer's LoopConn once accepted
        self.on_data = on_data      # fn(conn, bytes)
        self.on_close = on_close    # fn(conn)
        self.on_accept = None       # listeners only
        self.closed = False
        self.received = 0           # bytes handed to on_data, for tests
        self.error = None           # why it failed, when known (Loop's TcpConn has the same)


class LoopNet:
    def __init__(self, loss=None):
        self.t = 0
        self.socks = {}             # (host, port) -> handler
        self.queue = []             # [(due_ms, data, src, dst)]
        self.delay = 1              # one-way delay, ms
        self.loss = loss            # optional fn(data, src, dst) -> True to drop
        self.sent = 0
        self.listeners = {}         # (host, port) -> LoopConn listening
        self.mss = 0                # > 0: TCP data is cut into segments of at most this many bytes
        self.coalesce = False       # True: TCP segments due together reach the peer as one read
        self._eph = 50000

    def next_port(self):
        self._eph += 1
        return self._eph

    def deliver(self):
        """Hand every datagram that is due to its socket; returns how many."""
        n = 0
        while True:
            due = [x for x in self.queue if x[0] <= self.t]
            if not due:
                return n
            for x in due:
                if x not in self.queue:
                    continue            # coalesced into an earlier read
                self.queue.remove(x)
                if isinstance(x[2], LoopConn):
                    self._tcp(x)
                    n += 1
                    continue
                h = self.socks.get(x[3])
                if h is not None:
                    h(x[1], x[2])
                    n += 1

    def _tcp(self, x):
        # queue entry (due, data, from_conn, what): what is "syn", "data" or "fin"
        _due, data, src, what = x
        if what == "rst":
            if not src.closed:
                src.closed = True
                if src.on_close is not None:
                    src.on_close(src)
            return
        if what == "syn":
            lc = self.listeners.get(src.peer)
            h = None
            if lc is not None and not lc.closed and not src.closed:
                dst = LoopConn(src.peer, src.local)
                h = lc.on_accept(dst, src.local)
            if not h:
                if not src.closed:
                    src.closed = True               # connection refused (RST)
                    if src.on_close is not None:
                        src.on_close(src)
                return
            dst.on_data, dst.on_close = h
            dst.other, src.other = src, dst
            return
        dst = src.other
        if dst is None or dst.closed:
            return
        if what == "fin":
            dst.closed = True
            if dst.on_close is not None:
                dst.on_close(dst)
            return
        if self.coalesce:
            for y in [y for y in self.queue if y[0] <= self.t and y[2] is src]:
                if y[3] != "data":
                    break
                self.queue.remove(y)
                data += y[1]
        dst.received += len(data)
        if dst.on_data is not None:
            dst.on_data(dst, data)


class _Into:
    """A socket read into its owner's buffer (Loop.udp_open with buf); once connected, other senders are dropped."""

    def __init__(self, buf, handler):
        self.buf = buf
        self.handler = handler
        self.peer = None

    def deliver(self, data, src):
        if self.peer is not None and (src[0], src[1]) != self.peer:
            return
        n = min(len(data), len(self.buf))
        self.buf[:n] = data[:n]
        self.handler(n, src)


class LoopRT:
    """What a Phone needs from its runtime (see uphone/loop.py), on a LoopNet."""

    def __init__(self, net, host="127.0.0.1"):
        self.net = net
        self.host = host
        self._port = 40000
        self._into = {}

    def now(self):
        return self.net.t

    def udp_open(self, host, port, handler, buf=None):
        if port == 0:
            self._port += 2
            port = self._port
        key = (host, port)
        if key in self.net.socks:
            raise OSError(98)       # EADDRINUSE, as a real bind would
        if buf is not None:
            u = self._into[key] = _Into(buf, handler)
            handler = u.deliver
        self.net.socks[key] = handler
        return key

    def udp_connect(self, s, addr):
        self._into[s].peer = (addr[0], addr[1])

    def udp_close(self, s):
        self.net.socks.pop(s, None)
        self._into.pop(s, None)

    def local_port(self, s):
        return s[1]

    def tcp_listen(self, host, port, on_accept):
        key = (host, port)
        if key in self.net.listeners and not self.net.listeners[key].closed:
            raise OSError(98)
        lc = LoopConn(key, None)
        lc.on_accept = on_accept
        self.net.listeners[key] = lc
        return lc

    def tcp_connect(self, host, port, on_data, on_close, tls=None):
        c = LoopConn((self.host, self.net.next_port()), (host, port), on_data, on_close)
        if tls is not None:
            # no TLS in memory: a TLS connection fails as a refused one does (real TLS: the loop, tests/test_tls.py)
            c.error = "TLS is not simulated on the loopback net"
        self.net.queue.append((self.net.t + self.net.delay, b"", c, "syn" if tls is None else "rst"))
        return c

    def tcp_send(self, c, data):
        if c.closed:
            return False
        data = bytes(data)
        step = self.net.mss or len(data) or 1
        for i in range(0, len(data), step):
            self.net.queue.append((self.net.t + self.net.delay, data[i:i + step], c, "data"))
        return True

    def tcp_close(self, c):
        if c.closed:
            return
        c.closed = True
        if c.on_accept is not None:
            if self.net.listeners.get(c.local) is c:
                del self.net.listeners[c.local]
            return
        self.net.queue.append((self.net.t + self.net.delay, b"", c, "fin"))

    def sendto(self, s, data, addr):
        data = bytes(data)
        if self.net.loss is not None and self.net.loss(data, s, addr):
            return True
        self.net.sent += 1
        self.net.queue.append((self.net.t + self.net.delay, data, s, (addr[0], addr[1])))
        return True


def run(net, phones, ms, step=10, until=None):
    """Advance the shared clock by `ms`, delivering datagrams and ticking every phone."""
    end = net.t + ms
    while net.t < end:
        net.deliver()
        for p in phones:
            p.tick(net.t)
        net.deliver()
        if until is not None and until():
            return True
        net.t += step
    return until() if until is not None else False
