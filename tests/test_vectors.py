# The same table vectors on CPython, on the frozen MicroPython unix port (its console on a pipe) and over a serial
# port: a pty to `phonectl sim`, whose phone runs on CPython or on that MicroPython.
import json
import subprocess
import sys

import pytest

from host_tools import vectors, tablec
from tests.proc import MP_HEAP, RUNTIMES, mp_binary, phone_config, sim_cmd

ROOT = tablec.ROOT


def _check(target, heap=None):
    import io
    buf = io.StringIO()
    passed, failed, cov, total = vectors.run(target, out=buf, heap=heap)
    assert failed == 0, buf.getvalue()
    assert cov == total, buf.getvalue()
    assert passed > 250
    return buf.getvalue()


def test_vectors_cpython():
    out = _check("cpython")
    assert "coverage: %d/%d transitions (100%%)" % (len(tablec.load().rows), len(tablec.load().rows)) in out


def test_vectors_micropython():
    mp_binary()
    _check("micropython", heap=MP_HEAP)
    # the heap figures are the real runtime's (its console's `mem gc` after the vectors)
    st = vectors.run_micropython.last_stats
    assert st["crashes"] == 0 and 0 < st["alloc"] < MP_HEAP and st["alloc"] + st["free"] <= MP_HEAP, st


@pytest.fixture(params=RUNTIMES)
def sim_pty(request, tmp_path):
    """`phonectl sim --pty` running a phone (a config on free ports) on each runtime, as a device runs one while the
    host runs the vectors through its console's self-test -> (the pty's path, runtime)."""
    cfg = tmp_path / "phone.json"
    cfg.write_text(json.dumps(phone_config("alice")))
    p = subprocess.Popen(sim_cmd(request.param, "--config", str(cfg), "--pty", "--duration", "120"), cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("PORT "), line + p.stderr.read()
        yield line.split()[1], request.param
    finally:
        p.terminate()
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0 and "Traceback" not in err, err


def test_vectors_serial_pty(sim_pty):
    port, runtime = sim_pty
    _check("serial:" + port)
    # the phone on the other end is the runtime asked for: only MicroPython counts the bytes it allocated
    import serial
    with serial.Serial(port, 115200, timeout=10) as ser:
        ser.write(b"mem\r\n")
        ans = []
        while ans[:2] != ["ok", "mem"]:     # the answer to the harness's last `selftest off` may come first
            line = ser.readline()
            assert line, "no answer to mem"
            ans = line.decode().split()
    total = int(dict(kv.split("=") for kv in ans[2:])["total"])
    assert ans[:2] == ["ok", "mem"] and (total > 0 if runtime == "micropython" else total == -1), ans


def test_vectors_cli_prints_counts(sim_pty):
    r = subprocess.run([sys.executable, "-m", "host_tools", "vectors", "run", "--target", "serial:" + sim_pty[0]],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1].endswith(" passed, 0 failed")


def test_vectors_cli_micropython_target():
    mp_binary()
    r = subprocess.run([sys.executable, "-m", "host_tools", "vectors", "run", "--target", "micropython",
                        "--heap", str(MP_HEAP)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1].endswith(" passed, 0 failed")


def test_serial_target_reports_a_missing_port():
    r = subprocess.run([sys.executable, "-m", "host_tools", "vectors", "run", "--target", "serial:/dev/nonexistent"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot open /dev/nonexistent" in r.stderr


def test_a_wrong_vector_fails(tmp_path):
    bad = tmp_path / "bad.vec"
    bad.write_text("session call UAC\nMakeCall -> Ringing : SendINVITE\n")
    import io
    buf = io.StringIO()
    passed, failed, cov, total = vectors.run("cpython", [str(bad)], out=buf)
    assert failed == 1 and "FAIL" in buf.getvalue()
