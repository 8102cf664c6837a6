# phonectl console: the phone's console line protocol on its serial port (pyserial), pretty-printed:
# `tr <sid> <From> <Event> <To> <Actions>` as aligned columns with an arrow, ok/err coloured on a terminal.
# Interactive (type lines, Ctrl-C/Ctrl-D to quit) or scripted: --send LINE (repeatable) --wait SECONDS.
import sys
import threading
import time

from host_tools.deploy import DeployError, check_port

GREEN, RED, DIM, RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m"


def pretty(line, color=False):
    w = line.split()
    if not w:
        return line
    if w[0] == "tr" and len(w) >= 5:
        acts = w[5] if len(w) > 5 else "-"
        s = "%-4s %-14s --%-16s--> %-14s %s" % (w[1], w[2], w[3], w[4], acts.replace(",", ", "))
        return s
    if w[0] == "ok":
        return (GREEN + line + RESET) if color else line
    if w[0] == "err":
        return (RED + line + RESET) if color else line
    return line


class Reader(threading.Thread):
    def __init__(self, ser, out, color):
        super().__init__(daemon=True)
        self.ser, self.out, self.color = ser, out, color
        self.stop = False
        self.lines = 0

    def run(self):
        buf = b""
        while not self.stop:
            try:
                data = self.ser.read(256)
            except Exception:
                return
            if not data:
                continue
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                ln = raw.decode("utf-8", "replace").strip()
                if ln:
                    self.lines += 1
                    self.out.write(pretty(ln, self.color) + "\n")
                    self.out.flush()


def console(port, baud=115200, send=(), wait=1.0, out=sys.stdout):
    import serial
    check_port(port)
    try:
        ser = serial.serial_for_url(port, baud, timeout=0.1)
    except (serial.SerialException, OSError) as e:
        raise DeployError("cannot open %s: %s" % (port, e))
    rd = Reader(ser, out, out.isatty())
    rd.start()
    try:
        if send:
            for line in send:
                ser.write((line + "\r\n").encode())
            time.sleep(wait)
            return 0
        print("console on %s (Ctrl-D or Ctrl-C to quit; e.g. `st`, `ev MakeCall target=sip:bob@host`)" % port,
              file=sys.stderr)
        for line in sys.stdin:
            ser.write((line.rstrip("\r\n") + "\r\n").encode())
        time.sleep(0.3)
        return 0
    finally:
        rd.stop = True
        rd.join(1)
        ser.close()


def register(sub):
    p = sub.add_parser("console", help="the phone's console (line protocol) on its serial port, pretty-printed",
                       description="Talk to the phone's console: lines you type are sent (`st`, `ev MakeCall "
                                   "target=sip:bob@example.com`, `ev HangupCall` ...); transitions are shown as "
                                   "aligned columns. With --send the lines are sent and the answers printed for "
                                   "--wait seconds.")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 (or a pty from `phonectl sim --pty`)")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--send", action="append", default=[], metavar="LINE", help="send LINE (repeatable), no prompt")
    p.add_argument("--wait", type=float, default=1.0, metavar="SECONDS", help="with --send: how long to listen")
    p.set_defaults(func=run)


def run(args):
    try:
        return console(args.port, args.baud, args.send, args.wait)
    except DeployError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
