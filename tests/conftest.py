# Shared pytest setup: firmware/ on sys.path (as on the phone), and a MicroPython VM runner.
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


@pytest.fixture
def mpvm():
    """Run code inside MicroPython v1.27 (WASI) with firmware/ mounted read-only at /input."""
    from tests.mpvm import run_mp
    return run_mp


MP_UNIX = os.path.join(ROOT, "build", "micropython", "unix", "micropython")


@pytest.fixture(scope="session")
def mp_unix(tmp_path_factory):
    """run(code, heap=None, cwd=None) -> stdout: code run on the real MicroPython (v1.27 unix port with the firmware
    frozen in: `make micropython`; rerun it after a firmware edit), in cwd (default: an empty temporary folder, so
    nothing there shadows the frozen package). Fails, never skips, when the binary is missing or the code raises."""
    import subprocess
    empty = str(tmp_path_factory.mktemp("mp_unix"))

    def run(code, heap=None, cwd=None, timeout=300):
        if not os.path.exists(MP_UNIX):
            pytest.fail("%s is missing: run make micropython" % MP_UNIX)
        args = [MP_UNIX] + (["-X", "heapsize=%d" % heap] if heap else []) + ["-c", code]
        r = subprocess.run(args, cwd=str(cwd or empty), capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            pytest.fail("micropython exited %d:\n%s%s" % (r.returncode, r.stdout[-2000:], r.stderr[-4000:]))
        return r.stdout
    return run
