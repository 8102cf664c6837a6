# A network and clock in memory: phones exchange datagrams without sockets. Used by tests, the MicroPython VM
# benchmarks and anything that wants whole calls run deterministically (the same Phone code as on a real loop).


class LoopNet:
    def __init__(self, loss=None):
        self.t = 0
        self.socks = {}             # (host, port) -> handler
        self.queue = []             # [(due_ms, data, src, dst)]
        self.delay = 1              # one-way delay, ms
        self.loss = loss            # optional fn(data, src, dst) -> True to drop
        self.sent = 0

    def deliver(self):
        """Hand every datagram that is due to its socket; returns how many."""
        n = 0
        while True:
            due = [x for x in self.queue if x[0] <= self.t]
            if not due:
                return n
            for x in due:
                self.queue.remove(x)
                h = self.socks.get(x[3])
                if h is not None:
                    h(x[1], x[2])
                    n += 1


class LoopRT:
    """What a Phone needs from its runtime (see uphone/loop.py), on a LoopNet."""

    def __init__(self, net, host="127.0.0.1"):
        self.net = net
        self.host = host
        self._port = 40000

    def now(self):
        return self.net.t

    def udp_open(self, host, port, handler):
        if port == 0:
            self._port += 2
            port = self._port
        key = (host, port)
        if key in self.net.socks:
            raise OSError(98)       # EADDRINUSE, as a real bind would
        self.net.socks[key] = handler
        return key

    def udp_close(self, s):
        self.net.socks.pop(s, None)

    def local_port(self, s):
        return s[1]

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
