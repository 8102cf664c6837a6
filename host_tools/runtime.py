# phonectl runtime build: MicroPython with uPhone frozen in, from MICROPY_SRC (a source tree or release tarball).
# --board unix builds the unix port (the desktop runtime every phone-level test runs on, and the virtual board);
# an ESP32 board folder builds that board's image through ESP-IDF (`make firmware BOARD=...`).
# Builds are incremental: the extracted tarball and the port's build folder live under build/micropython/ and make
# rebuilds only what changed (a firmware edit re-freezes the package in a few seconds).
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile

from host_tools import tablec

ROOT = tablec.ROOT
BUILD = os.path.join(ROOT, "build", "micropython")
# The phone runtime is the unix port built for 32-bit x86: the ESP32's Xtensa is a 32-bit machine, and a 64-bit
# build doubles every pointer (function objects, dict slots, list items, the GC's 16-byte blocks become 32) and
# widens small ints from 31 to 63 bits, so its heap figures and what allocates would not be the phone's. The 64-bit
# build is kept beside it to prove the viper twins do not depend on the word width.
UNIX_BIN = os.path.join(BUILD, "unix", "micropython")
UNIX64_BIN = os.path.join(BUILD, "unix64", "micropython")
# where this workplace keeps the v1.27.0 sources (CI sets MICROPY_SRC to the same tarball)
SHARED_SRC = next((p for p in (os.path.join(os.path.dirname(ROOT), "shared", "micropython", "micropython-1.27.0-src.tar.gz"),
                               "/work/shared/micropython/micropython-1.27.0-src.tar.gz") if os.path.exists(p)),
                  os.path.join(os.path.dirname(ROOT), "shared", "micropython", "micropython-1.27.0-src.tar.gz"))
# the submodules a trimmed tarball may lack: lib/<name> <- a tarball beside it named <prefix>*.tar.gz
_SUBMODULES = (("micropython-lib", "micropython-lib-"), ("mbedtls", "mbedtls-"))
HELP_SRC = ("MICROPY_SRC: a MicroPython v1.27.0 source tree with its submodules (git clone -b v1.27.0 "
            "https://github.com/micropython/micropython && make -C micropython/ports/unix submodules), or the "
            "release tarball micropython-1.27.0.tar.xz from https://micropython.org/download/ (it includes lib/)")


RUNTIMES = ("cpython", "micropython")
FIRMWARE = os.path.join(ROOT, "firmware")


def firmware_argv(runtime, code, heap=None, bits=32):
    """argv running Python source `code` with the firmware importable, on the desktop runtime named: CPython with
    firmware/ on sys.path, or the unix MicroPython with the firmware frozen in (`make micropython`; bits=64: its
    64-bit build), whose heap is `heap` bytes (-X heapsize; None = the port's own default). Raises SystemExit when
    that binary is missing."""
    if runtime == "micropython":
        binary = UNIX64_BIN if bits == 64 else UNIX_BIN
        if not os.path.exists(binary):
            raise SystemExit("error: the MicroPython runtime %s is not built: run `make micropython`" % binary)
        return [binary] + (["-X", "heapsize=%d" % heap] if heap else []) + ["-c", code]
    if runtime == "cpython":
        return [sys.executable, "-u", "-c", "import sys; sys.path.insert(0, %r)\n%s" % (FIRMWARE, code)]
    raise ValueError("runtime %r: expected one of %s" % (runtime, ", ".join(RUNTIMES)))


def register(sub):
    p = sub.add_parser("runtime", help="build MicroPython with uPhone frozen in (unix port or an ESP32 board)",
                       description="Build MicroPython v1.27 from MICROPY_SRC with the firmware frozen through the "
                                   "board's manifest.py: --board unix gives build/micropython/unix/micropython (the "
                                   "desktop runtime and virtual board); an ESP32 board folder gives its firmware "
                                   "image through ESP-IDF (needs IDF_PATH, i.e. `. $IDF_PATH/export.sh`). "
                                   + HELP_SRC)
    s = p.add_subparsers(dest="action", metavar="ACTION")
    s.required = True
    b = s.add_parser("build", help="build (incremental) and print the binary's path")
    b.add_argument("--board", default="unix", help="unix, or a folder name under board/ (default: unix)")
    b.add_argument("--src", default=os.environ.get("MICROPY_SRC") or None,
                   help="MicroPython source tree or tarball (default: $MICROPY_SRC, else %s)" % SHARED_SRC)
    b.add_argument("--jobs", type=int, default=2)
    b.set_defaults(func=run_build)
    w = s.add_parser("path", help="print the unix runtime's path (exit 1 when it is not built)")
    w.set_defaults(func=lambda a: _print_path())


def _print_path():
    if not os.path.exists(UNIX_BIN):
        print("not built: make micropython", file=sys.stderr)
        return 1
    print(UNIX_BIN)
    return 0


def _fingerprint(path):
    st = os.stat(path)
    return "%s:%d:%d" % (os.path.abspath(path), st.st_size, int(st.st_mtime))


def source_tree(src):
    """MICROPY_SRC -> a source tree with lib/micropython-lib and lib/mbedtls (a tarball is extracted once)."""
    if src is None:
        src = SHARED_SRC
    if not os.path.exists(src):
        raise SystemExit("error: MicroPython source %s not found. %s" % (src, HELP_SRC))
    if os.path.isdir(src):
        tree = src
    else:
        ids = [_fingerprint(src)]
        extra = []
        for name, prefix in _SUBMODULES:
            beside = sorted(f for f in os.listdir(os.path.dirname(os.path.abspath(src)))
                            if f.startswith(prefix) and f.endswith((".tar.gz", ".tgz")))
            if beside:
                p = os.path.join(os.path.dirname(os.path.abspath(src)), beside[-1])
                extra.append((name, p))
                ids.append(_fingerprint(p))
        key = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
        tree_root = os.path.join(BUILD, "src-" + key)
        stamp = os.path.join(tree_root, ".extracted")
        if not os.path.exists(stamp):
            shutil.rmtree(tree_root, ignore_errors=True)
            os.makedirs(tree_root)
            _extract(src, tree_root)
            tops = [d for d in os.listdir(tree_root) if os.path.isdir(os.path.join(tree_root, d))]
            if len(tops) != 1:
                raise SystemExit("error: %s: expected one top folder, found %s" % (src, tops))
            lib = os.path.join(tree_root, tops[0], "lib")
            for name, p in extra:
                if not os.path.isdir(os.path.join(lib, name)) or not os.listdir(os.path.join(lib, name)):
                    _extract(p, lib)
            with open(stamp, "w") as f:
                f.write(tops[0])
        with open(stamp) as f:
            tree = os.path.join(tree_root, f.read().strip())
    for name, _ in _SUBMODULES:
        d = os.path.join(tree, "lib", name)
        if not os.path.isdir(d) or not os.listdir(d):
            raise SystemExit("error: %s has no lib/%s (a git checkout needs `make -C ports/unix submodules`). %s"
                             % (src, name, HELP_SRC))
    return tree


def _extract(path, dest):
    with tarfile.open(path) as t:
        t.extractall(dest, filter="data")


def _make(args, log):
    # the extracted tree sits inside this repository: git must not answer for it, or MicroPython's makeversionhdr
    # takes uPhone's commit for MicroPython's version (the banner said "MicroPython 6a0af342b5-dirty"); without git
    # it reads v1.27.0 from py/mpconfig.h
    env = dict(os.environ, GIT_DIR=os.path.join(BUILD, "no-git"))
    with open(log, "a") as f:
        r = subprocess.run(["make"] + args, stdout=f, stderr=subprocess.STDOUT, env=env)
    if r.returncode != 0:
        with open(log) as f:
            tail = f.read()[-4000:]
        raise SystemExit("error: make %s failed (log: %s):\n%s" % (" ".join(args[:3]), log, tail))


def build_unix(src=None, jobs=2):
    """Build (incrementally) the unix port, 32-bit (the phone runtime) and 64-bit, with board/unix/manifest.py
    frozen in. -> path of the 32-bit binary."""
    tree = source_tree(src)
    log = os.path.join(BUILD, "build.log")
    open(log, "w").close()
    _make(["-C", os.path.join(tree, "mpy-cross"), "-j%d" % jobs], log)
    manifest = os.path.join(ROOT, "board", "unix", "manifest.py")
    # btree needs berkeley-db and ffi needs libffi, neither of which the phone has; viper code is frozen for the
    # build's own architecture. Threads with a GIL, as the ESP32 port builds them (ports/esp32/mpconfigport.h
    # MICROPY_PY_THREAD_GIL 1): the unix default (no GIL) turns on MICROPY_ASYNC_KBD_INTR, where Ctrl-C longjmps out
    # of whatever C code runs (a scheduled callback swallows it, a held GC lock deadlocks); with the GIL it is a
    # pending exception raised at the next bytecode of the main thread, as on the phone. The virtual board's
    # simulated I2S runs a DMA thread.
    # USER_C_MODULES: the board/modules folders with a micropython.mk (dgram; i2s_duplex is ESP32 only).
    common = ["VARIANT=standard", "MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0", "MICROPY_PY_THREAD=1",
              "MICROPY_PY_THREAD_GIL=1", "USER_C_MODULES=" + os.path.join(ROOT, "board", "modules")]
    for out, extra in ((UNIX_BIN, ["MICROPY_FORCE_32BIT=1", "MPY_CROSS_FLAGS=-march=x86"]),
                       (UNIX64_BIN, ["MPY_CROSS_FLAGS=-march=x64"])):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        opts = common + extra
        # make does not see changed flags: each set of options builds in its own folder
        build_dir = os.path.join(BUILD, "unix-build-" + hashlib.sha256(" ".join(opts).encode()).hexdigest()[:8])
        try:
            _make(["-C", os.path.join(tree, "ports", "unix"), "-j%d" % jobs, "BUILD=" + build_dir,
                   "FROZEN_MANIFEST=" + manifest] + opts, log)
        except SystemExit as e:
            if "MICROPY_FORCE_32BIT=1" in extra:
                raise SystemExit("%s\n(the 32-bit build needs an x86 host with 32-bit C libraries: apt-get install "
                                 "gcc-multilib)" % e)
            raise
        built = os.path.join(build_dir, "micropython")
        if not os.path.exists(out) or _digest(built) != _digest(out):
            shutil.copy2(built, out + ".tmp")
            os.replace(out + ".tmp", out)
    shutil.copy2(os.path.join(tree, "mpy-cross", "build", "mpy-cross"), os.path.join(os.path.dirname(UNIX_BIN),
                                                                                    "mpy-cross"))
    return UNIX_BIN


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def build_esp32(board, src=None, jobs=2):
    """An ESP32 image for board/<board> through ESP-IDF (ports/esp32 with BOARD_DIR). -> path of firmware.bin."""
    bdir = os.path.join(ROOT, "board", board)
    if not os.path.isfile(os.path.join(bdir, "mpconfigboard.cmake")):
        raise SystemExit("error: board/%s is not an ESP32 board folder (no mpconfigboard.cmake)" % board)
    if not os.environ.get("IDF_PATH") or shutil.which("idf.py") is None:
        raise SystemExit("error: ESP-IDF not found: install ESP-IDF v5.2-v5.5 (the versions MicroPython 1.27 "
                         "supports) and run `. $IDF_PATH/export.sh` first")
    tree = source_tree(src)
    port = os.path.join(tree, "ports", "esp32")
    if not os.path.isdir(port):
        raise SystemExit("error: %s has no ports/esp32 (the trimmed unix-only tarball cannot build a board). %s"
                         % (tree, HELP_SRC))
    log = os.path.join(BUILD, "build-%s.log" % board)
    os.makedirs(BUILD, exist_ok=True)
    open(log, "w").close()
    _make(["-C", os.path.join(tree, "mpy-cross"), "-j%d" % jobs], log)
    bbuild = os.path.join(BUILD, "esp32-" + board)
    _make(["-C", port] + esp32_make_args(board, bbuild), log)
    return os.path.join(bbuild, "firmware.bin")


def esp32_make_args(board, build_dir):
    """make arguments for ports/esp32: the board folder, the build folder, and USER_C_MODULES: a cmake file written
    into the build folder that includes exactly the C modules the board's board.json lists (board/modules/: dgram on
    every board, i2s_duplex on the duplex codec boards)."""
    bdir = os.path.join(ROOT, "board", board)
    args = ["BOARD_DIR=" + bdir, "BUILD=" + build_dir]
    with open(os.path.join(bdir, "board.json")) as f:
        mods = json.load(f).get("user_c_modules") or []
    lines = ["# written by host_tools/runtime.py for board/%s: its board.json user_c_modules" % board]
    for m in mods:
        cm = os.path.join(ROOT, "board", "modules", m, "micropython.cmake")
        if not os.path.isfile(cm):
            raise SystemExit("error: board/%s lists C module %s, but board/modules/%s has no micropython.cmake"
                             % (board, m, m))
        lines.append("include(%s)" % cm)
    if mods:
        os.makedirs(build_dir, exist_ok=True)
        path = os.path.join(build_dir, "user_c_modules.cmake")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        args.append("USER_C_MODULES=" + path)
    return args


def run_build(args):
    if args.board == "unix":
        print(build_unix(args.src, args.jobs))
    else:
        print(build_esp32(args.board, args.src, args.jobs))
    return 0
