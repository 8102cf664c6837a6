# uPhone as a mip package: package.json (mip.install("github:...")) is current and its deps are what every board
# freezes from micropython-lib; `phonectl mip index` builds an index, and a STOCK MicroPython v1.27 (no frozen
# modules: ../shared/tools/micropython) installs uphone and its deps from it with mip over HTTP and runs a phone
# from the installed files that calls a phone on the frozen runtime: the call is answered, audio flows both ways.
import functools
import http.server
import json
import os
import subprocess
import threading

from host_tools import mip_cmd
from tests.conftest import shared_dir
from tests.proc import Phones, free_port
from tests.test_mplib import MANIFESTS, manifest_requires

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_package_json_is_current_and_its_deps_are_what_the_boards_freeze():
    with open(os.path.join(ROOT, "package.json")) as f:
        text = f.read()
    assert text == mip_cmd.package_json_text(), "stale: run phonectl mip package-json"
    pj = json.loads(text)
    assert [u[0] for u in pj["urls"]] == mip_cmd.firmware_files()
    assert all(os.path.isfile(os.path.join(ROOT, u[1])) for u in pj["urls"])
    deps = [d for d, _ in pj["deps"]]
    assert deps == list(mip_cmd.MPLIB_DEPS)
    for path in MANIFESTS:
        assert sorted(manifest_requires(path)) == sorted(deps), path


def stock():
    """The v1.27 unix port built without frozen modules (a stock MicroPython): it must not know uphone."""
    binary = shared_dir("tools", "micropython")
    r = subprocess.run([binary, "-c", "import sys\ntry:\n    import uphone\nexcept ImportError:\n    print('none')\n"
                        "print(sys.implementation._mpy >> 10)"], capture_output=True, text=True, timeout=30,
                       cwd="/")
    lines = r.stdout.split()
    assert r.returncode == 0 and lines[0] == "none", (r.stdout, r.stderr)
    return binary, mip_cmd.ARCH_OF_MPY[int(lines[1])]


class IndexServer:
    """The index folder over plain HTTP on 127.0.0.1 (mip's own transport is micropython-lib's requests)."""

    def __init__(self, folder):
        handler = functools.partial(_Quiet, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def test_mip_install_on_stock_micropython_gives_a_working_phone(tmp_path):
    binary, arch = stock()
    index = tmp_path / "index"
    mip_cmd.build_index(str(index), arch, log=lambda m: None)
    lib = str(tmp_path / "lib")
    srv = IndexServer(index)
    try:
        r = subprocess.run([binary, "-c", "import mip\nmip.install('uphone', index=%r, target=%r)" % (srv.url, lib)],
                           capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    finally:
        srv.close()
    assert r.returncode == 0 and r.stdout.rstrip().endswith("Done"), r.stdout[-2000:] + r.stderr
    mpys = sorted(os.path.relpath(os.path.join(d, f), lib).replace(os.sep, "/")
                  for d, _, fs in os.walk(lib) for f in fs)
    want = sorted([rel[:-3] + ".mpy" for rel in mip_cmd.firmware_files()] + [d + ".mpy" for d in mip_cmd.MPLIB_DEPS])
    assert mpys == want
    # the phone: the stock interpreter with the installed folder first on its path (as /lib is on a board)
    pre = "import sys\nsys.path.insert(0, %r)\nimport uphone, hmac\nprint('uphone from', uphone.__file__)\n" % lib

    def installed(code):
        return [binary, "-c", pre + code]
    phones = Phones("micropython", tmp_path / "phones")
    try:
        a = phones.add("alice", argv=installed, audio={"source": "tone:1000"})
        assert a.saw("uphone from %s/uphone/__init__.mpy" % lib), a.tail()
        b = phones.add("bob", audio={"source": "tone:440"}, features={"auto_answer": True, "auto_answer_delay_ms": 0})
        assert a.ev("MakeCall", target=b.uri).startswith("ok c1")
        assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
        assert a.wait(lambda: int(a.st()["media"]["c1"]["received"]) > 20
                      and int(b.st()["media"]["c1"]["received"]) > 20, 10), (a.tail(), b.tail())
        assert a.ev("HangupCall").startswith("ok c1 Terminating")
        assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())
    finally:
        phones.close()
