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


def mp_unix_run(code, heapsize=None, timeout=300):
    """Run code on the real MicroPython (the frozen unix build of `make micropython`): -> its stdout. A missing
    binary fails the test (it is never skipped); a non-zero exit fails it with the binary's stderr."""
    import subprocess
    if not os.path.exists(MP_UNIX):
        pytest.fail("the MicroPython runtime %s is missing: run `make micropython`" % MP_UNIX)
    argv = [MP_UNIX] + (["-X", "heapsize=%d" % heapsize] if heapsize else []) + ["-c", code]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        pytest.fail("MicroPython exited %d:\n%s\nstdout:\n%s" % (r.returncode, r.stderr[-3000:], r.stdout[-2000:]))
    return r.stdout
