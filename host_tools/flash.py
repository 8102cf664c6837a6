# phonectl flash: write a MicroPython firmware image to an ESP32 handset with esptool: detect the chip, erase the
# flash, write the image at the chip's offset (0x1000 for the ESP32, 0x0 for ESP32-S3/C3). The command runner is
# injectable so tests can check the exact esptool command lines without a device.
import os
import subprocess
import sys

from host_tools.deploy import DeployError, check_port

OFFSETS = {"esp32": "0x1000", "esp32s2": "0x1000", "esp32s3": "0x0", "esp32c3": "0x0", "esp32c6": "0x0"}
GET_IT = ("download it from https://micropython.org/download/ (ESP32_GENERIC for ESP32 boards, ESP32_GENERIC_S3 "
          "for ESP32-S3, ESP32_GENERIC_C3 for ESP32-C3; the .bin file)")


def default_runner(cmd):
    """-> (returncode, output). Streams esptool's own progress to the terminal as it goes."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    for line in p.stdout:
        out.append(line)
        sys.stdout.write("  " + line)
        sys.stdout.flush()
    return p.wait(), "".join(out)


def esptool_cmd(port, baud, *args):
    return [sys.executable, "-m", "esptool", "--port", port, "--baud", str(baud)] + list(args)


# esptool names the chip on several lines; which ones depends on the version (fixtures in tests/fixtures/esptool):
#   v4: "Detecting chip type... ESP32" (after, on an ESP32 ROM, "Detecting chip type... Unsupported detection
#       protocol, switching and trying again..."), then "Chip is ESP32-D0WD-V3 (revision v3.1)"
#   v5: "Detecting chip type... ESP32", "Connected to ESP32 on /dev/ttyUSB0:", "Chip type:          ESP32-D0WD-V3 ..."
_CHIP_PREFIXES = ("chip is ", "chip type:", "connected to ", "detecting chip type...")
_CHIPS = ("esp32s3", "esp32s2", "esp32c3", "esp32c6", "esp32")      # longest first: "esp32" prefixes the others


def _chip_name(value):
    """'ESP32-D0WD-V3 (revision v3.1)' / 'ESP32-S3 on /dev/ttyUSB0:' -> 'esp32' / 'esp32s3', else None."""
    words = value.strip().split()
    if not words:
        return None
    word = words[0].lower().replace("-", "").rstrip(":")
    for chip in _CHIPS:
        if word.startswith(chip):
            return chip
    return None


def parse_chip(text):
    """esptool's chip_id/flash_id output (v4 or v5) -> 'esp32' | 'esp32s3' | ... or None.
    The "Chip is" / "Chip type:" line names the part (e.g. ESP32-D0WD-V3) and wins; the detection lines are a
    fallback. A line that names no chip (the v4 "Unsupported detection protocol" retry) is skipped."""
    found = {}
    for line in text.splitlines():
        low = line.strip().lower()
        for prefix in _CHIP_PREFIXES:
            if low.startswith(prefix):
                chip = _chip_name(line.strip()[len(prefix):])
                if chip is not None:
                    found.setdefault(prefix, chip)
                break
    for prefix in _CHIP_PREFIXES:
        if prefix in found:
            return found[prefix]
    return None


def verified(text):
    """True when esptool read the written image back and its hash matched (write_flash, v4 and v5)."""
    return any(line.strip() == "Hash of data verified." for line in text.splitlines())


def flash(port, firmware, baud=460800, runner=default_runner, chip=None, erase=True, out=sys.stdout):
    if not firmware or not os.path.isfile(firmware):
        raise DeployError("firmware image %s not found: %s" % (firmware, GET_IT))
    check_port(port)
    if chip is None:
        print("[1/3] detecting the chip on %s" % port, file=out, flush=True)
        rc, text = runner(esptool_cmd(port, baud, "flash_id"))
        if rc != 0:
            raise DeployError("esptool could not talk to %s (hold BOOT while plugging in?): %s" % (
                port, (text.strip().splitlines() or ["exit %d" % rc])[-1]))
        chip = parse_chip(text)
        if chip is None:
            raise DeployError("could not tell the chip type from esptool's output; pass --chip")
    if chip not in OFFSETS:
        raise DeployError("unsupported chip %s (supported: %s)" % (chip, ", ".join(sorted(OFFSETS))))
    offset = OFFSETS[chip]
    print("chip: %s, image offset %s" % (chip, offset), file=out)
    if erase:
        print("[2/3] erasing the flash", file=out, flush=True)
        rc, text = runner(esptool_cmd(port, baud, "--chip", chip, "erase_flash"))
        if rc != 0:
            raise DeployError("erase failed: %s" % (text.strip().splitlines() or ["exit %d" % rc])[-1])
    print("[3/3] writing %s at %s" % (os.path.basename(firmware), offset), file=out, flush=True)
    rc, text = runner(esptool_cmd(port, baud, "--chip", chip, "write_flash", "-z", offset, firmware))
    if rc != 0:
        raise DeployError("write failed: %s" % (text.strip().splitlines() or ["exit %d" % rc])[-1])
    if not verified(text):
        raise DeployError("esptool wrote the image but did not report 'Hash of data verified.': flash again")
    print("flashed %s; next: phonectl deploy --port %s --board BOARD" % (firmware, port), file=out)
    return 0


def register(sub):
    p = sub.add_parser("flash", help="write a MicroPython firmware image to the phone (esptool)",
                       description="Detect the chip with esptool, erase the flash and write the MicroPython image "
                                   "at the chip's offset (0x1000 ESP32, 0x0 ESP32-S3/C3). Get the image from "
                                   "https://micropython.org/download/ (ESP32_GENERIC, ESP32_GENERIC_S3, "
                                   "ESP32_GENERIC_C3).")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    p.add_argument("--firmware", required=True, metavar="FILE", help="MicroPython .bin image (" + GET_IT + ")")
    p.add_argument("--baud", type=int, default=460800, help="baud rate for writing (default 460800)")
    p.add_argument("--chip", choices=sorted(OFFSETS), help="skip detection")
    p.add_argument("--no-erase", action="store_true", help="do not erase the whole flash first")
    p.set_defaults(func=run)


def run(args):
    try:
        return flash(args.port, args.firmware, args.baud, chip=args.chip, erase=not args.no_erase)
    except DeployError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
