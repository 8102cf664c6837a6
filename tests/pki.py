# Test certificates made on the spot (the `cryptography` package): a CA, a second CA that signed nothing the servers
# use, and server certificates signed by the first for 127.0.0.1: good, expired, not yet valid, for another name,
# and one whose signature was tampered with. Plus an HTTPS server (CPython's http.server + ssl) serving canned paths.
import datetime
import http.server
import ipaddress
import os
import ssl
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)
# server certificate kinds: (subjectAltNames, valid from, valid until) relative to now
KINDS = {
    "good": (("127.0.0.1", "localhost"), -1, 30),
    "expired": (("127.0.0.1", "localhost"), -30, -1),
    "future": (("127.0.0.1", "localhost"), 2, 30),
    "wrong_name": (("prov.example.com",), -1, 30),
}


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def _ca(name, now):
    k = _key()
    n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - DAY).not_valid_after(now + 365 * DAY)
         .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
         .sign(k, hashes.SHA256()))
    return k, c


def _server(ca_key, ca_cert, names, nb, na):
    k = _key()
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    c = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
         .issuer_name(ca_cert.subject).public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(nb).not_valid_after(na)
         .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(ca_key, hashes.SHA256()))
    return k, c


class Pki:
    """Files in folder: ca.pem, ca.der, other_ca.pem, and <kind>.crt/.key for KINDS and "tampered"."""

    def __init__(self, folder):
        self.dir = str(folder)
        os.makedirs(self.dir, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key, ca = _ca("uPhone test CA", now)
        _, other = _ca("Some other CA", now)
        self._write("ca.pem", ca.public_bytes(serialization.Encoding.PEM))
        self._write("ca.der", ca.public_bytes(serialization.Encoding.DER))
        self._write("other_ca.pem", other.public_bytes(serialization.Encoding.PEM))
        for kind, (names, nb, na) in KINDS.items():
            k, c = _server(ca_key, ca, names, now + nb * DAY, now + na * DAY)
            self._write(kind + ".key", _pem_key(k))
            self._write(kind + ".crt", c.public_bytes(serialization.Encoding.PEM))
            if kind == "good":
                # the same certificate with one bit of its signature flipped (the last bytes of the DER are the
                # signature's): the key still matches, so a server presents it, and only a verifier notices
                der = bytearray(c.public_bytes(serialization.Encoding.DER))
                der[-3] ^= 0x01
                pem = ssl.DER_cert_to_PEM_cert(bytes(der)).encode()
                self._write("tampered.key", _pem_key(k))
                self._write("tampered.crt", pem)

    def _write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)

    def path(self, name):
        return os.path.join(self.dir, name)


class HttpsServer:
    """http.server on 127.0.0.1 (TLS with the named certificate, or plain HTTP when cert is None) answering
    routes {path: (status, body bytes)}; hits lists the paths asked for."""

    def __init__(self, pki, cert, routes=None, port=0):
        self.routes = routes if routes is not None else {}
        self.hits = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                code, body = outer.routes.get(self.path, (404, b"not here"))
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.httpd.daemon_threads = True
        scheme = "http"
        if cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(pki.path(cert + ".crt"), pki.path(cert + ".key"))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.port = self.httpd.server_address[1]
        self.url = "%s://127.0.0.1:%d/prov" % (scheme, self.port)
        self.t = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.httpd.shutdown()
        self.httpd.server_close()
