# Action ids -> implementations: binds the table's action names to methods `a_<Name>` of an effects object.
# Actions a later issue will implement are declared here as UNSUPPORTED: they fail cleanly, the state stays.
from uphone import table as T
from uphone.engine import ERR_UNSUPPORTED

# Effects not built yet for a handset. `phonectl table verify` lists them; the compiler refuses any action that is
# neither implemented (uphone/phone.py Phone.a_<Name>) nor listed here.
UNSUPPORTED = (
    # conference (the mixer primitive exists in media/mixer.py; wiring it to call legs is a later issue)
    "CreateAudioMixer", "RedirectToMixer", "ConnectToMixer", "DisconnectFromMixer", "DestroyMixer",
    "MuteToMixer", "UnmuteToMixer", "StartRecordingMixer", "RestoreDirectMedia",
    # attended transfer and call bridging across legs
    "HoldCurrentCall", "CreateConsultationCall", "SendREFERWithReplaces", "TerminateConsultationCall",
    "ResumeOriginalCall", "CreateBridge",
    # B2BUA gateway legs: not a phone's job
    "ConnectMediaStreams", "StartBridgeMonitoring", "CleanupBothLegs", "SendErrorResponses",
    "Send200OKToInbound", "SendBYEToOutbound", "Send200OKToOutbound", "SendBYEToInbound", "SetupTranscoder",
    "UpdateMediaPath", "AttemptBridgeRecovery", "NotifyEndpoints",
    # presence publication
    "SendPUBLISH", "StoreETag", "HandlePublishFailure",
)


def _unsupported(fx, session, arg, evargs):
    return ERR_UNSUPPORTED


def bind(fx):
    """Tuple indexed by action id: the a_<Name> functions of fx's class (the engine calls them with fx first), else
    the unsupported refusal."""
    cls = type(fx)
    out = []
    for name in T.ACTIONS:
        m = None if name in UNSUPPORTED else getattr(cls, "a_" + name, None)
        out.append(m if m is not None else _unsupported)
    return tuple(out)


def bind_all(fn_of_name):
    """Self-test: every action bound to fn_of_name(name) (a recorder), called as fn(fx, session, arg, evargs)."""
    return tuple(fn_of_name(name) for name in T.ACTIONS)
