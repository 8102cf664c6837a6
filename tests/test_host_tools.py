# Host tools end to end against a virtual ESP32 on a pty (host_tools/virtual_board.py: the frozen MicroPython unix
# binary with simulated hardware, its filesystem a folder), through the real mpremote and pyserial: deploy (only
# changed files), provision (atomic, validated), exec on the board, the vectors over the serial harness against the
# firmware's console on the board, console --send, flash command lines with a fake esptool. Loopback only, bounded.
import io
import json
import os
import subprocess
import sys

import pytest

from tests.proc import RUNTIMES, free_port, phone_config, sim_cmd

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


FIXTURES = os.path.join(ROOT, "tests", "fixtures", "esptool")     # reconstructed from esptool's source: see README
ESPTOOL_TAGS = ("v4.8.1", "v5.1.0")


def fixture(tag, chip, verb):
    with open(os.path.join(FIXTURES, "%s_%s_%s.txt" % (tag, chip, verb)), newline="") as f:
        return f.read()


@pytest.mark.parametrize("tag", ESPTOOL_TAGS)
@pytest.mark.parametrize("chip", ["esp32", "esp32s3"])
def test_parse_chip_on_esptool_output(tag, chip):
    from host_tools import flash
    for verb in ("chip_id", "flash_id"):
        assert flash.parse_chip(fixture(tag, chip, verb)) == chip, (tag, chip, verb)
    assert flash.verified(fixture(tag, chip, "write_flash"))
    assert not flash.verified(fixture(tag, chip, "flash_id"))


def test_parse_chip_edge_lines():
    from host_tools import flash
    # v4 on an ESP32 ROM: the first detection line names no chip and must not be taken for one (was an IndexError)
    assert flash.parse_chip("Detecting chip type... Unsupported detection protocol, switching and trying again...\n"
                            "Connecting....\n") is None
    assert flash.parse_chip("Detecting chip type... ESP32\n") == "esp32"
    assert flash.parse_chip("Chip type:          ESP32-C3 (QFN32) (revision v0.4)\n") == "esp32c3"
    assert flash.parse_chip("A fatal error occurred: Failed to connect to Espressif device\n") is None


@pytest.mark.parametrize("tag", ESPTOOL_TAGS)
def test_flash_command_lines_per_chip(tag, tmp_path):
    from host_tools import flash
    img = tmp_path / "ESP32_GENERIC.bin"
    img.write_bytes(b"\xe9" + b"\0" * 15)
    port = str(tmp_path / "ttyFAKE")
    open(port, "w").close()         # the port exists; the fake runner plays esptool's recorded output
    for chip, offset in (("esp32", "0x1000"), ("esp32s3", "0x0")):
        calls = []

        def runner(cmd):
            calls.append(cmd)
            verb = next(v for v in ("flash_id", "erase_flash", "write_flash") if v in cmd)
            if verb == "erase_flash":
                return 0, "Erasing flash (this may take a while)...\n"
            return 0, fixture(tag, chip, verb)
        out = io.StringIO()
        assert flash.flash(port, str(img), 460800, runner=runner, out=out) == 0
        base = [sys.executable, "-m", "esptool", "--port", port, "--baud", "460800"]
        assert calls == [base + ["flash_id"], base + ["--chip", chip, "erase_flash"],
                         base + ["--chip", chip, "write_flash", "-z", offset, str(img)]]
        assert "chip: %s, image offset %s" % (chip, offset) in out.getvalue()
    # an exit 0 without the read-back check is not a flashed phone
    unverified = fixture(tag, "esp32", "write_flash").replace("Hash of data verified.", "")
    with pytest.raises(flash.DeployError, match="Hash of data verified"):
        flash.flash(port, str(img), chip="esp32", runner=lambda c: (0, unverified), out=io.StringIO())
    with pytest.raises(flash.DeployError, match="micropython.org/download"):
        flash.flash(port, str(tmp_path / "missing.bin"), runner=lambda c: (0, ""))


def test_deploy_only_changed_files_and_exec(board, tmp_path, monkeypatch):
    port, root = board
    import shutil
    src = tmp_path / "fw"      # a snapshot: others may edit firmware/ while this runs
    shutil.copytree(os.path.join(ROOT, "firmware"), src, ignore=shutil.ignore_patterns("__pycache__"))
    # the virtual board's CPU is the 32-bit x86 unix port: viper modules need x86 native code
    # --no-reset: a reset would boot a phone on the factory config (port 5060) in the middle of the test run;
    # tests/test_vboard_boot.py deploys onto a running phone and lets deploy reset it
    dep = ("deploy", "--port", port, "--board", "generic_max98357", "--arch", "x86", "--source", str(src),
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


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_console_send_against_sim(runtime):
    p, port = start(sim_cmd(runtime, "--pty", "--duration", "60")[1:])
    try:
        r = phonectl("console", "--port", port, "--send", "st", "--wait", "1", timeout=60)
    finally:
        stop(p)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert any(ln.startswith("ok") for ln in lines), r.stdout


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_console_against_a_sim_phone(runtime, tmp_path):
    # a phone from a config, its console on a pty, driven by `phonectl console` as a device on /dev/ttyUSB0 is;
    # --pcap records the SIP it sends
    cfg = tmp_path / "phone.json"
    cfg.write_text(json.dumps(phone_config("alice")))
    pcap = tmp_path / "sip.pcap"
    p, port = start(sim_cmd(runtime, "--config", str(cfg), "--pty", "--pcap", str(pcap), "--duration", "60")[1:])
    nobody = free_port()
    try:
        r = phonectl("console", "--port", port, "--send", "ev MakeCall target=sip:bob@127.0.0.1:%d" % nobody,
                     "--send", "st", "--wait", "1.5", timeout=60)
    finally:
        stop(p)
        err = p.stderr.read()
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "ok c1 Initiating" in out and "st c1 call UAC" in out and "loop crashes=0" in out, out
    assert p.returncode == 0 and "Traceback" not in err, err
    from host_tools.pcap import read_pcap
    sent = [d for src, dst, d in read_pcap(str(pcap)) if dst == ("127.0.0.1", nobody)]
    assert sent and sent[0].startswith(b"INVITE sip:bob@127.0.0.1:%d " % nobody), sent[:1]


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


def test_esp32_build_passes_the_boards_c_modules(tmp_path):
    from host_tools import runtime
    for board, duplex in (("korvo2_es8311", True), ("lyrat_es8388", True), ("generic_max98357", False)):
        bdir = str(tmp_path / board)
        args = runtime.esp32_make_args(board, bdir)
        assert args[:2] == ["BOARD_DIR=" + os.path.join(ROOT, "board", board), "BUILD=" + bdir]
        um = [a for a in args if a.startswith("USER_C_MODULES=")]
        assert len(um) == 1, (board, args)
        with open(um[0].split("=", 1)[1]) as f:
            text = f.read()
        assert "dgram/micropython.cmake" in text, text                   # every board: one datagram per read
        assert ("i2s_duplex/micropython.cmake" in text) == duplex, (board, text)
