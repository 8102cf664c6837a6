# phonectl provision: validate a phone config with the firmware's own validator (uphone.config) on the host, then
# write it to the phone atomically: fs cp to /config.json.tmp, keep the old /config.json as /config.json.good,
# rename the temp file over /config.json on the phone, and read the result back to compare sha256.
# The scripts work in "/" with relative names: on an ESP32 the cwd is "/" anyway, and on the virtual board (v1.27
# VfsPosix) rename() with two absolute paths is broken while relative ones work (docs/NOTES.md).
import hashlib
import json
import os
import sys
import tempfile

from host_tools import deploy
from host_tools.deploy import DeployError

FIRMWARE = deploy.FIRMWARE

# Runs on the phone: keep the previous config as the last good one, then rename the new one into place.
SWAP_SCRIPT = """import os
os.chdir('/')
def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
if _exists('config.json'):
    with open('config.json', 'rb') as a:
        with open('config.json.good', 'wb') as b:
            while True:
                x = a.read(512)
                if not x:
                    break
                b.write(x)
try:
    os.rename('config.json.tmp', 'config.json')
except OSError:
    os.remove('config.json')
    os.rename('config.json.tmp', 'config.json')
print('swapped')
if not _exists('main.py'):
    with open('main.py', 'wb') as f:
        f.write(%r)
    print('wrote main.py')
""" % deploy.MAIN_PY

HASH_SCRIPT = """import hashlib, binascii
h = hashlib.sha256()
with open('/config.json', 'rb') as f:
    h.update(f.read())
print('sha256', binascii.hexlify(h.digest()).decode())
"""


def config_module():
    if FIRMWARE not in sys.path:
        sys.path.insert(0, FIRMWARE)
    try:
        from uphone import config
    except ImportError as e:
        raise DeployError("the firmware's config validator (firmware/uphone/config.py) cannot be imported: %s" % e)
    return config


def load_and_validate(path):
    """-> (raw bytes, parsed dict, [errors])."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, None, ["%s: %s" % (path, e.strerror or e)]
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return data, None, ["%s: not valid JSON: %s" % (path, e)]
    return data, raw, list(config_module().validate(raw))


def provision(port, path, out=sys.stdout, reset=True):
    data, raw, errors = load_and_validate(path)
    if errors:
        for e in errors:
            print("error: config %s" % e, file=sys.stderr)
        print("%d error(s): nothing written to the phone" % len(errors), file=sys.stderr)
        return 1
    deploy.check_port(port)
    want = hashlib.sha256(data).hexdigest()
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as tf:
        tf.write(data)
        tmp = tf.name
    try:
        print("[1/3] copying %s to %s:/config.json.tmp (%d bytes)" % (path, port, len(data)), file=out, flush=True)
        deploy.mpremote(port, ["exec", "import os; os.chdir('/')", "+", "fs", "cp", tmp, ":config.json.tmp"],
                        resume=False)
    finally:
        os.unlink(tmp)
    print("[2/3] keeping the old /config.json as /config.json.good, renaming the new one into place", file=out,
          flush=True)
    swapped = deploy.mpremote(port, ["exec", SWAP_SCRIPT], resume=False)
    if "wrote main.py" in swapped:
        print("      wrote /main.py (there was none): it starts the phone at boot", file=out, flush=True)
    print("[3/3] reading /config.json back", file=out, flush=True)
    text = deploy.mpremote(port, ["exec", HASH_SCRIPT], resume=False)
    got = [ln.split()[1] for ln in text.splitlines() if ln.startswith("sha256 ")]
    if got != [want]:
        raise DeployError("/config.json on the phone does not match %s (sha256 %s, phone %s)" % (
            path, want[:16], got[0][:16] if got else "?"))
    print("provisioned /config.json (%d bytes, sha256 %s...), previous config kept as /config.json.good" % (
        len(data), want[:16]), file=out)
    if reset:
        deploy.reset_phone(port, out, "with the new config")
    return 0


def register(sub):
    p = sub.add_parser("provision", help="validate a config file and write it to the phone as /config.json",
                       description="Validate the config with the firmware's own validator (nothing is written when "
                                   "it has errors), then copy it to the phone atomically (temp file + rename, the "
                                   "old config kept as /config.json.good) and verify it by sha256.")
    p.add_argument("--port", required=True, help="serial port of the phone, e.g. /dev/ttyUSB0")
    p.add_argument("--config", required=True, help="the phone's config file (JSON)")
    p.add_argument("--no-reset", action="store_true",
                   help="leave the phone in the REPL afterwards (default: reset it, so the new config is used)")
    p.set_defaults(func=run)


def run(args):
    try:
        return provision(args.port, args.config, reset=not args.no_reset)
    except DeployError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
