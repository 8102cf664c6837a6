# Runtime loop: the only place with I/O. Polls the console stream and UDP sockets, runs timers; the same on ESP32
# (MicroPython: select.poll on sys.stdin and sockets) and on the desktop (CPython: a pty or stdin fd).
import sys

try:
    import select
except ImportError:  # pragma: no cover - every MicroPython port with sockets has select
    import uselect as select
try:
    import socket
except ImportError:  # pragma: no cover
    import usocket as socket

from uphone.compat import ticks_ms, ticks_diff
from uphone.console import Console

_MP = sys.implementation.name == "micropython"
_FRAME_MS = 20


class FdConsole:
    """Console on file descriptors (CPython: a pty master or stdin/stdout)."""

    def __init__(self, fd_in, fd_out):
        import os
        self._os = os
        self.fd_in, self.fd_out = fd_in, fd_out
        self.pollable = fd_in

    def read(self):
        try:
            data = self._os.read(self.fd_in, 512)
        except OSError:
            return None         # pty closed: the host went away
        return data.decode("utf-8", "replace") if data else None

    def write(self, line):
        data = (line + "\r\n").encode()
        while data:
            try:
                n = self._os.write(self.fd_out, data)
            except OSError:
                return
            data = data[n:]


class StdioConsole:
    """Console on the board's REPL stream (MicroPython: UART or USB CDC)."""

    def __init__(self):
        self.pollable = sys.stdin

    def read(self):
        return sys.stdin.read(1)

    def write(self, line):
        sys.stdout.write(line + "\r\n")


class Loop:
    def __init__(self, console_io=None, phone=None, clock=ticks_ms, phones=None):
        self.clock = clock
        self.poller = select.poll()
        self.handlers = {}
        self.phone = phone
        # several phones on one loop (the desktop demo); the console talks to the first
        self.phones = list(phones) if phones else ([phone] if phone is not None else [])
        self.io = console_io
        self.stopped = False
        self._buf = ""
        self.console = None
        self.pcap = None        # optional: .write(data, src, dst) for every SIP datagram
        if console_io is not None:
            self.console = Console(phone, console_io.write)
            self._register(console_io.pollable, self._on_console)
        for p in self.phones:
            p.attach(self)

    # -- what the phone may use (a loopback test double offers the same)
    def now(self):
        return self.clock()

    def udp_open(self, host, port, handler):
        """Bind a non-blocking UDP socket; handler(data, (host, port)) per datagram."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        except (AttributeError, OSError):
            pass
        s.bind(socket.getaddrinfo(host, port)[0][-1])
        s.setblocking(False)
        self._register(s, lambda: self._on_udp(s, handler))
        return s

    def udp_close(self, s):
        self._unregister(s)
        s.close()

    def local_port(self, s):
        try:
            return s.getsockname()[1]
        except (AttributeError, OSError):
            return 0

    def sendto(self, s, data, addr):
        try:
            s.sendto(data, socket.getaddrinfo(addr[0], addr[1])[0][-1])
        except OSError as e:
            for p in self.phones:
                if p.is_sip_socket(s):
                    p.on_send_error(addr, e)
            return False
        if self.pcap is not None and self._is_sip(s):
            self.pcap.write(data, self._sockname(s), (addr[0], addr[1]))
        return True

    def _is_sip(self, s):
        for p in self.phones:
            if p.is_sip_socket(s):
                return True
        return False

    def _sockname(self, s):
        try:
            return s.getsockname()
        except (AttributeError, OSError):
            return ("0.0.0.0", 0)

    # -- polling
    def _key(self, obj):
        if _MP:
            return obj
        return obj if isinstance(obj, int) else obj.fileno()

    def _register(self, obj, fn):
        self.poller.register(obj, select.POLLIN)
        self.handlers[self._key(obj)] = fn

    def _unregister(self, obj):
        try:
            self.poller.unregister(obj)
        except (KeyError, ValueError, OSError):
            pass
        self.handlers.pop(self._key(obj), None)

    def _on_udp(self, s, handler):
        while True:
            try:
                data, addr = s.recvfrom(4096)
            except OSError:
                return
            if not _MP:
                src = (addr[0], addr[1])
            else:  # MicroPython gives a raw sockaddr: decode it without allocating a resolver call
                src = _mp_addr(addr)
            if self.pcap is not None and self._is_sip(s):
                self.pcap.write(data, src, self._sockname(s))
            handler(data, src)

    def _on_console(self):
        data = self.io.read()
        if data is None:
            if not _MP:
                self._unregister(self.io.pollable)   # host gone; keep the phone running
            return
        self._buf += data
        while True:
            i = min([x for x in (self._buf.find("\n"), self._buf.find("\r")) if x >= 0] or [-1])
            if i < 0:
                break
            line, self._buf = self._buf[:i], self._buf[i + 1:]
            if line.strip():
                self.console.handle_line(line)
        if len(self._buf) > 1024:   # a line that never ends is garbage, not a command
            self._buf = ""
            self.console.write("err line too long")

    def stop(self):
        self.stopped = True

    def run_once(self, max_wait_ms=_FRAME_MS):
        now = self.clock()
        wait = max_wait_ms
        for p in self.phones:
            d = p.next_deadline()
            if d is not None:
                wait = max(0, min(wait, ticks_diff(d, now)))
        for ev in self.poller.poll(wait):
            fn = self.handlers.get(ev[0])
            if fn is not None:
                fn()
        now = self.clock()
        for p in self.phones:
            p.tick(now)

    def run(self, duration_ms=None, until=None):
        start = self.clock()
        while not self.stopped:
            self.run_once()
            if duration_ms is not None and ticks_diff(self.clock(), start) >= duration_ms:
                break
            if until is not None and until():
                break


def _mp_addr(addr):
    # MicroPython's recvfrom returns a sockaddr bytes object on some ports, a tuple on others
    if isinstance(addr, tuple):
        return (addr[0], addr[1])
    port = addr[2] << 8 | addr[3]
    return ("%d.%d.%d.%d" % (addr[4], addr[5], addr[6], addr[7]), port)
