# The same table vectors on CPython, inside MicroPython (WASI VM) and over a serial port (a pty to `phonectl sim`).
import os
import subprocess
import sys
import time

import pytest

from host_tools import vectors, tablec

ROOT = tablec.ROOT


def _check(target):
    import io
    buf = io.StringIO()
    passed, failed, cov, total = vectors.run(target, out=buf)
    assert failed == 0, buf.getvalue()
    assert cov == total, buf.getvalue()
    assert passed > 250
    return buf.getvalue()


def test_vectors_cpython():
    out = _check("cpython")
    assert "coverage: %d/%d transitions (100%%)" % (len(tablec.load().rows), len(tablec.load().rows)) in out


def test_vectors_micropython():
    _check("micropython")
    assert vectors.run_micropython.last_stats["fuel"] > 0


@pytest.fixture
def sim_pty():
    p = subprocess.Popen([sys.executable, "-m", "host_tools", "sim", "--pty", "--duration", "60"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("PORT "), line + p.stderr.read()
        yield line.split()[1]
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_vectors_serial_pty(sim_pty):
    _check("serial:" + sim_pty)


def test_vectors_cli_prints_counts(sim_pty):
    r = subprocess.run([sys.executable, "-m", "host_tools", "vectors", "run", "--target", "serial:" + sim_pty],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
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
