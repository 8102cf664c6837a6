# Self-test effects: every action succeeds (the console prints each transition with its actions and arguments),
# unless a test asked it to fail.
# Used by the table vectors on every target; never wired to a real call (no SIP, no media, no sockets).
from uphone import table as T
from uphone import actions
from uphone.compat import const
from uphone.engine import Engine, Session, ERR_FAILED, ERR_UNSUPPORTED, ROLE_BOTH

_KEEP = const(16)           # self-test sessions kept (the newest)


class Recorder:
    def __init__(self):
        self.fail = {}           # action name -> error code for the next run of it
        self.sessions = []
        self.made = 0            # sessions made so far: their ids go on counting when old ones are dropped
        self.engine = Engine(actions.bind_all(self._make), None)

    def _make(self, name):
        fail = self.fail

        def run(fx, session, arg, evargs):
            return fail.pop(name, 0)
        return run

    def fail_next(self, name, unsupported=False):
        if name not in T.ACTIONS:
            raise ValueError("unknown action " + name)
        self.fail[name] = ERR_UNSUPPORTED if unsupported else ERR_FAILED

    def new_session(self, kind, role=ROLE_BOTH, state=None, cond=0):
        self.made += 1
        s = Session("t%d" % self.made, kind, role)
        s.reset(state, cond)
        self.sessions.append(s)
        if len(self.sessions) > _KEEP:
            self.sessions.pop(0)        # a long self-test run (the vectors) must not fill the phone's heap
        return s
