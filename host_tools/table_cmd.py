# phonectl table compile|verify|dump|draw: the host side of the one call table.
import json
import os
import subprocess
import sys

from host_tools import tablec

SEED_PART2 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed_part2.txt")
COVERAGE = os.path.join(tablec.ROOT, "build", "coverage", "running-phones.txt")
# rows no running phone takes in the tests, each with why: "kind State Event Role: reason" per line
COVERAGE_REASONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "coverage_reasons.txt")


def register(sub):
    p = sub.add_parser("table", help="compile, verify, dump or draw the call table",
                       description="Work on firmware/uphone/table_spec.txt, the one source of call behaviour.")
    tsub = p.add_subparsers(dest="table_verb", metavar="ACTION")
    tsub.required = True
    c = tsub.add_parser("compile", help="generate firmware/uphone/table.py from table_spec.txt")
    c.add_argument("--check", action="store_true", help="only check that table.py is up to date (exit 1 if stale)")
    c.set_defaults(func=cmd_compile)
    v = tsub.add_parser("verify", help="check reachability, dead ends, Part 2 coverage, overlaps, unused and "
                                       "unsupported actions; non-zero exit on errors")
    v.set_defaults(func=cmd_verify)
    d = tsub.add_parser("dump", help="print one JSON object per transition")
    d.set_defaults(func=cmd_dump)
    cv = tsub.add_parser("coverage", help="which transitions phones running on a real loop took in the last "
                                          "make test (what their engines committed; vectors do not count)")
    cv.add_argument("--file", default=COVERAGE, help="the rows phone processes left (default %(default)s)")
    cv.add_argument("--quiet", action="store_true", help="print only the summary line")
    cv.set_defaults(func=cmd_coverage)
    g = tsub.add_parser("draw", help="render the state graph with Graphviz, one cluster per session kind")
    g.add_argument("-o", "--output", required=True, help="output file: .svg, .png or .dot")
    g.set_defaults(func=cmd_draw)


def _load_or_die():
    try:
        return tablec.load()
    except tablec.SpecError as e:
        print("error: %s" % e, file=sys.stderr)
        return None


def cmd_compile(args):
    m = _load_or_die()
    if m is None:
        return 1
    errs = tablec.check_actions(m) + tablec.check_references(m)
    if errs:
        for e in errs:
            print("error: " + e, file=sys.stderr)
        return 1
    text = tablec.emit(m)
    cur = open(tablec.OUT).read() if os.path.exists(tablec.OUT) else ""
    if args.check:
        if cur != text:
            print("error: firmware/uphone/table.py is stale: run `phonectl table compile`", file=sys.stderr)
            return 1
        print("table.py is up to date")
        return 0
    with open(tablec.OUT, "w") as f:
        f.write(text)
    enc = tablec.encode(m)
    size = tablec.const_bytes(enc)
    print("wrote firmware/uphone/table.py: %d states, %d events, %d transitions, %d actions, %d bytes of tables"
          % (len(m.states), len(m.events), len(m.rows), len(m.actions), size))
    return 0


# ---- running-phone coverage ----------------------------------------------------------------------------------

def row_key(r):
    return "%s %s %s %s" % (r.kind, r.state, r.event, r.role)


def load_reasons(path=COVERAGE_REASONS):
    out = {}
    if os.path.exists(path):
        for raw in open(path):
            line = raw.strip()
            if line and not line.startswith("#"):
                key, _, why = line.partition(":")
                out[" ".join(key.split())] = why.strip()
    return out


def coverage(m, path):
    """-> (set of spec row indexes taken, per-runtime sets) from the hex bitmaps phone processes wrote."""
    order = tablec.row_order(m)
    taken, per = set(), {}
    if os.path.exists(path):
        for raw in open(path):
            w = raw.split()
            if len(w) != 2:
                continue
            bits = bytes.fromhex(w[1])
            rows = set(order[r] for r in range(len(order)) if r >> 3 < len(bits) and bits[r >> 3] >> (r & 7) & 1)
            taken |= rows
            per.setdefault(w[0], set()).update(rows)
    return taken, per


def cmd_coverage(args):
    m = _load_or_die()
    if m is None:
        return 1
    if not os.path.exists(args.file):
        print("error: %s: no phone has written its rows (run make test first)" % args.file, file=sys.stderr)
        return 1
    taken, per = coverage(m, args.file)
    reasons = load_reasons()
    n, total = len(taken), len(m.rows)
    print("running-phone coverage: %d of %d transitions (%.0f%%)%s" % (
        n, total, 100.0 * n / total, "".join("; %s %d" % (k, len(v)) for k, v in sorted(per.items()))))
    if args.quiet:
        return 0
    for i, r in enumerate(m.rows):
        if i in taken:
            continue
        why = reasons.get(row_key(r))
        print("  not taken: table_spec.txt:%d %s x %s (%s, %s)%s" % (r.line, r.state, r.event, r.kind, r.role,
                                                                      ": " + why if why else ": no reason given"))
    return 0


# ---- verifier ---------------------------------------------------------------------------------------------

def load_part2(path=SEED_PART2):
    """{event: ([states], {absent_state: why})}"""
    out = {}
    for raw in open(path):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        ev, _, rest = line.partition(":")
        rest, _, why = rest.partition("--")
        states, absent = [], {}
        for s in rest.split(","):
            s = s.strip()
            if s.endswith("!") or s.endswith("~"):
                absent[s[:-1]] = (s[-1], why.strip())
            elif s:
                states.append(s)
        out[ev.strip()] = (states, absent)
    return out


def verify(m, impl=None, unsupported=None):
    """-> (errors, warnings, info) lists of strings."""
    errors, warnings, info = [], [], []
    if impl is None:
        impl, unsupported = tablec.firmware_actions()
    errors += tablec.check_actions(m, impl, unsupported)
    for kind, start, finals, _line in m.kinds:
        rows = [r for r in m.rows if r.kind == kind]
        edges = {}
        for r in rows:
            edges.setdefault(r.state, set()).add(r.next)
        states = {start} | set(edges) | {n for v in edges.values() for n in v}
        seen, todo = {start}, [start]
        while todo:
            for n in edges.get(todo.pop(), ()):
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        for s in sorted(states - seen):
            errors.append("kind %s: state %s is unreachable from %s" % (kind, s, start))
        goal = set(finals) | {start}
        back = {}
        for a, ns in edges.items():
            for n in ns:
                back.setdefault(n, set()).add(a)
        ok, todo = set(goal), list(goal)
        while todo:
            for p in back.get(todo.pop(), ()):
                if p not in ok:
                    ok.add(p)
                    todo.append(p)
        for s in sorted(states - ok):
            errors.append("kind %s: state %s has no path to a final state (%s) or back to %s"
                          % (kind, s, ",".join(finals), start))
        for f in finals:
            if f != start and not any(r.state == f for r in rows):
                warnings.append("kind %s: final state %s has no way back to %s (no Reset row)" % (kind, f, start))
        info.append("kind %s: start %s, final %s, states %s" % (kind, start, ",".join(finals), ",".join(
            s for s in m.states if s in states)))
    handled = {(r.state, r.event) for r in m.rows}
    for ev, (states, absent) in sorted(load_part2().items()):
        if ev not in m.events:
            errors.append("seed Part 2 event %s is not declared in the table" % ev)
            continue
        for s in states:
            if s not in m.states:
                errors.append("seed Part 2 names state %s for %s: unknown and not marked absent" % (s, ev))
            elif (s, ev) not in handled:
                errors.append("seed Part 2 says %s accepts %s but no row handles it" % (s, ev))
        for s, (mark, why) in absent.items():
            # '!': the seed names a state uPhone does not have; '~': the state exists but the event is handled
            # by another session kind (the resolution says where)
            if mark == "!" and s in m.states:
                errors.append("seed Part 2 %s in %s is marked absent but %s exists" % (ev, s, s))
            elif mark == "~" and s not in m.states:
                errors.append("seed Part 2 %s in %s is marked handled elsewhere but %s does not exist" % (ev, s, s))
            elif mark == "~" and (s, ev) in handled:
                errors.append("seed Part 2 %s in %s is marked handled elsewhere but a row handles it" % (ev, s))
            info.append("seed Part 2 %s in %s: resolved (%s)" % (ev, s, why))
    # non-determinism: two rows of one cell that can both match one session
    cells = {}
    for r in m.rows:
        cells.setdefault((r.kind, r.state, r.event), []).append(r)
    for key, rs in cells.items():
        for i in range(len(rs)):
            for j in range(i + 1, len(rs)):
                a, b = rs[i], rs[j]
                roles_meet = a.role == "Both" or b.role == "Both" or a.role == b.role
                guards_meet = not (set(a.req) & set(b.forbid) or set(b.req) & set(a.forbid))
                if roles_meet and guards_meet:
                    errors.append("lines %d and %d overlap: %s x %s can match both (non-deterministic)"
                                  % (a.line, b.line, key[1], key[2]))
    used_events = {r.event for r in m.rows} | set(m.core)
    for e in m.events:
        if e not in used_events:
            warnings.append("event %s is declared but no row handles it" % e)
    used_conds = {c for r in m.rows for c in r.req + r.forbid + r.set + r.clear}
    for c in m.conds:
        if c not in used_conds:
            warnings.append("condition %s is declared but never used" % c)
    for a in sorted((set(impl) | unsupported) - set(m.actions)):
        warnings.append("action %s is defined in firmware but no row uses it" % a)
    uns = [a for a in m.actions if a in unsupported]
    if uns:
        warnings.append("actions still unsupported (their transitions are refused): " + ", ".join(uns))
    return errors, warnings, info


def cmd_verify(args):
    m = _load_or_die()
    if m is None:
        return 1
    errors, warnings, info = verify(m)
    errors += tablec.check_references(m)
    text = tablec.emit(m)
    if not os.path.exists(tablec.OUT) or open(tablec.OUT).read() != text:
        errors.append("firmware/uphone/table.py is stale: run `phonectl table compile`")
    for w in warnings:
        print("warning: " + w)
    for e in errors:
        print("error: " + e)
    print("table verify: %d kinds, %d states, %d events, %d transitions: %d errors, %d warnings"
          % (len(m.kinds), len(m.states), len(m.events), len(m.rows), len(errors), len(warnings)))
    return 1 if errors else 0


def row_json(r):
    def act(a):
        name, args = a
        return name + ("(" + ",".join(str(x) for x in args) + ")" if args else "")
    nxt = r.next + ("(%s)" % r.reason if r.reason else "")
    return {"kind": r.kind, "state": r.state, "event": r.event, "role": r.role,
            "guards": r.req + ["!" + g for g in r.forbid], "next": nxt,
            "actions": [act(a) for a in r.actions], "set": r.set, "clear": r.clear}


def cmd_dump(args):
    m = _load_or_die()
    if m is None:
        return 1
    for r in m.rows:
        print(json.dumps(row_json(r)))
    return 0


def to_dot(m):
    L = ['digraph uphone {', '  rankdir=LR; compound=true; fontname="Helvetica";',
         '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=10];',
         '  edge [fontname="Helvetica", fontsize=8];']
    for kind, start, finals, _ in m.kinds:
        rows = [r for r in m.rows if r.kind == kind]
        states = []
        for r in rows:
            for s in (r.state, r.next):
                if s not in states:
                    states.append(s)
        L.append('  subgraph "cluster_%s" { label="%s"; style=dashed;' % (kind, kind))
        for s in states:
            attrs = ["label=\"%s\"" % s]
            if s == start:
                attrs.append("penwidth=2")
            if s in finals:
                attrs.append("peripheries=2")
            L.append('    "%s.%s" [%s];' % (kind, s, ", ".join(attrs)))
        L.append("  }")
        for r in rows:
            label = r.event + ("" if r.role == "Both" else " [%s]" % r.role)
            if r.req or r.forbid:
                label += "\\n{" + ",".join(r.req + ["!" + g for g in r.forbid]) + "}"
            L.append('  "%s.%s" -> "%s.%s" [label="%s"];' % (kind, r.state, kind, r.next, label))
    L.append("}")
    return "\n".join(L) + "\n"


def cmd_draw(args):
    m = _load_or_die()
    if m is None:
        return 1
    dot = to_dot(m)
    out = args.output
    ext = os.path.splitext(out)[1].lower()
    if ext == ".dot":
        open(out, "w").write(dot)
    elif ext in (".svg", ".png"):
        try:
            subprocess.run(["dot", "-T" + ext[1:], "-o", out], input=dot.encode(), check=True)
        except FileNotFoundError:
            print("error: Graphviz `dot` is not installed (apt-get install graphviz); use -o FILE.dot",
                  file=sys.stderr)
            return 2
    else:
        print("error: output must end in .svg, .png or .dot", file=sys.stderr)
        return 2
    print("wrote %s (%d kinds, %d transitions)" % (out, len(m.kinds), len(m.rows)))
    return 0
