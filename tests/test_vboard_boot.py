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
        assert con.wait("42", 10) == "42", con.lines
    finally:
        con.close()
    assert not [ln for ln in board.lines[mark:] if "wdt armed" in ln]
