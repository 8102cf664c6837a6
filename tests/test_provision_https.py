# Auto-provisioning over HTTPS on both runtimes (CPython, and the frozen 32-bit MicroPython in the phones' heap):
# uphone.boot.provision fetches <provisioning.url>/<mac>.json from a local HTTPS server (CPython's http.server + ssl
# with certificates made for the test, tests/pki.py). The right CA (PEM or DER) -> the config is fetched and saved;
# a wrong CA, an expired or not-yet-valid certificate (the host's clock is right), a certificate for another name,
# a tampered signature, a missing CA file -> refused with the reason and the old config kept; http:// -> refused
# before any byte is sent.
import json
import os
import shutil

import pytest

from tests.pki import HttpsServer, Pki
from tests.proc import RUNTIMES, free_port, run_code

MAC = "240ac4123456"
OLD = {"accounts": [{"user": "alice", "domain": "127.0.0.1", "display_name": "Old Alice"}],
       "sip": {"local_ip": "127.0.0.1", "local_port": 0}}
SERVERS = ("good", "expired", "future", "wrong_name", "tampered")

# The phone's side, run on each runtime in a folder holding config.json and the CA files (relative paths, as on
# the phone): boot.provision with a WLAN whose MAC is MAC; prints the log lines, whether a new config came back, and
# the live heap before and after (MicroPython: what the fetch leaves behind once collected).
PHONE = """
import gc, json
from uphone import boot
class W:
    def config(self, k):
        return bytes([0x24, 0x0a, 0xc4, 0x12, 0x34, 0x56])
cfg, errors = boot.load_config("config.json", print)
assert not errors, errors
gc.collect()
a = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
logs = []
new = boot.provision(cfg, W(), "config.json", logs.append)
changed = new is not cfg
new = cfg = None
gc.collect()
b = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
print("RESULT " + json.dumps({"logs": logs, "changed": changed, "heap_left": b - a}))
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def servers(pki):
    """One HTTPS server per certificate kind, each serving MAC's config (which names itself as the source)."""
    out = {}
    try:
        for kind in SERVERS:
            s = HttpsServer(pki, kind, port=free_port()).__enter__()
            served = dict(OLD, accounts=[dict(OLD["accounts"][0], display_name="Provisioned Alice")],
                          provisioning={"url": s.url, "ca": "ca.pem"})
            s.routes["/prov/%s.json" % MAC] = (200, json.dumps(served).encode())
            s.served = served
            out[kind] = s
        yield out
    finally:
        for s in out.values():
            s.__exit__()


def phone_provision(runtime, folder, pki, url, ca):
    """Write the phone's config (provisioning.url = url, .ca = ca) and the CA files into folder, run boot.provision
    there on the runtime -> (result dict, config.json as it is afterwards)."""
    os.makedirs(str(folder), exist_ok=True)
    for name in ("ca.pem", "ca.der", "other_ca.pem"):
        shutil.copy(pki.path(name), os.path.join(str(folder), name))
    old = dict(OLD, provisioning={"url": url, "ca": ca})
    with open(os.path.join(str(folder), "config.json"), "w") as f:
        json.dump(old, f)
    code = "import os\nos.chdir(%r)\n%s" % (str(folder), PHONE)
    rc, out, err = run_code(runtime, code, timeout=120)
    assert rc == 0 and "Traceback" not in err, (rc, out, err)
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert line, out
    with open(os.path.join(str(folder), "config.json")) as f:
        return json.loads(line[-1][7:]), json.load(f), old


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("ca", ["ca.pem", "ca.der"])
def test_right_ca_fetches_and_saves(runtime, ca, pki, servers, tmp_path):
    srv = servers["good"]
    before = len(srv.hits)
    res, saved, _ = phone_provision(runtime, tmp_path / "phone", pki, srv.url, ca)
    assert srv.hits[before:] == ["/prov/%s.json" % MAC]
    assert res["changed"] is True and "provision: new config from %s" % srv.url in res["logs"], res
    assert saved == srv.served
    with open(str(tmp_path / "phone" / "config.json.good")) as f:
        assert json.load(f) == srv.served            # the last good copy too
    if runtime == "micropython":
        # the TLS session lives in mbedtls' own memory; what the fetch leaves on the Python heap once collected
        # (the provision module's globals and functions) is small
        assert res["heap_left"] < 3000, res


# what each runtime says (CPython: OpenSSL's verify message; MicroPython 1.27: mbedtls_x509_crt_verify_info)
REFUSED = {
    "other_ca": ("good", "other_ca.pem", "unable to get local issuer certificate",
                 "not correctly signed by the trusted CA"),
    "expired": ("expired", "ca.pem", "certificate has expired", "validity has expired"),
    "future": ("future", "ca.pem", "certificate is not yet valid", "validity starts in the future"),
    "wrong_name": ("wrong_name", "ca.pem", "IP address mismatch", "does not match with the expected CN"),
    "tampered": ("tampered", "ca.pem", "certificate signature failure", "not correctly signed by the trusted CA"),
}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_server_certificate_is_refused_and_old_config_kept(runtime, case, pki, servers, tmp_path):
    kind, ca, cpython_says, micropython_says = REFUSED[case]
    srv = servers[kind]
    res, saved, old = phone_provision(runtime, tmp_path / "phone", pki, srv.url, ca)
    assert res["changed"] is False and saved == old, res
    assert not os.path.exists(str(tmp_path / "phone" / "config.json.good"))
    assert len(res["logs"]) == 1, res
    line = res["logs"][0]
    assert line.startswith("provision: server certificate of 127.0.0.1 refused: "), line
    assert line.endswith("; keeping the current config"), line
    assert (cpython_says if runtime == "cpython" else micropython_says) in line, line


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_missing_ca_file_refused(runtime, pki, servers, tmp_path):
    srv = servers["good"]
    before = len(srv.hits)
    res, saved, old = phone_provision(runtime, tmp_path / "phone", pki, srv.url, "certs/none.pem")
    assert saved == old and res["logs"] == [
        "provision: CA certificate certs/none.pem: missing (provisioning.ca); keeping the current config"]
    assert srv.hits[before:] == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_plain_http_refused_before_anything_is_sent(runtime, pki, tmp_path):
    # a validated config cannot hold an http:// URL (tests/test_config.py); the fetch refuses one anyway
    with HttpsServer(pki, None, port=free_port()) as srv:
        srv.routes["/prov/%s.json" % MAC] = (200, json.dumps(OLD).encode())
        code = ("from uphone import provision\ntry:\n    provision.fetch_config(%r, %r, 'ca.pem')\n"
                "except ValueError as e:\n    print('REFUSED', e)\n" % (srv.url, MAC))
        rc, out, err = run_code(runtime, code)
    assert rc == 0 and "REFUSED plain http:// is refused for provisioning" in out, (out, err)
    assert srv.hits == []
