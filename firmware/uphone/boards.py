# Board pin maps at runtime: deploy copies board/<name>/board.json to the phone as /board.json; this reads it and
# fills what it leaves out from DEFAULT (the generic ESP32 + MAX98357A + INMP441 wiring).
import json

BOARD_PATH = "board.json"          # in "/" (relative: see CONFIG_PATH in the boot code)

DEFAULT = {
    "name": "generic_max98357",
    "chip": "esp32",
    "module": "ESP32-WROVER-E",
    "psram": "quad",
    "codec": "max98357",
    "mic": "inmp441",
    "rate": 8000,
    "pins": {
        "i2s": {"sck": 26, "ws": 25, "sd_out": 22, "sd_in": 39, "rx_sck": 32, "rx_ws": 33, "mck": None},
        "i2c": {"scl": None, "sda": None},
        "hook": 27,
        "hook_off_level": 1,
        "hook_pull": "up",
        "hook_toggle": False,
        "keypad": {"rows": [18, 19, 21, 23], "cols": [34, 35, 36], "cols_pull": "external",
                   "keys": "123456789*0#"},
        "buttons": None,
        "expander": None,
        "leds": {"line": 4, "ring": 13, "mwi": 14, "reg": None},
        "amp_enable": None,
        "amp_gain": None,
        "ringer": None,
    },
    "audio": {},
    "reserved": {},
    "vendor_wiring": {},
    "supports": ["sip", "console", "audio_tx", "audio_rx", "handset"],
}

def _merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def load(path=BOARD_PATH):
    """-> (board dict, note). note is "" when the file was read, else why the defaults are used."""
    try:
        with open(path) as f:
            raw = json.loads(f.read())
    except OSError:
        return _merge(DEFAULT, {}), "%s missing: using the %s pin map" % (path, DEFAULT["name"])
    except ValueError:
        return _merge(DEFAULT, {}), "%s is not valid JSON: using the %s pin map" % (path, DEFAULT["name"])
    if not isinstance(raw, dict) or not isinstance(raw.get("pins", {}), dict):
        return _merge(DEFAULT, {}), "%s: expected an object with pins: using defaults" % path
    return _merge(DEFAULT, raw), ""


def shared_i2s_clock(board):
    """True when RX has no clock pins of its own (one codec SCLK/LRCK pair for both directions)."""
    p = board["pins"]["i2s"]
    return p.get("rx_sck") is None or (p.get("rx_sck") == p.get("sck") and p.get("rx_ws") == p.get("ws"))


# -- pin rules ----------------------------------------------------------------------------------------------------
# Which GPIOs exist: MicroPython v1.27.0 ports/esp32/machine_pin.h (ESP32: no GPIO16/17 in a SPIRAM build; S3: no
# GPIO26 with SPIRAM, no GPIO33-37 with octal SPIRAM, 27-32 never). What they are for, from Espressif's datasheets:
# - ESP32 Series Datasheet, "Strapping Pins": GPIO0, GPIO2, GPIO5, MTDI/GPIO12 (flash voltage), MTDO/GPIO15;
#   "Pin Description": GPIO6-11 carry the SPI flash, GPIO34-39 are input-only without pull resistors;
#   ESP32-WROVER-E datasheet: GPIO16/17 are the module's PSRAM and are not for use.
# - ESP32-S3 Series Datasheet, "Strapping Pins": GPIO0, GPIO3, GPIO45, GPIO46; GPIO26-32 the SPI flash/PSRAM,
#   GPIO33-37 octal flash/PSRAM, GPIO19/20 USB D-/D+.
# - UART0 (the console phonectl talks to): ESP32 GPIO1/3, ESP32-S3 GPIO43/44.
CHIPS = {  # type: dict
    "esp32": {
        "gpio": tuple(range(0, 20)) + (21, 22, 23, 25, 26, 27) + tuple(range(32, 40)),
        "psram": {"quad": (16, 17)},
        "flash": (6, 7, 8, 9, 10, 11),
        "strapping": (0, 2, 5, 12, 15),
        "input_only": (34, 35, 36, 37, 38, 39),
        "console": (1, 3),
    },
    "esp32s3": {
        "gpio": tuple(range(0, 22)) + (26,) + tuple(range(33, 49)),
        "psram": {"quad": (26,), "octal": (26, 33, 34, 35, 36, 37)},
        "flash": (),
        "strapping": (0, 3, 45, 46),
        "input_only": (),
        "console": (43, 44, 19, 20),
    },
}

_OUT, _IN, _ANALOG = "out", "in", "analog"


def _uses(board):
    """-> list of (pin, what, direction, pull, handset) for every GPIO the pin map uses."""
    p = board["pins"]
    out = []
    i2s = p.get("i2s") or {}
    for name, d in (("mck", _OUT), ("sck", _OUT), ("ws", _OUT), ("sd_out", _OUT), ("sd_in", _IN),
                    ("rx_sck", _OUT), ("rx_ws", _OUT)):
        if i2s.get(name) is not None:
            if name in ("rx_sck", "rx_ws") and i2s.get(name) == i2s.get(name[3:]):
                continue                                    # RX on the TX clock pair
            out.append((i2s[name], "i2s." + name, d, None, False))
    for name in ("scl", "sda"):
        if (p.get("i2c") or {}).get(name) is not None:
            out.append((p["i2c"][name], "i2c." + name, _OUT, None, False))
    if p.get("hook") is not None:
        out.append((p["hook"], "hook", _IN, p.get("hook_pull", "up"), True))
    kp = p.get("keypad") or {}
    for i, pin in enumerate(kp.get("rows", ())):
        out.append((pin, "keypad.rows[%d]" % i, _OUT, None, True))
    for i, pin in enumerate(kp.get("cols", ())):
        out.append((pin, "keypad.cols[%d]" % i, _IN, kp.get("cols_pull", "up"), True))
    for name, pin in sorted((p.get("leds") or {}).items()):
        if pin is not None:
            out.append((pin, "leds." + name, _OUT, None, True))
    for name in ("amp_enable", "amp_gain", "ringer"):
        if p.get(name) is not None:
            out.append((p[name], name, _OUT, None, True))
    if (p.get("buttons") or {}).get("adc") is not None:
        out.append((p["buttons"]["adc"], "buttons.adc", _ANALOG, None, True))
    return out


def check(board):
    """-> list of problems with the board's pin map (empty when it is fine for its chip, module and board)."""
    chip = CHIPS.get(board.get("chip"))
    if chip is None:
        return ["chip %r: expected one of %s" % (board.get("chip"), ", ".join(sorted(CHIPS)))]
    psram = chip["psram"].get(board.get("psram") or "", ())
    reserved = board.get("reserved") or {}
    vendor = board.get("vendor_wiring") or {}
    problems = []
    seen = {}  # type: dict
    for pin, what, d, pull, handset in _uses(board):
        if pin in seen:
            problems.append("%s: GPIO%d is already %s" % (what, pin, seen[pin]))
        seen[pin] = what
        if pin not in chip["gpio"]:
            problems.append("%s: GPIO%d does not exist on the %s" % (what, pin, board["chip"]))
        elif pin in psram:
            problems.append("%s: GPIO%d is the module's PSRAM (%s)" % (what, pin, board.get("module")))
        elif pin in chip["flash"]:
            problems.append("%s: GPIO%d is the SPI flash" % (what, pin))
        elif pin in chip["console"]:
            problems.append("%s: GPIO%d is the console UART/USB" % (what, pin))
        if str(pin) in reserved and not (what == "buttons.adc" and reserved[str(pin)].startswith("button ladder")):
            problems.append("%s: GPIO%d belongs to the board's %s" % (what, pin, reserved[str(pin)]))
        if pin in chip["strapping"] and (handset or str(pin) not in vendor):
            problems.append("%s: GPIO%d is a strapping pin" % (what, pin))
        if pin in chip["input_only"]:
            if d == _OUT:
                problems.append("%s: GPIO%d is input-only" % (what, pin))
            elif d == _IN and handset and pull != "external":
                problems.append("%s: GPIO%d has no internal pull-up (input-only pin): needs an external one"
                                % (what, pin))
    x = (board["pins"].get("expander") or {})
    used = {}
    for name, bit in sorted((x.get("leds") or {}).items()):
        if not 0 <= bit <= 7 or bit in used or str(bit) in (x.get("reserved") or {}):
            problems.append("expander.leds.%s: P%d is taken or out of range" % (name, bit))
        used[bit] = name
    return problems


def input_pull(board, pin, pull):
    """The pull to request for an input: None on the chip's input-only pins (MicroPython would silently ask the
    pad for a pull-up it does not have) and where the board says the resistor is external."""
    chip = CHIPS.get(board.get("chip"), {})
    if pull != "up" or pin in chip.get("input_only", ()):
        return None
    return "up"
