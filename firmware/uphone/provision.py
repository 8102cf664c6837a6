# Auto-provisioning: a small socket-based HTTP/1.0 GET (MicroPython and CPython sockets alike) that fetches
# <url>/<mac>.json, with a size limit and a timeout; every failure is a ValueError with a readable reason.
import json

try:
    import socket
except ImportError:  # pragma: no cover - older MicroPython
    import usocket as socket

MAX_BODY = 16384
TIMEOUT_S = 10


def split_url(url):
    """'http://host[:port][/path]' -> (host, port, path). Only plain HTTP: the phone has no CA store."""
    if not isinstance(url, str) or not url.startswith("http://"):
        raise ValueError("provisioning url must start with http:// (got %r)" % (url,))
    rest = url[7:]
    i = rest.find("/")
    hostport, path = (rest, "/") if i < 0 else (rest[:i], rest[i:])
    port = 80
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


def http_get(url, timeout_s=TIMEOUT_S, max_body=MAX_BODY):
    """-> (status, headers, body). Raises ValueError on network errors, timeouts and oversized replies."""
    host, port, path = split_url(url)
    req = ("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: uPhone\r\nAccept: application/json\r\n"
           "Connection: close\r\n\r\n" % (path, host)).encode()
    limit = max_body + 4096         # the body limit plus room for headers
    s = None
    chunks = []
    got = 0
    try:
        addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout_s)
        s.connect(addr)
        s.sendall(req)
        while True:
            b = s.recv(1024)
            if not b:
                break
            chunks.append(b)
            got += len(b)
            if got > limit:
                raise ValueError("config too large: more than %d bytes from %s" % (limit, host))
    except OSError as e:
        raise ValueError("cannot fetch %s: %s" % (url, _oserror(e)))
    finally:
        if s is not None:
            s.close()
    return parse_response(b"".join(chunks), max_body)


def _oserror(e):
    n = e.args[0] if e.args else 0
    if n in (110, 116, "timed out") or "timed out" in str(e):   # ETIMEDOUT: 110 on Linux, 116 on ESP32 lwIP
        return "timed out"
    return str(e) or repr(e)


def fetch_config(url, mac, timeout_s=TIMEOUT_S, max_body=MAX_BODY):
    """GET <url>/<mac>.json -> raw config dict (not yet validated). ValueError says why it failed."""
    full = config_url(url, mac)
    status, headers, body = http_get(full, timeout_s, max_body)
    if status != 200:
        raise ValueError("HTTP %d for %s" % (status, full))
    try:
        raw = json.loads(body)
    except ValueError:
        raise ValueError("%s is not valid JSON" % full)
    if not isinstance(raw, dict):
        raise ValueError("%s is not a JSON object" % full)
    return raw
