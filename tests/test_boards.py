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
