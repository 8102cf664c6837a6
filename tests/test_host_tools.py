# Host tools end to end against a virtual ESP32 on a pty (host_tools/virtual_board.py: the frozen MicroPython unix
# binary with simulated hardware, its filesystem a folder), through the real mpremote and pyserial: deploy (only
# changed files), provision (atomic, validated), exec on the board, the vectors over the serial harness against the
# firmware's console on the board, console --send, flash command lines with a fake esptool. Loopback only, bounded.
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
VERBS = ("flash", "deploy", "provision", "console", "typecheck", "config", "vectors", "sim", "table")
GOOD = {"accounts": [{"user": "alice", "domain": "127.0.0.1", "password": "hunter2",
                      "registrar": "sip:127.0.0.1:5060"}],
        "sip": {"local_ip": "127.0.0.1", "local_port": 5062}}


def phonectl(*args, timeout=240):
    return subprocess.run([PY, "-m", "host_tools"] + list(args), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def start(args):
    p = subprocess.Popen([PY] + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("PORT "), (line, p.stderr.read() if p.poll() is not None else "")
    return p, line.split()[1]


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


@pytest.fixture
def board(tmp_path):
    from tests.vboard import VBoard
    root = tmp_path / "board_fs"
    b = VBoard(root)
    yield b.port, root
    b.close()


def copied(out):
    return [ln for ln in out.splitlines() if ln.startswith("[")]


def test_every_verb_has_help():
    for v in VERBS:
        r = phonectl(v, "--help", timeout=60)
        assert r.returncode == 0, (v, r.stderr)
        assert "usage" in r.stdout


def test_absent_port_is_a_clear_error(tmp_path):
    img = tmp_path / "fw.bin"
    img.write_bytes(b"\0" * 16)
    for args in (["flash", "--port", "/dev/nonexistent-uphone", "--firmware", str(img)],
                 ["deploy", "--port", "/dev/nonexistent-uphone", "--board", "generic_max98357"],
                 ["console", "--port", "/dev/nonexistent-uphone", "--send", "st"]):
        r = phonectl(*args, timeout=120)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "nonexistent-uphone" in err[0], r.stderr


def test_flash_command_lines_per_chip(tmp_path, capsys):
    from host_tools import flash
    img = tmp_path / "ESP32_GENERIC.bin"
    img.write_bytes(b"\xe9" + b"\0" * 15)
    port = str(tmp_path / "ttyFAKE")
    open(port, "w").close()         # the port exists; the fake runner is the "device"
    for chip_line, chip, offset in (("Chip is ESP32-D0WD-V3 (revision v3.1)", "esp32", "0x1000"),
                                    ("Chip is ESP32-S3 (QFN56) (revision v0.2)", "esp32s3", "0x0"),
                                    ("Chip type: ESP32-C3 (QFN32) (revision v0.4)", "esp32c3", "0x0")):
        calls = []

        def runner(cmd):
            calls.append(cmd)
            return 0, "esptool v5\nConnecting....\n%s\nDetected flash size: 4MB\n" % chip_line
        assert flash.flash(port, str(img), 460800, runner=runner) == 0
        base = [sys.executable, "-m", "esptool", "--port", port, "--baud", "460800"]
        assert calls == [base + ["flash_id"], base + ["--chip", chip, "erase_flash"],
                         base + ["--chip", chip, "write_flash", "-z", offset, str(img)]]
    with pytest.raises(flash.DeployError, match="micropython.org/download"):
        flash.flash(port, str(tmp_path / "missing.bin"), runner=lambda c: (0, ""))


def test_deploy_only_changed_files_and_exec(board, tmp_path, monkeypatch):
    port, root = board
    import shutil
    src = tmp_path / "fw"      # a snapshot: others may edit firmware/ while this runs
    shutil.copytree(os.path.join(ROOT, "firmware"), src, ignore=shutil.ignore_patterns("__pycache__"))
    # the virtual board's CPU is the x86-64 unix port: viper modules need x64 native code
    # --no-reset: a reset would boot a phone on the factory config (port 5060) in the middle of the test run;
    # tests/test_vboard_boot.py deploys onto a running phone and lets deploy reset it
    dep = ("deploy", "--port", port, "--board", "generic_max98357", "--arch", "x64", "--source", str(src),
           "--no-reset")
    r = phonectl(*dep)
    assert r.returncode == 0, r.stdout + r.stderr
    first = copied(r.stdout)
    assert first and "verified" in r.stdout
    assert (root / "uphone" / "engine.mpy").is_file()
    from host_tools.deploy import MAIN_PY
    assert (root / "main.py").read_bytes() == MAIN_PY and "wrote /main.py" in r.stdout
    n_py = sum(len([f for f in fs if f.endswith(".py")]) for _, _, fs in os.walk(src))
    assert len(first) >= n_py
    r = phonectl(*dep)
    assert r.returncode == 0 and copied(r.stdout) == [], r.stdout + r.stderr
    assert "0 of" in r.stdout
    # change one file on the "phone": exactly that one is copied back
    (root / "uphone" / "compat.mpy").write_bytes(b"stale")
    r = phonectl(*dep)
    assert r.returncode == 0, r.stdout + r.stderr
    assert copied(r.stdout) == ["[1/1] uphone/compat.mpy"], r.stdout
    # a user's own main.py is never overwritten
    (root / "main.py").write_text("print('my own phone')\n")
    r = phonectl(*dep)
    assert r.returncode == 0 and copied(r.stdout) == [], r.stdout + r.stderr
    assert (root / "main.py").read_text() == "print('my own phone')\n"
    # the deployed firmware imports on the board from its filesystem ('' comes before '.frozen' in sys.path)
    m = subprocess.run([PY, "-m", "mpremote", "connect", port, "exec", "import uphone.engine; print('ok')"],
                       capture_output=True, text=True, timeout=120)
    assert m.returncode == 0 and m.stdout.strip().splitlines()[-1] == "ok", m.stdout + m.stderr
    m = subprocess.run([PY, "-m", "mpremote", "connect", port, "exec",
                        "import sys, uphone.engine as e; print(sys.implementation.name, e.__file__)"],
                       capture_output=True, text=True, timeout=120)
    assert m.stdout.split() == ["micropython", "uphone/engine.mpy"], m.stdout + m.stderr


def test_provision_atomic_and_validated(board, tmp_path):
    port, root = board
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    r = phonectl("provision", "--port", port, "--config", str(good), "--no-reset")   # GOOD registers to :5060
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "config.json").read_bytes() == good.read_bytes()
    assert not (root / "config.json.tmp").exists()
    from host_tools.deploy import MAIN_PY
    assert (root / "main.py").read_bytes() == MAIN_PY          # there was none: the starter is written
    second = dict(GOOD, sip={"local_ip": "127.0.0.1", "local_port": 5070})
    good2 = tmp_path / "good2.json"
    good2.write_text(json.dumps(second))
    r = phonectl("provision", "--port", port, "--config", str(good2), "--no-reset")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "config.json").read_bytes() == good2.read_bytes()
    assert (root / "config.json.good").read_bytes() == good.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(GOOD, sip={"local_port": 70000})))
    r = phonectl("provision", "--port", port, "--config", str(bad), "--no-reset")
    assert r.returncode == 1
    assert "sip.local_port" in r.stderr and "nothing written" in r.stderr
    assert (root / "config.json").read_bytes() == good2.read_bytes()
    r = phonectl("config", "check", str(bad))
    assert r.returncode == 1 and "sip.local_port" in r.stdout


def test_no_board_freezes_a_main_or_boot_py():
    # a frozen main.py runs instead of the filesystem's (pyexec_file_if_exists looks in the frozen modules first)
    import re
    for name in os.listdir(os.path.join(ROOT, "board")):
        path = os.path.join(ROOT, "board", name, "manifest.py")
        if os.path.isfile(path):
            code = "\n".join(ln.split("#")[0] for ln in open(path).read().splitlines())
            assert not re.search(r"module\(\s*[\"'](main|boot)\.py", code), name
            assert "package(\"uphone\"" in code, name


def test_vectors_over_serial_against_the_phone_on_a_board(tmp_path):
    # the firmware boots on the virtual board (its main.py, the frozen uphone package) and its console answers
    from tests.proc import free_port
    from tests.vboard import VBoard
    root = tmp_path / "board_fs"
    root.mkdir()
    from host_tools.deploy import MAIN_PY
    (root / "main.py").write_bytes(MAIN_PY)
    (root / "config.json").write_text(json.dumps(
        {"accounts": [{"user": "vectors", "register": False}], "sip": {"local_ip": "127.0.0.1",
                                                                     "local_port": free_port()}}))
    b = VBoard(root, duration=300)
    try:
        r = phonectl("vectors", "run", "--target", "serial:" + b.port, timeout=280)
    finally:
        b.close()
    assert ", 0 failed" in r.stdout, r.stdout[-3000:] + r.stderr
    assert r.returncode == 0, r.stdout[-2000:]


def test_console_send_against_sim():
    p, port = start(["-m", "host_tools", "sim", "--pty", "--duration", "60"])
    try:
        r = phonectl("console", "--port", port, "--send", "st", "--wait", "1", timeout=60)
    finally:
        stop(p)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert any(ln.startswith("ok") for ln in lines), r.stdout


def test_console_pretty_print():
    from host_tools.console_cmd import pretty
    s = pretty("tr c1 Idle MakeCall Calling SendINVITE,StartTimer")
    assert "-->" in s and "Idle" in s and "SendINVITE, StartTimer" in s
    assert pretty("ok c1 Calling", color=True).startswith("\x1b[32m")
    assert pretty("err unhandled", color=True).startswith("\x1b[31m")


def test_config_schema_and_example():
    r = phonectl("config", "schema", timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["type"] == "object"
    r = phonectl("config", "example", timeout=60)
    assert r.returncode == 0
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    from uphone import config
    assert config.validate(json.loads(r.stdout)) == []
