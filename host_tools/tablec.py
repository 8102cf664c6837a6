# Table compiler (host only): parses firmware/uphone/table_spec.txt into a model, checks every name, and emits
# the generated firmware module uphone/table.py (bytes constants + packed names; ids resolved on use).
# Deterministic.
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


def row_order(m):
    """The spec's row indexes in the order table.py keeps them (cells' rows consecutive): the firmware's row id r
    is m.rows[row_order(m)[r]]."""
    sid = {s: i for i, s in enumerate(m.states)}
    eid = {e: i for i, e in enumerate(m.events)}
    kid = {k[0]: i for i, k in enumerate(m.kinds)}
    return sorted(range(len(m.rows)), key=lambda i: (sid[m.rows[i].state], eid[m.rows[i].event],
                                                     kid[m.rows[i].kind], ROLES.index(m.rows[i].role)))


def load(path=SPEC):
    with open(path) as f:
        return parse(f.read())


def firmware_actions():
    """(implemented, unsupported) action names as the firmware defines them: implemented maps each name to the
    modules that define a function of that name (uphone.actions.modules(), one per session kind)."""
    import inspect
    import sys
    fw = os.path.join(ROOT, "firmware")
    if fw not in sys.path:
        sys.path.insert(0, fw)
    from uphone import actions
    impl = {}
    for mod in actions.modules():
        for name, obj in vars(mod).items():
            # an action is a function named after it (CamelCase, as the table spells it), defined in that module
            if name[:1].isupper() and inspect.isfunction(obj) and obj.__module__ == mod.__name__:
                impl.setdefault(name, []).append(mod.__name__)
    return impl, set(actions.UNSUPPORTED)


def check_actions(m, impl=None, unsupported=None):
    """Every action must be implemented by the firmware (in one module only) or declared unsupported there."""
    if impl is None:
        impl, unsupported = firmware_actions()
    errors = []
    for a in m.actions:
        if a not in impl and a not in unsupported:
            line = next(r.line for r in m.rows if any(x[0] == a for x in r.actions))
            errors.append("table_spec.txt:%d: action %s has no implementation in firmware (a function %s in one of "
                          "the uphone/ua/ modules of uphone/actions.py modules()) and is not declared in "
                          "uphone/actions.py UNSUPPORTED" % (line, a, a))
        if a in impl and a in unsupported:
            errors.append("action %s is both implemented and declared UNSUPPORTED" % a)
        if isinstance(impl, dict) and len(impl.get(a, ())) > 1:
            errors.append("action %s is implemented in more than one module: %s" % (a, ", ".join(impl[a])))
    return errors


def _find(seq, part):
    n = len(part)
    return next(i for i in range(len(seq) - n + 1) if seq[i:i + n] == part)


def _inside(part, seq):
    n = len(part)
    return any(seq[i:i + n] == part for i in range(len(seq) - n + 1))


def _overlap(a, b):
    """Longest proper overlap of a's tail with b's head."""
    for k in range(min(len(a), len(b)) - 1, 0, -1):
        if a[-k:] == b[:k]:
            return k
    return 0


def encode(m):
    """-> dict of the binary tables (used by emit and by the bench).

    Cells (state x event -> first row id) are stored row-displaced, the classic parser-table packing: state s owns
    the slots CELL_BASE[s] + event of CELL_STATE/CELL_ROW, and a slot is s's only when CELL_STATE[slot] == s
    (else no row). The slot arrays are padded to max(CELL_BASE) + N_EVENTS, so any event id in range indexes them.
    ROWS: 5 bytes per row, rows of one cell consecutive: flags (kind | role << 3 | more << 5 | has-guard << 6 |
    sets-conditions << 7), next state, failure reason | action count << 4 (the reason is non-zero only on rows
    entering Failed), CFX offset, action-list offset.
    CFX: flat tuple of (require, forbid, set, clear) bit masks, four ints per entry; a row holds the offset of its
    first. Calls: one run of (action, arguments) pairs, CALL_ACTION[i] the action id and CALL_ARG[i] the index of
    its arguments in ARGS, the argument pool (ARGS[0] is None: no arguments). A row's actions are the calls
    offset .. offset + count - 1; the lists overlap in the run where one is part of another or one ends as another
    begins. The engine resolves each call to (bound action, arguments) once, so a dispatch indexes by position.
    KIND_START: start state per kind. KIND_FINAL: a bit per (kind, state), KIND_FINAL_W
    bytes per kind: state st of kind k is final when KIND_FINAL[k * KIND_FINAL_W + (st >> 3)] >> (st & 7) & 1.
    """
    ns, ne = len(m.states), len(m.events)
    assert ns < 255 and ne < 255 and len(m.actions) < 255 and len(m.kinds) <= 8
    sid = {s: i for i, s in enumerate(m.states)}
    eid = {e: i for i, e in enumerate(m.events)}
    cid = {c: i for i, c in enumerate(m.conds)}
    kid = {k[0]: i for i, k in enumerate(m.kinds)}
    aid = {a: i for i, a in enumerate(m.actions)}
    assert len(m.conds) <= 30
    order = row_order(m)
    assert len(order) < 255
    dense = bytearray([NONE]) * (ns * ne)
    rows = bytearray()
    cfx_list, cfx_index = [], {}
    actl, act_index = [], {}
    lists = []               # each row's action list, in row order
    args, arg_index = [None], {}
    calls, call_index = [], {}

    def mask(names):
        return sum(1 << cid[n] for n in names)
    for pos, i in enumerate(order):
        r = m.rows[i]
        c = sid[r.state] * ne + eid[r.event]
        if dense[c] == NONE:
            dense[c] = pos
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
        assert len(calls) < 256 and len(al) < 16, "a row has more than 15 actions"
        reason = 0 if r.reason is None else 1 + m.reasons.index(r.reason)
        assert reason < 16, "more than 15 failure reasons"
        flags = kid[r.kind] | ROLES.index(r.role) << 3 | (0x20 if more else 0)
        flags |= (0x40 if fx[0] or fx[1] else 0) | (0x80 if fx[2] or fx[3] else 0)
        rows += bytes((flags, sid[r.next], reason | len(al) << 4, 4 * cfx_index[fx], 0))
        lists.append(al)
    assert 4 * len(cfx_list) < 256, "more than 63 distinct condition masks: widen the CFX offset in ROWS"
    assert len(args) < 255
    # row displacement: densest states first, each at the first base where its events meet free slots
    owner = {}
    base = [0] * ns
    for s in sorted(range(ns), key=lambda s: (-sum(dense[s * ne + e] != NONE for e in range(ne)), s)):
        evs = [e for e in range(ne) if dense[s * ne + e] != NONE]
        b = 0
        while any(b + e in owner for e in evs):
            b += 1
        base[s] = b
        for e in evs:
            owner[b + e] = s
    assert max(base) < 256
    size = max(base) + ne
    cell_state = bytearray([NONE]) * size
    cell_row = bytearray([NONE]) * size
    for slot, s in owner.items():
        cell_state[slot] = s
        cell_row[slot] = dense[s * ne + slot - base[s]]
    # one run of calls holding every action list: a list inside another shares it, and lists are merged where one
    # ends as another begins, largest overlap first (greedy shortest superstring; deterministic)
    runs = [tuple(calls[k] for k in al) for al in actl if al]
    runs = [r for r in runs if not any(o != r and _inside(r, o) for o in runs)]
    while True:
        best = (0, 0, 0)
        for i, a in enumerate(runs):
            for j, b in enumerate(runs):
                if i != j:
                    k = _overlap(a, b)
                    if k > best[0]:
                        best = (k, i, j)
        k, i, j = best
        if not k:
            break
        runs = [r for n, r in enumerate(runs) if n not in (i, j)] + [runs[i] + runs[j][k:]]
    seq = tuple(c for r in runs for c in r)
    for pos, al in enumerate(lists):
        rows[pos * 5 + 4] = _find(seq, tuple(calls[k] for k in al)) if al else 0
    assert len(seq) < 256, "action lists exceed 255 calls: widen the call offset in ROWS"
    kstart = bytes(sid[k[1]] for k in m.kinds)
    fw = (ns + 7) >> 3
    kfinal = bytearray(fw * len(m.kinds))
    for k, kd in enumerate(m.kinds):
        for st in kd[2]:
            kfinal[k * fw + (sid[st] >> 3)] |= 1 << (sid[st] & 7)
    return {"CELL_BASE": bytes(base), "CELL_STATE": bytes(cell_state), "CELL_ROW": bytes(cell_row),
            "ROWS": bytes(rows), "CFX": tuple(x for fx in cfx_list for x in fx), "CALL_ACTION": bytes(c[0] for c in seq),
            "CALL_ARG": bytes(c[1] for c in seq),
            "ARGS": tuple(args), "KIND_START": kstart, "KIND_FINAL": bytes(kfinal), "KIND_FINAL_W": fw,
            "order": order, "dense": bytes(dense)}


BYTES_TABLES = ("CELL_BASE", "CELL_STATE", "CELL_ROW", "ROWS", "CALL_ACTION", "CALL_ARG",
                "KIND_START", "KIND_FINAL")


def const_bytes(enc):
    """Bytes the table's constants take (bytes objects + condition masks as uint16)."""
    return sum(len(enc[k]) for k in BYTES_TABLES) + 2 * len(enc["CFX"])


def name_families(m):
    """(NAME, [names]) in the order emit() packs them; ids index each family."""
    return (("STATES", m.states), ("EVENTS", m.events), ("ACTIONS", m.actions), ("CONDS", m.conds),
            ("REASONS", ["-"] + m.reasons), ("KINDS", [k[0] for k in m.kinds]), ("CORE_EVENTS", sorted(m.core)),
            ("ROLES", list(ROLES)))


# id prefixes the generated module resolves on first use (see _RUNTIME): prefix -> the family whose names they are
ID_PREFIXES = {"S": "STATES", "E": "EVENTS", "C": "CONDS", "R": "REASONS", "K": "KINDS"}


def id_value(m, name):
    """Value of the generated module's id `name` (S_Idle, C_HasMixer, ...), or None if the table has no such id."""
    prefix, _, rest = name.partition("_")
    fam = dict(name_families(m)).get(ID_PREFIXES.get(prefix, ""))
    if fam is None or rest not in fam or (prefix == "R" and rest == "-"):
        return None
    i = fam.index(rest)
    return 1 << i if prefix == "C" else i


_REF = None


def referenced_ids(paths=None):
    """{id name: first 'file:line'} for every `T.X_Name` / `table.X_Name` in firmware/, host_tools/, tests/, bench/
    (X one of the ID_PREFIXES)."""
    import re
    global _REF
    if _REF is None:
        _REF = re.compile(r"\b(?:T|table)\.([%s]_[A-Za-z0-9]\w*)" % "".join(ID_PREFIXES))
    out = {}
    for top in paths or ("firmware", "host_tools", "tests", "bench"):
        for dirpath, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            for fn in sorted(files):
                path = os.path.join(dirpath, fn)
                if not fn.endswith(".py") or path == OUT:
                    continue
                with open(path) as f:
                    for no, line in enumerate(f, 1):
                        for name in _REF.findall(line):
                            out.setdefault(name, "%s:%d" % (os.path.relpath(path, ROOT), no))
    return out


def check_references(m, refs=None):
    """Errors for ids that code names but the table does not have (a renamed state, a typo)."""
    refs = referenced_ids() if refs is None else refs
    return ["%s: %s is not an id of the table (no such %s)" % (where, name, ID_PREFIXES[name[0]].lower()[:-1])
            for name, where in sorted(refs.items()) if id_value(m, name) is None]


_RUNTIME = '''

class Names:
    """A family of names (STATES, EVENTS ...) used like a tuple of str: len, [id], in, iteration, index(), find().
    The names live in NAMES, each one followed by a space; NOFF has each name's start offset (16-bit
    little-endian, plus one past the last). Lookups allocate the str they return: logs and console only."""

    def __init__(self, first, n):
        self.first = first      # index of the family's first name in NOFF
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        n = self.n
        if i < 0:
            i += n
        if i < 0 or i >= n:
            raise IndexError("name id out of range")
        k = (self.first + i) << 1
        o = NOFF
        return NAMES[o[k] | o[k + 1] << 8:(o[k + 2] | o[k + 3] << 8) - 1]

    def find(self, name):
        """Id of name, or -1: no exception (console input, and the MicroPython VM dislikes caught ones)."""
        if type(name) is not str or " " in name:
            return -1
        k = self.first << 1
        o = NOFF
        a = o[k] | o[k + 1] << 8
        k += self.n << 1
        p = NAMES.find(" " + name + " ", a - 1, o[k] | o[k + 1] << 8)
        # names are space-free, so the match starts a name: its id is the count of names before it
        return -1 if p < 0 else NAMES.count(" ", a, p + 1)

    def index(self, name):
        i = self.find(name)
        if i < 0:
            raise ValueError(name)
        return i

    def __contains__(self, name):
        return self.find(name) >= 0

    def __iter__(self):
        for i in range(self.n):
            yield self[i]


def __getattr__(name):
    # type: (str) -> int
    # The ids S_<State>, E_<Event>, C_<Cond> (a bit), R_<Reason>, K_<Kind> are not stored as 124 globals (~5 KB in
    # RAM): each is found in the names on first use and then kept as a module global, so later uses are plain
    # global lookups and the module only ever holds the ids the code uses. host_tools/tablec.check_references()
    # refuses code that names an id the table lacks.
    p = name[:2]
    v = -1
    if p == "S_":
        v = STATES.find(name[2:])
    elif p == "E_":
        v = EVENTS.find(name[2:])
    elif p == "C_":
        v = CONDS.find(name[2:])
        if v >= 0:
            v = 1 << v
    elif p == "R_":
        v = REASONS.find(name[2:]) or -1     # REASONS[0] is "-", not a reason
    elif p == "K_":
        v = KINDS.find(name[2:])
    if v < 0:
        raise AttributeError(name)
    globals()[name] = v
    return v
'''


def _bytes_lit(b, indent="    "):
    out = []
    for i in range(0, len(b), 24):
        out.append(indent + repr(bytes(b[i:i + 24])))
    return "(\n" + "\n".join(out) + "\n)"


def _str_lit(s, indent="    ", width=100):
    out, cur = [], ""
    for word in s.split(" ")[:-1]:
        if cur and len(cur) + len(word) + 1 > width:
            out.append(indent + repr(cur))
            cur = ""
        cur += word + " "
    out.append(indent + repr(cur))
    return "(\n" + "\n".join(out) + "\n)"


def emit(m):
    t = encode(m)
    L = ["# GENERATED by `phonectl table compile` from table_spec.txt: do not edit by hand.",
         "# Row-displaced cell index (state x event -> first row), 5-byte rows, condition masks, action lists, argument",
         "# pool, and every name packed in one str: the layout is described in host_tools/tablec.py encode().",
         "# No const(): other modules cannot inline another module's const, and importing it would cost RAM.", ""]
    L.append("N_STATES = %d" % len(m.states))
    L.append("N_EVENTS = %d" % len(m.events))
    L.append("N_ACTIONS = %d" % len(m.actions))
    L.append("N_ROWS = %d" % len(m.rows))
    L.append("KIND_FINAL_W = %d" % t["KIND_FINAL_W"])
    fams = name_families(m)
    text, offs = " ", []
    for _, names in fams:
        for n in names:
            assert n and " " not in n
            offs.append(len(text))
            text += n + " "
    offs.append(len(text))
    assert len(text) < 65535
    L.append("")
    L.append("# names for logs and the console (ids index the families at the end of this file)")
    L.append("NAMES = %s" % _str_lit(text))
    L.append("NOFF = %s" % _bytes_lit(b"".join(bytes((o & 255, o >> 8)) for o in offs)))
    L.append("")
    L.append("KIND_START = %r" % t["KIND_START"])
    L.append("KIND_FINAL = %r" % t["KIND_FINAL"])
    L.append("ARGS = %r" % (t["ARGS"],))
    L.append("CFX = %r" % (t["CFX"],))
    for name in ("CELL_BASE", "CELL_STATE", "CELL_ROW", "ROWS", "CALL_ACTION", "CALL_ARG"):
        L.append("%s = %s" % (name, _bytes_lit(t[name])))
    L.append(_RUNTIME)
    L.append("")
    first = 0
    for name, names in fams:
        L.append("%s = Names(%d, %d)" % (name, first, len(names)))
        first += len(names)
    return "\n".join(L) + "\n"


def compile_to(path=OUT, spec=SPEC):
    m = load(spec)
    text = emit(m)
    with open(path, "w") as f:
        f.write(text)
    return m, text
