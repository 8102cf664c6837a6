# Self-test effects: every action is recorded (name + arguments) and succeeds, unless a test asked it to fail.
# Used by the table vectors on every target; never wired to a real call (no SIP, no media, no sockets).
from uphone import table as T
from uphone import actions
from uphone.engine import Engine, Session, ERR_FAILED, ERR_UNSUPPORTED, ROLE_BOTH


class Recorder:
    def __init__(self):
        self.log = []            # [(action_name, args)]
        self.fail = {}           # action name -> error code for the next run of it
        self.sessions = []
        self.engine = Engine(actions.bind_all(self._make), None)

    def _make(self, name):
        log = self.log
        fail = self.fail

        def run(session, arg, evargs):
            err = fail.pop(name, 0)
            if err:
                return err
            log.append((name, arg))
            return 0
        return run

    def fail_next(self, name, unsupported=False):
        if name not in T.ACTIONS:
            raise ValueError("unknown action " + name)
        self.fail[name] = ERR_UNSUPPORTED if unsupported else ERR_FAILED

    def new_session(self, kind, role=ROLE_BOTH, state=None, cond=0):
        s = Session("t%d" % (len(self.sessions) + 1), kind, role)
        s.reset(state, cond)
        self.sessions.append(s)
        return s
