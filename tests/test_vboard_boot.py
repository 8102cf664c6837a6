# The phone's boot on the virtual board (the frozen firmware on MicroPython, simulated ESP32 hardware): what /main.py
# decides (the starter main.py boots the phone, a user's own main.py wins, no main.py = no phone), the watchdog
# (a deploy/provision of the whole firmware onto a running phone completes without a reset; a hung loop resets the
# board and main.py brings the phone back), through the real mpremote, phonectl and pyserial.
import json
import os
import subprocess
import sys

import pytest

from host_tools.deploy import MAIN_PY
from tests.proc import free_port
from tests.vboard import VBoard, Console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


def phone_folder(root, **sip):
    os.makedirs(str(root), exist_ok=True)
    cfg = {"accounts": [{"user": "board", "register": False}],
           "sip": dict({"local_ip": "127.0.0.1", "local_port": free_port()}, **sip)}
    with open(os.path.join(str(root), "config.json"), "w") as f:
        json.dump(cfg, f)
    with open(os.path.join(str(root), "main.py"), "wb") as f:
        f.write(MAIN_PY)
    with open(os.path.join(ROOT, "board", "generic_max98357", "board.json")) as src:
        with open(os.path.join(str(root), "board.json"), "w") as f:
            f.write(src.read())
    return cfg


def phonectl(*args, timeout=300):
    return subprocess.run([PY, "-m", "host_tools"] + list(args), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def board(tmp_path):
    root = tmp_path / "board"
    phone_folder(root)
    b = VBoard(root)
    yield b
    b.close()


def console_up(b, timeout=30):
    """The phone's console answers on the board's pty."""
    con = Console(b.port)
    try:
        ans, _ = con.cmd("st", timeout)
        return ans.startswith("ok")
    finally:
        con.close()


def test_starter_main_boots_the_phone_a_users_main_wins_and_no_main_no_phone(board):
    assert console_up(board)
    # the user replaces main.py; provisioning again does not put ours back
    user = os.path.join(board.root, "user_main.py")
    with open(user, "w") as f:
        f.write("print('user main here')\nmine = True\n")
    r = board.mpremote("fs", "cp", user, ":main.py")
    assert r.returncode == 0, r.stderr
    cfg = os.path.join(board.root, "..", "cfg.json")
    with open(cfg, "w") as f:
        json.dump({"accounts": [{"user": "board", "register": False}],
                   "sip": {"local_ip": "127.0.0.1", "local_port": free_port()}}, f)
    r = phonectl("provision", "--port", board.port, "--config", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert open(os.path.join(board.root, "main.py")).read() == "print('user main here')\nmine = True\n"
    mark = board.mark()
    board.command("reset")
    assert board.wait_line("cause=hard mode=friendly", 20, mark)
    assert board.exec("print(mine)", resume=True).strip() == "True"
    assert not [ln for ln in board.lines[mark:] if "wdt armed" in ln]          # the phone never started
    # no main.py: the board boots to the REPL and the phone does not start
    r = board.mpremote("fs", "rm", ":main.py")
    assert r.returncode == 0, r.stderr
    mark = board.mark()
    board.command("reset")
    assert board.wait_line("cause=hard mode=friendly", 20, mark)
    con = Console(board.port)
    try:
        con.ser.write(b"print(2 + 40)\r\n")
        assert con.wait(lambda ln: ln.strip() == "42", 10) == "42", con.lines     # the line, not a substring
    finally:
        con.close()
    assert not [ln for ln in board.lines[mark:] if "wdt armed" in ln]


def test_deploy_and_provision_onto_a_running_phone_are_not_cut_by_its_watchdog(tmp_path):
    # at 230400 baud copying the whole firmware takes longer than the loop's 10 s watchdog: only the REPL's
    # timeout (uphone.boot.Watchdog) lets it finish; afterwards deploy resets the phone, which runs the new files
    from uphone.boot import WDT_TIMEOUT_MS, REPL_WDT_MS
    root = tmp_path / "board"
    phone_folder(root)
    b = VBoard(root, extra=["--baud", "230400"])
    try:
        assert b.wait_line("wdt armed ms=%d" % WDT_TIMEOUT_MS, 30)
        assert console_up(b)
        mark = b.mark()
        r = phonectl("deploy", "--port", b.port, "--board", "generic_max98357", "--arch", "x86")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "all verified by sha256" in r.stdout and "reset the phone" in r.stdout, r.stdout
        n = int(r.stdout.split("copied ")[1].split()[0])
        assert n == sum(len([f for f in fs if f.endswith(".py")]) for d, _, fs in os.walk(
            os.path.join(ROOT, "firmware", "uphone")) if "__pycache__" not in d)
        during = b.lines[mark:]
        assert any("wdt armed ms=%d" % REPL_WDT_MS in ln for ln in during), during
        assert b.wait_line("reset cause=hard", 30, mark)
        assert not [ln for ln in b.lines[mark:] if "wdt expired" in ln or "cause=wdt" in ln], b.lines[mark:]
        back = b.mark()
        assert b.wait_line("wdt armed ms=%d" % WDT_TIMEOUT_MS, 30, mark)
        assert console_up(b)
        # provision onto the running phone: the same
        cfg = tmp_path / "new.json"
        cfg.write_text(json.dumps({"accounts": [{"user": "board2", "register": False}],
                                   "sip": {"local_ip": "127.0.0.1", "local_port": free_port()}}))
        mark = b.mark()
        r = phonectl("provision", "--port", b.port, "--config", str(cfg))
        assert r.returncode == 0, r.stdout + r.stderr
        assert b.wait_line("reset cause=hard", 30, mark)
        assert b.wait_line("wdt armed ms=%d" % WDT_TIMEOUT_MS, 30, mark)
        assert not [ln for ln in b.lines[back:] if "wdt expired" in ln], b.lines[back:]
        assert console_up(b)
        # the phone runs the deployed files (the board's folder comes before the frozen copy)
        out = b.exec("import uphone.boot as m, json; print(m.__file__, json.load(open('config.json'))"
                     "['accounts'][0]['user'])", resume=True)
        assert out.split() == ["uphone/boot.mpy", "board2"], out
    finally:
        b.close()


HANGS = """from uphone import boot
import machine, time
_boot_button = machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP)
def hang(now):
    if _boot_button.value() == 0:   # pressed (a test pulls GPIO0 low): the loop stops, nobody feeds the watchdog
        while True:
            time.sleep_ms(100)
boot.main(hooks=(hang,))
"""


def test_a_hung_loop_resets_the_board_and_main_brings_the_phone_back(tmp_path):
    from uphone.boot import WDT_TIMEOUT_MS
    root = tmp_path / "board"
    phone_folder(root)
    (root / "main.py").write_text(HANGS)
    b = VBoard(root)
    try:
        assert b.wait_line("wdt armed ms=%d" % WDT_TIMEOUT_MS, 30)
        assert console_up(b)
        mark = b.mark()
        b.command("pin 0 0")
        assert b.wait_line("wdt expired ms=%d" % WDT_TIMEOUT_MS, WDT_TIMEOUT_MS / 1000 + 20, mark), b.lines[mark:]
        assert b.wait_line("start pid=", 10, mark).endswith("cause=wdt mode=friendly")
        assert b.wait_line("wdt armed ms=%d" % WDT_TIMEOUT_MS, 30, mark)       # main.py ran: the phone is back
        assert console_up(b)
        assert b.exec("import machine; print(machine.reset_cause() == machine.WDT_RESET)",
                      resume=True).strip() == "True"
    finally:
        b.close()
