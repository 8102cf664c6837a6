# Action ids -> implementations: the functions named after the table's actions in the session kinds' modules
# (uphone/ua/), each called as Action(phone, session, arg, evargs). Plain functions, not bound methods: a bound
# method per action would be kept on the heap for nothing.
# Actions a later issue will implement are declared here as UNSUPPORTED: they fail cleanly, the state stays.
from uphone import table as T
from uphone.engine import ERR_UNSUPPORTED

# Effects not built yet for a handset. `phonectl table verify` lists them; the compiler refuses any action that is
# neither implemented (a function of that name in one of modules()) nor listed here.
UNSUPPORTED = (
    # call kind, conference (the mixer primitive exists in media/mixer.py; wiring it to call legs is a later issue)
    "CreateAudioMixer", "RedirectToMixer", "ConnectToMixer", "DisconnectFromMixer", "DestroyMixer",
    "MuteToMixer", "UnmuteToMixer", "StartRecordingMixer", "RestoreDirectMedia",
    # call kind, attended transfer and call bridging across legs
    "HoldCurrentCall", "CreateConsultationCall", "SendREFERWithReplaces", "TerminateConsultationCall",
    "ResumeOriginalCall", "CreateBridge",
    # bridge kind, B2BUA gateway legs: not a phone's job
    "ConnectMediaStreams", "StartBridgeMonitoring", "CleanupBothLegs", "SendErrorResponses",
    "Send200OKToInbound", "SendBYEToOutbound", "Send200OKToOutbound", "SendBYEToInbound", "SetupTranscoder",
    "UpdateMediaPath", "AttemptBridgeRecovery", "NotifyEndpoints",
)


def _unsupported(fx, session, arg, evargs):
    return ERR_UNSUPPORTED


def modules():
    """The modules that implement actions, one per session kind (the call's media and transfers have their own)."""
    from uphone.ua import call, media, publication, registration, subscription, transfer
    return (call, media, registration, subscription, transfer, publication)


def bind():
    """Tuple indexed by action id: the function of that name in modules() (the engine calls it with the phone
    first), else the unsupported refusal."""
    mods = modules()
    out = []
    for name in T.ACTIONS:
        fn = None
        if name not in UNSUPPORTED:
            for m in mods:
                fn = getattr(m, name, None)
                if fn is not None:
                    break
        out.append(fn if fn is not None else _unsupported)
    return tuple(out)


def bind_all(fn_of_name):
    """Self-test: every action bound to fn_of_name(name) (a recorder), called as fn(fx, session, arg, evargs)."""
    return tuple(fn_of_name(name) for name in T.ACTIONS)
