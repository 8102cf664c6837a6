# A lossy SIP/RTP relay on loopback for the fault tests and benches (CPython only). It sits between two phones as a
# stateless proxy (RFC 3261 16.11) that Record-Routes itself, so every request of their dialogs passes it, over UDP or
# TCP; with media=True it rewrites each SDP so that RTP and RTCP pass it too, and it impairs the RTP per direction:
# loss, duplication, reordering, stalls (a Wi-Fi-like burst: nothing for N ms, then all of it at once) and blackhole.
# It keeps what it did, the gaps between the packets it got from each side and the RFC 3550 A.8 jitter of what it
# sent on, so a test can hold the phones' own figures against them. `reset_tcp()` aborts every TCP connection it
# holds with a RST (SO_LINGER 0), as a NAT or a restarting proxy does to a phone.
import hashlib
import heapq
import random
import re
import select
import socket
import struct
import threading
import time

from host_tools.phoneproc import free_port, free_range

_COMPACT = {"v": "via", "i": "call-id", "f": "from", "t": "to", "l": "content-length", "c": "content-type",
            "m": "contact", "r": "refer-to"}


class Impair:
    """What the relay does to RTP going one way. stall_every_ms/stall_ms: every stall_every_ms the link holds what
    comes for stall_ms, then lets it all go at once (in order)."""

    def __init__(self, loss=0.0, dup=0.0, reorder=0.0, stall_every_ms=0, stall_ms=0, blackhole=False):
        self.loss, self.dup, self.reorder = loss, dup, reorder
        self.stall_every_ms, self.stall_ms, self.blackhole = stall_every_ms, stall_ms, blackhole


class Direction:
    """RTP one way through the relay: its impairment and its figures (counts, arrival gaps, A.8 jitter of the
    packets as they left the relay, in ms)."""

    def __init__(self, name, seed):
        self.name = name
        self.rng = random.Random(seed)
        self.impair = Impair()
        self.received = self.sent = self.dropped = self.duplicated = self.reordered = self.stalled = 0
        self.last_in = None
        self.max_gap_ms = 0.0           # longest time between two packets arriving from the sender
        self.gaps_over = {}             # threshold ms -> number of arrival gaps longer than it
        self.gap_log = []               # every arrival gap over 60 ms: (when, ms)
        self.jitter = 0.0               # A.8, in 8 kHz timestamp units
        self._transit = None
        self.held = None                # a packet kept back to be sent after the next one (reordering)
        self.stall_until = 0.0
        self.next_stall = None

    def figures(self):
        return {"received": self.received, "sent": self.sent, "dropped": self.dropped,
                "duplicated": self.duplicated, "reordered": self.reordered, "stalled": self.stalled,
                "jitter_ms": self.jitter / 8.0, "max_gap_ms": self.max_gap_ms, "gaps_over": dict(self.gaps_over)}

    def arrived(self, now):
        if self.last_in is not None:
            gap = (now - self.last_in) * 1000.0
            if gap > self.max_gap_ms:
                self.max_gap_ms = gap
            for t in (40, 60, 100):
                if gap > t:
                    self.gaps_over[t] = self.gaps_over.get(t, 0) + 1
            if gap > 60 and len(self.gap_log) < 1000:
                self.gap_log.append((now, gap))
        self.last_in = now
        self.received += 1

    def departed(self, now, data):
        # RFC 3550 A.8 on the relay's departure clock: what the receiver measures, less its own scheduling
        if len(data) < 12:
            return
        ts = struct.unpack_from("!I", data, 4)[0]
        transit = now * 8000.0 - ts
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < 8000 * 2:        # a timestamp jump (a new source) is not jitter
                self.jitter += (d - self.jitter) / 16.0
        self._transit = transit


class _Conn:
    def __init__(self, sock, peer):
        self.sock = sock
        self.peer = peer
        self.buf = b""


class Relay:
    """Start with start(), stop with stop(). users: {"bob": (host, port)} where an initial request for
    sip:bob@<relay> goes. transport "udp" or "tcp" (SIP; RTP is always UDP). media=True: RTP/RTCP through the relay."""

    def __init__(self, users, transport="udp", media=True, seed=1):
        self.users = dict(users)
        self.tport = transport
        self.media = media
        self.port = free_port()
        self.host = "127.0.0.1"
        self.lock = threading.Lock()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((self.host, self.port))
        self.udp.setblocking(False)
        self.listener = None
        if transport == "tcp":
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind((self.host, self.port))
            self.listener.listen(16)
            self.listener.setblocking(False)
        self.conns = {}             # socket -> _Conn (accepted or opened by us)
        self.out = {}               # (host, port) -> _Conn we opened, reused for requests there
        self.branches = {}          # our Via branch -> where the request came from: ("udp", addr) or ("tcp", _Conn)
        self.calls = {}             # Call-ID -> _Call
        self.media_socks = {}       # socket -> (call, side, rtcp)
        self.dirs = {"ab": Direction("ab", seed), "ba": Direction("ba", seed + 1)}
        self.sip_log = []           # (time, "in"/"out", first line) of every SIP message
        self.resets = 0
        self._q = []                # (due, n, sock, data, addr, direction or None)
        self._n = 0
        self._stop = False
        self._thread = None
        self.uri = "sip:%s:%d" % (self.host, self.port) + (";transport=tcp" if transport == "tcp" else "")

    # -- control -----------------------------------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        if self._thread is not None:
            self._thread.join(5)
        for s in list(self.conns) + list(self.media_socks) + [self.udp] + ([self.listener] if self.listener else []):
            try:
                s.close()
            except OSError:
                pass

    def target(self, user):
        """The URI a phone calls to reach `user` through the relay."""
        return "sip:%s@%s:%d" % (user, self.host, self.port) + (";transport=tcp" if self.tport == "tcp" else "")

    def impair(self, direction=None, **kw):
        """Set the impairment of "ab" (caller to callee), "ba", or both (None); no keywords = a clean link."""
        with self.lock:
            for name in ([direction] if direction else ["ab", "ba"]):
                d = self.dirs[name]
                d.impair = Impair(**kw)
                d.next_stall = None
                d.stall_until = 0.0

    def figures(self):
        """{"ab": {...}, "ba": {...}} as of now (a copy)."""
        with self.lock:
            return {k: d.figures() for k, d in self.dirs.items()}

    def reset_tcp(self):
        """Abort every TCP connection with a RST (the listener stays): the phones see their flows reset."""
        with self.lock:
            for s in list(self.conns):
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
                except OSError:
                    pass
            self.resets += len(self.conns)
            self.conns.clear()
            self.out.clear()

    # -- the loop ------------------------------------------------------------------------------------------------
    def _run(self):
        while not self._stop:
            with self.lock:
                socks = [self.udp] + list(self.conns) + list(self.media_socks)
                if self.listener is not None:
                    socks.append(self.listener)
                wait = 0.05
                if self._q:
                    wait = max(0.0, min(wait, self._q[0][0] - time.monotonic()))
            try:
                ready, _, _ = select.select(socks, [], [], wait)
            except (OSError, ValueError):
                continue            # a socket closed under us (reset_tcp): the next pass has the new set
            with self.lock:
                now = time.monotonic()
                for s in ready:
                    try:
                        self._ready(s, now)
                    except OSError:
                        self._drop_conn(s)
                self._flush(time.monotonic())

    def _ready(self, s, now):
        if s is self.udp:
            data, addr = s.recvfrom(65535)
            self._sip(data, ("udp", addr))
        elif s is self.listener:
            c, addr = s.accept()
            c.setblocking(False)
            self.conns[c] = _Conn(c, addr)
        elif s in self.conns:
            conn = self.conns[s]
            data = s.recv(65536)
            if not data:
                self._drop_conn(s)
                return
            conn.buf += data
            for msg in _frames(conn):
                self._sip(msg, ("tcp", conn))
        elif s in self.media_socks:
            data, addr = s.recvfrom(65535)
            self._media(s, data, addr, now)

    def _drop_conn(self, s):
        c = self.conns.pop(s, None)
        for k in [k for k, v in self.out.items() if v.sock is s]:
            del self.out[k]
        if c is not None:
            try:
                s.close()
            except OSError:
                pass

    def _flush(self, now):
        while self._q and self._q[0][0] <= now:
            _due, _n, sock, data, addr, d = heapq.heappop(self._q)
            self._send_media(sock, data, addr, d, now)

    def _later(self, due, sock, data, addr, d):
        self._n += 1
        heapq.heappush(self._q, (due, self._n, sock, data, addr, d))

    # -- SIP: a stateless proxy that Record-Routes itself ------------------------------------------------------------
    def _sip(self, data, src):
        if not data.strip():
            return                  # a CRLF keepalive
        head, sep, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        first = lines[0]
        hs = [_split(l) for l in lines[1:] if l]
        self.sip_log.append((time.monotonic(), "in", first))
        if first.startswith("SIP/2.0"):
            self._response(first, hs, body, src)
        else:
            self._request(first, hs, body, src)

    def _request(self, first, hs, body, src):
        method, ruri, _v = first.split(" ", 2)
        branch = _param(_first(hs, "via") or "", "branch") or ""
        # our Route (the Record-Route we put in the dialog) goes; the next one, else the Request-URI, is the hop
        routes = [i for i, (n, _v) in enumerate(hs) if n.lower() == "route"]
        if routes and self._ours(_uri_of(hs[routes[0]][1])):
            i = routes.pop(0)
            rest = _after_first(hs[i][1])
            if rest:
                hs[i] = (hs[i][0], rest)
                routes.insert(0, i)
            else:
                del hs[i]
                routes = [j - 1 for j in routes]
        hop_uri = _uri_of(hs[routes[0]][1]) if routes else ruri
        host, port, tp = _hostport(hop_uri)
        if self._ours(hop_uri):
            user = _user(ruri)
            if user not in self.users:
                return self._answer(first, hs, src, 404, "Not Found")
            host, port = self.users[user]
            tp = self.tport
        if method == "INVITE" and not _param(_first(hs, "to") or "", "tag"):
            hs.insert(0, ("Record-Route", "<%s;lr>" % self.uri))
        ours = "z9hG4bK" + hashlib.md5(("%s|%s" % (branch, src[1] if src[0] == "udp" else id(src[1]))).encode()
                                      ).hexdigest()[:20]
        if method == "ACK" and not branch:
            ours += "ack"
        self.branches[ours] = src
        if len(self.branches) > 2000:
            for k in list(self.branches)[:1000]:
                del self.branches[k]
        hs.insert(0, ("Via", "SIP/2.0/%s %s:%d;branch=%s" % (self.tport.upper(), self.host, self.port, ours)))
        body = self._sdp(hs, body, src)
        self._send_sip("%s %s SIP/2.0" % (method, ruri), hs, body, (tp or self.tport, (host, port)))

    def _response(self, first, hs, body, src):
        vias = [i for i, (n, _v) in enumerate(hs) if n.lower() in ("via", "v")]
        if not vias:
            return
        top = hs[vias[0]][1]
        first_via, rest = top.split(",", 1) if "," in top else (top, "")
        branch = _param(first_via, "branch")
        if rest.strip():
            hs[vias[0]] = (hs[vias[0]][0], rest.strip())
        else:
            del hs[vias[0]]
        back = self.branches.get(branch)
        if back is None:
            return
        body = self._sdp(hs, body, src)
        self._send_sip(first, hs, body, back)

    def _answer(self, first, hs, src, code, reason):
        keep = [(n, v) for n, v in hs if n.lower() in ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")]
        self._send_sip("SIP/2.0 %d %s" % (code, reason), keep, b"", src)

    def _send_sip(self, first, hs, body, dest):
        hs = [(n, v) for n, v in hs if n.lower() not in ("content-length", "l")]
        hs.append(("Content-Length", str(len(body))))
        data = ("%s\r\n%s\r\n\r\n" % (first, "\r\n".join("%s: %s" % h for h in hs))).encode() + body
        self.sip_log.append((time.monotonic(), "out", first))
        kind, where = dest
        if kind == "udp":
            try:
                self.udp.sendto(data, where)
            except OSError:
                pass
            return
        conn = where if isinstance(where, _Conn) else None
        if conn is not None and conn.sock not in self.conns:
            conn = None             # that connection was reset: 18.2.2, a new one to the sent-by would do; drop
            return
        if conn is None:
            conn = self.out.get(where)
            if conn is None or conn.sock not in self.conns:
                s = socket.create_connection(where, timeout=2)
                s.setblocking(False)
                conn = _Conn(s, where)
                self.conns[s] = conn
                self.out[where] = conn
        try:
            conn.sock.sendall(data)
        except OSError:
            self._drop_conn(conn.sock)

    def _ours(self, uri):
        h, p, _t = _hostport(uri)
        return h == self.host and p == self.port

    # -- media: SDP rewritten so RTP/RTCP pass the relay ---------------------------------------------------------
    def _sdp(self, hs, body, src):
        if not self.media or not body or "sdp" not in (_first(hs, "content-type") or "").lower():
            return body
        cid = _first(hs, "call-id")
        call = self.calls.get(cid)
        if call is None:
            call = self.calls[cid] = _Call(self, src)
        side = call.side_of(src)
        text = body.decode("latin-1")
        m = re.search(r"^m=audio (\d+)", text, re.M)
        c = re.search(r"^c=IN IP4 (\S+)", text, re.M)
        if not m or not c:
            return body
        call.media[side] = (c.group(1), int(m.group(1)))
        # the other side sends to the relay's socket that faces it; what comes there goes to `side`
        face = call.rtp[1 - side]
        text = re.sub(r"^m=audio \d+", "m=audio %d" % face, text, count=1, flags=re.M)
        text = re.sub(r"^c=IN IP4 \S+", "c=IN IP4 %s" % self.host, text, flags=re.M)
        text = re.sub(r"^o=(\S+ \S+ \S+ IN IP4) \S+", r"o=\1 %s" % self.host, text, count=1, flags=re.M)
        return text.encode("latin-1")

    def _media(self, sock, data, addr, now):
        call, side, rtcp = self.media_socks[sock]
        other = 1 - side
        # where `side` sends from is learnt here (symmetric RTP); the relay sends to the other side's SDP address
        dest = call.media[other]
        if dest is None:
            return
        out_sock = call.socks[other][1 if rtcp else 0]
        addr = (dest[0], dest[1] + (1 if rtcp else 0))
        if rtcp:
            try:
                out_sock.sendto(data, addr)
            except OSError:
                pass
            return
        d = self.dirs["ab" if side == 0 else "ba"]
        d.arrived(now)
        im = d.impair
        if im.blackhole or (im.loss and d.rng.random() < im.loss):
            d.dropped += 1
            return
        due = now
        if im.stall_every_ms:
            if d.next_stall is None:
                d.next_stall = now + im.stall_every_ms / 1000.0
            if now >= d.next_stall:
                d.stall_until = d.next_stall + im.stall_ms / 1000.0
                d.next_stall += im.stall_every_ms / 1000.0
            if now < d.stall_until:
                due = d.stall_until
                d.stalled += 1
        copies = 2 if im.dup and d.rng.random() < im.dup else 1
        if copies == 2:
            d.duplicated += 1
        if d.held is None and im.reorder and d.rng.random() < im.reorder:
            d.held = (out_sock, data, addr)         # goes out after the next packet
            d.reordered += 1
            self._later(now + 0.1, None, None, None, d)     # or by itself if none comes within 100 ms
            if copies == 2:
                self._later(due, out_sock, data, addr, d)
            return
        for _ in range(copies):
            self._later(due, out_sock, data, addr, d)
        if d.held is not None:
            h = d.held
            d.held = None
            self._later(due, h[0], h[1], h[2], d)

    def _send_media(self, sock, data, addr, d, now):
        if sock is None:            # the reorder deadline: a held packet with nothing after it goes now
            if d.held is not None:
                sock, data, addr = d.held
                d.held = None
            else:
                return
        try:
            sock.sendto(data, addr)
        except OSError:
            return
        d.sent += 1
        d.departed(now, data)


class _Call:
    """A call's media through the relay: side 0 is the caller (where its INVITE came from), side 1 the callee; each
    side has an RTP/RTCP socket pair of the relay facing it."""

    def __init__(self, relay, caller_src):
        self.caller = _src_key(caller_src)
        self.media = [None, None]       # (addr, port) each side asked for in its SDP
        self.socks = []
        self.rtp = []
        for side in (0, 1):
            base = free_range(2)
            pair = []
            for k in (0, 1):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((relay.host, base + k))
                s.setblocking(False)
                relay.media_socks[s] = (self, side, k == 1)
                pair.append(s)
            self.socks.append(pair)
            self.rtp.append(base)

    def side_of(self, src):
        return 0 if _src_key(src) == self.caller else 1


def _src_key(src):
    return src[1] if src[0] == "udp" else src[1].peer[0]


# -- SIP text helpers --------------------------------------------------------------------------------------------
def _split(line):
    n, _, v = line.partition(":")
    n = n.strip()
    return (_COMPACT.get(n.lower(), n) if len(n) == 1 else n, v.strip())


def _first(hs, name):
    for n, v in hs:
        if n.lower() == name:
            return v
    return None


def _param(value, name):
    for p in value.split(";")[1:]:
        k, _, v = p.partition("=")
        if k.strip().lower() == name:
            return v.strip().strip(">").split(",")[0]
    return None


def _uri_of(value):
    v = value.strip()
    if v.startswith("<") or "<" in v:
        return v[v.index("<") + 1:v.index(">")]
    return v.split(",")[0].split(";")[0]


def _after_first(value):
    """A Route value without its first entry (comma-separated outside <>)."""
    depth = 0
    for i, ch in enumerate(value):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            return value[i + 1:].strip()
    return ""


def _hostport(uri):
    u = uri.split(":", 1)[1] if ":" in uri else uri
    params = u.split(";")
    hp = params[0].split("@")[-1]
    host, _, port = hp.partition(":")
    tp = None
    for p in params[1:]:
        if p.lower().startswith("transport="):
            tp = p.split("=", 1)[1].lower()
    return host, int(port) if port.isdigit() else 5060, tp


def _user(uri):
    u = uri.split(":", 1)[1] if ":" in uri else uri
    return u.split("@")[0] if "@" in u else None


def _frames(conn):
    """Whole SIP messages out of a TCP connection's buffer (framed by Content-Length, RFC 3261 18.3)."""
    out = []
    while True:
        b = conn.buf.lstrip(b"\r\n")
        conn.buf = b
        end = b.find(b"\r\n\r\n")
        if end < 0:
            return out
        m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", b[:end])
        n = int(m.group(1)) if m else 0
        if len(b) < end + 4 + n:
            return out
        out.append(b[:end + 4 + n])
        conn.buf = b[end + 4 + n:]
