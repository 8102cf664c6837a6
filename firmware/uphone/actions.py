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
    """The multi-leg modules (attended transfer, conference, bridge): each loaded by the first of its actions a
    phone runs (LAZY), ~0.5-1 KB of heap apiece a phone that never does these does not hold; phone.multileg lists
    the loaded ones (their progress hooks)."""
    from uphone.ua import attended, bridge, conference
    return (attended, conference, bridge)


# the actions of each lazy() module (tests/test_engine.py checks this against the modules themselves)
LAZY = (
    ("attended", ("CreateConsultationCall", "HoldCurrentCall", "SendREFERWithReplaces", "TerminateConsultationCall",
                  "ResumeOriginalCall")),
    ("conference", ("CreateAudioMixer", "RedirectToMixer", "ConnectToMixer", "DisconnectFromMixer",
                    "RestoreDirectMedia", "DestroyMixer", "MuteToMixer", "UnmuteToMixer", "StartRecordingMixer")),
    ("bridge", ("CreateBridge", "ConnectMediaStreams", "StartBridgeMonitoring", "SetupTranscoder", "UpdateMediaPath",
                "AttemptBridgeRecovery", "NotifyEndpoints", "CleanupBothLegs", "SendErrorResponses",
                "Send200OKToInbound", "Send200OKToOutbound", "SendBYEToInbound", "SendBYEToOutbound")),
)


def _find(mods, name):
    for m in mods:
        fn = getattr(m, name, None)
        if fn is not None:
            return fn
    return None


def _load(fx, mod):
    """Import lazy module `mod` of LAZY, bind its actions in the phone's engine in place of _lazy, and add it to
    fx.multileg (the phone calls each loaded module's progress after a call's transitions)."""
    m = __import__("uphone.ua." + mod, None, None, ("progress",))
    if m in fx.multileg:
        return m
    acts = fx.engine.actions
    for i in range(len(acts)):
        if acts[i] is _lazy:
            fn = getattr(m, T.ACTIONS[i], None)
            if fn is not None:
                acts[i] = fn
    fx.multileg.append(m)
    return m


def _lazy(fx, session, arg, evargs):
    # an action of a LAZY module: load that module (binding its actions), run the one asked for (the engine keeps
    # the id of the action it is calling in last[1])
    e = fx.engine
    name = T.ACTIONS[e.last[1]]
    for mod, names in LAZY:
        if name in names:
            _load(fx, mod)
            fn = e.actions[e.last[1]]
            return fn(fx, session, arg, evargs) if fn is not _lazy else ERR_UNSUPPORTED
    return ERR_UNSUPPORTED


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
