# The virtual board behaves like an ESP32 running MicroPython v1.27 where the host tools and the firmware can tell:
# soft resets (from the raw REPL: main.py skipped, back in the raw REPL; from the friendly REPL: main.py runs),
# Ctrl-C interrupting a running main.py, machine.reset() and a starved watchdog resetting it for real, the watchdog
# surviving a soft reset, files written through mpremote landing in the board's folder. Real mpremote and pyserial.
import time

import pytest

from tests.vboard import VBoard

COUNTER = """import time
n = 0
while True:
    n += 1
    time.sleep_ms(10)
"""


def read_until(ser, ending, timeout):
    got = b""
    end = time.time() + timeout
    while not got.endswith(ending) and ending not in got and time.time() < end:
        got += ser.read(4096)
    return got if ending in got else None


@pytest.fixture
def vb(tmp_path):
    b = VBoard(tmp_path / "board")
    yield b
    b.close()


def test_raw_soft_reset_skips_main_and_friendly_soft_reset_runs_it(vb):
    import serial
    vb.exec("f = open('main.py', 'w'); f.write('booted = 42\\n'); f.close()")
    assert open(vb.root + "/main.py").read() == "booted = 42\n"
    # mpremote soft-resets in the raw REPL first: main.py does not run
    out = vb.exec("print('booted' in globals())")
    assert out.strip() == "False"
    assert vb.wait_line("start pid=", 5) and "cause=soft mode=raw" in vb.events()[-1]
    # a person at the friendly REPL presses Ctrl-D: soft reboot, main.py runs, the friendly prompt comes back
    ser = serial.Serial(vb.port, 115200, timeout=0.2)
    try:
        ser.write(b"\r\x02")                        # leave the raw REPL
        assert read_until(ser, b">>> ", 10)
        ser.write(b"\x04")
        got = read_until(ser, b">>> ", 20)
        assert b"MPY: soft reboot\r\n" in got, got
        ser.write(b"print(booted)\r")
        assert read_until(ser, b"42", 10)
    finally:
        ser.close()
    starts = [e for e in vb.events() if e.startswith("start")]
    assert starts[-1].endswith("cause=soft mode=friendly"), starts


def test_ctrl_c_interrupts_main_and_the_repl_keeps_its_globals(vb):
    open(vb.root + "/main.py", "w").write(COUNTER)
    vb.command("reset")                             # the reset button: main.py runs
    assert vb.wait_line("cause=hard mode=friendly", 20)
    time.sleep(0.5)
    out = vb.exec("print(n > 0, n)", resume=True)   # Ctrl-C, raw REPL, no soft reset
    first = int(out.split()[1])
    assert out.split()[0] == "True"
    out = vb.exec("print(n)", resume=True)          # stopped: the count does not move any more
    assert int(out.split()[0]) == first


def test_machine_reset_and_reset_cause(vb):
    open(vb.root + "/main.py", "w").write("import machine\ncause = machine.reset_cause()\n")
    r = vb.mpremote("reset", timeout=30)            # mpremote: exec --no-follow machine.reset()
    assert r.returncode == 0, r.stdout + r.stderr
    line = vb.wait_line("reset cause=hard", 20)
    assert line, vb.lines[-10:]
    assert vb.wait_line("cause=hard mode=friendly", 20)
    time.sleep(0.5)
    assert vb.exec("import machine; print(cause == machine.HARD_RESET)", resume=True).strip() == "True"
    # a soft reset is SOFT_RESET
    assert vb.exec("import machine; print(machine.reset_cause() == machine.SOFT_RESET)").strip() == "True"


def test_a_starved_watchdog_resets_the_board_and_survives_a_soft_reset(vb):
    # armed from the REPL, then the REPL soft-resets (mpremote): the watchdog is still running and resets the
    # board, which comes back as after power-on with the watchdog off
    open(vb.root + "/main.py", "w").write("import machine\nbooted = machine.reset_cause()\n")
    start = vb.mark()
    vb.exec("import machine; w = machine.WDT(timeout=1500); w.feed()")
    assert vb.wait_line("wdt armed ms=1500", 10, start)
    vb.exec("print('still here')")                  # a soft reset in between: nobody feeds
    line = vb.wait_line("reset cause=wdt", 20, start)
    assert line, vb.lines[start:]
    assert vb.wait_line("cause=wdt mode=friendly", 10, start)
    time.sleep(0.5)
    assert vb.exec("import machine; print(booted == machine.WDT_RESET)", resume=True).strip() == "True"
    # after the hard reset the watchdog is off: the board stays up
    mark = vb.mark()
    time.sleep(2.5)
    assert not [ln for ln in vb.lines[mark:] if "reset cause" in ln]
