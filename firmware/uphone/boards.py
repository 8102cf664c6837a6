# Board pin maps at runtime: deploy copies board/<name>/board.json to the phone as /board.json; this reads it and
# fills what it leaves out from DEFAULT (the generic ESP32 + MAX98357A + INMP441 wiring).
import json

BOARD_PATH = "board.json"          # in "/" (relative: see CONFIG_PATH in the boot code)

DEFAULT = {
    "name": "generic_max98357",
    "chip": "esp32",
    "codec": "max98357",
    "rate": 8000,
    "pins": {
        "i2s": {"sck": 26, "ws": 25, "sd_out": 22, "sd_in": 32, "rx_sck": 14, "rx_ws": 15},
        "i2c": {"scl": None, "sda": None},
        "hook": 27,
        "hook_off_level": 1,
        "keypad": {"rows": [16, 17, 18, 19], "cols": [23, 5, 13, 12], "keys": "123A456B789C*0#D"},
        "leds": {"line": 2, "ring": 4, "mwi": 33, "reg": None},
        "amp_enable": 21,
        "amp_gain": None,
        "ringer": None,
    },
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
