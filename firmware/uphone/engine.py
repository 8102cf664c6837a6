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
        self.state = T.KIND_START[kind]
        self.cond = 0           # condition bits (T.C_*)
        self.reason = 0         # failure reason (T.R_*) once in Failed
        self.ctx = None         # what the effects object keeps for this session (dialog, media...)

    def reset(self, state=None, cond=0):
        self.state = T.KIND_START[self.kind] if state is None else state
        self.cond = cond
        self.reason = 0

    def is_final(self):
        return self.state in T.KIND_FINAL[self.kind]


class Engine:
    """Dispatches events; `actions` is a tuple indexed by action id of callables
    (session, arg_tuple_or_None, evargs) -> 0 or an ERR_* code. `observer(session, from_state, event, row)` is
    called after each committed transition (the console prints it)."""

    def __init__(self, actions, observer=None):
        assert len(actions) == T.N_ACTIONS
        self.actions = actions
        self.observer = observer
        # last outcome details, kept as ints so a dispatch allocates nothing
        self.last_row = _NONE
        self.last_action = _NONE
        self.last_error = 0

    def find_row(self, s, ev):
        """Row id for this session's kind and role, or -1 (no allocation)."""
        if ev < 0 or ev >= T.N_EVENTS:
            return -1
        r = T.CELLS[s.state * T.N_EVENTS + ev]
        if r == _NONE:
            return -1
        rows = T.ROWS
        while True:
            f = rows[r * 6]
            role = (f >> 3) & 3
            if (f & 7) == s.kind and (role == ROLE_BOTH or role == s.role):
                return r
            if not f & 0x20:
                return -1
            r += 1

    def dispatch(self, s, ev, evargs=None):
        self.last_action = _NONE
        self.last_error = 0
        if ev < 0 or ev >= T.N_EVENTS:
            return BAD_EVENT
        r = self.find_row(s, ev)
        self.last_row = r
        if r < 0:
            return UNHANDLED
        o = r * 6
        rows = T.ROWS
        cfx = T.CFX
        c = rows[o + 3] * 8
        req = cfx[c] | cfx[c + 1] << 8
        forbid = cfx[c + 2] | cfx[c + 3] << 8
        if (s.cond & req) != req or (s.cond & forbid):
            return GUARD
        acts = T.ACTS
        args = T.ARGS
        run = self.actions
        a = rows[o + 4] | rows[o + 5] << 8
        n = acts[a]
        a += 1
        while n:
            aid = acts[a]
            ai = acts[a + 1]
            err = run[aid](s, None if ai == _NONE else args[ai], evargs)
            if err:
                self.last_action = aid
                self.last_error = err
                return FAILED
            a += 2
            n -= 1
        frm = s.state
        self._commit(s, rows[o + 1], rows[o + 2])
        s.cond = (s.cond & ~(cfx[c + 6] | cfx[c + 7] << 8)) | (cfx[c + 4] | cfx[c + 5] << 8)
        if self.observer is not None:
            self.observer(s, frm, ev, r)
        return OK

    def _commit(self, s, nxt, reason):
        # the one place a state changes (PJSIP-style): invariants checked here
        assert nxt < T.N_STATES
        s.state = nxt
        if nxt == T.S_Failed:
            s.reason = reason
        elif reason == 0:
            s.reason = 0

    # helpers for logs (allocate; not on the dispatch path)
    def row_actions(self, r):
        """[(action_id, args_or_None)] of row r."""
        a = T.ROWS[r * 6 + 4] | T.ROWS[r * 6 + 5] << 8
        out = []
        for i in range(T.ACTS[a]):
            aid, ai = T.ACTS[a + 1 + 2 * i], T.ACTS[a + 2 + 2 * i]
            out.append((aid, None if ai == _NONE else T.ARGS[ai]))
        return out

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
    try:
        return T.EVENTS.index(name)
    except ValueError:
        return -1
