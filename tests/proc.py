# Phones as processes, the phone-level test tier: the firmware's desktop runner (uphone.run) on CPython or on the
# frozen MicroPython unix binary (in an ESP32-sized heap), one process per phone on free loopback ports, driven only
# through its console on stdin/stdout, as a host drives a handset over its UART.
# (the harness itself is host_tools.phoneproc, shared with `phonectl fuzz` and the bench)
import os
import subprocess
import sys

import pytest

from host_tools.phoneproc import (COVERAGE, MP_HEAP, PhoneProc, Phones, free_port, free_range,  # noqa: F401
                                  phone_config)
from host_tools.runtime import ROOT, RUNTIMES, UNIX_BIN as MP_BIN

FIRMWARE = os.path.join(ROOT, "firmware")


def mp_binary():
    """The frozen unix runtime (`make micropython`); a missing one fails the test, it is never skipped."""
    if not os.path.exists(MP_BIN):
        pytest.fail("the MicroPython runtime %s is missing: run `make micropython`" % MP_BIN)
    return MP_BIN


def runtime_cmd(runtime, code, heap=None, bits=32):
    """argv running `code` (Python source) with firmware/ importable on the given runtime (bits=64: the 64-bit
    MicroPython build, for word-width checks)."""
    from host_tools.runtime import firmware_argv
    if runtime == "micropython":
        mp_binary()
    try:
        return firmware_argv(runtime, code, heap or MP_HEAP, bits)
    except SystemExit as e:
        pytest.fail(str(e))


def sim_cmd(runtime, *args, heap=None):
    """argv of `phonectl sim` on a runtime (a MicroPython phone gets MP_HEAP unless heap says otherwise)."""
    if runtime == "micropython":
        mp_binary()
        args = ("--heap", str(heap or MP_HEAP)) + args
    return [sys.executable, "-m", "host_tools", "sim", "--runtime", runtime] + list(args)


def run_code(runtime, code, timeout=60, heap=None):
    """Run `code` to its end on a runtime: -> (exit code, stdout, stderr)."""
    r = subprocess.run(runtime_cmd(runtime, code, heap), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture(params=RUNTIMES)
def phones(request, tmp_path):
    """Phone processes on the runtime the test is parametrised with (cpython, micropython)."""
    ps = Phones(request.param, tmp_path)
    try:
        yield ps
    finally:
        ps.close()


def account_at(user, kam):
    """An account registered (digest auth) at a tests.peers.Kamailio, as a phone provisioned for a PBX has it."""
    return {"user": user, "domain": "127.0.0.1:%d" % kam.port, "password": "secret", "registrar": kam.uri,
            "proxy": kam.uri, "expires": 60, "register": True}


def heap_scenario(ps, kam, codec="PCMU"):
    """Two phones of `ps` (a Phones) register at Kamailio, call, hold, resume, send DTMF and hang up with codec.
    -> {"in_call": [mem of each phone in the call], "before": [...], "after": [...], "phones": (a, b)}; raises
    AssertionError (with the phones' tails) at the first step that fails. The heap test and `make bench` both run
    this: the bench bisects the heap it fits in."""
    rate = 16000 if codec == "G722" else 8000
    a = ps.add("alice", account=account_at("alice", kam), media={"codecs": [codec]},
               audio={"rate": rate, "source": "tone:1000"})
    b = ps.add("bob", account=account_at("bob", kam), media={"codecs": [codec]},
               audio={"rate": rate, "source": "tone:440"}, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    assert a.wait_line("reg r1 registered", 10) and b.wait_line("reg r1 registered", 10), (a.tail(), b.tail())
    assert a.saw("auth r1 register challenged by 401: answered"), a.tail()
    before = [p.mem(True) for p in (a, b)]
    assert a.ev("MakeCall", target="bob").startswith("ok c1"), a.tail()
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    assert a.wait(lambda: a.st()["leg"]["c1"]["flowing"] == "1", 5), a.tail()
    assert a.st()["leg"]["c1"]["codec"] == codec, a.tail()
    in_call = [p.mem(True) for p in (a, b)]
    assert a.ev("HoldCall").startswith("ok c1 OnHold"), a.tail()
    assert b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "recvonly", 5), b.tail()
    assert a.ev("ResumeCall").startswith("ok c1"), a.tail()
    assert a.wait(lambda: a.state() == "Active", 5) and b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "sendrecv", 5)
    assert a.ev("SendDTMF", digits="123#").startswith("ok c1 Active"), a.tail()
    assert b.wait(lambda: b.st()["media"]["c1"]["dtmf"] == "123#", 5), b.tail()
    assert a.ev("HangupCall").startswith("ok c1"), a.tail()
    assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())
    after = [p.mem(True) for p in (a, b)]
    for p in (a, b):
        st = p.st()
        assert st["crashes"] == 0 and st["dropped"] == 0, p.tail()
        assert not p.saw("MemoryError") and not p.saw("err heap"), p.tail()
    return {"in_call": in_call, "before": before, "after": after, "phones": (a, b)}

