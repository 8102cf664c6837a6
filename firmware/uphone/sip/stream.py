# SIP over a byte stream (RFC 3261 18.3, RFC 5626 4.4.1): one reader per TCP connection frames messages by
# Content-Length (parse.split_stream), answers CRLF keepalives and bounds what a peer can make us buffer. Sans-I/O.
from uphone.compat import const
from uphone.sip.parse import split_stream

# what feed() reports, as (kind, payload) pairs
MSG = const(0)          # payload: one whole SIP message (bytes)
PING = const(1)         # the peer sent CRLFCRLF: answer PONG on the same connection (RFC 5626 4.4.1)
PONG = const(2)         # the peer answered our ping

PING_BYTES = b"\r\n\r\n"
PONG_BYTES = b"\r\n"
# what a peer can make a phone buffer: a connection is closed past these (the phone's whole heap is ~100 KB, and a
# SIP message is parsed into several times its size; a UDP one is at most 2 KB, see loop._DGRAM_MAX)
MAX_HEADER = const(4096)        # a header section that never ends
MAX_MESSAGE = const(8192)       # buffered without a whole message


class StreamError(Exception):
    """The peer broke framing or the limits: the connection must be closed (RFC 3261 18.3)."""


class StreamReader:
    def __init__(self, max_header=MAX_HEADER, max_message=MAX_MESSAGE):
        self.buf = b""
        self.max_header = max_header
        self.max_message = max_message
        self.awaiting_pong = False
        self._scan = 0          # where the search for the end of the header resumes (no rescans on a trickle)

    def ping(self):
        """Bytes of a keepalive ping; from now on a lone CRLF is its pong."""
        self.awaiting_pong = True
        return PING_BYTES

    def feed(self, data):
        """Add received bytes; -> [(MSG|PING|PONG, payload)] for what is now complete. Raises StreamError."""
        out = []
        b = self.buf + bytes(data) if self.buf else bytes(data)
        while b:
            if b[0] == 13:                        # CR: a keepalive between messages, or half of one
                if b[:4] == PING_BYTES:
                    out.append((PING, b""))
                    b = b[4:]
                    continue
                if len(b) == 1 or (len(b) == 2 and b == PONG_BYTES and not self.awaiting_pong) or \
                        (len(b) == 3 and b == b"\r\n\r"):
                    break                          # could still become a ping: wait for more
                if b[:2] != PONG_BYTES:
                    raise StreamError("stray CR between messages")
                b = b[2:]
                if self.awaiting_pong:
                    self.awaiting_pong = False
                    out.append((PONG, b""))
                continue                           # a lone CRLF we did not ask for is ignored
            i = b.find(b"\r\n\r\n", self._scan - 3 if self._scan > 3 else 0)
            if i < 0:
                self._scan = len(b)
                if len(b) > self.max_header:
                    raise StreamError("header section longer than %d bytes" % self.max_header)
                break
            try:
                msg, n = split_stream(b)
            except ValueError:
                raise StreamError("bad Content-Length")
            if msg is not None and n < i + 4:
                raise StreamError("negative Content-Length")
            if msg is None:
                self._scan = i
                if len(b) > self.max_message:
                    raise StreamError("no message within %d bytes" % self.max_message)
                break
            out.append((MSG, msg))
            b = b[n:]
            self._scan = 0
        self.buf = b
        return out

    def pending(self):
        return len(self.buf)
