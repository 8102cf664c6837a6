# phonectl fuzz: a phone on the internet gets malformed packets. This throws mutated SIP datagrams (seeded from the
# RFC 4475 torture corpus, a phone's usual messages and the requests of a live dialog with it) and junk RTP/RTCP at
# a running phone over UDP, checks every `--every` datagrams that it still answers OPTIONS and, when it started the
# phone itself, that its loop caught no exception and its heap after GC came back to where it was.
import os
import random
import socket
import time

from host_tools.runtime import ROOT, RUNTIMES

CONFORMANCE = [os.path.join(ROOT, "..", "shared", "conformance", "rfc4475"),
               os.path.join(os.path.dirname(ROOT), "shared", "conformance", "rfc4475")]
UDP_MAX = 65507
_WINDOW = 64        # datagrams (a KB counts as one) sent before waiting for the phone to catch up


def register(sub):
    p = sub.add_parser("fuzz", help="throw mutated SIP and RTP at a phone over UDP; it must keep answering",
                       description="Mutation fuzzing over UDP: RFC 4475 messages, a phone's usual requests and a "
                                   "live dialog's requests with byte flips, truncation, repeated and folded headers, "
                                   "huge Content-Length, NUL, invalid UTF-8 and 64 KB lines, plus junk RTP/RTCP. "
                                   "With --runtime it starts a phone (CPython or the frozen MicroPython in an "
                                   "ESP32-sized heap) and also checks its loop crashes and heap; with --target it "
                                   "fuzzes a phone already running (a handset on the LAN) and checks OPTIONS only.")
    p.add_argument("--runtime", choices=RUNTIMES, default="micropython")
    p.add_argument("--target", help="HOST:PORT of a running phone (instead of starting one)")
    p.add_argument("--count", type=int, default=10000, help="SIP datagrams to send (default 10000)")
    p.add_argument("--seed", type=int, default=4475)
    p.add_argument("--every", type=int, default=200, help="check OPTIONS after this many datagrams")
    p.add_argument("--heap", type=int, default=None, help="micropython: heap bytes (default: the tests' 96000)")
    p.add_argument("--workdir", default=os.path.join(ROOT, "build", "fuzz"))
    p.set_defaults(func=run)


# -- seeds ---------------------------------------------------------------------------------------------------------
def _msg(start, headers, body=b""):
    return (start + "\r\n" + "".join(h + "\r\n" for h in headers) + "Content-Length: %d\r\n\r\n" % len(body)
            ).encode() + body


def sdp(port, sess=1):
    return ("v=0\r\no=fuzz %d %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
            % (sess, sess, port)).encode()


def phone_messages(user, host, port, me):
    """A phone's usual traffic addressed to user@host:port, sent from `me` (host, port): out-of-dialog requests and
    responses to transactions it never started."""
    via = "Via: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bK%%s" % me
    to = "To: <sip:%s@%s>" % (user, host)
    frm = "From: <sip:fuzz@%s>;tag=f%%s" % me[0]
    ruri = "sip:%s@%s:%d" % (user, host, port)
    out = []
    for i, (method, extra, body) in enumerate((
            ("OPTIONS", ["Accept: application/sdp"], b""),
            ("INVITE", ["Contact: <sip:fuzz@%s:%d>" % me, "Content-Type: application/sdp",
                        "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, NOTIFY, REFER, PRACK",
                        "Supported: 100rel, timer, replaces", "Session-Expires: 90;refresher=uac"], sdp(me[1] + 2)),
            ("CANCEL", [], b""), ("BYE", [], b""), ("ACK", [], b""),
            ("MESSAGE", ["Content-Type: text/plain"], b"hello"),
            ("NOTIFY", ["Event: message-summary", "Subscription-State: active;expires=3600",
                        "Content-Type: application/simple-message-summary"],
             b"Messages-Waiting: yes\r\nVoice-Message: 2/8 (0/2)\r\n"),
            ("REFER", ["Refer-To: <sip:carol@127.0.0.1:9>", "Contact: <sip:fuzz@%s:%d>" % me], b""),
            ("SUBSCRIBE", ["Event: dialog", "Expires: 60", "Contact: <sip:fuzz@%s:%d>" % me], b""),
            ("INFO", ["Content-Type: application/dtmf-relay"], b"Signal=5\r\nDuration=160\r\n"),
            ("UPDATE", [], b""), ("PRACK", ["RAck: 1 1 INVITE"], b""), ("REGISTER", ["Expires: 60"], b""))):
        tag = "%d" % i
        out.append(_msg("%s %s SIP/2.0" % (method, ruri), [via % tag, "Max-Forwards: 70", frm % tag, to,
                        "Call-ID: seed-%d@fuzz" % i, "CSeq: %d %s" % (i + 1, method)] + extra, body))
    for code, reason in ((100, "Trying"), (180, "Ringing"), (200, "OK"), (401, "Unauthorized"),
                         (407, "Proxy Authentication Required"), (486, "Busy Here"), (302, "Moved")):
        extra = []
        if code == 401:
            extra = ['WWW-Authenticate: Digest realm="x", nonce="abc", qop="auth", algorithm=MD5']
        elif code == 407:
            extra = ['Proxy-Authenticate: Digest realm="x", nonce="abc", algorithm=SHA-256, stale=true']
        elif code == 302:
            extra = ["Contact: <sip:elsewhere@127.0.0.1:9>"]
        out.append(_msg("SIP/2.0 %d %s" % (code, reason), [
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKuphone%d" % (host, port, code), frm % "r", to + ";tag=x",
            "Call-ID: resp-%d@fuzz" % code, "CSeq: 1 INVITE"] + extra))
    return out


def conformance_messages():
    for d in CONFORMANCE:
        if os.path.isdir(d):
            out = []
            for name in sorted(os.listdir(d)):
                if name.endswith(".dat"):
                    with open(os.path.join(d, name), "rb") as f:
                        out.append(f.read())
            return out
    return []


# -- mutations -----------------------------------------------------------------------------------------------------
_NUMBERS = [b"-1", b"99999999999", b"4294967296", b"0x10", b"", b" ", b"1.5", b"1e9", b"\xd9\xa1"]
_BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80\x80", b"\xfe\xfe"]


def _lines(b):
    return bytes(b).split(b"\r\n")


def mutate(rng, data):
    """One mutation of a datagram (bytes -> bytes); stacked one to three deep."""
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        data = _mutate1(rng, data) or data
    return data[:UDP_MAX]


def _mutate1(rng, data):
    op = rng.randrange(16)
    b = bytearray(data)
    if not b:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    if op == 0:                                     # flip bytes
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == 1:                                   # truncate
        b = b[:rng.randrange(len(b))]
    elif op == 2:                                   # a header repeated (up to 200 times)
        lines = _lines(b)
        i = rng.randrange(len(lines))
        lines[i:i] = [lines[i]] * rng.choice((1, 2, 5, 50, 200))
        b = bytearray(b"\r\n".join(lines))
    elif op == 3:                                   # drop a line
        lines = _lines(b)
        del lines[rng.randrange(len(lines))]
        b = bytearray(b"\r\n".join(lines))
    elif op == 4:                                   # swap two lines
        lines = _lines(b)
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        b = bytearray(b"\r\n".join(lines))
    elif op == 5:                                   # odd numbers where numbers are
        text = bytes(b)
        for word in (b"CSeq: ", b"Content-Length: ", b"Expires: ", b"Max-Forwards: ", b"m=audio ", b"RAck: ",
                     b"SIP/2.0 ", b"expires=", b"rport=", b"a=rtpmap:"):
            if rng.random() < 0.5:
                text = text.replace(word, word + rng.choice(_NUMBERS), 1)
        b = bytearray(text)
    elif op == 6:                                   # random bytes inserted
        pos = rng.randrange(len(b) + 1)
        b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    elif op == 7:                                   # a body that lies about itself
        b = bytearray(bytes(b).replace(b"application/sdp", rng.choice(
            [b"application/sdp;x", b"text/plain", b"", b"multipart/mixed;boundary=", b"application/sdp\x00"])))
    elif op == 8:                                   # a header folded onto continuation lines
        lines = _lines(b)
        i = rng.randrange(len(lines))
        parts = lines[i].split(b" ")
        if len(parts) > 1:
            k = rng.randrange(1, len(parts))
            lines[i] = b" ".join(parts[:k]) + rng.choice((b"\r\n ", b"\r\n\t", b"\r\n  \r\n ")) + b" ".join(parts[k:])
        b = bytearray(b"\r\n".join(lines))
    elif op == 9:                                   # huge or wrong Content-Length
        text = bytes(b)
        cl = rng.choice([b"4294967296", b"99999999", b"2147483648", b"-5", b"65536", b"0", b"1"])
        if b"Content-Length:" in text:
            head, _, rest = text.partition(b"Content-Length:")
            text = head + b"Content-Length: " + cl + b"\r\n" + rest.partition(b"\r\n")[2]
        else:
            text = text.replace(b"\r\n\r\n", b"\r\nl: " + cl + b"\r\n\r\n", 1)
        b = bytearray(text)
    elif op == 10:                                  # NUL bytes
        for _ in range(rng.randrange(1, 4)):
            b.insert(rng.randrange(len(b) + 1), 0)
    elif op == 11:                                  # invalid UTF-8 in a line
        pos = rng.randrange(len(b) + 1)
        b[pos:pos] = rng.choice(_BAD_UTF8)
    elif op == 12:                                  # a 64 KB line (cut to what one datagram holds)
        lines = _lines(b)
        i = rng.randrange(len(lines))
        lines[i] = lines[i] + bytes([rng.choice(b"a;,=\" <>@")]) * (UDP_MAX - len(b) - 4)
        b = bytearray(b"\r\n".join(lines))
    elif op == 13:                                  # case and whitespace games with header names
        lines = _lines(b)
        i = rng.randrange(len(lines))
        name, sep, val = lines[i].partition(b":")
        if sep:
            name = rng.choice((name.upper(), name.lower(), name + b" \t", b" " + name, name.swapcase()))
            val = rng.choice((val, val.strip(), b"\t" + val + b"   ", b""))
            lines[i] = name + b":" + val
        b = bytearray(b"\r\n".join(lines))
    elif op == 14:                                  # line endings: bare LF, bare CR, doubled
        text = bytes(b)
        b = bytearray(text.replace(b"\r\n", rng.choice((b"\n", b"\r", b"\r\r\n", b"\n\r")),
                                   rng.choice((1, 3, -1))))
    else:                                           # brackets, quotes and parameters opened and never closed
        text = bytes(b)
        for c in (b"<", b'"', b";", b"=", b"@", b"[", b":"):
            if rng.random() < 0.3 and c in text:
                k = text.index(c)
                text = text[:k] + c * rng.choice((1, 2, 40)) + text[k:]
        b = bytearray(text)
    return bytes(b)


def junk_rtp(rng):
    """A datagram for an RTP or RTCP port: random, or RTP/RTCP-shaped with lying lengths, counts and extensions."""
    n = rng.randrange(0, 300)
    pkt = bytearray(rng.randrange(256) for _ in range(n))
    kind = rng.randrange(4)
    if kind == 1 and n >= 12:
        pkt[0] = 0x80 | rng.choice((0, 0x10, 0x20, 0x0f, 0x3f))     # version 2, extension/padding/CSRC bits
        pkt[1] = rng.choice((0, 8, 9, 101, 0x80, 0xe5))
    elif kind == 2 and n >= 8:
        pkt[0] = 0x80 | rng.randrange(32)                           # RTCP: version 2, report count
        pkt[1] = rng.choice((200, 201, 202, 203, 204))
        pkt[2], pkt[3] = rng.randrange(256), rng.randrange(256)     # a length that may lie
    elif kind == 3 and n >= 12:
        pkt[0] = 0xa0                                               # padding bit with a padding count past the end
        pkt[-1] = 255
    return bytes(pkt)


# -- a live dialog with the phone ----------------------------------------------------------------------------------
class Peer:
    """The fuzzer's own SIP endpoint on one UDP socket: pings with OPTIONS, sets up a call with the phone (which
    answers automatically) and makes that dialog's requests, then mutates them."""

    def __init__(self, target, user):
        self.target = target
        self.user = user
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.me = self.sock.getsockname()
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.n = 0
        self.statuses = {}
        self.dialog = None      # (call_id, our tag, their tag, cseq, phone's media port)

    def _ruri(self):
        return "sip:%s@%s:%d" % (self.user, self.target[0], self.target[1])

    def _req(self, method, call_id, ftag, ttag, cseq, extra=(), body=b""):
        self.n += 1
        return _msg("%s %s SIP/2.0" % (method, self._ruri()), [
            "Via: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bKfz%d" % (self.me[0], self.me[1], self.n), "Max-Forwards: 70",
            "From: <sip:fuzz@%s>;tag=%s" % (self.me[0], ftag),
            "To: <sip:%s@%s>%s" % (self.user, self.target[0], ";tag=" + ttag if ttag else ""),
            "Call-ID: %s" % call_id, "CSeq: %d %s" % (cseq, method)] + list(extra), body)

    def send(self, data):
        try:
            self.sock.sendto(data, self.target)
        except OSError:
            pass                        # the kernel's buffer is full: a datagram lost, as on a real network

    def drain(self):
        """Read whatever the phone answered (counting the statuses); -> the messages."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(65535)
                out.append(data)
                if data.startswith(b"SIP/2.0 "):
                    code = data[8:11].decode("latin-1")
                    self.statuses[code] = self.statuses.get(code, 0) + 1
        except OSError:
            pass
        finally:
            self.sock.setblocking(True)
        return out

    def _wait(self, call_id, pred, timeout):
        end = time.time() + timeout
        while time.time() < end:
            self.sock.settimeout(max(0.01, end - time.time()))
            try:
                data = self.sock.recv(65535)
            except OSError:
                continue
            finally:
                self.sock.settimeout(None)
            if data.startswith(b"SIP/2.0 "):
                code = data[8:11].decode("latin-1")
                self.statuses[code] = self.statuses.get(code, 0) + 1
                if ("Call-ID: %s\r\n" % call_id).encode() in data and pred(int(code), data):
                    return data
        return None

    def ping(self, tries=5, timeout=2.0):
        """OPTIONS until the phone answers 200 (tries times, each waited for `timeout` s: 10 s in all, where an RFC
        3261 client would retransmit for 32 s before Timer F gives up); -> True when it did. A phone whose heap a
        storm has filled drops a request or two until its own timers free sessions: a repeat must get through."""
        for _ in range(tries):
            cid = "ping-%d@fuzz" % self.n
            self.send(self._req("OPTIONS", cid, "p%d" % self.n, None, 1))
            if self._wait(cid, lambda c, d: c == 200, timeout):
                return True
        return False

    def call(self, timeout=5.0):
        """INVITE the phone (it auto-answers) and ACK its 200; -> the dialog's requests to mutate, or [] when the
        phone did not answer (all lines taken is a fair answer)."""
        cid = "call-%d@fuzz" % self.n
        ftag = "c%d" % self.n
        hs = ["Contact: <sip:fuzz@%s:%d>" % self.me, "Content-Type: application/sdp"]
        self.send(self._req("INVITE", cid, ftag, None, 1, hs, sdp(self.rtp.getsockname()[1])))
        resp = self._wait(cid, lambda c, d: c >= 200, timeout)
        if resp is None or not resp.startswith(b"SIP/2.0 200"):
            if resp is not None:
                self.send(self._req("ACK", cid, ftag, _tag(resp), 1))
            return []
        ttag = _tag(resp)
        self.send(self._req("ACK", cid, ftag, ttag, 1))
        media = _media_port(resp)
        self.dialog = (cid, ftag, ttag, media)
        reqs = []
        for i, (m, extra, body) in enumerate((
                ("INFO", ["Content-Type: application/dtmf-relay"], b"Signal=5\r\nDuration=160\r\n"),
                ("INVITE", ["Contact: <sip:fuzz@%s:%d>" % self.me, "Content-Type: application/sdp"],
                 sdp(self.rtp.getsockname()[1], 2)),
                ("UPDATE", ["Contact: <sip:fuzz@%s:%d>" % self.me], b""),
                ("NOTIFY", ["Event: refer", "Subscription-State: active", "Content-Type: message/sipfrag"],
                 b"SIP/2.0 200 OK\r\n"),
                ("REFER", ["Refer-To: <sip:nobody@127.0.0.1:9>", "Contact: <sip:fuzz@%s:%d>" % self.me], b""),
                ("OPTIONS", [], b""), ("BYE", [], b""), ("ACK", [], b""), ("CANCEL", [], b""))):
            reqs.append(self._req(m, cid, ftag, ttag, 10 + i, extra, body))
        return reqs

    def hangup(self):
        if self.dialog:
            cid, ftag, ttag, _ = self.dialog
            self.send(self._req("BYE", cid, ftag, ttag, 100))
            self._wait(cid, lambda c, d: c >= 200, 2.0)
            self.dialog = None

    def close(self):
        self.sock.close()
        self.rtp.close()


def _tag(resp):
    for line in resp.split(b"\r\n"):
        if line.lower().startswith((b"to:", b"t:")) and b";tag=" in line:
            return line.split(b";tag=")[1].split(b";")[0].decode("latin-1")
    return None


def _media_port(resp):
    for line in resp.split(b"\r\n"):
        if line.startswith(b"m=audio "):
            try:
                return int(line.split()[1])
            except ValueError:
                return None
    return None


def fuzz(target, user, count, seed=4475, every=200, progress=None, probe=None):
    """Send `count` mutated SIP datagrams (and a junk RTP/RTCP datagram per 5) at the phone at target. Every `every`
    datagrams the phone must answer OPTIONS, and a fresh call is set up every 2000 so dialog mutations hit a live
    dialog. -> {"sent", "rtp", "pings", "failed_at" (None or the datagram count when OPTIONS went unanswered),
    "statuses", "calls"}"""
    rng = random.Random(seed)
    peer = Peer(target, user)
    seeds = conformance_messages() + phone_messages(user, target[0], target[1], peer.me)
    out = {"sent": 0, "rtp": 0, "pings": 0, "syncs": 0, "failed_at": None, "calls": 0}
    dialog = []
    t0 = time.time()
    queued = 0
    try:
        for i in range(count):
            if i % 2000 == 0:
                peer.hangup()
                dialog = peer.call()
                out["calls"] += bool(dialog)
            pool = dialog if dialog and rng.random() < 0.4 else seeds
            data = mutate(rng, rng.choice(pool))
            peer.send(data)
            out["sent"] += 1
            # flow control: the phone's socket buffer holds a few hundred small datagrams, or three of 64 KB; past
            # that the kernel drops them and the fuzz would test nothing. An OPTIONS answered means the phone has
            # read everything sent before it.
            queued += 1 + len(data) // 1024
            if queued >= _WINDOW and (i + 1) % every:
                queued = 0
                peer.drain()
                out["syncs"] += 1
                if not peer.ping():
                    out["failed_at"] = i + 1
                    break
            if i % 5 == 0 and peer.dialog and peer.dialog[3]:
                port = peer.dialog[3] + rng.randrange(2)       # RTP or RTCP
                try:
                    peer.rtp.sendto(junk_rtp(rng), (target[0], port))
                    out["rtp"] += 1
                except OSError:
                    pass
            if (i + 1) % every == 0:
                queued = 0
                peer.drain()
                out["pings"] += 1
                if not peer.ping():
                    out["failed_at"] = i + 1
                    break
                if progress:
                    progress(i + 1)
                if probe:
                    probe()
        peer.hangup()
        if out["failed_at"] is None:
            out["pings"] += 1
            if not peer.ping():
                out["failed_at"] = out["sent"]
    finally:
        peer.drain()
        out["statuses"] = dict(sorted(peer.statuses.items()))
        out["seconds"] = time.time() - t0
        peer.close()
    return out


# -- a phone started for the run -----------------------------------------------------------------------------------
def fuzz_phone(runtime, count, workdir, seed=4475, every=200, heap=None, drain_s=30, progress=None, t1_ms=100,
               warm=4000):
    """Start a phone on `runtime` (auto-answer; short SIP timers so what the fuzz leaves ends soon), fuzz it, wait
    until its sessions are gone, and read its loop and heap figures. -> the fuzz() result plus "crashes",
    "dropped", "sessions_left", "heap_start" (bytes in use after GC once started), "heap_before" (after a warm-up of
    `warm` datagrams with another seed, settled), "heap_after" (after the fuzz, settled; -1 where the runtime has no
    figure), "clean" (no traceback printed) and "log" (the phone's log file).
    The warm-up takes what a phone allocates once and keeps after its first storm: on MicroPython ~10 KB within
    the first ~4,000 datagrams (two calls), then flat over further rounds of 4,000 (measured: +0.4, +0.1, -3 KB).
    Modules imported on first use are part of it but not all (with every module imported first it is still ~6 KB;
    not pinned down). "Heap flat" is then measured between two settled points of a phone that has met the storm,
    where a leak per datagram or per call would show."""
    from host_tools.phoneproc import PhoneProc, phone_config
    # no per-source rate limit (sip.rate_limit): the fuzzer sends from one socket as fast as it can, and the
    # parser, not the gate, is what it is after
    raw = phone_config("phone", sip={"t1_ms": t1_ms, "t2_ms": 1000, "rate_limit": 0}, media={"rtp_timeout_s": 5},
                       features={"auto_answer": True, "auto_answer_delay_ms": 0, "ring_timeout_s": 5})
    p = PhoneProc(runtime, raw, workdir, "fuzz-" + runtime, heap)
    target = ("127.0.0.1", p.port)

    def settle():
        # the sessions the fuzz left end by their own timers, then the last answered transactions (Timer J)
        end = time.time() + drain_s
        while time.time() < end and p.st()["sessions"]:
            time.sleep(0.5)
        time.sleep(64 * t1_ms / 1000.0 + 1)
        return p.mem(True)["alloc"]
    try:
        ans, _ = p.cmd("echo up", timeout=30)
        assert ans == "ok up", (ans, p.tail())
        start = p.mem(True)["alloc"]
        if warm:
            w = fuzz(target, "phone", warm, seed + 1, every)
            assert w["failed_at"] is None, ("warm-up", w, p.tail())
        before = settle()
        rx0 = p.st()["rx"]
        oom0 = p.st()["oom"]
        peak = [before, 0]

        def probe():        # the heap in use at each check (garbage included: what the allocator really had)
            m = p.mem()
            if m["alloc"] > peak[0]:
                peak[0] = m["alloc"]
            peak[1] = max(peak[1], len(p.st()["sessions"]))
        res = fuzz(target, "phone", count, seed, every, progress, probe)
        after = settle()
        st = p.st()
        res.update(crashes=st["crashes"], dropped=st["dropped"], oom=st["oom"] - oom0, rx=st["rx"] - rx0,
                   sessions_left=len(st["sessions"]), heap_start=start, heap_before=before, heap_after=after,
                   heap_peak=peak[0], sessions_peak=peak[1])
    finally:
        p.close()
    err = "".join(p.err)
    res["clean"] = not p.saw("Traceback") and not p.saw("err internal") and "Traceback" not in err
    res["log"] = os.path.join(p.dir, p.name + ".log")
    return res


def report(res, runtime=None):
    rate = res["sent"] / max(res["seconds"], 1e-3)
    rows = [("datagrams sent", res["sent"], "SIP, mutated, %.0f/s" % rate),
            ("RTP/RTCP junk", res["rtp"], "to the call's ports"),
            ("OPTIONS checks", res["pings"] + res["syncs"], "all answered" if res["failed_at"] is None
             else "unanswered after %d datagrams" % res["failed_at"]),
            ("calls set up", res["calls"], "dialogs whose requests were mutated")]
    if "crashes" in res:
        rows += [("datagrams read", res["rx"], "by the phone's SIP and RTCP sockets (pings and calls included)"),
                 ("loop crashes", res["crashes"], "target 0"),
                 ("datagrams dropped", res["dropped"], "oversized or unplaceable (counted, not crashes)"),
                 ("dropped for heap", res["oom"], "SIP messages the heap could not take (dropped, as if lost)"),
                 ("sessions left", res["sessions_left"], "after the drain (at most %d at a check)"
                  % res["sessions_peak"]),
                 ("heap at a check", res["heap_peak"], "most in use (bytes, garbage included)"),
                 ("heap after GC", "%d -> %d -> %d" % (res["heap_start"], res["heap_before"], res["heap_after"]),
                  "started -> warmed up -> after (bytes)"),
                 ("tracebacks", "none" if res["clean"] else "PRINTED", "see " + res["log"])]
    print("fuzz%s:" % (" on " + runtime if runtime else ""))
    for name, val, note in rows:
        print("  %-18s %14s   %s" % (name, val, note))
    print("  answers: %s" % " ".join("%s=%d" % kv for kv in res["statuses"].items()))


def ok(res):
    return res["failed_at"] is None and res.get("crashes", 0) == 0 and res.get("clean", True) and \
        res.get("sessions_left", 0) == 0


def run(args):
    step = max(args.count // 20, args.every)

    def progress(n):
        if n % step < args.every:
            print("  ... %d" % n, flush=True)
    if args.target:
        host, _, port = args.target.rpartition(":")
        res = fuzz((host, int(port)), "phone", args.count, args.seed, args.every, progress)
        report(res)
    else:
        res = fuzz_phone(args.runtime, args.count, os.path.join(args.workdir, args.runtime), args.seed, args.every,
                         args.heap, drain_s=90, progress=progress, t1_ms=500)
        report(res, args.runtime)
    return 0 if ok(res) else 1
