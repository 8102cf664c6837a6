# micropython-lib is the phone's library: every board's freeze manifest (the ESP32 boards and the unix runtime)
# require()s the packages uPhone uses from it, and the frozen runtime has them working in the phones' heap: hmac
# (SRTP's HMAC-SHA1 on the built-in hashlib.sha1) and ntptime (the clock before TLS checks certificate dates).
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFESTS = sorted(os.path.join(ROOT, "board", d, "manifest.py") for d in os.listdir(os.path.join(ROOT, "board"))
                   if os.path.isfile(os.path.join(ROOT, "board", d, "manifest.py")))


def manifest_requires(path):
    """The names a freeze manifest require()s (its include()s of the port's manifest are not followed)."""
    names = []
    noop = lambda *a, **k: None  # noqa: E731
    g = {"require": lambda name, **k: names.append(name), "include": noop, "package": noop, "module": noop,
         "freeze": noop, "metadata": noop, "add_library": noop, "options": None}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), g)
    return names


@pytest.mark.parametrize("path", MANIFESTS, ids=[os.path.basename(os.path.dirname(p)) for p in MANIFESTS])
def test_every_board_requires_what_the_firmware_uses(path):
    assert {"hmac", "ntptime"} <= set(manifest_requires(path))


def test_frozen_hmac_and_ntptime_on_the_phone_runtime(mp):
    # RFC 2202 HMAC-SHA1 test cases 1, 2 and 6 (a key longer than the block) with micropython-lib's hmac, frozen;
    # and what importing each costs on the 32-bit runtime's heap (frozen code itself costs none)
    out = mp("""
import gc, hashlib
gc.collect(); a = gc.mem_alloc()
import hmac
gc.collect(); b = gc.mem_alloc()
import ntptime
gc.collect(); c = gc.mem_alloc()
print("heap", b - a, c - b)
for key, msg in ((b"\\x0b" * 20, b"Hi There"), (b"Jefe", b"what do ya want for nothing?"),
                 (b"\\xaa" * 80, b"Test Using Larger Than Block-Size Key - Hash Key First")):
    print(hmac.new(key, msg, hashlib.sha1).hexdigest())
print(ntptime.host, callable(ntptime.settime))
""")
    lines = out.split()
    assert lines[3:6] == ["b617318655057264e28bc0b6fb378c8ef146be00", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
                          "aa4ae5e15272d00e95705637ce8a3b55ed402112"], out
    assert lines[6:] == ["pool.ntp.org", "True"], out
    hmac_heap, ntptime_heap = int(lines[1]), int(lines[2])
    assert hmac_heap < 1024 and ntptime_heap < 512, out
