# CA certificates and verifying TLS client contexts, shared by provisioning (HTTPS) and SIP over TLS: the CA file
# the config names (PEM or DER) -> DER certificates -> an SSLContext that requires the server's certificate to chain
# to them, be within its dates and name the host asked for. MicroPython's `tls` (mbedtls) on the phone, CPython's
# `ssl` on the desktop. Never micropython-lib's `ssl.SSLContext`: its __init__ sets CERT_NONE.

MAX_CA = 16384              # a CA certificate is 1-2 KB; a short chain in one PEM file fits


def load_ca(path, key="provisioning.ca"):
    """The CA certificate file (PEM, one or more certificates, or DER) -> list of DER certificates; ValueError
    naming the config key when it cannot be used.
    DER because MicroPython's mbedtls binding parses PEM only where MBEDTLS_PEM_PARSE_C is built (the ESP32's
    ESP-IDF mbedtls has it, the unix port's does not: it answers 'invalid cert')."""
    import os
    try:
        size = os.stat(path)[6]         # the size first: read(MAX_CA + 1) would take 16 KB of a phone's heap
        if size > MAX_CA:
            raise ValueError("CA certificate %s: larger than %d bytes" % (path, MAX_CA))
        with open(path, "rb") as f:
            data = f.read(size)
    except OSError:
        raise ValueError("CA certificate %s: missing (%s)" % (path, key))
    if data[:1] == b"\x30":         # DER: an ASN.1 SEQUENCE
        return [data]
    from binascii import a2b_base64
    ders = []
    pos = 0
    while True:
        b = data.find(b"-----BEGIN CERTIFICATE-----", pos)
        if b < 0:
            break
        e = data.find(b"-----END CERTIFICATE-----", b)
        if e < 0:
            break
        try:
            ders.append(a2b_base64(data[b + 27:e]))
        except ValueError:
            raise ValueError("CA certificate %s: bad base64 in PEM block %d" % (path, len(ders) + 1))
        pos = e + 25
    if not ders:
        raise ValueError("CA certificate %s: neither PEM (-----BEGIN CERTIFICATE-----) nor DER" % path)
    return ders


def tls_context(ders):
    """A client SSLContext that requires a server certificate signed by one of ders (DER bytes).
    MicroPython 1.27 (`tls`, mbedtls 3.6): CERT_REQUIRED checks the chain up to these CAs, the validity dates
    against the RTC (MBEDTLS_HAVE_TIME_DATE; on the ESP32 via gettimeofday, hence NTP first) and, given
    server_hostname, the name against the certificate's subjectAltName DNS/IP entries or CN. CPython (`ssl`):
    PROTOCOL_TLS_CLIENT has CERT_REQUIRED and check_hostname on."""
    try:
        import tls
    except ImportError:
        tls = None  # type: ignore[assignment]  # CPython: ssl below
    if tls is None:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_verify_locations(cadata=b"".join(ders))
        except (ssl.SSLError, ValueError) as e:
            raise ValueError("CA certificate refused: %s" % e)
        return ctx
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = tls.CERT_REQUIRED  # type: ignore[attr-defined]  # v1.27 extmod/modtls_mbedtls.c has it
    for der in ders:
        try:
            ctx.load_verify_locations(der)
        except (ValueError, OSError) as e:
            raise ValueError("CA certificate refused: %s" % e)
    return ctx


def reason(e):
    """A verification error's text on one line: CPython's verify_message, or mbedtls' lines."""
    msg = getattr(e, "verify_message", None) or str(e)
    return "; ".join([ln.strip() for ln in msg.split("\n") if ln.strip()]) or repr(e)
