# phonectl sim: the firmware on CPython with real sockets, its console on stdin/stdout or on a pty.
import os
import signal
import sys

from host_tools import tablec

FIRMWARE = os.path.join(tablec.ROOT, "firmware")


def register(sub):
    p = sub.add_parser("sim", help="run the phone firmware on the desktop (real sockets; console on stdin or a pty)",
                       description="Run uPhone on CPython. Without --config only the console (and its table "
                                   "self-test) runs. With --pty the console is on a new pseudo-terminal whose path "
                                   "is printed as `PORT /dev/pts/N`: the same code path as /dev/ttyUSB0.")
    p.add_argument("--config", help="phone config file (JSON); `phonectl config example` prints one, docs/config.schema.json describes it")
    p.add_argument("--pty", action="store_true", help="put the console on a pty and print its path")
    p.add_argument("--pcap", help="write every SIP datagram sent and received to this pcap file")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=run)


def make_phone(config_path, pcap=None):
    """-> (phone, errors) from a config file, validated with the firmware's own validator."""
    if FIRMWARE not in sys.path:
        sys.path.insert(0, FIRMWARE)
    from uphone import config as cfgmod
    from uphone.phone import Phone
    import json
    try:
        with open(config_path) as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        return None, ["%s: %s" % (config_path, e)]
    errors = cfgmod.validate(raw)
    if errors:
        return None, errors
    cfg = cfgmod.with_defaults(raw)
    return Phone(cfg, base_dir=os.path.dirname(os.path.abspath(config_path))), []


def run(args):
    if FIRMWARE not in sys.path:
        sys.path.insert(0, FIRMWARE)
    from uphone.loop import Loop, FdConsole
    phone = None
    if args.config:
        phone, errors = make_phone(args.config)
        if errors:
            for e in errors:
                print("error: config %s" % e, file=sys.stderr)
            return 1
    slave = None
    if args.pty:
        import pty
        import tty
        master, slave = pty.openpty()
        tty.setraw(slave)       # no echo, no line editing: exactly what a UART gives
        io = FdConsole(master, master)
        print("PORT %s" % os.ttyname(slave), flush=True)
    else:
        io = FdConsole(sys.stdin.fileno(), sys.stdout.fileno())
    loop = Loop(io, phone)
    if args.pcap:
        from host_tools.pcap import PcapWriter
        loop.pcap = PcapWriter(args.pcap)
    signal.signal(signal.SIGTERM, lambda *a: loop.stop())
    try:
        loop.run(None if args.duration is None else int(args.duration * 1000))
    except KeyboardInterrupt:
        pass
    finally:
        if phone is not None:
            phone.shutdown(loop)
        if loop.pcap is not None:
            loop.pcap.close()
    return 0
