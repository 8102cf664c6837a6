# The runtime loop's own duties: name resolution is cached (a blocking DNS query per packet would stall a phone), and
# a bug met while handling one event is reported and the loop goes on (on CPython and the frozen MicroPython).
import json

import pytest

from uphone import loop as L
from tests.proc import RUNTIMES, phone_config, run_code


def test_resolve_caches_and_expires(monkeypatch):
    calls = []
    real = L.socket.getaddrinfo

    def counting(host, port, *a):
        calls.append((host, port))
        return real(host, port, *a)
    monkeypatch.setattr(L.socket, "getaddrinfo", counting)
    t = [0]
    lp = L.Loop(None, phones=[], clock=lambda: t[0])
    for _ in range(100):
        assert lp.resolve(("127.0.0.1", 5060, "udp"))[1] == 5060
    assert len(calls) == 1
    t[0] += 300001                   # five minutes later the name is looked up again
    lp.resolve(("127.0.0.1", 5060, "udp"))
    assert len(calls) == 2
    for port in range(6000, 6100):  # bounded: many peers do not grow it without limit
        lp.resolve(("127.0.0.1", port))
    assert len(lp._dns) <= 8


# a real phone on the real loop with its sockets, whose tick raises once: the guard counts it, says so on the phone's
# lines and the loop keeps running (the phone keeps ticking)
GUARD = """
import json
from uphone import config
from uphone.loop import Loop
from uphone.phone import Phone
p = Phone(config.with_defaults(json.loads(%r)))
lines = []
p.add_listener(lines.append)
n = [0]
real = p.tick
def broken_tick(now):
    n[0] += 1
    if n[0] == 3:
        raise KeyError("bug")
    real(now)
p.tick = broken_tick            # before the loop starts: it binds each phone's tick once
lp = Loop(None, phones=[p])
lp.run(duration_ms=300)
p.shutdown(lp, wait_ms=200)
print("RESULT", n[0], lp.crashes)
for l in lines:
    print("LINE", l)
"""


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_runtime_loop_survives_a_handler_bug(runtime):
    rc, out, err = run_code(runtime, GUARD % json.dumps(phone_config("alice")), timeout=30)
    assert rc == 0, out + err
    res = [l.split() for l in out.splitlines() if l.startswith("RESULT ")]
    assert res and int(res[0][1]) > 3 and int(res[0][2]) == 1, out + err
    assert any(l.startswith("LINE err internal KeyError") for l in out.splitlines()), out
    # the traceback went where the runtime prints it (MicroPython: the console stream; CPython: stderr)
    assert "KeyError" in (out if runtime == "micropython" else err)
