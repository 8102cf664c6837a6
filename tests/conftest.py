# Shared pytest setup: firmware/ on sys.path (as on the phone), and a runner for code on the real MicroPython.
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
for p in (FIRMWARE, ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)


def shared_dir(*parts):
    """A path under ../shared (beside the checkout, as CI lays it out), else the workplace's /work/shared."""
    for base in (os.path.join(os.path.dirname(ROOT), "shared"), "/work/shared"):
        p = os.path.join(base, *parts)
        if os.path.exists(p):
            return p
    raise FileNotFoundError("shared/%s not found beside the checkout or in /work/shared" % "/".join(parts))


def require_peers():
    """True when CI asked for real peers: a missing peer must fail, not skip."""
    return os.environ.get("UPHONE_REQUIRE_PEERS") == "1"


def need_binary(name):
    import shutil
    path = shutil.which(name)
    if path:
        return path
    if require_peers():
        pytest.fail("%s is required (UPHONE_REQUIRE_PEERS=1) but not installed" % name)
    pytest.skip("%s not installed" % name)


@pytest.fixture(scope="session")
def mp():
    """run(code, heap=None, cwd=None, bits=32) -> stdout: code run on the real MicroPython (the v1.27 unix port with
    the firmware frozen in: `make micropython`; rerun it after a firmware edit; bits=64: its 64-bit build), in the
    phones' heap (tests/proc.py MP_HEAP) unless heap says otherwise, in cwd (default: the checkout, where nothing
    shadows the frozen package).
    A missing binary, a non-zero exit or anything on stderr fails the test (never a skip)."""
    from tests.proc import runtime_cmd
    import subprocess

    def run(code, heap=None, cwd=None, timeout=300, bits=32):
        r = subprocess.run(runtime_cmd("micropython", code, heap, bits), capture_output=True, text=True,
                           timeout=timeout, cwd=str(cwd or ROOT))
        assert r.returncode == 0 and not r.stderr.strip(), "MicroPython exited %d:\n%s\nstdout:\n%s" % (
            r.returncode, r.stderr[-4000:], r.stdout[-3000:])
        return r.stdout
    return run
