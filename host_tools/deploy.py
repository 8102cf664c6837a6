# phonectl deploy: compile firmware/ with mpy-cross for the phone's CPU into build/<board>/, then copy only the files
# whose sha256 differs from the phone's (mpremote fs cp, one connection), and verify every copied file by hash.
# Also home of the helpers provision.py shares: port check, mpremote runner, the on-device hash listing.
import hashlib
import os
import shutil
import subprocess
import sys

from host_tools import tablec

ROOT = tablec.ROOT
FIRMWARE = os.path.join(ROOT, "firmware")
BOARDS = os.path.join(ROOT, "board")
KEEP_PY = ("main.py", "boot.py")        # MicroPython only runs these as .py at boot; everything else ships as .mpy
# What boots the phone. The boot code is in the package (uphone/boot.py); no board freezes a main.py, because a frozen
# one would run instead of the user's (pyexec_file_if_exists looks in the frozen modules first). Deploy and provision
# write this file only when the phone has no /main.py: a user's own main.py is never overwritten.
MAIN_PY = (b"# uPhone: start the phone at boot (written by phonectl deploy/provision because there was no main.py).\n"
           b"# Replace this file to boot something else; delete it and the phone does not start.\n"
           b"from uphone import boot\n"
           b"boot.main()\n")
BATCH_BYTES = 24 * 1024
ARCHES = ("xtensawin", "xtensa", "rv32imc", "armv7emsp", "x86", "x64")     # x86: the virtual board

# Runs on the phone (MicroPython: os.ilistdir, hashlib.sha256, binascii.hexlify): one line per entry,
# `path size sha256hex` for a file, `path/ - -` for a folder.
LIST_SCRIPT = """import os, hashlib, binascii
def _l(d):
    for e in os.ilistdir(d):
        p = d.rstrip('/') + '/' + e[0]
        if e[1] & 0x4000:
            print(p + '/ - -')
            _l(p)
        else:
            h = hashlib.sha256()
            n = 0
            with open(p, 'rb') as f:
                while True:
                    b = f.read(1024)
                    if not b:
                        break
                    h.update(b)
                    n += len(b)
            print(p, n, binascii.hexlify(h.digest()).decode())
_l('/')
"""


class DeployError(Exception):
    pass


def check_port(port):
    """A missing device node is the most common mistake: say so in one line instead of a traceback."""
    if not port:
        raise DeployError("no --port given (e.g. --port /dev/ttyUSB0; list ports with `python -m serial.tools."
                          "list_ports`)")
    if "://" in port:
        return
    if not os.path.exists(port):
        raise DeployError("port %s not found: is the phone plugged in? (list ports with `python -m serial.tools."
                          "list_ports`)" % port)


def mpremote(port, args, timeout=120, resume=True, on_line=None):
    """Run `mpremote connect PORT [resume] ARGS...`; -> stdout text. on_line(line) sees stdout as it arrives."""
    cmd = [sys.executable, "-m", "mpremote", "connect", port] + (["resume"] if resume else []) + list(args)
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise DeployError("cannot run mpremote: %s" % e)
    out = []
    try:
        import threading
        err = []
        t = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
        t.start()
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            for line in p.stdout:
                out.append(line)
                if on_line:
                    on_line(line.rstrip("\r\n"))
            p.wait()
        finally:
            timer.cancel()
        t.join(5)
    finally:
        if p.poll() is None:
            p.kill()
    if p.returncode != 0:
        msg = ((err[0] if err else "") + "".join(out)).strip().splitlines()
        raise DeployError("mpremote %s failed on %s: %s" % (args[0] if args else "", port,
                                                            msg[-1] if msg else "exit %d" % p.returncode))
    return "".join(out)


def device_files(port, resume=False):
    """-> {path: (size, sha256hex)} and the set of folders on the phone."""
    text = mpremote(port, ["exec", LIST_SCRIPT], resume=resume)
    files, dirs = {}, set()
    for ln in text.splitlines():
        w = ln.strip().split(" ")
        if len(w) != 3 or not w[0].startswith("/"):
            continue
        if w[0].endswith("/"):
            dirs.add(w[0].rstrip("/"))
        else:
            files[w[0]] = (int(w[1]), w[2])
    return files, dirs


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def default_arch(board):
    return "rv32imc" if "c3" in board.lower().replace("-", "_").split("_") else "xtensawin"


def build(board, arch, out=sys.stdout, source=FIRMWARE):
    """firmware/**/*.py -> build/<board>/ (.mpy, main.py/boot.py stay .py) + board.json + the starter main.py.
    -> (dir, [rel paths])."""
    dest = os.path.join(ROOT, "build", board)
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    rels = []
    sources = []
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith(".py"):
                sources.append(os.path.relpath(os.path.join(dirpath, fn), source))
    for rel in sources:
        src = os.path.join(source, rel)
        if rel in KEEP_PY:
            target = rel
            os.makedirs(os.path.dirname(os.path.join(dest, target)) or dest, exist_ok=True)
            shutil.copyfile(src, os.path.join(dest, target))
        else:
            target = rel[:-3] + ".mpy"
            os.makedirs(os.path.dirname(os.path.join(dest, target)), exist_ok=True)
            r = subprocess.run([sys.executable, "-m", "mpy_cross", "-march=" + arch, "-s", rel,
                                "-o", os.path.join(dest, target), src], capture_output=True, text=True)
            if r.returncode != 0:
                raise DeployError("mpy-cross -march=%s %s: %s" % (arch, rel, (r.stderr or r.stdout).strip()))
        rels.append(target.replace(os.sep, "/"))
    bj = os.path.join(BOARDS, board, "board.json")
    if os.path.isfile(bj):
        shutil.copyfile(bj, os.path.join(dest, "board.json"))
        rels.append("board.json")
    else:
        print("note: %s not found: deploying without a board file" % os.path.relpath(bj, ROOT), file=out)
    if "main.py" not in rels:
        with open(os.path.join(dest, "main.py"), "wb") as f:
            f.write(MAIN_PY)
        rels.append("main.py")
    print("built %d files for %s (mpy-cross -march=%s) in %s" % (len(rels), board, arch,
                                                                  os.path.relpath(dest, ROOT)), file=out)
    return dest, rels


def plan(build_dir, rels, on_device):
    """-> list of rel paths whose hash differs from the phone's (or that the phone lacks)."""
    changed = []
    for rel in rels:
        have = on_device.get("/" + rel)
        if rel == "main.py" and have is not None:
            continue                    # the phone's main.py is the user's to keep (ours or their own)
        if have is None or have[1] != sha256_file(os.path.join(build_dir, rel)):
            changed.append(rel)
    return changed


def reset_phone(port, out, why):
    """A hard reset (mpremote reset: machine.reset() without waiting for an answer): the phone boots what was just
    written. Until then it sits in the REPL, where its watchdog resets it after a while anyway (uphone.boot)."""
    mpremote(port, ["reset"], timeout=30, resume=True)
    print("reset the phone: it boots %s" % why, file=out)


def deploy(port, board, arch, dry_run=False, out=sys.stdout, source=FIRMWARE, reset=True):
    build_dir, rels = build(board, arch, out, source)
    check_port(port)
    print("reading the file list and hashes from %s ..." % port, file=out, flush=True)
    files, dirs = device_files(port)
    changed = plan(build_dir, rels, files)
    extra = sorted(p for p in files if p[1:] not in rels and not p.startswith("/config.json") and p != "/boot.py")
    if not changed:
        print("up to date: 0 of %d files copied" % len(rels), file=out)
        if reset:
            reset_phone(port, out, "the firmware on it")
        return 0
    if dry_run:
        for i, rel in enumerate(changed, 1):
            print("[%d/%d] %s (would copy)" % (i, len(changed), rel), file=out)
        print("dry run: %d of %d files would be copied" % (len(changed), len(rels)), file=out)
        if reset:
            reset_phone(port, out, "the firmware on it")
        return 0
    need = set()
    for rel in changed:
        parts = rel.split("/")[:-1]
        for k in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:k])
            if d not in dirs:
                need.add(d)
    mk = []
    for d in sorted(need, key=lambda x: (x.count("/"), x)):
        mk += ["fs", "mkdir", ":" + d, "+"]
    # one mpremote connection per batch of about BATCH_BYTES: a soft reset between batches keeps a small board's
    # heap (and the virtual board's VM) from filling up with a long copy
    batches, cur, size = [], [], 0
    for rel in changed:
        n = os.path.getsize(os.path.join(build_dir, rel))
        if cur and size + n > BATCH_BYTES:
            batches.append(cur)
            cur, size = [], 0
        cur.append(rel)
        size += n
    batches.append(cur)
    n = [0]

    def progress(line):
        if line.startswith("cp "):
            n[0] += 1
            print("[%d/%d] %s" % (n[0], len(changed), line.rsplit(":/", 1)[-1]), file=out, flush=True)
    for i, batch in enumerate(batches):
        args = mk if i == 0 else []
        for rel in batch:
            args = args + ["fs", "cp", os.path.join(build_dir, rel), ":/" + rel, "+"]
        mpremote(port, args[:-1], timeout=60 + 30 * len(batch), resume=False, on_line=progress)
    after, _ = device_files(port)
    bad = [rel for rel in changed
           if after.get("/" + rel, (0, ""))[1] != sha256_file(os.path.join(build_dir, rel))]
    if "main.py" in changed:
        print("wrote /main.py (there was none): it starts the phone at boot", file=out)
    if bad:
        raise DeployError("hash mismatch after copy: %s" % ", ".join(bad))
    print("copied %d of %d files, all verified by sha256" % (len(changed), len(rels)), file=out)
    if extra:
        print("note: %d file(s) on the phone are not in the build (left alone): %s" % (
            len(extra), " ".join(extra[:8]) + (" ..." if len(extra) > 8 else "")), file=out)
    if reset:
        reset_phone(port, out, "the new firmware")
    return 0


def register(sub):
    p = sub.add_parser("deploy", help="compile firmware/ with mpy-cross and copy changed files to the phone",
                       description="Compile every firmware/**/*.py with mpy-cross into build/<board>/, add "
                                   "board/<board>/board.json, compare sha256 with the phone's files and copy only "
                                   "the changed ones with mpremote, then verify them. A /main.py that starts the "
                                   "phone is written when the phone has none (an existing one is never touched).")
    p.add_argument("--port", required=True, help="serial port of the phone, e.g. /dev/ttyUSB0")
    p.add_argument("--board", required=True, help="board name (a folder in board/), e.g. generic_esp32")
    p.add_argument("--arch", choices=ARCHES, help="mpy-cross -march (default: xtensawin for ESP32/ESP32-S3, "
                                                  "rv32imc when the board name has c3)")
    p.add_argument("--source", default=FIRMWARE, help="firmware folder to deploy (default: firmware/)")
    p.add_argument("--dry-run", action="store_true", help="build and compare, copy nothing")
    p.add_argument("--no-reset", action="store_true",
                   help="leave the phone in the REPL afterwards (default: reset it, so the new firmware runs)")
    p.set_defaults(func=run)


def run(args):
    try:
        check_port(args.port)
        return deploy(args.port, args.board, args.arch or default_arch(args.board), args.dry_run,
                      source=args.source, reset=not args.no_reset)
    except DeployError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
