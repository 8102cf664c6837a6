# phonectl sim: the firmware's own runner (uphone.run.main) in a child process on CPython or on the frozen
# MicroPython unix port, with real sockets; its console on this terminal's stdin/stdout or on a pty.
import os
import signal
import subprocess
import sys
import time

from host_tools import runtime, tablec

ROOT = tablec.ROOT
FIRMWARE = os.path.join(ROOT, "firmware")


def register(sub):
    p = sub.add_parser("sim", help="run the phone firmware on the desktop (real sockets; console on stdin or a pty)",
                       description="Run uPhone's runner (uphone.run) on CPython or on the MicroPython unix port with "
                                   "the firmware frozen in (`make micropython`). Without --config only the console "
                                   "(and its table self-test) runs. With --pty the console is on a new "
                                   "pseudo-terminal whose path is printed as `PORT /dev/pts/N`: the same code path "
                                   "as /dev/ttyUSB0 (`phonectl console`, `vectors run --target serial:...`).")
    p.add_argument("--config", help="phone config file (JSON); `phonectl config example` prints one, docs/config.schema.json describes it")
    p.add_argument("--runtime", choices=runtime.RUNTIMES, default="cpython",
                   help="cpython (default) or micropython (build/micropython/unix/micropython)")
    p.add_argument("--heap", type=int, default=None, metavar="BYTES",
                   help="micropython: the heap size (-X heapsize; an ESP32 without PSRAM has ~110000); default: "
                        "the unix port's own")
    p.add_argument("--pty", action="store_true", help="put the console on a pty and print its path")
    p.add_argument("--pcap", help="write every SIP datagram sent and received to this pcap file")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=run)


def check_config(config_path):
    """-> the errors of a config file, checked by the firmware's own validator before the phone starts."""
    if FIRMWARE not in sys.path:
        sys.path.insert(0, FIRMWARE)
    from uphone import config as cfgmod
    import json
    try:
        with open(config_path) as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        return ["%s: %s" % (config_path, e)]
    return cfgmod.validate(raw)


def child_code(config_path=None, pcap=None):
    """Source the child runs: uphone.run.main on the config (None: console only), exit status = main's."""
    code = "import sys\nimport uphone.run as r\n"
    w = "None"
    if pcap:
        # host_tools.pcap is plain enough for both runtimes; it is not part of the firmware
        code += "sys.path.append(%r)\nfrom host_tools.pcap import PcapWriter\n" % ROOT
        w = "PcapWriter(%r)" % os.path.abspath(pcap)
    cfg = "None" if config_path is None else repr(os.path.abspath(config_path))
    return code + "sys.exit(r.main(%s, pcap=%s))\n" % (cfg, w)


class _Stop(Exception):
    pass


def _raise_stop(*_a):
    raise _Stop()


def run(args):
    if args.config:
        errors = check_config(args.config)
        if errors:
            for e in errors:
                print("error: config %s" % e, file=sys.stderr)
            return 1
    try:
        argv = runtime.firmware_argv(args.runtime, child_code(args.config, args.pcap), args.heap)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    keep = None
    cwd = os.path.dirname(os.path.abspath(args.config)) if args.config else None
    if args.pty:
        import pty
        import tty
        # One pty is one serial line. The phone's end is the master (its UART); the host opens the slave by path,
        # as it opens /dev/ttyUSB0 (pyserial needs the termios of a slave). This process keeps a slave fd open so
        # a host closing its side does not look like the end of the console to the phone (a UART never ends).
        master, keep = pty.openpty()
        tty.setraw(keep)        # no echo, no line editing: exactly what a UART gives
        # its own session: a Ctrl-C on this terminal reaches the child once, through _stop
        child = subprocess.Popen(argv, stdin=master, stdout=master, cwd=cwd, start_new_session=True,
                                 preexec_fn=_sigint_default)
        os.close(master)
        print("PORT %s" % os.ttyname(keep), flush=True)
    else:
        # the console is this terminal: the child shares its process group (a Ctrl-C reaches both)
        child = subprocess.Popen(argv, cwd=cwd, preexec_fn=_sigint_default)
    signal.signal(signal.SIGTERM, _raise_stop)
    interrupted = False
    try:
        child.wait(args.duration)
    except KeyboardInterrupt:
        interrupted = not args.pty
    except (subprocess.TimeoutExpired, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _stop(child, interrupted)
        if keep is not None:
            os.close(keep)
    return child.returncode if child.returncode and child.returncode > 0 else 0


def _sigint_default():
    # a shell starts background jobs with SIGINT ignored and a child inherits that: CPython would then never raise
    # KeyboardInterrupt, and the runner's clean ending (unregister, hang up) would not run
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(child, signalled=False, grace=10.0):
    """The runner's own ending (KeyboardInterrupt: unregister, hang up, close files), then kill if it hangs.
    signalled: the terminal's Ctrl-C already reached the child (a second one would cut its shutdown short)."""
    if child.poll() is not None:
        return
    if not signalled:
        child.send_signal(signal.SIGINT)
    end = time.time() + grace
    while child.poll() is None and time.time() < end:
        time.sleep(0.05)
    if child.poll() is None:
        child.kill()
        child.wait(5)
