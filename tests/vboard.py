# Driving a virtual board (host_tools/virtual_board.py) from tests: start it on a board folder, read its PORT and
# EVENT lines, send it commands (net down, i2s 1 stall on, ...), run the real mpremote against its pty, and talk
# to the phone's console on the same pty through pyserial, as a host does with /dev/ttyUSB0. Every wait is bounded.
import os
import subprocess
import sys
import threading
import time

from host_tools.phoneproc import watch_lines

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


class VBoard:
    def __init__(self, root, duration=600, extra=()):
        self.root = str(root)
        os.makedirs(self.root, exist_ok=True)
        self.proc = subprocess.Popen([PY, "-m", "host_tools.virtual_board", "--root", self.root,
                                      "--duration", str(duration)] + list(extra),
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.port = line.split()[1]
        self.lines = []
        self._cv = threading.Condition()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()

    def events(self, prefix="EVENT "):
        with self._cv:
            return [ln[len(prefix):] for ln in self.lines if ln.startswith(prefix)]

    def wait_line(self, pred, timeout, start=0):
        """Wait for a supervisor stdout line (from index start) matching pred (a substring or a function)."""
        return watch_lines(self._cv, self.lines, pred, timeout, start)

    def mark(self):
        with self._cv:
            return len(self.lines)

    def command(self, line, timeout=10):
        start = self.mark()
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        got = self.wait_line(lambda ln: ln == "OK " + line or ln.startswith("ERR"), timeout, start)
        assert got == "OK " + line, (line, got)

    def mpremote(self, *args, timeout=120, resume=False):
        cmd = [PY, "-m", "mpremote", "connect", self.port] + (["resume"] if resume else []) + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def exec(self, code, timeout=60, resume=False):
        """Run code on the board through mpremote; -> stdout (asserts it ran)."""
        r = self.mpremote("exec", code, timeout=timeout, resume=resume)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self._t.join(5)


class Console:
    """The phone's console on the board's pty (pyserial): send a line, collect what comes back."""

    def __init__(self, port):
        import serial
        self.ser = serial.Serial(port, 115200, timeout=0.1)
        self.buf = b""
        self.lines = []

    def read(self):
        data = self.ser.read(4096)
        while data:
            self.buf += data
            data = self.ser.read(4096)
        while b"\n" in self.buf:
            raw, self.buf = self.buf.split(b"\n", 1)
            ln = raw.decode("utf-8", "replace").strip()
            if ln:
                self.lines.append(ln)

    def wait(self, pred, timeout, start=0):
        if isinstance(pred, str):
            text = pred
            pred = lambda ln: text in ln  # noqa: E731
        end = time.time() + timeout
        i = start
        while True:
            self.read()
            while i < len(self.lines):
                if pred(self.lines[i]):
                    return self.lines[i]
                i += 1
            if time.time() > end:
                return None

    def cmd(self, line, timeout=15):
        """Send one console command; -> its final ok/err line (an `echo` mark ends what belongs to it)."""
        self.read()
        start = len(self.lines)
        mark = "mark-%d" % start
        self.ser.write((line + "\r\n").encode())
        self.ser.write(("echo %s\r\n" % mark).encode())
        if self.wait("ok " + mark, timeout, start) is None:
            raise AssertionError("no answer to %r: %s" % (line, self.lines[-20:]))
        got = self.lines[start:]
        got = got[:got.index("ok " + mark)]
        finals = [ln for ln in got if ln.startswith(("ok", "err"))]
        assert finals, (line, got)
        return finals[-1], got

    def close(self):
        self.ser.close()
