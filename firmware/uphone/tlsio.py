# TLS on a loop connection (SIP over TLS, RFC 3261 26.2 / RFC 5630): wrap a connected non-blocking TCP socket in a
# verifying client context and move bytes without ever blocking. MicroPython's `tls` (mbedtls, extmod/modtls_mbedtls.c)
# on the phone, CPython's `ssl` on the desktop; the loop (uphone/loop.py) polls the raw socket and calls these.
#
# Why the raw socket is polled and not the TLS object: on the unix port a poll set holding an object without a file
# descriptor turns every poll() into a 1 ms busy loop (extmod/modselect.c), and mbedtls keeps decrypted bytes the
# socket no longer shows, so the loop reads until the TLS layer says "would block" instead (loop.py _tls_read).
#
# Why the Gate: mbedtls_ssl_handshake() runs every handshake step whose records have arrived in one call, and the
# server's flight (Certificate, ServerKeyExchange, ServerHelloDone) arrives at once: one loop pass then did the
# certificate's ECDSA check, the key exchange's and our ECDHE key pair (~32 ms on the 32-bit unix runtime; many
# times that on an ESP32 at 240 MHz). The Gate is the stream mbedtls reads from: while the handshake runs it lets one
# TLS record through per loop pass and answers "would block" after it, so mbedtls stops between steps and the loop
# goes on (audio frames, other datagrams); the socket still holds the rest, so poll wakes the next pass at once.
# A step's own public-key work cannot be cut smaller from Python (mbedtls' restartable ECC is not in the binding).
import sys

_MP = sys.implementation.name == "micropython"
_EAGAIN = 11

if _MP:
    import io

    class Gate(io.IOBase):
        """The raw socket as the stream under mbedtls (MicroPython's io.IOBase: readinto/write/ioctl called from C).
        Errors come back as -errno (an exception must not unwind through mbedtls' C frames)."""

        def __init__(self, sock):
            self.s = sock
            self.gated = True       # during the handshake: one record per pass
            self.spent = False      # this pass's record has gone through
            self.want = 0           # body bytes of the record being read

        def readinto(self, buf):
            if self.spent:
                return None
            try:
                n = self.s.readinto(buf)
            except OSError as e:
                return -(e.args[0] if e.args and isinstance(e.args[0], int) else 5)
            if n and self.gated:
                # mbedtls reads a record as its 5-byte header, then exactly the body it announces
                if self.want == 0 and n == 5 and len(buf) == 5:
                    self.want = (buf[3] << 8) | buf[4]
                elif self.want:
                    self.want -= n
                    if self.want <= 0:
                        self.want = 0
                        self.spent = True
            return n

        def write(self, buf):
            try:
                return self.s.write(buf)
            except OSError as e:
                return -(e.args[0] if e.args and isinstance(e.args[0], int) else 5)

        def ioctl(self, req, arg):
            if req == 4:            # MP_STREAM_CLOSE: the TLS object was closed, close the socket under it
                try:
                    self.s.close()
                except OSError:
                    pass
            return 0
else:
    import ssl as _ssl


class TlsError(Exception):
    """The TLS connection cannot go on: the text says why (certificate refused, handshake failed, closed)."""


def wrap(ctx, sock, name):
    """A client TLS object over the connected socket, its handshake not begun; name is sent as SNI and checked
    against the server's certificate. -> (tls object, gate or None)."""
    try:
        if _MP:
            g = Gate(sock)
            return ctx.wrap_socket(g, server_hostname=name, do_handshake_on_connect=False), g
        return ctx.wrap_socket(sock, server_hostname=name, do_handshake_on_connect=False), None
    except (OSError, ValueError) as e:
        raise TlsError("TLS setup failed: %s" % _text(e))


def _text(e):
    msg = getattr(e, "verify_message", None) or str(e) or repr(e)
    return "; ".join([ln.strip() for ln in msg.split("\n") if ln.strip()]) or repr(e)


def _fail(e):
    # a ValueError from mbedtls is its verification report (mbedtls_x509_crt_verify_info's lines); CPython's
    # SSLCertVerificationError is a ValueError too
    if isinstance(e, ValueError):
        return TlsError("certificate refused: %s" % _text(e))
    return TlsError("TLS failed: %s" % _text(e))


def write(t, data):
    """Send data (at most one record's worth: see loop._TLS_CHUNK) -> bytes taken, or None when the TLS layer would
    block (the handshake waits for the server, or the socket is full: call again with the same bytes, as mbedtls
    and OpenSSL require). Drives the handshake while it is not over. Raises TlsError."""
    try:
        if _MP:
            return t.write(data)
        return t.send(data)
    except OSError as e:
        if _would_block(e):
            return None
        raise _fail(e)
    except ValueError as e:
        raise _fail(e)


def read(t, buf):
    """Read into buf -> bytes read, 0 at the end of the stream, None when nothing is there now. Drives the handshake
    while it is not over. Raises TlsError."""
    try:
        if _MP:
            return t.readinto(buf)
        return t.recv_into(buf)
    except OSError as e:
        if _would_block(e):
            return None
        if not _MP and isinstance(e, _ssl.SSLZeroReturnError):
            return 0
        raise _fail(e)
    except ValueError as e:
        raise _fail(e)


def _would_block(e):
    if not _MP and isinstance(e, (_ssl.SSLWantReadError, _ssl.SSLWantWriteError)):
        return True
    n = e.args[0] if e.args and isinstance(e.args[0], int) else None
    return n == _EAGAIN or n == -_EAGAIN


def handshake_done(t):
    """CPython: drive the handshake -> True once it is over. MicroPython's binding has no do_handshake: its first
    write/read runs it, so the loop learns it is over when one of them moves bytes."""
    if _MP:
        return False
    try:
        t.do_handshake()
        return True
    except OSError as e:
        if _would_block(e):
            return False
        raise _fail(e)
    except ValueError as e:
        raise _fail(e)


def describe(t):
    """'TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384' of an established connection (the console's tls line)."""
    try:
        c = t.cipher()
        return "%s %s" % (c[1], c[0])
    except (AttributeError, OSError, TypeError, IndexError):
        return "-"
