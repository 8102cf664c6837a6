# A virtual ESP32 on a pty: `python -m host_tools.virtual_board --root DIR [--duration S]` prints `PORT /dev/pts/N`.
#
# The board's CPU is the real runtime: the frozen MicroPython v1.27 unix binary (`make micropython`), started in DIR
# (its filesystem, mounted as "/") with the simulated hardware of board/unix/vboard/ (machine: Pin, I2S, WDT,
# reset...; network: WLAN). Its REPL is MicroPython's own (friendly, raw, raw-paste), so mpremote, `phonectl deploy`
# and `provision` write real files, and boot.py/main.py, the phone, its console and its watchdog are the firmware's
# own code running on MicroPython.
#
# This process is the rest of the chip (the supervisor). It owns the pty the host opens and passes bytes between it
# and the child's stdin/stdout (pipes), and adds what a process cannot do for itself:
#   - Ctrl-C while code runs is an interrupt, as the ESP32's UART driver makes it (mp_interrupt_char is set only
#     while pyexec runs code): when the child has its SIGINT handler installed (the unix port installs it exactly
#     while executing, see ports/unix/main.c execute_from_lexer) the byte becomes SIGINT to its main thread, and what
#     the host sends next waits until the REPL is back (the UART buffer keeps it on a board); otherwise the byte is
#     passed on (the REPL reads it as a character). The binary is built with the GIL, as the ESP32 port is, so the
#     interrupt is a pending KeyboardInterrupt raised at the next bytecode (host_tools/runtime.py).
#   - soft reset: the unix REPL exits on Ctrl-D (pyexec returns PYEXEC_FORCED_EXIT); this prints "MPY: soft reboot"
#     as ports/esp32/main.c does and starts the child again with reset_cause() SOFT_RESET. From the raw REPL it comes
#     back in the raw REPL with main.py skipped (main.c runs main.py only in PYEXEC_MODE_FRIENDLY_REPL), which is
#     what mpremote waits for; the unix REPL's friendly banner on the way there is not passed on.
#   - the watchdog: machine.WDT(timeout=) and feed() report here over UDP; it keeps running across soft resets (the
#     ESP32's task watchdog user is a static in machine_wdt.c) and, when not fed in time, the child is killed and
#     started again as after a hard reset (WDT_RESET: boot.py and main.py run, watchdog off).
#   - machine.reset() and the `reset` command: the same hard reset (HARD_RESET); a crash of the child (a signal) too.
#   - the Wi-Fi access point: network.WLAN joins it and gets a loopback address (--ip); `net down`, `net up [IP]`
#     drop the link and bring it back, maybe with another address.
#   - fault switches for tests, passed to the simulated hardware: `i2s ID stall on|off`, `i2s ID lose N`,
#     `i2s ID late MS`, `mic ramp|noise|silence|tone HZ`, `pin N LEVEL`, `short A B` / `open A B`; on a codec board
#     `duplex tx|rx|both stall on|off | lose N | late MS`, `echo GAIN% DELAY_MS` (loudspeaker into the mics),
#     `adc PIN MV` (a button of the ladder).
#   - the parts around the chip (--board NAME): generic_max98357 (keypad pull-ups), korvo2_es8311 and lyrat_es8388
#     (their codecs and expander on I2C, the button ladder on the ADC, and the board image's i2s_duplex module,
#     board/unix/vboard/i2s_duplex.py); none: a bare module on a stock image.
#   - the loudspeaker: a codec board's DAC output as a WAV file (--speaker-wav PATH), one sample per I2S frame from
#     the moment the duplex I2S starts (silence where nothing played).
# Commands are lines on this process's stdin; events are lines on its stdout (`EVENT start pid=... cause=...`,
# `EVENT wdt armed ms=...`, `EVENT reset cause=wdt`, ...) after the PORT line.
#
# What it is not: no flash wear or timing of an ESP32 CPU, sockets are the host's (the link going "down" changes what
# WLAN reports, it does not cut packets), stock machine.I2S data go nowhere (counted, not heard).
import argparse
import ctypes
import errno
import fcntl
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
import tty
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARDWARE = os.path.join(ROOT, "board", "unix", "vboard")
MP_BIN = os.path.join(ROOT, "build", "micropython", "unix", "micropython")

SOFT_REBOOT = b"MPY: soft reboot\r\n"           # ports/esp32/main.c soft_reset_exit
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"     # shared/runtime/pyexec.c pyexec_raw_repl
FRIENDLY_BANNER = b'Type "help()" for more information.\r\n'
# what the unix REPL prints before it reads the Ctrl-A that brings it back to the raw REPL after a soft reset
UNIX_BANNER = re.compile(rb"MicroPython [^\r\n]*\r\n" + re.escape(FRIENDLY_BANNER) + rb">>> \r\n")
CAUSES = {"pwron": 1, "hard": 2, "wdt": 3, "soft": 5}
ASSOCIATE_S = 0.2           # Wi-Fi join + DHCP
HOLD_AFTER_INTERRUPT_S = 2.0
HOST_BACKLOG = 65536        # output kept for a host that is not reading (a UART with nobody listening drops it)


def _tgkill(pid, sig):
    """Signal the child's main thread (its pid): SIGINT raises KeyboardInterrupt in the thread that takes it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.tgkill(pid, pid, sig) == 0:
            return
    except (OSError, AttributeError):
        pass
    os.kill(pid, sig)


def _sigint_caught(pid):
    """True while the unix port runs code (its SIGINT handler is installed only then)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except (OSError, ValueError):
        pass
    return False


def _nonblock(fd):
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


class Board:
    def __init__(self, root, heap=400000, ip="127.0.0.1", ssid=None, key=None, binary=MP_BIN, out=sys.stdout,
                 baud=0, board="", speaker_wav=None):
        self.root = os.path.realpath(root)
        self.board = board
        self.speaker_wav = speaker_wav
        self.speaker = None             # wave writer, opened at the first loudspeaker datagram
        self.heap, self.binary, self.out = heap, binary, out
        # a UART's speed (8N1: 10 bits a byte) in both directions; 0 = as fast as the pipes go
        self.bps = baud / 10.0
        self.budget = [0.0, 0.0]        # bytes that may go now: [to the host, to the child]
        self.budget_t = time.monotonic()
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)          # no line discipline between the host and the board's UART
        _nonblock(self.master)
        self.port = os.ttyname(self.slave)
        self.ctrl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ctrl.bind(("127.0.0.1", 0))
        self.child = None
        self.child_addr = None
        self.mode = "friendly"          # the REPL mode a soft reset comes back to
        self.tail = b""                 # last output bytes, to see banners split over reads
        self.held = None                # output held back while a raw-mode restart prints the unix banner
        self.held_until = 0.0
        self.to_host = bytearray()
        self.to_child = bytearray()
        self.hold_input_until = 0.0     # after an interrupt: host bytes wait for the REPL
        self.interrupted_at = 0.0
        self.wdt = None                 # [timeout ms, deadline (monotonic s)]
        self.reset_request = None       # "hard" | "wdt" | "soft": the child is being ended for this
        self.ap = {"up": True, "ip": ip, "ssid": ssid, "key": key}
        self.sta = None                 # {"ssid":, "key":, "connected": bool} once the station asked to join
        self.timers = []                # [(when, fn)]
        self.board_id = "%08x" % (hash(self.root) & 0xFFFFFFFF)

    # -- events ------------------------------------------------------------------------------------------------
    def event(self, text):
        self.out.write("EVENT %s\n" % text)
        self.out.flush()

    # -- the child ---------------------------------------------------------------------------------------------
    def start(self, cause, raw=False):
        env = dict(os.environ)
        env.update({"MICROPYPATH": HARDWARE + ":.frozen", "UPHONE_VB_CTRL": "127.0.0.1:%d" % self.ctrl.getsockname()[1],
                    "UPHONE_VB_ROOT": self.root, "UPHONE_VB_RESET": str(CAUSES[cause]),
                    "UPHONE_VB_MODE": "raw" if raw else "friendly", "UPHONE_VB_ID": self.board_id,
                    "UPHONE_VB_BOARD": self.board})
        self.child = subprocess.Popen([self.binary, "-X", "heapsize=%d" % self.heap, "-i", "-c", "import _vboot"],
                                      cwd=self.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, env=env, bufsize=0)
        _nonblock(self.child.stdout.fileno())
        _nonblock(self.child.stdin.fileno())
        self.child_addr = None
        self.reset_request = None
        self.hold_input_until = 0.0
        self.interrupted_at = 0.0      # a new process has no interrupt pending
        self.mode = "raw" if raw else "friendly"
        if raw:
            # main.py is skipped; the REPL starts friendly on unix: a Ctrl-A takes it to the raw REPL, and its
            # friendly banner is held back until the raw one shows
            self.to_child[:0] = b"\x01"
            self.held = bytearray()
            self.held_until = time.monotonic() + 10
        self.event("start pid=%d cause=%s mode=%s" % (self.child.pid, cause, self.mode))

    def end_child(self, why):
        """Kill the child for a reset; its exit is then handled by reaped()."""
        if self.child is None or self.child.poll() is not None:
            return
        self.reset_request = why
        try:
            self.child.kill()
        except OSError:
            pass

    def reaped(self):
        """The child has exited: decide which reset this was and boot again."""
        rc = self.child.wait()
        self.drain_child()
        why = self.reset_request
        self.child.stdin.close()
        self.child.stdout.close()
        self.child = None
        self.held = None
        self.to_child = bytearray()
        if why is None:
            # Ctrl-D, machine.soft_reset() or sys.exit() in the REPL ends the unix REPL: a soft reset on a board;
            # a signal (a crash) is a panic, and the ESP32 reboots from it
            why = "soft" if rc >= 0 else "panic"
        self.event("exit rc=%d reset=%s" % (rc, why))
        if why == "soft":
            self.write_host(SOFT_REBOOT)
            self.start("soft", raw=self.mode == "raw")
            return
        self.wdt = None                 # a hard reset stops the watchdog and the Wi-Fi station
        self.sta = None
        self.timers = []
        self.write_host(b"\r\n[virtual board: hard reset (%s)]\r\n" % why.encode())
        self.event("reset cause=%s" % why)
        self.start("wdt" if why == "wdt" else "hard")

    def executing(self):
        return self.child is not None and self.child.poll() is None and _sigint_caught(self.child.pid)

    # -- bytes -------------------------------------------------------------------------------------------------
    def from_host(self, data):
        for i in range(len(data)):
            c = data[i:i + 1]
            if c == b"\x03" and self.executing():
                now = time.monotonic()
                # one SIGINT at a time: the unix port's handler exits the process on a second one that comes
                # before the first was raised (ports/unix/unix_mphal.c sighandler)
                if now - self.interrupted_at > 0.5:
                    _tgkill(self.child.pid, signal.SIGINT)
                    self.interrupted_at = now
                self.hold_input_until = now + HOLD_AFTER_INTERRUPT_S
                continue
            self.to_child += c

    def from_child(self, data):
        seen = self.tail + data
        if RAW_BANNER in seen:
            self.mode = "raw" if seen.rfind(RAW_BANNER) > seen.rfind(FRIENDLY_BANNER) else "friendly"
        elif FRIENDLY_BANNER in seen:
            self.mode = "friendly"
        self.tail = seen[-64:]
        if self.held is not None:
            self.held += data
            if RAW_BANNER in self.held or time.monotonic() > self.held_until:
                data = UNIX_BANNER.sub(b"", bytes(self.held), count=1)
                self.held = None
            else:
                return
        self.write_host(data)

    def write_host(self, data):
        self.to_host += data
        if len(self.to_host) > HOST_BACKLOG:
            del self.to_host[:len(self.to_host) - HOST_BACKLOG]

    def drain_child(self):
        if self.child is None:
            return False
        got = False
        while True:
            try:
                data = os.read(self.child.stdout.fileno(), 4096)
            except BlockingIOError:
                return got
            except OSError:
                return got
            if not data:
                return got
            got = True
            self.from_child(data)

    def _allowance(self, i, want):
        if not self.bps:
            return want
        now = time.monotonic()
        dt, self.budget_t = now - self.budget_t, now
        for k in (0, 1):
            self.budget[k] = min(self.budget[k] + dt * self.bps, max(64.0, self.bps / 50))
        return min(want, int(self.budget[i]))

    def flush(self):
        if self.to_host:
            try:
                k = self._allowance(0, len(self.to_host))
                n = os.write(self.master, self.to_host[:k]) if k else 0
                self.budget[0] -= n
                del self.to_host[:n]
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno not in (errno.EIO, errno.EAGAIN):
                    raise
        if self.to_child and self.child is not None and self.child.poll() is None:
            if time.monotonic() < self.hold_input_until and self.executing():
                return
            try:
                k = self._allowance(1, len(self.to_child))
                n = os.write(self.child.stdin.fileno(), self.to_child[:k]) if k else 0
                self.budget[1] -= n
                del self.to_child[:n]
            except BlockingIOError:
                pass
            except BrokenPipeError:
                self.to_child = bytearray()

    # -- the rest of the chip ------------------------------------------------------------------------------------
    def push(self, text):
        if self.child_addr is not None:
            self.ctrl.sendto(text.encode(), self.child_addr)

    def later(self, delay, fn):
        self.timers.append((time.monotonic() + delay, fn))

    def on_pcm(self, data):
        """b"pcm" + rate (u32 LE) + 16-bit mono samples: what the loudspeaker played (i2s_duplex.py)."""
        if self.speaker_wav is None or len(data) < 7:
            return
        if self.speaker is None:
            self.speaker = wave.open(self.speaker_wav, "wb")
            self.speaker.setnchannels(1)
            self.speaker.setsampwidth(2)
            self.speaker.setframerate(int.from_bytes(data[3:7], "little"))
        self.speaker.writeframesraw(data[7:])

    def on_ctrl(self, data, addr):
        if data[:3] == b"pcm":
            self.on_pcm(data)
            return
        w = data.decode("utf-8", "replace").split()
        if not w:
            return
        if w[0] == "hello":
            self.child_addr = addr
            if self.sta is not None:
                # a soft reset leaves the ESP32's Wi-Fi joined (ports/esp32/main.c does not stop it)
                self.push("wifi resume %s %s" % (self.sta["ssid"].encode().hex() or "-",
                                                 self.ap["ip"] if self.sta["connected"] else "-"))
            self.push("welcome")
        elif w[0] == "wdt":
            self.wdt = [int(w[1]), time.monotonic() + int(w[1]) / 1000]
            self.event("wdt armed ms=%d" % self.wdt[0])
        elif w[0] == "feed":
            if self.wdt is not None:
                self.wdt[1] = time.monotonic() + self.wdt[0] / 1000
        elif w[0] == "reset":
            self.end_child("hard")
        elif w[0] == "soft":
            self.end_child("soft")
        elif w[0] == "wifi" and len(w) >= 2:
            if w[1] == "join":
                self.sta = {"ssid": bytes.fromhex(w[2]).decode() if w[2] != "-" else "",
                            "key": bytes.fromhex(w[3]).decode() if len(w) > 3 and w[3] != "-" else "",
                            "connected": False}
                self.associate()
            elif w[1] == "leave":
                self.sta = None

    def associate(self):
        sta, ap = self.sta, self.ap
        if sta is None:
            return
        if not ap["up"] or (ap["ssid"] is not None and sta["ssid"] != ap["ssid"]):
            self.push("wifi lost 201")              # NO_AP_FOUND; the driver keeps trying
            return
        if ap["key"] is not None and sta["key"] != ap["key"]:
            self.push("wifi lost 202")              # AUTH_FAIL
            return

        def got_ip():
            if self.sta is sta and self.ap["up"]:
                sta["connected"] = True
                self.push("wifi got_ip %s" % self.ap["ip"])
                self.event("wifi up ip=%s" % self.ap["ip"])
        self.later(ASSOCIATE_S, got_ip)

    def command(self, line):
        w = line.split()
        if not w:
            return
        cmd = w[0]
        if cmd == "net" and len(w) >= 2 and w[1] in ("up", "down"):
            if w[1] == "down":
                self.ap["up"] = False
                if self.sta is not None and self.sta["connected"]:
                    self.sta["connected"] = False
                    self.push("wifi lost 200")      # BEACON_TIMEOUT
            else:
                new_ip = w[2] if len(w) > 2 else self.ap["ip"]
                if self.sta is not None and self.sta["connected"] and new_ip != self.ap["ip"]:
                    self.sta["connected"] = False
                    self.push("wifi lost 200")
                self.ap["up"], self.ap["ip"] = True, new_ip
                if self.sta is not None and not self.sta["connected"]:
                    self.associate()
        elif cmd in ("mic", "i2s", "pin", "short", "open", "duplex", "echo", "adc"):
            self.push(line.strip())
        elif cmd == "reset":
            self.end_child("hard")
        elif cmd == "status":
            self.out.write("STATUS pid=%s mode=%s wdt=%s net=%s ip=%s sta=%s\n" % (
                self.child.pid if self.child else "-", self.mode, self.wdt[0] if self.wdt else "off",
                "up" if self.ap["up"] else "down", self.ap["ip"],
                "-" if self.sta is None else ("connected" if self.sta["connected"] else "joining")))
        else:
            self.out.write("ERR unknown command %r\n" % line.strip())
            self.out.flush()
            return
        self.out.write("OK %s\n" % line.strip())
        self.out.flush()

    # -- main loop -------------------------------------------------------------------------------------------------
    def run(self, duration=None, commands=None):
        self.out.write("PORT %s\n" % self.port)
        self.out.flush()
        self.start("pwron")
        stop = []
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
        end = None if duration is None else time.monotonic() + duration
        cmd_buf = b""
        cmd_fd = commands
        try:
            while not stop and (end is None or time.monotonic() < end):
                rd = [self.master, self.ctrl]
                if self.child is not None:
                    rd.append(self.child.stdout.fileno())
                if cmd_fd is not None:
                    rd.append(cmd_fd)
                wr = [self.master] if self.to_host and not self.bps else []
                if self.to_child and self.child is not None and not self.bps:
                    wr.append(self.child.stdin.fileno())
                r, w, _ = select.select(rd, wr, [], 0.005 if self.bps and (self.to_host or self.to_child) else 0.02)
                if self.master in r:
                    try:
                        data = os.read(self.master, 4096)
                    except (BlockingIOError, OSError):
                        data = b""
                    if data:
                        self.from_host(data)
                if self.ctrl in r:
                    while True:
                        try:
                            data, addr = self.ctrl.recvfrom(2048, socket.MSG_DONTWAIT)
                        except BlockingIOError:
                            break
                        self.on_ctrl(data, addr)
                if cmd_fd is not None and cmd_fd in r:
                    data = os.read(cmd_fd, 4096)
                    if not data:
                        cmd_fd = None           # no more commands (stdin closed): the board runs on
                    cmd_buf += data
                    while b"\n" in cmd_buf:
                        line, cmd_buf = cmd_buf.split(b"\n", 1)
                        self.command(line.decode("utf-8", "replace"))
                if self.child is not None:
                    self.drain_child()
                    if self.child.poll() is not None:
                        self.reaped()
                now = time.monotonic()
                if self.held is not None and now > self.held_until:
                    self.from_child(b"")
                for t in [t for t in self.timers if t[0] <= now]:
                    self.timers.remove(t)
                    t[1]()
                if self.wdt is not None and now >= self.wdt[1] and self.reset_request is None:
                    self.event("wdt expired ms=%d" % self.wdt[0])
                    self.end_child("wdt")
                self.flush()
        finally:
            if self.child is not None and self.child.poll() is None:
                self.child.kill()
                self.child.wait()
            if self.speaker is not None:
                self.speaker.close()        # the header gets its final length
        return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m host_tools.virtual_board",
                                description="A virtual ESP32 on a pty: the frozen MicroPython unix binary with "
                                            "simulated machine/network hardware, its filesystem --root. Prints "
                                            "PORT /dev/pts/N; reads commands on stdin (net down, net up IP, "
                                            "i2s ID stall on, mic ramp, reset, status ...).")
    p.add_argument("--root", required=True, help="host folder that is the board's filesystem")
    p.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    p.add_argument("--heap", type=int, default=int(os.environ.get("UPHONE_MP_HEAP", "400000")),
                   help="MicroPython heap in bytes (default 400000: an ESP32's ~110 KB with 64-bit pointers)")
    p.add_argument("--baud", type=int, default=0,
                   help="serial speed to simulate, e.g. 115200 (default 0: as fast as the host goes)")
    p.add_argument("--ip", default="127.0.0.1", help="the address the access point gives the board (loopback)")
    p.add_argument("--ssid", default=None, help="the access point's SSID (default: any SSID joins)")
    p.add_argument("--wifi-password", default=None, help="the access point's password (default: any)")
    p.add_argument("--board", default="", choices=("", "generic_max98357", "korvo2_es8311", "lyrat_es8388"),
                   help="the parts around the chip: pull-ups, I2C codecs and expander, ADC buttons, and for the codec "
                        "boards the i2s_duplex module of their own image (default: a bare module, stock image)")
    p.add_argument("--speaker-wav", default=None,
                   help="write what a codec board's loudspeaker plays to this WAV file")
    args = p.parse_args(argv)
    if not os.path.isdir(args.root):
        print("error: --root must be an existing folder (the board's filesystem)", file=sys.stderr)
        return 2
    if not os.path.exists(MP_BIN):
        print("error: %s is missing: run `make micropython`" % MP_BIN, file=sys.stderr)
        return 2
    board = Board(args.root, args.heap, args.ip, args.ssid, args.wifi_password, baud=args.baud, board=args.board,
                  speaker_wav=args.speaker_wav)
    stdin = sys.stdin.fileno() if not sys.stdin.closed else None
    return board.run(args.duration, stdin)


if __name__ == "__main__":
    sys.exit(main())
