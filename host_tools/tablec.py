# Table compiler (host only): parses firmware/uphone/table_spec.txt into a model, checks every name, and emits
# the generated firmware module uphone/table.py (bytes constants + const ids + name tuples). Deterministic.
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "firmware", "uphone", "table_spec.txt")
OUT = os.path.join(ROOT, "firmware", "uphone", "table.py")
ROLES = ("Both", "UAC", "UAS")
NONE = 0xFF
ROW_SIZE = 5     # see encode()


class SpecError(Exception):
    def __init__(self, line_no, msg):
        Exception.__init__(self, "table_spec.txt:%d: %s" % (line_no, msg))
        self.line_no = line_no


class Row:
    __slots__ = ("line", "kind", "state", "event", "role", "req", "forbid", "next", "reason", "actions",
                 "set", "clear", "comment")

    def key(self):
        return (self.kind, self.state, self.event, self.role)


class Model:
    def __init__(self):
        self.states = []
        self.events = []
        self.conds = []
        self.reasons = []
        self.kinds = []          # [(name, start, finals, line)]
        self.core = {}           # event -> why
        self.rows = []
        self.actions = []        # in first-use order


def _split_top(s, sep=","):
    """Split on sep outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _arg(v):
    v = v.strip()
    return int(v) if v.lstrip("-").isdigit() else v


def parse(text):
    m = Model()
    kind = None
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        word = line.split(None, 1)[0]
        rest = line[len(word):].strip()
        if word in ("states", "events", "conditions", "reasons"):
            target = {"states": m.states, "events": m.events, "conditions": m.conds, "reasons": m.reasons}[word]
            for name in rest.split():
                if name in target:
                    raise SpecError(no, "%s declared twice: %s" % (word, name))
                target.append(name)
            continue
        if word == "core":
            names, _, why = rest.partition(":")
            for ev in names.split():
                m.core[ev] = why.strip()
            continue
        if word == "kind":
            parts = rest.split()
            opts = dict(p.split("=", 1) for p in parts[1:])
            if set(opts) != {"start", "final"}:
                raise SpecError(no, "kind needs start= and final=")
            kind = parts[0]
            if any(k[0] == kind for k in m.kinds):
                raise SpecError(no, "kind declared twice: " + kind)
            for st in [opts["start"]] + opts["final"].split(","):
                if st not in m.states:
                    raise SpecError(no, "unknown state %r" % st)
            m.kinds.append((kind, opts["start"], opts["final"].split(","), no))
            continue
        cols = [c.strip() for c in line.split("|")]
        if len(cols) != 7:
            raise SpecError(no, "a row has 7 columns separated by |, got %d" % len(cols))
        if kind is None:
            raise SpecError(no, "row before any `kind` line")
        r = Row()
        r.line, r.kind = no, kind
        r.state, r.event, r.role = cols[0], cols[1], cols[2]
        if r.state not in m.states:
            raise SpecError(no, "unknown state %r" % r.state)
        if r.event not in m.events:
            raise SpecError(no, "unknown event %r" % r.event)
        if r.role not in ROLES:
            raise SpecError(no, "unknown role %r (UAC, UAS or Both)" % r.role)
        r.req, r.forbid = [], []
        if cols[3] != "-":
            for g in _split_top(cols[3]):
                neg = g.startswith("!")
                name = g[1:] if neg else g
                if name not in m.conds:
                    raise SpecError(no, "unknown condition %r in guard" % name)
                (r.forbid if neg else r.req).append(name)
        nxt = cols[4]
        r.reason = None
        if "(" in nxt:
            nxt, _, reason = nxt.partition("(")
            r.reason = reason.rstrip(")")
            if r.reason not in m.reasons:
                raise SpecError(no, "unknown failure reason %r" % r.reason)
        if nxt not in m.states:
            raise SpecError(no, "unknown state %r" % nxt)
        if nxt == "Failed" and r.reason is None:
            raise SpecError(no, "Failed carries a reason: Failed(<Reason>)")
        r.next = nxt
        r.actions = []
        if cols[5] != "-":
            for a in _split_top(cols[5]):
                name, _, args = a.partition("(")
                name = name.strip()
                if not name.isidentifier():
                    raise SpecError(no, "bad action %r" % a)
                argt = tuple(_arg(x) for x in args.rstrip(")").split(",")) if args else ()
                r.actions.append((name, argt))
                if name not in m.actions:
                    m.actions.append(name)
        r.set, r.clear = [], []
        if cols[6] != "-":
            for c in _split_top(cols[6]):
                if c[:1] not in "+-" or c[1:] not in m.conds:
                    raise SpecError(no, "conditions are +Cond or -Cond with a declared Cond, got %r" % c)
                (r.set if c[0] == "+" else r.clear).append(c[1:])
        r.comment = None
        m.rows.append(r)
    seen = {}
    for r in m.rows:
        if r.key() in seen:
            raise SpecError(r.line, "duplicate cell (%s, %s, %s, %s), first on line %d"
                            % (r.kind, r.state, r.event, r.role, seen[r.key()]))
        seen[r.key()] = r.line
    for r in m.rows:
        both = (r.kind, r.state, r.event, "Both")
        if r.role != "Both" and both in seen:
            raise SpecError(r.line, "role %s overlaps the Both row on line %d" % (r.role, seen[both]))
    for ev in m.core:
        if ev not in m.events:
            raise SpecError(0, "core event %r is not declared" % ev)
        if any(r.event == ev for r in m.rows):
            raise SpecError(0, "core event %r also has table rows" % ev)
    return m


def load(path=SPEC):
    with open(path) as f:
        return parse(f.read())


def firmware_actions():
    """(implemented, unsupported) action names as the firmware defines them."""
    import sys
    fw = os.path.join(ROOT, "firmware")
    if fw not in sys.path:
        sys.path.insert(0, fw)
    from uphone import actions, phone
    impl = set(n[2:] for n in dir(phone.Phone) if n.startswith("a_"))
    return impl, set(actions.UNSUPPORTED)


def check_actions(m, impl=None, unsupported=None):
    """Every action must be implemented by the firmware or declared unsupported there."""
    if impl is None:
        impl, unsupported = firmware_actions()
    errors = []
    for a in m.actions:
        if a not in impl and a not in unsupported:
            line = next(r.line for r in m.rows if any(x[0] == a for x in r.actions))
            errors.append("table_spec.txt:%d: action %s has no implementation in firmware (uphone/phone.py a_%s) "
                          "and is not declared in uphone/actions.py UNSUPPORTED" % (line, a, a))
        if a in impl and a in unsupported:
            errors.append("action %s is both implemented and declared UNSUPPORTED" % a)
    return errors


def encode(m):
    """-> dict of the binary tables (used by emit and by the bench).

    CELLS: state x event -> first row id (0xFF none). ROWS: 5 bytes per row, rows of one cell consecutive:
    flags (kind | role << 3 | more << 5 | has-guard << 6 | sets-conditions << 7), next state, failure reason
    (non-zero only on rows entering Failed), CFX index, ACTL index.
    CFX: tuple of (require, forbid, set, clear) bit masks. ACTL: one bytes object per distinct action list,
    holding call ids; a call id is one (action, arguments) pair: CALL_ACTION[call] is the action id,
    CALL_ARG[call] its index in ARGS, the argument pool (ARGS[0] is None: no arguments).
    """
    ns, ne = len(m.states), len(m.events)
    assert ns < 255 and ne < 255 and len(m.actions) < 255 and len(m.kinds) <= 8
    sid = {s: i for i, s in enumerate(m.states)}
    eid = {e: i for i, e in enumerate(m.events)}
    cid = {c: i for i, c in enumerate(m.conds)}
    kid = {k[0]: i for i, k in enumerate(m.kinds)}
    aid = {a: i for i, a in enumerate(m.actions)}
    assert len(m.conds) <= 30
    order = sorted(range(len(m.rows)), key=lambda i: (sid[m.rows[i].state], eid[m.rows[i].event],
                                                       kid[m.rows[i].kind], ROLES.index(m.rows[i].role)))
    assert len(order) < 255
    cells = bytearray([NONE]) * (ns * ne)
    rows = bytearray()
    cfx_list, cfx_index = [], {}
    actl, act_index = [], {}
    args, arg_index = [None], {}
    calls, call_index = [], {}

    def mask(names):
        return sum(1 << cid[n] for n in names)
    for pos, i in enumerate(order):
        r = m.rows[i]
        c = sid[r.state] * ne + eid[r.event]
        if cells[c] == NONE:
            cells[c] = pos
        nxt = order[pos + 1] if pos + 1 < len(order) else None
        more = nxt is not None and (m.rows[nxt].state, m.rows[nxt].event) == (r.state, r.event)
        fx = (mask(r.req), mask(r.forbid), mask(r.set), mask(r.clear))
        if fx not in cfx_index:
            cfx_index[fx] = len(cfx_list)
            cfx_list.append(fx)
        al = bytearray()
        for name, a in r.actions:
            if a and a not in arg_index:
                arg_index[a] = len(args)
                args.append(a)
            call = (aid[name], arg_index[a] if a else 0)
            if call not in call_index:
                call_index[call] = len(calls)
                calls.append(call)
            al.append(call_index[call])
        al = bytes(al)
        if al not in act_index:
            act_index[al] = len(actl)
            actl.append(al)
        off = act_index[al]
        assert off < 256 and len(calls) < 256
        reason = 0 if r.reason is None else 1 + m.reasons.index(r.reason)
        flags = kid[r.kind] | ROLES.index(r.role) << 3 | (0x20 if more else 0)
        flags |= (0x40 if fx[0] or fx[1] else 0) | (0x80 if fx[2] or fx[3] else 0)
        rows += bytes((flags, sid[r.next], reason, cfx_index[fx], off))
    assert len(cfx_list) < 255 and len(args) < 255
    kstart = bytes(sid[k[1]] for k in m.kinds)
    kfinal = tuple(bytes(sid[s] for s in k[2]) for k in m.kinds)
    return {"CELLS": bytes(cells), "ROWS": bytes(rows), "CFX": tuple(cfx_list), "ACTL": tuple(actl),
            "CALL_ACTION": bytes(c[0] for c in calls), "CALL_ARG": bytes(c[1] for c in calls),
            "ARGS": tuple(args), "KIND_START": kstart, "KIND_FINAL": kfinal, "order": order}


def const_bytes(enc):
    """Bytes the table's constants take (bytes objects + condition masks as 4 x uint16)."""
    return (sum(len(enc[k]) for k in ("CELLS", "ROWS", "CALL_ACTION", "CALL_ARG", "KIND_START"))
            + sum(len(b) for b in enc["ACTL"]) + 8 * len(enc["CFX"]))


def _bytes_lit(b, indent="    "):
    out, line = [], ""
    for i in range(0, len(b), 24):
        out.append(indent + repr(bytes(b[i:i + 24])))
    return "(\n" + "\n".join(out) + "\n)"


def emit(m):
    t = encode(m)
    L = ["# GENERATED by `phonectl table compile` from table_spec.txt: do not edit by hand.",
         "# Dense cell index (state x event -> first row), 5-byte rows, condition masks, action lists, argument pool:",
         "# the layout is described in host_tools/tablec.py encode().",
         "from uphone.compat import const", ""]
    L.append("N_STATES = const(%d)" % len(m.states))
    L.append("N_EVENTS = const(%d)" % len(m.events))
    L.append("N_ACTIONS = const(%d)" % len(m.actions))
    L.append("N_ROWS = const(%d)" % len(m.rows))
    for prefix, names in (("S_", m.states), ("E_", m.events), ("C_", m.conds)):
        L.append("")
        for i, n in enumerate(names):
            L.append("%s%s = const(%d)" % (prefix, n, i if prefix != "C_" else 1 << i))
    L.append("")
    for i, n in enumerate(m.reasons):
        L.append("R_%s = const(%d)" % (n, i + 1))
    for i, k in enumerate(m.kinds):
        L.append("K_%s = const(%d)" % (k[0], i))
    L.append("")
    L.append("# names for logs and the console (ids index these tuples)")
    for name, seq in (("STATES", m.states), ("EVENTS", m.events), ("ACTIONS", m.actions), ("CONDS", m.conds),
                      ("REASONS", ["-"] + m.reasons), ("KINDS", [k[0] for k in m.kinds]),
                      ("CORE_EVENTS", sorted(m.core)), ("ROLES", list(ROLES))):
        L.append("%s = (%s)" % (name, "".join("%r, " % s for s in seq).rstrip()))
    L.append("")
    L.append("KIND_START = %r" % t["KIND_START"])
    L.append("KIND_FINAL = %r" % (t["KIND_FINAL"],))
    L.append("ARGS = %r" % (t["ARGS"],))
    L.append("CFX = %r" % (t["CFX"],))
    L.append("ACTL = (\n%s)" % "".join("    %r,\n" % b for b in t["ACTL"]))
    for name in ("CELLS", "ROWS", "CALL_ACTION", "CALL_ARG"):
        L.append("%s = %s" % (name, _bytes_lit(t[name])))
    return "\n".join(L) + "\n"


def compile_to(path=OUT, spec=SPEC):
    m = load(spec)
    text = emit(m)
    with open(path, "w") as f:
        f.write(text)
    return m, text
