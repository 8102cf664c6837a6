# Runtime loop: the only place with I/O. Polls the console stream, UDP sockets and TCP connections, runs timers; the
# same on ESP32 (MicroPython: select.poll on sys.stdin and sockets) and on the desktop (CPython: a pty or stdin fd).
import sys

try:
    import select
except ImportError:  # pragma: no cover - every MicroPython port with sockets has select
    import uselect as select
try:
    import socket
except ImportError:  # pragma: no cover
    import usocket as socket
try:
    import errno
except ImportError:  # pragma: no cover
    import uerrno as errno

from uphone.compat import TYPE_CHECKING, const, text, ticks_ms, ticks_add, ticks_diff
from uphone.console import Console

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

try:
    # uPhone's C helper (board/modules/dgram, frozen into every board and the unix runtime): one datagram into a
    # buffer. MicroPython's socket readinto() reads until the buffer is full, so on a UDP socket it joins every
    # datagram waiting into one; recv/recvfrom read one but allocate their size each call.
    from dgram import recv_into as _recv1   # type: ignore[import-not-found]
except ImportError:
    _recv1 = None               # CPython (recv_into) or a stock MicroPython (recv/recvfrom, which allocate)

_MP = sys.implementation.name == "micropython"
_FRAME_MS = 20
_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_POLLBAD = getattr(select, "POLLERR", 8) | getattr(select, "POLLHUP", 16)
# "try again later" from a non-blocking socket; MicroPython raises EINPROGRESS from connect() as a plain OSError
_PENDING = (getattr(errno, "EAGAIN", 11), getattr(errno, "EWOULDBLOCK", 11), getattr(errno, "EINPROGRESS", 115),
            getattr(errno, "EALREADY", 114))
# the datagram buffer (SIP, RTCP): RFC 3261 18.1.1 sends a request over 1300 bytes by TCP, so a UDP message that
# fills this (2 KB less one byte, or it may have been cut) is refused
_DGRAM_MAX = const(2048)
_PEEK = getattr(socket, "MSG_PEEK", 2)
_LINE_MAX = const(1024)    # a console line longer than this is refused
# bytes allocated between collections on MicroPython (see Loop.__init__). 4 KB, not 8: with 8 KB the G.722 heap
# scenario (tests/test_heap.py) passed or failed by where a few hundred bytes happened to land (at 94000 bytes of
# heap it failed every time, at 92000 and 96000 mostly not: a 700-byte message found no room with 20 KB free);
# collected twice as often, garbage is reused before it is scattered between the calls' long-lived objects
_GC_EVERY = const(4096)
_MAX_EVENTS = 16       # poll events handled per pass; the rest stay ready for the next pass (poll is level-triggered)
_OUT_MAX = 262144       # a peer that stops reading: past this much unsent data the connection is dropped
_TLS_CHUNK = const(2048)    # bytes per TLS write: under one record (mbedtls' MBEDTLS_SSL_OUT_CONTENT_LEN is 4096
                            # on the unix port and ESP-IDF), so a write that would block is retried whole (tlsio)
_TLS_READS = const(8)       # TLS reads per connection and pass; the rest next pass (a peer cannot hold the loop)
_HS_MS = const(10000)       # a TLS handshake not over in this long fails the connection


def _errno(e):
    return e.args[0] if e.args and isinstance(e.args[0], int) else getattr(e, "errno", None)


class TcpConn:
    """One TCP connection (or listener) of the loop: opaque to the phone except for .peer (host, port), .error (why
    it failed, when the loop knows: a TLS certificate refused, a handshake timed out) and .tls_up."""

    def __init__(self, sock, peer, on_data=None, on_close=None):
        self.sock = sock
        self.peer = peer
        self.on_data = on_data          # fn(conn, bytes)
        self.on_close = on_close        # fn(conn): the peer closed, reset, or the connect failed
        self.on_accept = None           # listeners: fn(conn, peer) -> (on_data, on_close) or None to refuse
        self.out = b""                  # what the kernel (or the TLS layer) has not taken yet
        self.connecting = False
        self.closed = False
        self.mask = _POLLIN
        self.error = None
        self.tls = None                 # (SSLContext, server name) for TLS once connected
        self.ssl = None                 # the TLS object (uphone.tlsio), over sock
        self.gate = None                # MicroPython: the stream under it (tlsio.Gate)
        self.tls_up = None              # "TLSv1.2 <cipher>" once the handshake is over
        self.tls_n = 0                  # length of a TLS write that would block: retried with these same bytes
        self.hs_by = 0                  # handshake deadline


class _Into:
    """A UDP socket read into its owner's buffer (see Loop.udp_open)."""

    def __init__(self, sock, buf, handler):
        self.sock = sock
        self.buf = buf
        self.handler = handler      # fn(n, (host, port))
        self.peer = None            # (host, port) once connected


class FdConsole:
    """Console on file descriptors (CPython: a pty master or stdin/stdout)."""

    def __init__(self, fd_in, fd_out):
        import os
        self._os = os
        self.fd_in, self.fd_out = fd_in, fd_out
        self.pollable = fd_in

    def read(self):
        """-> the bytes waiting (None at the end: the pty closed, the host went away)."""
        try:
            data = self._os.read(self.fd_in, 512)
        except OSError:
            return None
        return data or None

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
        self._b = bytearray(1)          # one byte per poll event: a longer read would wait for the rest (blocking)
        self._in = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin  # type: Any

    def read(self):
        # -> the byte read, in a buffer reused every time (nothing allocated per character); None at the end of
        # input: a desktop host closed the pipe, or the far end of a pty slave. On a pty master whose slave nobody
        # holds any more the read fails with EIO instead (as os.read does on CPython): the same end.
        try:
            return self._b if self._in.readinto(self._b) else None
        except OSError:
            return None

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
        self._dns = {}          # (host, port, ...) -> (sockaddr, resolved at): see resolve()
        self._into = {}         # socket key -> _Into: UDP sockets read into their owner's buffer
        self.crashes = 0        # exceptions caught by _guard (reported on the console as "err internal ...")
        self.oom = 0            # MemoryErrors caught by _guard: its datagram, timer or frame is dropped ("err heap")
        self.rx = 0             # datagrams read on the SIP and RTCP sockets (RTP is counted per call)
        self._line = bytearray(_LINE_MAX)   # the console line being read (see _on_console)
        self._line_mv = memoryview(self._line)
        self._ln = 0
        self._dead = []         # TCP connections that failed inside a call: on_close runs from the loop
        self._hs = []           # TLS connections in their handshake (deadline checks)
        self._more = []         # TLS connections whose TLS layer may hold more than a pass read
        self.console = None  # type: Any  # Console when there is a console stream
        self.pcap = None        # optional: .write(data, src, dst) for every SIP datagram
        self.stop_on_eof = False    # desktop runner: the host closing the console ends the phone (never on a board)
        self.max_pass_ms = 0    # longest run_once since the console's `mem` last read it (GC pauses included)
        if console_io is not None:
            self.console = Console(phone, console_io.write)
            self.console.loop = self
            self._register(console_io.pollable, lambda ev: self._on_console())
        for p in self.phones:
            p.attach(self)
        self._ticks = [p.tick for p in self.phones]     # bound once: `p.tick` would allocate a bound method per pass
        if _MP:
            # collect after every _GC_EVERY bytes allocated, not only when the heap is full: garbage (a SIP message
            # parsed, an answer built) is then freed while it is low in the heap, the next objects take its place,
            # and the free space above stays in one piece for the next datagram or call (a full heap collected at
            # once leaves long-lived objects scattered over it: seen as MemoryErrors with 30 KB free)
            import gc
            gc.threshold(_GC_EVERY)
        self.dropped = 0                                 # datagrams dropped: too large, or no heap (see _on_udp)
        self._dgram = bytearray(_DGRAM_MAX)              # every SIP/RTCP datagram is read into this (see _on_udp)
        self._dgram_mv = memoryview(self._dgram)
        self._evo = [None] * _MAX_EVENTS                 # this pass's poll events (MicroPython, see run_once)
        self._evf = [0] * _MAX_EVENTS

    # -- what the phone may use (a loopback test double offers the same)
    def now(self):
        return self.clock()

    def udp_open(self, host, port, handler, buf=None):
        """Bind a non-blocking UDP socket. Without buf: handler(data, (host, port)) per datagram, a new bytes
        object each (SIP, RTCP). With buf (a bytearray the caller keeps): each datagram is read into it and
        handler(n, (host, port)) runs; once udp_connect() has fixed the peer, reading allocates nothing (media)."""
        s = _bound(socket.SOCK_DGRAM, host, port)
        if buf is None:
            self._register(s, lambda ev: self._on_udp(s, handler))
        else:
            u = _Into(s, buf, handler)
            self._into[self._key(s)] = u
            self._register(s, lambda ev: self._on_into(u))
        return s

    def udp_connect(self, s, addr):
        """From now on only datagrams from addr (host, port) reach s: a connected UDP socket, so the kernel drops
        the rest (no RTP injection from elsewhere) and a read needs no source address (MicroPython's readinto:
        no allocation). Only for sockets opened with a buf."""
        u = self._into[self._key(s)]
        s.connect(self.resolve(addr))
        u.peer = (addr[0], addr[1])

    def udp_close(self, s):
        self._unregister(s)
        self._into.pop(self._key(s), None)
        s.close()

    def local_port(self, s):
        try:
            return s.getsockname()[1]
        except (AttributeError, OSError):
            return 0

    def resolve(self, addr):
        """(host, port, ...) -> sockaddr, cached: a lookup per packet would be a blocking DNS query on the phone
        for every SIP message to a named registrar (and a getaddrinfo call per RTP packet). Entries live 5 min."""
        now = self.clock()
        hit = self._dns.get(addr)
        if hit is not None and ticks_diff(now, hit[1]) < 300000:
            return hit[0]
        sa = socket.getaddrinfo(addr[0], addr[1])[0][-1]
        if len(self._dns) >= 8:         # bounded (a phone talks to a few peers at once): a flood cannot grow it
            self._dns.clear()
        self._dns[addr] = (sa, now)
        return sa

    def sendto(self, s, data, addr):
        try:
            s.sendto(data, self.resolve(addr))
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

    # -- TCP: non-blocking connect, accept, buffered send; callbacks run from the loop
    def tcp_listen(self, host, port, on_accept):
        """Listen for connections; on_accept(conn, (host, port)) -> (on_data, on_close), or None to refuse."""
        s = _bound(socket.SOCK_STREAM, host, port)
        s.listen(8)
        lc = TcpConn(s, (host, port))
        lc.on_accept = on_accept
        self._register(s, lambda ev: self._on_accept(lc))
        return lc

    def tcp_connect(self, host, port, on_data, on_close, tls=None):
        """Start connecting (never blocks); data sent before it is up waits in the connection's buffer.
        tls: (client SSLContext, server name): TLS over it once connected, the name checked against the server's
        certificate (a refused certificate fails the connection with .error saying why)."""
        c = TcpConn(None, (host, port), on_data, on_close)
        c.connecting = True
        c.tls = tls
        try:
            addr = self.resolve((host, port))
            c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.sock.setblocking(False)
        except OSError:
            self._fail_later(c)
            return c
        try:
            c.sock.connect(addr)
            c.connecting = False                # loopback may connect at once
        except OSError as e:
            if _errno(e) not in _PENDING:       # refused or unreachable right away
                self._fail_later(c)
                return c
        c.mask = _POLLIN | _POLLOUT             # writable = connected (or failed: SO_ERROR / POLLERR tells)
        self._register(c.sock, lambda ev: self._on_tcp(c, ev), c.mask)
        return c

    def tcp_send(self, c, data):
        """Queue data on the connection and push what the kernel takes now; False once the connection is gone."""
        if c.closed:
            return False
        c.out = c.out + bytes(data) if c.out else bytes(data)
        if len(c.out) > _OUT_MAX:
            self._fail_later(c)
            return False
        if c.ssl is not None:
            if c.tls_up:                # before: the handshake sends it (see _on_tls)
                from uphone import tlsio
                try:
                    self._tls_flush(c)
                except tlsio.TlsError as e:
                    c.error = str(e)
                    self._fail_later(c)
                    return False
            return True
        if not c.connecting and not self._flush(c):
            self._fail_later(c)
            return False
        return True

    def tcp_close(self, c):
        """Close a connection or a listener; its on_close is not called."""
        if c.closed:
            return
        c.closed = True
        if c.sock is not None:
            self._unregister(c.sock)
            for x in (c.ssl, c.sock):
                if x is not None:
                    try:
                        x.close()
                    except OSError:
                        pass

    def _fail_later(self, c):
        # reported from run_once, not from inside the caller's send (it may be mid-transaction)
        self.tcp_close(c)
        self._dead.append(c)

    def _fail(self, c):
        self.tcp_close(c)
        if c.on_close is not None:
            c.on_close(c)

    def _on_accept(self, lc):
        while not lc.closed:
            try:
                cs, addr = lc.sock.accept()
            except OSError:
                return
            cs.setblocking(False)
            peer = _mp_addr(addr) if _MP else (addr[0], addr[1])
            c = TcpConn(cs, peer)
            h = lc.on_accept(c, peer)
            if not h:
                cs.close()
                continue
            c.on_data, c.on_close = h
            self._register(cs, lambda ev, c=c: self._on_tcp(c, ev))

    def _flush(self, c):
        """Send buffered bytes until the kernel pushes back; False on a dead connection."""
        while c.out:
            try:
                n = c.sock.send(c.out)
            except OSError as e:
                if _errno(e) in _PENDING:
                    break
                return False
            if not n:
                break
            c.out = c.out[n:]
        want = _POLLIN | _POLLOUT if c.out else _POLLIN
        if want != c.mask:
            c.mask = want
            self.poller.modify(c.sock, want)
        return True

    def _on_tcp(self, c, ev):
        if c.closed:
            return
        if c.connecting:
            err = 0
            if not _MP and hasattr(socket, "SO_ERROR"):
                try:
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                except OSError:
                    err = 0
            if err or ev & _POLLBAD:
                self._fail(c)           # refused / unreachable
                return
            if not ev & _POLLOUT:
                return
            c.connecting = False
            if c.tls is not None:
                self._tls_start(c)
                return
        if c.ssl is not None:
            self._on_tls(c)
            return
        if (ev & _POLLOUT or c.out) and not self._flush(c):
            self._fail(c)
            return
        if ev & (_POLLIN | _POLLBAD):
            try:
                data = c.sock.recv(1024)       # a stream: any size works, and a small piece fits a fragmented heap
            except OSError as e:
                if _errno(e) in _PENDING:
                    return
                self._fail(c)
                return
            if not data:
                self._fail(c)           # orderly close by the peer
                return
            if c.on_data is not None:
                c.on_data(c, data)

    # -- TLS over a connection (uphone/tlsio.py says why it works this way)
    def _tls_start(self, c):
        from uphone import tlsio
        try:
            c.ssl, c.gate = tlsio.wrap(c.tls[0], c.sock, c.tls[1])
        except tlsio.TlsError as e:
            c.error = str(e)
            self._fail(c)
            return
        if c.gate is None:
            c.sock = c.ssl              # CPython's wrap_socket took the socket's descriptor over
        c.hs_by = ticks_add(self.clock(), _HS_MS)
        self._hs.append(c)
        self._on_tls(c)                 # ClientHello goes now

    def _on_tls(self, c):
        from uphone import tlsio
        if c.gate is not None:
            c.gate.spent = False        # one more handshake record may pass
        try:
            if c.tls_up is None:
                if tlsio.handshake_done(c.ssl):     # CPython; MicroPython's handshake runs in write/read
                    self._tls_established(c)
            moved = self._tls_flush(c) if c.out else 0
            moved += self._tls_read(c)
            if c.tls_up is None and moved:
                self._tls_established(c)
        except tlsio.TlsError as e:
            c.error = str(e)
            self._fail(c)
            return
        if c.closed:
            return
        # while the handshake runs the TLS layer waits for the server's next flight (POLLIN); its own flights are a
        # few hundred bytes and go into an empty socket buffer. Once up: POLLOUT only while bytes wait to go.
        want = _POLLIN | _POLLOUT if (c.out and c.tls_up is not None) else _POLLIN
        if want != c.mask:
            c.mask = want
            self.poller.modify(c.sock, want)

    def _tls_established(self, c):
        from uphone import tlsio
        c.tls_up = tlsio.describe(c.ssl)
        if c.gate is not None:
            c.gate.gated = False
        if c in self._hs:
            self._hs.remove(c)

    def _tls_flush(self, c):
        """Write what waits, a record's worth at a time, until the TLS layer would block -> bytes taken."""
        from uphone import tlsio
        done = 0
        while c.out and not c.closed:
            k = c.tls_n or (len(c.out) if len(c.out) <= _TLS_CHUNK else _TLS_CHUNK)
            n = tlsio.write(c.ssl, c.out[:k])
            if not n:
                c.tls_n = k
                break
            c.tls_n = 0
            c.out = c.out[n:]
            done += n
        return done

    def _tls_read(self, c):
        """Deliver what the TLS layer has (it may hold decrypted bytes the socket no longer shows) -> bytes read."""
        from uphone import tlsio
        buf = self._dgram
        got = 0
        for _ in range(_TLS_READS):
            n = tlsio.read(c.ssl, buf)
            if n is None:
                return got
            if not n:
                raise tlsio.TlsError("closed by the peer")
            got += n
            if c.on_data is not None:
                c.on_data(c, bytes(self._dgram_mv[:n]))
            if c.closed:
                return got
        if c not in self._more:
            self._more.append(c)        # maybe more inside the TLS layer: the next pass does not wait
        return got

    def _tls_timers(self, now):
        for c in list(self._hs):
            if c.closed:
                self._hs.remove(c)
            elif ticks_diff(now, c.hs_by) >= 0:
                self._hs.remove(c)
                c.error = "TLS handshake not over in %d s" % (_HS_MS // 1000)
                self._fail(c)

    # -- polling
    def _key(self, obj):
        if _MP:
            return obj
        return obj if isinstance(obj, int) else obj.fileno()

    def _register(self, obj, fn, mask=_POLLIN):
        self.poller.register(obj, mask)
        self.handlers[self._key(obj)] = fn          # fn(poll event flags)

    def _unregister(self, obj):
        try:
            self.poller.unregister(obj)
        except (KeyError, ValueError, OSError):
            pass
        self.handlers.pop(self._key(obj), None)

    def _on_udp(self, s, handler):
        # one datagram per poll event: poll is level-triggered, so the next pass reads the next one, and the empty
        # socket's EAGAIN is never raised. The datagram is read into a buffer made at boot: MicroPython has no
        # recvfrom_into, and its recvfrom(n) wants n bytes in one piece (on a phone's heap, after some calls, 2 KB
        # often is not), so the sender comes from a 1-byte MSG_PEEK (both the unix and the ESP32 port take flags)
        # and dgram.recv_into takes the datagram (socket readinto would join a burst of datagrams into one). The
        # message itself is then copied out at its own size.
        data = None
        try:
            if not _MP:
                n, addr = s.recvfrom_into(self._dgram)
                src = (addr[0], addr[1])
            elif _recv1 is not None:
                addr = s.recvfrom(1, _PEEK)[1]
                n = _recv1(s, self._dgram)
                src = _mp_addr(addr)
            else:                           # a stock MicroPython: the read allocates the datagram's room
                data, addr = s.recvfrom(_DGRAM_MAX)
                n = len(data)
                src = _mp_addr(addr)
        except OSError:
            return
        if not n:
            return
        self.rx += 1
        if n >= _DGRAM_MAX:
            self.dropped += 1           # truncated: a UDP message this large should have come over TCP
            for p in self.phones:
                p.emit("err datagram from %s:%d larger than %d bytes dropped" % (src[0], src[1], _DGRAM_MAX - 1))
            return
        try:
            if data is None:
                data = bytes(self._dgram_mv[:n])
        except MemoryError:
            self.dropped += 1
            for p in self.phones:
                p.emit("err heap: a %d-byte datagram dropped, no room for it" % n)
            return
        if self.pcap is not None and self._is_sip(s):
            self.pcap.write(data, src, self._sockname(s))
        handler(data, src)

    def _on_into(self, u):
        s = u.sock
        buf = u.buf
        try:
            if not _MP:
                if u.peer is not None:
                    n = s.recv_into(buf)
                    if n:
                        u.handler(n, u.peer)
                    return
                n, addr = s.recvfrom_into(buf)
                src = (addr[0], addr[1])
            elif _recv1 is None:         # a stock MicroPython: allocates a packet per read
                data, addr = s.recvfrom(len(buf))
                n = len(data)
                buf[:n] = data
                src = u.peer or _mp_addr(addr)
            else:
                # connected: the sender is known and the read allocates nothing; otherwise the sender comes from a
                # 1-byte peek (see _on_udp), only until the peer is known
                addr = None if u.peer is not None else s.recvfrom(1, _PEEK)[1]
                n = _recv1(s, buf)
                if not n:
                    return
                src = u.peer or _mp_addr(addr)
        except OSError:
            return      # empty, or an ICMP error reported on a connected socket (the peer's port closed)
        u.handler(n, src)

    def _on_console(self):
        data = self.io.read()
        if data is None:
            self._unregister(self.io.pollable)       # host gone: keep the phone running (or stop, on the desktop)
            if self.stop_on_eof:
                self.stop()
            return
        # bytes go into a line buffer made once; a line is decoded when it ends (the console allocates per
        # command, not per character)
        buf = self._line
        for b in data:
            n = self._ln
            if b == 10 or b == 13:
                self._ln = 0
                if 0 < n <= _LINE_MAX:
                    line = text(bytes(self._line_mv[:n]))
                    if line.strip():
                        self.console.handle_line(line)
            elif n < _LINE_MAX:
                buf[n] = b
                self._ln = n + 1
            elif n == _LINE_MAX:            # a line that never ends is garbage, not a command: dropped to its end
                self._ln = n + 1
                self.console.write("err line too long")

    def stop(self):
        self.stopped = True

    def run_once(self, max_wait_ms=_FRAME_MS):
        start = now = self.clock()
        wait = max_wait_ms
        for p in self.phones:
            d = p.next_deadline()
            if d is not None:
                wait = max(0, min(wait, ticks_diff(d, now)))
        if self._dead or self._more:
            wait = 0
        t0 = self.clock()
        if _MP:
            # ipoll yields one reused tuple where poll() builds a list of tuples every pass; the events are copied
            # into preallocated slots first because a handler may register or close sockets (ipoll must not see
            # the poll set change under it)
            k = 0
            evo = self._evo
            evf = self._evf
            for obj, flags in self.poller.ipoll(wait):
                if k < _MAX_EVENTS:
                    evo[k] = obj
                    evf[k] = flags
                    k += 1
            t1 = self.clock()
            for i in range(k):
                fn = self.handlers.get(evo[i])
                evo[i] = None
                if fn is not None:
                    self._guard(fn, evf[i])
        else:
            evs = self.poller.poll(wait)
            t1 = self.clock()
            for ev in evs:
                fn = self.handlers.get(ev[0])
                if fn is not None:
                    self._guard(fn, ev[1])
        while self._dead:
            c = self._dead.pop(0)
            if c.on_close is not None:
                self._guard(c.on_close, c)
        if self._more:
            more, self._more = self._more, []
            for c in more:
                if not c.closed:
                    self._guard(self._on_tls, c)
        if self._hs:
            self._guard(self._tls_timers, self.clock())
        now = self.clock()
        for fn in self._ticks:
            self._guard(fn, now)
        # the pass's own work: all but the time spent waiting in poll (a GC pause inside it counts)
        busy = ticks_diff(self.clock(), t1) + ticks_diff(t0, start)
        if busy > self.max_pass_ms:
            self.max_pass_ms = busy

    def _guard(self, fn, arg):
        # last line of defence on a handset: a bug met by one packet or timer is reported on the console and the
        # phone keeps running (the tests drive the cores without this guard, so such bugs still fail them)
        try:
            fn(arg)
        except MemoryError as e:
            # the heap could not take this datagram, timer or frame now: what it allocated is garbage once this
            # returns, and its input is lost as a dropped datagram is (a UDP peer repeats a request; a timer's
            # transition did not happen and the session's own timers end it). Counted apart from bugs.
            # relieve() then gives back what only saves work so the repeat finds room: under a storm a heap this
            # full otherwise refuses datagram after datagram (fragments of <1 KB free)
            self.oom += 1
            self.relieve()
            for p in self.phones:
                p.emit("err heap: %s" % e)
        except Exception as e:
            self.crashes += 1
            line = "err internal %s: %s" % (type(e).__name__, e)
            for p in self.phones:
                p.emit(line)
            if self.console is not None and not self.phones:
                self.console.write(line)
            if _MP:
                sys.print_exception(e)  # type: ignore[attr-defined]
            else:
                import traceback  # type: ignore[import-not-found]  # CPython (the desktop simulator) only
                traceback.print_exc()

    def relieve(self):
        """The heap ran out: free the DNS cache and what the phones can shed (kept responses), and collect, so what
        comes next may find a contiguous block. (A reserve block kept for this was tried: its 2 KB, missing for
        good, failed the G.722 call in 96 KB half the time.)"""
        self._dns.clear()
        for p in self.phones:
            p.shed()
        if _MP:
            import gc
            gc.collect()

    def run(self, duration_ms=None, until=None):
        start = self.clock()
        while not self.stopped:
            self.run_once()
            if duration_ms is not None and ticks_diff(self.clock(), start) >= duration_ms:
                break
            if until is not None and until():
                break


def _bound(kind, host, port):
    """A non-blocking socket of kind bound to host:port (address reuse where the port allows it)."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except (AttributeError, OSError):
        pass
    s.bind(socket.getaddrinfo(host, port)[0][-1])
    s.setblocking(False)
    return s


def _mp_addr(addr):
    # MicroPython's recvfrom returns a sockaddr bytes object on some ports, a tuple on others
    if isinstance(addr, tuple):
        return (addr[0], addr[1])
    port = addr[2] << 8 | addr[3]
    return ("%d.%d.%d.%d" % (addr[4], addr[5], addr[6], addr[7]), port)
