# Phones as processes: the firmware's desktop runner (uphone.run) on CPython or on the frozen MicroPython unix
# binary (in an ESP32-sized heap), one process per phone on free loopback ports, driven only through its console on
# stdin/stdout, as a host drives a handset over its UART. The tests' phone tier, `phonectl fuzz` and the bench use it.
import json
import os
import random
import socket
import subprocess
import threading
import time

from host_tools.runtime import ROOT, firmware_argv

# where phone processes leave the table rows they took (make test empties it first; `phonectl table coverage`)
COVERAGE = os.environ.get("UPHONE_COVERAGE", os.path.join(ROOT, "build", "coverage", "running-phones.txt"))
# The heap of a phone on the MicroPython runtime: an ESP32 without PSRAM has ~110 KB for MicroPython. Every
# MicroPython phone the tests start (phone processes, `phonectl sim`, the vectors' micropython target) gets this.
MP_HEAP = int(os.environ.get("UPHONE_MP_HEAP", "96000"))


def runtime_cmd(runtime, code, heap=None, bits=32):
    """argv running `code` (Python source) with firmware/ importable on the given runtime (bits=64: the 64-bit
    MicroPython build); SystemExit when the MicroPython runtime is not built."""
    return firmware_argv(runtime, code, heap or MP_HEAP, bits)


# -- free loopback ports (two test runs on one machine must not collide) -------------------------------------------
_taken = set()
_lock = threading.Lock()


def _bindable(port, kinds=(socket.SOCK_DGRAM, socket.SOCK_STREAM)):
    for kind in kinds:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port():
    """A port free for UDP and TCP on 127.0.0.1, not handed out before in this run."""
    with _lock:
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            if port not in _taken and _bindable(port):
                _taken.add(port)
                return port
    raise RuntimeError("no free port")


def free_range(n):
    """n consecutive free UDP ports starting at an even port (an RTP/RTCP range)."""
    with _lock:
        for _ in range(500):
            base = random.randrange(20000, 60000 - n) & ~1
            ports = range(base, base + n)
            if not any(p in _taken for p in ports) and all(_bindable(p, (socket.SOCK_DGRAM,)) for p in ports):
                _taken.update(ports)
                return base
    raise RuntimeError("no free port range of %d" % n)


def phone_config(user, port=None, rtp_span=20, **over):
    """A phone config (JSON-ready) on free ports; over = {section: {key: value}}, "account" = accounts[0]."""
    port = port or free_port()
    rtp = free_range(rtp_span + 2)
    raw = {"accounts": [{"user": user, "domain": "127.0.0.1", "register": False}],
           "sip": {"local_ip": "127.0.0.1", "local_port": port},
           "media": {"rtp_port_min": rtp, "rtp_port_max": rtp + rtp_span}}
    for section, values in over.items():
        if section == "account":
            raw["accounts"][0].update(values)
        else:
            raw.setdefault(section, {}).update(values)
    import sys
    fw = os.path.join(ROOT, "firmware")
    if fw not in sys.path:
        sys.path.insert(0, fw)
    from uphone import config
    errors = config.validate(raw)
    assert not errors, errors
    return raw


_POLL_ANSWERS = ("st ", "leg ", "media ", "mix ", "flow ", "mwi ", "audio ", "gate ", "loop crashes=", "ok mark-",
                 "ok mem ")


def watch_lines(cv, lines, pred, timeout, start=0, proc=None):
    """Wait until one of `lines` (a list another thread appends to, under Condition cv) from index start satisfies
    pred (a function, or a substring); -> that line, or None at the timeout or once proc has ended and every line
    it printed was seen. The phone processes and the virtual board's supervisor are watched this way."""
    if isinstance(pred, str):
        text = pred
        pred = lambda l: text in l  # noqa: E731
    end = time.time() + timeout
    i = start
    with cv:
        while True:
            while i < len(lines):
                if pred(lines[i]):
                    return lines[i]
                i += 1
            left = end - time.time()
            if left <= 0 or proc is not None and proc.poll() is not None and i >= len(lines):
                return None
            cv.wait(min(left, 0.2))


class PhoneProc:
    """One phone process. Lines it prints are collected as they come; cmd() sends a console command and returns
    its answer (the console answers each line with one final `ok ...` or `err ...`; an `echo` marks the end)."""

    def __init__(self, runtime, raw, workdir, name="phone", heap=None, argv=None):
        self.runtime = runtime
        self.name = name
        self.raw = raw
        self.port = raw["sip"]["local_port"]
        self.uri = "sip:%s@127.0.0.1:%d" % (raw["accounts"][0]["user"], self.port)
        os.makedirs(str(workdir), exist_ok=True)
        self.dir = str(workdir)
        self.config = os.path.join(self.dir, name + ".json")
        with open(self.config, "w") as f:
            json.dump(raw, f)
        code = "import uphone.run as r\nr.main(%r)" % self.config
        if argv is not None:
            argv = argv(code)       # another interpreter (a stock MicroPython with a mip-installed firmware)
        self.lines = []
        self.err = []
        self._cv = threading.Condition()
        self._seq = 0
        self.proc = subprocess.Popen(argv or runtime_cmd(runtime, code, heap), cwd=self.dir, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        self._threads = [threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self, stream, into):
        buf = b""
        while True:
            data = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
            if not data:
                break
            buf += data
            *done, buf = buf.split(b"\n")
            with self._cv:
                into.extend(l.decode("utf-8", "replace").rstrip("\r") for l in done)
                self._cv.notify_all()
        with self._cv:
            if buf:
                into.append(buf.decode("utf-8", "replace"))
            self._cv.notify_all()

    # -- driving ----------------------------------------------------------------------------------------------
    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def cmd(self, line, timeout=15):
        """Send one console command; -> (final answer line, the lines it printed before it)."""
        self._seq += 1
        mark = "ok mark-%d" % self._seq
        with self._cv:
            start = len(self.lines)
        self.send(line)
        self.send("echo mark-%d" % self._seq)
        if not self.wait_line(lambda l: l == mark, timeout, start):
            raise AssertionError("%s: no answer to %r within %d s; last lines: %s\nstderr: %s" % (
                self.name, line, timeout, self.lines[-15:], "".join(self.err)[-2000:]))
        with self._cv:
            got = self.lines[start:]
        got = got[:got.index(mark)]
        finals = [i for i, l in enumerate(got) if l.startswith(("ok", "err "))]
        if not finals:
            raise AssertionError("%s: %r got no ok/err: %s" % (self.name, line, got))
        return got[finals[-1]], got[:finals[-1]]

    def ev(self, event, sid=None, **args):
        """`ev [sid] Event k=v ...` -> the answer line."""
        words = ["ev"] + ([sid] if sid else []) + [event] + ["%s=%s" % kv for kv in args.items()]
        return self.cmd(" ".join(words))[0]

    def st(self):
        """`st` -> {"calls": {sid: state}, "leg": {sid: {key: value}}, "media": {...}, "crashes": n, "lines": [...]}"""
        ans, lines = self.cmd("st")
        assert ans.startswith("ok"), ans
        out = {"calls": {}, "sessions": {}, "leg": {}, "media": {}, "crashes": None, "lines": lines}
        for l in lines:
            w = l.split()
            if w[0] == "st" and len(w) >= 5:
                out["sessions"][w[1]] = w[4]
                if w[2] == "call":
                    out["calls"][w[1]] = w[4]
            elif w[0] in ("leg", "media") and len(w) >= 2:
                out[w[0]][w[1]] = dict(x.split("=", 1) for x in w[2:] if "=" in x)
                if w[0] == "leg":
                    out["leg"][w[1]]["state"] = w[2]
            elif w[0] == "loop":
                kv = dict(x.split("=", 1) for x in w[1:])
                out["crashes"] = int(kv["crashes"])
                out["dropped"] = int(kv.get("dropped", 0))
                out["oom"] = int(kv.get("oom", 0))
                out["rx"] = int(kv.get("rx", 0))
        return out

    def mem(self, collect=False):
        ans, _ = self.cmd("mem gc" if collect else "mem")
        assert ans.startswith("ok mem"), ans
        return {k: int(v) for k, v in (x.split("=") for x in ans.split()[2:])}

    # -- watching -----------------------------------------------------------------------------------------------
    def wait_line(self, pred, timeout, start=0):
        """Wait until a line (from index start) satisfies pred; -> True/False."""
        return watch_lines(self._cv, self.lines, pred, timeout, start, self.proc) is not None

    def wait(self, cond, timeout):
        """Poll cond() (which may send console commands) until true or timeout."""
        end = time.time() + timeout
        while time.time() < end:
            if cond():
                return True
            time.sleep(0.1)
        return cond()

    def saw(self, text):
        with self._cv:
            return any(text in l for l in self.lines)

    def count(self, text):
        with self._cv:
            return sum(text in l for l in self.lines)

    def state(self):
        """State of the newest call, or "-"."""
        calls = self.st()["calls"]
        return calls[sorted(calls, key=lambda k: int(k[1:]))[-1]] if calls else "-"

    def tail(self, n=25):
        """The last n lines the phone printed by itself (answers to the tests' polling left out), and stderr."""
        with self._cv:
            own = [l for l in self.lines if not l.startswith(_POLL_ANSWERS) and not (
                l.startswith("ok ") and l.endswith((" sessions", " session")))]
        return "%s:\n%s%s" % (self.name, "\n".join(own[-n:]),
                               "\nstderr:\n" + "".join(self.err)[-1500:] if self.err else "")

    # -- ending ---------------------------------------------------------------------------------------------------
    def close(self, timeout=10):
        """Close the console (the phone unregisters, hangs up and exits); -> exit code. Kills it past timeout."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._threads:
            t.join(2)
        with open(os.path.join(self.dir, self.name + ".log"), "w") as f:   # kept for a failing test's reader
            f.write("\n".join(self.lines) + "\n--- stderr\n" + "".join(self.err))
        cov = [l[4:] for l in self.lines if l.startswith("cov ")]
        if cov and cov[-1]:
            # the table rows this running phone took: `phonectl table coverage` reads what every test's phones took
            os.makedirs(os.path.dirname(COVERAGE), exist_ok=True)
            with open(COVERAGE, "a") as f:
                f.write("%s %s\n" % (self.runtime, cov[-1]))
        return self.proc.returncode

    def check_clean(self):
        """The loop caught no exception and no traceback was printed: an uncaught one goes to stderr, one the loop
        caught goes to the console on MicroPython (sys.print_exception's default stream)."""
        assert not self.saw("err internal") and not self.saw("Traceback"), self.tail()
        err = "".join(self.err)
        assert "Traceback" not in err and "MemoryError" not in err, err[-3000:]


class Phones:
    """The phones of one test: started on one runtime, closed (and checked clean) at the end."""

    def __init__(self, runtime, workdir, heap=None):
        self.runtime = runtime
        self.dir = str(workdir)
        self.heap = heap
        self.all = {}

    def add(self, name, argv=None, **over):
        """argv(code) -> the command running code (default: this test's runtime with the frozen firmware)."""
        raw = phone_config(name, **over)
        p = PhoneProc(self.runtime, raw, os.path.join(self.dir, name), name, self.heap, argv)
        self.all[name] = p
        # the console answers once the loop runs, and the phone binds its sockets before that: a peer started
        # after add() finds it listening
        ans, before = p.cmd("echo up", timeout=30)
        # the phone's own lines can come between (a TLS server refused as it starts: `err tls ...`)
        assert ans == "ok up" or "ok up" in before, (ans, p.tail())
        return p

    def __getitem__(self, name):
        return self.all[name]

    def close(self, check=True):
        """Ask every phone for its crash count, close them all (their logs are written then), then check."""
        crashes = {}
        for p in self.all.values():
            if p.proc.poll() is None:
                try:
                    crashes[p.name] = p.st()["crashes"]
                except AssertionError as e:
                    crashes[p.name] = "no answer to st: %s" % e
        for p in self.all.values():
            p.close()
        if check:
            for p in self.all.values():
                assert crashes.get(p.name, 0) == 0, "%s: loop crashes %s\n%s" % (p.name, crashes[p.name], p.tail())
                p.check_clean()
