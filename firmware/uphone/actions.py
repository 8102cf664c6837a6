# Action ids -> implementations: the functions named after the table's actions in the session kinds' modules
# (uphone/ua/), each called as Action(phone, session, arg, evargs). Plain functions, not bound methods: a bound
# method per action would be kept on the heap for nothing.
# Actions a later issue will implement are declared here as UNSUPPORTED: they fail cleanly, the state stays.
from uphone import table as T
from uphone.engine import ERR_UNSUPPORTED

# Effects not built yet for a handset. `phonectl table verify` lists them; the compiler refuses any action that is
# neither implemented (a function of that name in one of modules()) nor listed here.
UNSUPPORTED = ()


def _unsupported(fx, session, arg, evargs):
    return ERR_UNSUPPORTED


def modules():
    """The modules that implement actions, one per session kind (the call's media and transfers have their own)."""
    return eager() + lazy()


def eager():
    from uphone.ua import call, media, publication, registration, subscription, transfer
    return (call, media, registration, subscription, transfer, publication)


def lazy():
    """The multi-leg modules (attended transfer, conference, bridge), loaded by the first of their actions a phone
    runs: ~2 KB of heap a phone that never does these does not hold (phone.multileg says they are loaded)."""
    from uphone.ua import attended, bridge, conference
    return (attended, conference, bridge)


def _find(mods, name):
    for m in mods:
        fn = getattr(m, name, None)
        if fn is not None:
            return fn
    return None


def _lazy(fx, session, arg, evargs):
    # an action of lazy(): load them, bind each of their actions in the engine in place of this, run the one
    # asked for (the engine keeps the id of the action it is calling in last[1])
    e = fx.engine
    acts = e.actions
    mods = lazy()
    for i in range(len(acts)):
        if acts[i] is _lazy:
            acts[i] = _find(mods, T.ACTIONS[i]) or _unsupported
    fx.multileg = True
    return e.actions[e.last[1]](fx, session, arg, evargs)


def bind():
    """List indexed by action id (bound in place on first use): the function of that name in eager() (the engine calls it with the phone first),
    _lazy for those of lazy() (bound on first use), else the unsupported refusal."""
    mods = eager()
    out = []
    for name in T.ACTIONS:
        fn = None
        if name not in UNSUPPORTED:
            fn = _find(mods, name) or _lazy
        out.append(fn if fn is not None else _unsupported)
    return out


def bind_all(fn_of_name):
    """Self-test: every action bound to fn_of_name(name) (a recorder), called as fn(fx, session, arg, evargs)."""
    return tuple(fn_of_name(name) for name in T.ACTIONS)
