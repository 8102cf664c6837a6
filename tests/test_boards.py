# Board folders against their sources: each mpconfigboard.cmake names only sdkconfig fragments MicroPython v1.27.0
# ships, boards with a USB-UART bridge keep the UART REPL (the console phonectl uses), and every board.json pin map
# passes uphone.boards.check (no strapping, PSRAM, flash, input-only-as-output or board-owned pins).
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARDS = sorted(d for d in os.listdir(os.path.join(ROOT, "board"))
                if os.path.isfile(os.path.join(ROOT, "board", d, "mpconfigboard.cmake")))

# `git ls-tree -r --name-only v1.27.0 ports/esp32/boards` in micropython/micropython (tag v1.27.0 =
# 78ff170de9e32c79db6e64d3e33d2bd60002bdcd): the shared fragments and the ESP32_GENERIC* boards' own ones.
V127_FRAGMENTS = {
    "boards/sdkconfig.240mhz", "boards/sdkconfig.base", "boards/sdkconfig.ble", "boards/sdkconfig.c2",
    "boards/sdkconfig.c6", "boards/sdkconfig.flash_2MiB", "boards/sdkconfig.free_ram", "boards/sdkconfig.p4",
    "boards/sdkconfig.p4_wifi_c5", "boards/sdkconfig.p4_wifi_c6", "boards/sdkconfig.p4_wifi_common",
    "boards/sdkconfig.riscv", "boards/sdkconfig.spiram", "boards/sdkconfig.spiram_oct", "boards/sdkconfig.spiram_sx",
    "boards/ESP32_GENERIC/sdkconfig.d2wd", "boards/ESP32_GENERIC/sdkconfig.ota",
    "boards/ESP32_GENERIC/sdkconfig.unicore", "boards/ESP32_GENERIC_C3/sdkconfig.c3usb",
    "boards/ESP32_GENERIC_S3/sdkconfig.board",
}


def read(board, name):
    with open(os.path.join(ROOT, "board", board, name)) as f:
        return f.read()


def board_json(board):
    return json.loads(read(board, "board.json"))


@pytest.mark.parametrize("board", BOARDS)
def test_sdkconfig_fragments_exist_in_v1_27_0(board):
    cmake = read(board, "mpconfigboard.cmake")
    block = re.search(r"set\(SDKCONFIG_DEFAULTS(.*?)\)", cmake, re.S).group(1)
    frags = [w for w in block.split() if not w.startswith("#")]
    assert frags and frags[0] == "boards/sdkconfig.base"
    for f in frags:
        if f.startswith("${MICROPY_BOARD_DIR}/"):
            assert os.path.isfile(os.path.join(ROOT, "board", board, f.split("/", 1)[1])), f
        else:
            assert f in V127_FRAGMENTS, "%s: %s is not in MicroPython v1.27.0's ports/esp32" % (board, f)
    target = re.search(r"set\(IDF_TARGET (\w+)\)", cmake).group(1)
    assert target == board_json(board)["chip"]


@pytest.mark.parametrize("board", BOARDS)
def test_console_on_the_usb_uart(board):
    # Every board here reaches the host through a USB-UART bridge on UART0 (CP2102N on the Korvo-2 and LyraT,
    # the module's programming header on the generic board). On the ESP32-S3 the port turns the UART REPL off
    # by default when native USB is on (ports/esp32/uart.h, v1.27.0), so the board must turn it on.
    h = read(board, "mpconfigboard.h")
    if board_json(board)["chip"] == "esp32s3":
        assert re.search(r"#define MICROPY_HW_ENABLE_UART_REPL\s+\(1\)", h), board
    assert "MICROPY_HW_ENABLE_UART_REPL (0)" not in h


def merged(raw):
    from uphone import boards
    return boards._merge(boards.DEFAULT, raw)


@pytest.mark.parametrize("board", BOARDS)
def test_pin_map_is_clear_of_strapping_psram_and_board_parts(board):
    from uphone import boards
    b = merged(board_json(board))
    assert boards.check(b) == [], board
    assert b.get("module") and b.get("psram") in ("quad", "octal", None)
    for pin, why in (b.get("vendor_wiring") or {}).items():
        assert "esp-bsp" in why, (board, pin)           # a strapping pin only where the vendor wired it


def test_default_is_the_generic_board():
    from uphone import boards
    raw = board_json("generic_max98357")
    assert raw.pop("user_c_modules") == ["dgram"]       # a build key (host_tools/runtime.py), not the firmware's
    assert merged(raw) == boards.DEFAULT


def test_check_catches_the_old_pin_maps():
    from uphone import boards
    # generic board before: keypad columns on GPIO12 (flash-voltage strap, with a pull-up) and GPIO5, rows on
    # GPIO16/17 (PSRAM on WROVER), line LED on GPIO2, mic WS on GPIO15
    old = merged({"pins": {"i2s": {"sck": 26, "ws": 25, "sd_out": 22, "sd_in": 32, "rx_sck": 14, "rx_ws": 15},
                           "keypad": {"rows": [16, 17, 18, 19], "cols": [23, 5, 13, 12], "cols_pull": "up",
                                      "keys": "123A456B789C*0#D"},
                           "leds": {"line": 2, "ring": 4, "mwi": 33}, "amp_enable": 21}})
    text = "\n".join(boards.check(old))
    for needle in ("GPIO12 is a strapping pin", "GPIO16 is the module's PSRAM", "GPIO17 is the module's PSRAM",
                   "GPIO15 is a strapping pin", "GPIO5 is a strapping pin", "GPIO2 is a strapping pin"):
        assert needle in text
    # Korvo-2 before: the handset on the LCD, microSD, battery ADC and camera pins
    k = board_json("korvo2_es8311")
    k["pins"].update({"hook": 1, "keypad": {"rows": [4, 5, 6, 7], "cols": [15, 16, 21, 39], "keys": "1" * 16},
                      "leds": {"line": 40, "ring": 41, "mwi": 42}})
    text = "\n".join(boards.check(merged(k)))
    for needle in ("GPIO1 belongs to the board's LCD clock", "GPIO4 belongs to the board's microSD D0",
                   "GPIO5 belongs to the board's button ladder", "GPIO6 belongs to the board's battery",
                   "GPIO16 is already i2s.mck", "GPIO21 belongs to the board's camera VSYNC",
                   "GPIO40 belongs to the board's camera XCLK"):
        assert needle in text, needle
    # LyraT before: ring LED on the headphone-detect input, a pull-up asked of input-only GPIO36
    ly = board_json("lyrat_es8388")
    ly["pins"].update({"hook_pull": "up", "leds": {"line": 22, "ring": 19}})
    text = "\n".join(boards.check(merged(ly)))
    assert "GPIO19 belongs to the board's headphone detect" in text
    assert "GPIO36 has no internal pull-up" in text
    assert boards.input_pull(merged(ly), 36, "up") is None and boards.input_pull(merged(ly), 27, "up") == "up"
