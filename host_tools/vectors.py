# phonectl vectors run --target cpython|micropython|serial:PORT: the table vectors through the console protocol.
# The same console lines go to every target; the runner compares the answers and counts transition coverage.
import glob
import os
import sys

from host_tools import tablec

ROOT = tablec.ROOT
VECTOR_DIR = os.path.join(ROOT, "tests", "vectors")


class VectorError(Exception):
    pass


class Step:
    """One console command, the lines it must answer with, and the table row it exercises (or None)."""
    __slots__ = ("file", "line", "cmd", "expect", "row")

    def __init__(self, file, line, cmd, expect, row=None):
        self.file, self.line, self.cmd, self.expect, self.row = file, line, cmd, expect, row


def _find_row(model, kind, role, state, event):
    for r in model.rows:
        if r.kind == kind and r.state == state and r.event == event and r.role in ("Both", role):
            return r
    return None


def compile_vectors(model, paths):
    """Vector files -> list of Steps (console commands with expected answers)."""
    steps = []
    sid_no = 0      # session ids count across files, as the console does
    for path in paths:
        name = os.path.relpath(path, ROOT)
        cur = None      # [sid, kind, role, state, conds]
        for no, raw in enumerate(open(path), 1):
            line = _strip_comment(raw)
            if not line:
                continue
            where = "%s:%d" % (name, no)
            w = line.split()
            if w[0] == "session":
                # session <kind> [role] [State] [+Cond ...]
                if len(w) < 2 or w[1] not in [k[0] for k in model.kinds]:
                    raise VectorError(where + ": session <kind> [role] [State] [+Cond ...]")
                kind = w[1]
                start = [k for k in model.kinds if k[0] == kind][0][1]
                role, state, conds = "Both", start, []
                for x in w[2:]:
                    if x in tablec.ROLES:
                        role = x
                    elif x in model.states:
                        state = x
                    elif x[:1] == "+" and x[1:] in model.conds:
                        conds.append(x[1:])
                    else:
                        raise VectorError(where + ": unknown %r" % x)
                sid_no += 1
                cur = ["t%d" % sid_no, kind, role, state, conds]
                steps.append(Step(where, no, line.replace("session", "new", 1), ["ok %s %s" % (cur[0], state)]))
                continue
            if cur is None:
                raise VectorError(where + ": a `session` line comes first")
            sid = cur[0]
            if w[0] == "fail":
                steps.append(Step(where, no, line, ["ok next %s fails" % w[1]]))
                continue
            if w[0] == "cond":
                bits = set(cur[4])
                for x in w[1:]:
                    if x[:1] not in "+-" or x[1:] not in model.conds:
                        raise VectorError(where + ": cond +X / -X")
                    (bits.add if x[0] == "+" else bits.discard)(x[1:])
                cur[4] = [c for c in model.conds if c in bits]
                steps.append(Step(where, no, "cond %s %s" % (sid, " ".join(w[1:])),
                                  ["ok %s %s" % (sid, ",".join(cur[4]) or "-")]))
                continue
            left, arrow, right = line.partition("->")
            if not arrow:
                raise VectorError(where + ": expected `Event [k=v] -> State : Actions` or `-> unhandled|guard|"
                                  "failed Action`")
            ev = left.split()[0]
            if ev not in model.events:
                raise VectorError(where + ": unknown event %r" % ev)
            cmd = "ev %s %s" % (sid, left.strip())
            right = right.strip()
            shown = cur[3]
            if right.startswith("unhandled"):
                steps.append(Step(where, no, cmd, ["err unhandled %s %s in %s" % (sid, ev, shown)]))
                if _find_row(model, cur[1], cur[2], cur[3].split("(")[0], ev):
                    raise VectorError(where + ": a row handles %s in %s: it is not unhandled" % (ev, cur[3]))
                continue
            row = _find_row(model, cur[1], cur[2], cur[3].split("(")[0], ev)
            if right.startswith("guard"):
                needs = right[5:].strip()
                steps.append(Step(where, no, cmd, ["err guard %s %s in %s: needs %s" % (sid, ev, shown, needs)]))
                continue
            if right.startswith("failed"):
                parts = right.split()
                why = parts[2] if len(parts) > 2 else "failed"
                steps.append(Step(where, no, cmd, ["err failed %s %s in %s: %s %s" % (sid, ev, shown, parts[1], why)]))
                continue
            state, _, acts = right.partition(":")
            state, acts = state.strip(), acts.strip() or "-"
            acts = ",".join(a.strip() for a in _split_actions(acts))
            if row is None:
                raise VectorError(where + ": no row for %s %s x %s (%s)" % (cur[1], cur[3], ev, cur[2]))
            frm = cur[3].split("(")[0]
            steps.append(Step(where, no, cmd, ["tr %s %s %s %s %s" % (sid, frm, ev, state, acts),
                                               "ok %s %s" % (sid, state)], row))
            cur[3] = state
            cur[4] = [c for c in model.conds if (c in cur[4] or c in row.set) and c not in row.clear]
    return steps


def _strip_comment(raw):
    """'#' starts a comment at the start of a line or after a blank (a DTMF '#' inside a value stays)."""
    line = raw.strip()
    if line.startswith("#"):
        return ""
    i = line.find(" #")
    return (line[:i] if i >= 0 else line).strip()


def _split_actions(s):
    return tablec._split_top(s) if s != "-" else ["-"]


def vector_files():
    return sorted(glob.glob(os.path.join(VECTOR_DIR, "*.vec")))


# ---- targets: each takes the list of commands, returns the list of answer lines per command ------------------

def run_cpython(cmds):
    fw = os.path.join(ROOT, "firmware")
    if fw not in sys.path:
        sys.path.insert(0, fw)
    from uphone.console import Console
    out = []
    c = Console(None, out.append)
    c.handle_line("selftest on")
    res = []
    for cmd in cmds:
        del out[:]
        c.handle_line(cmd)
        res.append(list(out))
    return res


def _converse(send, readline, cmds, where):
    """The console protocol as a host speaks it on a line: `selftest on`, then each command and the lines it answers
    up to its final `ok ...`/`err ...` (a REPL prompt or an empty line is not an answer). -> answers per command."""
    res = []
    for cmd in ["selftest on"] + list(cmds):
        send((cmd + "\r\n").encode())
        lines = []
        while True:
            raw = readline()
            if not raw:
                raise VectorError("%s: no answer to %r" % (where, cmd))
            ln = raw.decode("utf-8", "replace").strip()
            if not ln or ln.startswith(">>>"):
                continue
            lines.append(ln)
            if ln == "ok" or ln.startswith("ok ") or ln.startswith("err"):
                break
        res.append(lines)
    return res[1:]


def run_micropython(cmds, heap=None, timeout=10.0):
    """The vectors on the frozen MicroPython unix port: the firmware's runner with no config (console only, as a
    board without a config file), its console on a pipe. Afterwards `mem gc` gives the real runtime's heap figures
    (run_micropython.last_stats: alloc, free, total = bytes allocated since start)."""
    import select
    import subprocess
    from host_tools import runtime, sim
    try:
        argv = runtime.firmware_argv("micropython", sim.child_code(), heap)
    except SystemExit as e:
        raise VectorError(str(e))
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf = [b""]

    def readline():
        while b"\n" not in buf[0]:
            ready, _, _ = select.select([p.stdout], [], [], timeout)
            data = os.read(p.stdout.fileno(), 65536) if ready else b""
            if not data:
                return b""
            buf[0] += data
        line, buf[0] = buf[0].split(b"\n", 1)
        return line + b"\n"

    def send(data):
        p.stdin.write(data)
        p.stdin.flush()
    try:
        try:
            res = _converse(send, readline, cmds, "micropython")
            send(b"mem gc\r\n")
            mem = readline().decode().split()
        except (VectorError, OSError) as e:
            p.kill()
            raise VectorError("%s; stderr: %s" % (e, p.communicate()[1].decode("utf-8", "replace")[-2000:]))
        err = p.communicate(timeout=timeout)[1].decode("utf-8", "replace")     # end of input: the runner ends
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if p.returncode != 0 or err.strip():
        raise VectorError("micropython exited %s: %s" % (p.returncode, err.strip()[-2000:]))
    run_micropython.last_stats = {k: int(v) for k, v in (kv.split("=") for kv in mem if "=" in kv)}
    return res


def run_serial(cmds, port, timeout=10.0):
    import serial
    try:
        ser = serial.Serial(port, 115200, timeout=timeout)
    except serial.SerialException as e:
        raise VectorError("cannot open %s: %s" % (port, e))
    try:
        ser.reset_input_buffer()
        res = _converse(ser.write, ser.readline, cmds, port)
        ser.write(b"selftest off\r\n")
    finally:
        ser.close()
    return res


def run(target, paths=None, verbose=False, out=sys.stdout, heap=None):
    """heap: the micropython target's heap in bytes (None: the unix port's default)."""
    model = tablec.load()
    steps = compile_vectors(model, paths or vector_files())
    cmds = [s.cmd for s in steps]
    if target == "cpython":
        got = run_cpython(cmds)
    elif target == "micropython":
        got = run_micropython(cmds, heap)
    elif target.startswith("serial:"):
        got = run_serial(cmds, target[7:])
    else:
        raise VectorError("unknown target %r (cpython, micropython, serial:PORT)" % target)
    passed = failed = 0
    covered = set()
    for st, lines in zip(steps, got):
        if lines == st.expect:
            passed += 1
            if st.row is not None:
                covered.add(st.row.line)
        else:
            failed += 1
            print("FAIL %s: %s\n  expected: %s\n  got:      %s" % (st.file, st.cmd, st.expect, lines), file=out)
    if len(got) != len(steps):
        failed += abs(len(steps) - len(got))
    total = len(model.rows)
    print("coverage: %d/%d transitions (%.0f%%)" % (len(covered), total, 100.0 * len(covered) / total), file=out)
    if verbose or len(covered) < total:
        for r in model.rows:
            if r.line not in covered:
                print("  not covered: table_spec.txt:%d %s %s x %s (%s)" % (r.line, r.kind, r.state, r.event,
                                                                           r.role), file=out)
    print("%d passed, %d failed" % (passed, failed), file=out)
    return passed, failed, len(covered), total


def register(sub):
    p = sub.add_parser("vectors", help="run the table vectors on a target",
                       description="Run tests/vectors/*.vec through the console protocol on CPython, inside "
                                   "MicroPython (the unix port with the firmware frozen in: `make micropython`) or "
                                   "on a phone's serial port, all through the console line protocol.")
    vs = p.add_subparsers(dest="vectors_verb", metavar="ACTION")
    vs.required = True
    r = vs.add_parser("run", help="run the vectors")
    r.add_argument("--target", default="cpython", help="cpython | micropython | serial:PORT")
    r.add_argument("--heap", type=int, default=None, metavar="BYTES",
                   help="micropython: heap size (-X heapsize), e.g. 110000 for an ESP32 without PSRAM")
    r.add_argument("--verbose", action="store_true")
    r.add_argument("files", nargs="*", help="vector files (default: tests/vectors/*.vec)")
    r.set_defaults(func=_cmd_run)


def _cmd_run(args):
    try:
        passed, failed, cov, total = run(args.target, args.files or None, args.verbose, heap=args.heap)
    except (VectorError, tablec.SpecError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    return 0 if failed == 0 and cov == total else 1
