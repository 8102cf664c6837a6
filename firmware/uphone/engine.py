# Table engine: dispatch(session, event) over the generated integer-indexed table (uphone/table.py).
# Fixed order (DESIGN): cell lookup -> role/kind -> guards -> actions in order -> commit state -> conditions.
from uphone.compat import const
from uphone import table as T

# dispatch results (the console and the SIP core read these; names in RESULTS)
OK = const(0)
UNHANDLED = const(1)     # no row for (state, event) in this session's kind and role
GUARD = const(2)         # a row exists but a guard condition does not hold
FAILED = const(3)        # an action failed: state and conditions unchanged
BAD_EVENT = const(4)     # event id out of range
RESULTS = ("ok", "unhandled", "guard", "failed", "bad-event")

# action return codes (0 = done)
ERR_UNSUPPORTED = const(1)
ERR_FAILED = const(2)
ACT_ERRORS = ("ok", "unsupported", "failed")

ROLE_BOTH = const(0)
ROLE_UAC = const(1)
ROLE_UAS = const(2)
_NONE = const(0xFF)


class Session:
    """One table instance (call leg, registration, subscription, publication, bridge)."""

    def __init__(self, sid, kind, role=ROLE_BOTH):
        self.sid = sid          # short name for logs, e.g. "c1"
        self.kind = kind
        self.role = role
        self.kr = kind | role << 3  # both in the layout of a row's flag byte: one compare finds the session's row
        self.state = T.KIND_START[kind]
        self.cond = 0           # condition bits (T.C_*)
        self.reason = 0         # failure reason (T.R_*): meaningful only while the state is Failed
        self.ctx = None         # what the effects object keeps for this session (dialog, media...)

    def reset(self, state=None, cond=0):
        self.state = T.KIND_START[self.kind] if state is None else state
        self.cond = cond
        self.reason = 0

    def is_final(self):
        st = self.state
        return T.KIND_FINAL[self.kind * T.KIND_FINAL_W + (st >> 3)] >> (st & 7) & 1 == 1


# the table's constants as module globals: one lookup each on the hot path instead of two (T.X)
_BASE = T.CELL_BASE
_CSTATE = T.CELL_STATE
_CROW = T.CELL_ROW
_ROWS = T.ROWS
_CFX = T.CFX
_NEV = T.N_EVENTS
_CACT = T.CALL_ACTION
_CARG = T.CALL_ARG
_ARGS = T.ARGS


class Engine:
    """Dispatches events; `actions` is a tuple (or list: actions.bind) indexed by action id of functions
    (fx, session, arg_tuple_or_None, evargs) -> 0 or an ERR_* code, called with the effects object fx first (plain
    functions, not bound methods: a bound method per action would be kept on the heap for nothing).
    `observer(session, from_state, event, row)` is called after each committed transition (the console prints it)."""

    def __init__(self, actions, observer=None, fx=None):
        assert len(actions) == T.N_ACTIONS
        self.actions = actions
        self.fx = fx
        self.observer = observer
        # last outcome: [row id or -1, failing action id, action error]. A list slot, not attributes: storing an
        # instance attribute costs MicroPython a class lookup (descriptor check), ~3x a whole list store.
        self.last = [-1, _NONE, 0]
        # a bit per row, set when a transition commits: which rows this phone has taken (the console's `cov`,
        # `phonectl table coverage`)
        self.taken = bytearray((T.N_ROWS + 7) >> 3)

    @property
    def last_row(self):
        return self.last[0]

    @property
    def last_action(self):
        return self.last[1]

    @property
    def last_error(self):
        return self.last[2]

    def find_row(self, s, ev):
        """Row id for this session's kind and role, or -1 (no allocation)."""
        if ev < 0 or ev >= _NEV:
            return -1
        st = s.state
        i = _BASE[st] + ev          # row-displaced cells: the slot is this state's only if it says so
        if _CSTATE[i] != st:
            return -1
        o = _CROW[i] * 5
        f = _ROWS[o]
        # a cell's rows are consecutive; bit 5 says another row of the same cell follows
        kr = s.kr
        while (f & 0x1F) != kr and (f & 0x1F) != (kr & 7):
            if not f & 0x20:
                return -1
            o += 5
            f = _ROWS[o]
        return o // 5

    def dispatch(self, s, ev, evargs=None):
        # find_row() and the state commit are inlined here: a method call costs more than the rest of a dispatch
        last = self.last
        if ev < 0 or ev >= _NEV:
            last[0] = -1
            return BAD_EVENT
        st = s.state
        r = _BASE[st] + ev          # row-displaced cells: the slot is this state's only if it says so
        if _CSTATE[r] != st:
            last[0] = -1
            return UNHANDLED
        rows = _ROWS
        r = _CROW[r]
        o = r * 5
        f = rows[o]
        kr = s.kr
        # a row fits when its kind and role are the session's, or its kind is and its role is Both (0)
        while (f & 0x1F) != kr and (f & 0x1F) != (kr & 7):
            if not f & 0x20:
                last[0] = -1
                return UNHANDLED
            r += 1
            o += 5
            f = rows[o]
        last[0] = r
        if f & 0xC0:        # flag bits: the row has guards (0x40) / changes conditions (0x80)
            x = rows[o + 3]                 # offset of (require, forbid, set, clear) in CFX
            m = _CFX[x]
            c = s.cond
            if c & m != m or c & _CFX[x + 1]:
                return GUARD
        acts = self.actions
        fx = self.fx
        a = rows[o + 4]             # the row's calls: a .. a + count - 1, count in the high nibble of byte 2
        b = rows[o + 2]
        # `for i in range(a, b)` compiles to a counting loop in MicroPython: no range object, no allocation
        for i in range(a, a + (b >> 4)):
            act = _CACT[i]
            last[1] = act           # the action being called (actions._lazy reads it), the failing one after FAILED
            err = acts[act](fx, s, _ARGS[_CARG[i]], evargs)
            if err:
                last[2] = err
                return FAILED
        # commit: the only place a session's state changes (PJSIP-style single setter)
        s.state = rows[o + 1]
        self.taken[r >> 3] |= 1 << (r & 7)
        if b & 15:
            s.reason = b & 15               # only rows entering Failed carry a reason
        if f & 0x80:
            s.cond = (c & ~_CFX[x + 3]) | _CFX[x + 2]
        if self.observer is not None:
            self.observer(s, st, ev, r)
        return OK

    # helpers for logs (allocate; not on the dispatch path)
    def row_actions(self, r):
        """[(action_id, args_or_None)] of row r."""
        a = T.ROWS[r * 5 + 4]
        return [(T.CALL_ACTION[i], T.ARGS[T.CALL_ARG[i]]) for i in range(a, a + (T.ROWS[r * 5 + 2] >> 4))]

    def row_actions_text(self, r):
        out = []
        for aid, arg in self.row_actions(r):
            name = T.ACTIONS[aid]
            if arg:
                name += "(" + ",".join(str(x) for x in arg) + ")"
            out.append(name)
        return ",".join(out) if out else "-"


def state_text(s):
    name = T.STATES[s.state]
    if s.state == T.S_Failed and s.reason:
        name += "(" + T.REASONS[s.reason] + ")"
    return name


def event_id(name):
    """Event name -> id, or -1 (console input)."""
    return T.EVENTS.find(name)
