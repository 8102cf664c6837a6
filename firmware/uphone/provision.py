# Auto-provisioning: GET <url>/<mac>.json over HTTPS, the server verified against the CA certificate the config
# names (chain, validity dates, host name), bounded in time and size; every failure is a ValueError with a reason.
# Why not micropython-lib's `requests` (frozen on every board anyway): v0.10.2 opens TLS with
# `context.verify_mode = tls.CERT_NONE` and takes no context, so it would accept any server; mip uses it that way.
# The GET below is ~20 lines on a socket wrapped by an SSLContext with CERT_REQUIRED, a CA and the server's name.
# Plain http:// is refused: the config carries SIP and Wi-Fi passwords and decides which registrar the phone trusts.
import json
import time

from uphone.certs import MAX_CA, load_ca, tls_context, reason as _reason  # noqa: F401
from uphone.compat import ticks_diff, ticks_ms

try:
    import socket
except ImportError:  # pragma: no cover - older MicroPython
    import usocket as socket

MAX_BODY = 16384            # the config's own limit (config.MAX_BYTES)
TIMEOUT_S = 10              # each connect / handshake step / read
DEADLINE_MS = 30000         # the whole fetch: a server dripping bytes under TIMEOUT_S cannot hold the boot
MIN_YEAR = 2024             # an RTC before this was never set: certificate dates cannot be checked


def split_url(url):
    """'https://host[:port][/path]' -> (host, port, path). http:// is refused (passwords would travel in clear)."""
    if isinstance(url, str) and url.startswith("http://"):
        raise ValueError("plain http:// is refused for provisioning (the config carries passwords): use https://")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ValueError("provisioning url must start with https:// (got %r)" % (url,))
    rest = url[8:]
    i = rest.find("/")
    hostport, path = (rest, "/") if i < 0 else (rest[:i], rest[i:])
    port = 443
    j = hostport.rfind(":")
    if j >= 0:
        try:
            port = int(hostport[j + 1:])
        except ValueError:
            raise ValueError("bad port in provisioning url %r" % url)
        hostport = hostport[:j]
    if not hostport:
        raise ValueError("no host in provisioning url %r" % url)
    return hostport, port, path


def config_url(url, mac):
    """Base URL + the phone's MAC (12 lowercase hex digits, no separators) + .json."""
    mac = mac.replace(":", "").replace("-", "").lower()
    return url.rstrip("/") + "/" + mac + ".json"


def parse_response(data, max_body=MAX_BODY):
    """Raw HTTP response bytes -> (status, headers dict with lower-case names, body bytes)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise ValueError("incomplete HTTP response (%d bytes, no end of headers)" % len(data))
    lines = data[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError("not an HTTP response: %r" % lines[0][:60])
    try:
        status = int(parts[1])
    except ValueError:
        raise ValueError("bad HTTP status line: %r" % lines[0][:60])
    headers = {}
    for line in lines[1:]:
        k = line.find(":")
        if k > 0:
            headers[line[:k].strip().lower()] = line[k + 1:].strip()
    body = data[end + 4:]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ValueError("chunked HTTP responses are not supported (the request was HTTP/1.0)")
    if "content-length" in headers:
        try:
            n = int(headers["content-length"])
        except ValueError:
            raise ValueError("bad Content-Length %r" % headers["content-length"])
        if n > max_body:
            raise ValueError("config too large: %d bytes (limit %d)" % (n, max_body))
        if len(body) < n:
            raise ValueError("response cut short: %d of %d body bytes" % (len(body), n))
        body = body[:n]
    return status, headers, body


def https_get(url, ca_ders, timeout_s=TIMEOUT_S, max_body=MAX_BODY, deadline_ms=DEADLINE_MS):
    """-> (status, headers, body) from a server whose certificate chains to ca_ders and names the URL's host.
    Raises ValueError on a refused certificate, network errors, timeouts and oversized replies."""
    host, port, path = split_url(url)
    ctx = tls_context(ca_ders)
    req = ("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: uPhone\r\nAccept: application/json\r\n"
           "Connection: close\r\n\r\n" % (path, host)).encode()
    limit = max_body + 4096         # the body limit plus room for headers
    t0 = ticks_ms()
    raw = s = None
    chunks = []
    got = 0
    try:
        ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        raw = socket.socket(ai[0], socket.SOCK_STREAM)
        raw.settimeout(timeout_s)
        raw.connect(ai[-1])
        try:
            # SNI and the name checked against the certificate (an IP literal is matched to its IP SAN)
            s = ctx.wrap_socket(raw, server_hostname=host)
        except ValueError as e:     # MicroPython's verify failure; CPython's SSLCertVerificationError is one too
            raise ValueError("server certificate of %s refused: %s" % (host, _reason(e)))
        s.write(req)
        while True:
            b = s.read(1024)
            if not b:
                break
            chunks.append(b)
            got += len(b)
            if got > limit:
                raise ValueError("config too large: more than %d bytes from %s" % (limit, host))
            if ticks_diff(ticks_ms(), t0) > deadline_ms:
                raise ValueError("cannot fetch %s: timed out (%d s in all)" % (url, deadline_ms // 1000))
    except OSError as e:
        raise ValueError("cannot fetch %s: %s" % (url, _oserror(e)))
    finally:
        for x in (s, raw):
            if x is not None:
                try:
                    x.close()
                except OSError:
                    pass
    return parse_response(b"".join(chunks), max_body)


def _oserror(e):
    n = e.args[0] if e.args else 0
    if isinstance(n, int) and n < 0:
        n = -n                      # mbedtls hands the socket's errno back negated (-110 for a read timeout)
    if n in (110, 116) or "timed out" in str(e):   # ETIMEDOUT: 110 on Linux, 116 on ESP32 lwIP
        return "timed out"
    return str(e) or repr(e)


def clock_year():
    return time.gmtime()[0]


def fetch_config(url, mac, ca_path, timeout_s=TIMEOUT_S, max_body=MAX_BODY):
    """GET <url>/<mac>.json over verified HTTPS -> raw config dict (not yet validated). ValueError says why not."""
    full = config_url(url, mac)
    split_url(full)                 # refuse http:// before the CA file is even read
    year = clock_year()
    if year < MIN_YEAR:             # an ESP32's RTC starts at 2000-01-01: every certificate would be "not yet valid"
        raise ValueError("the clock says %d (never set: is time.ntp_host reachable?): the server certificate's "
                         "dates cannot be checked" % year)
    status, headers, body = https_get(full, load_ca(ca_path), timeout_s, max_body)
    if status != 200:
        raise ValueError("HTTP %d for %s" % (status, full))
    try:
        raw = json.loads(body)
    except ValueError:
        raise ValueError("%s is not valid JSON" % full)
    if not isinstance(raw, dict):
        raise ValueError("%s is not a JSON object" % full)
    return raw
