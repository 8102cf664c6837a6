# Engine: lookup, role/kind filtering, guards, actions in order, failure leaves state, commit, conditions.
from uphone import table as T
from uphone import actions
from uphone.engine import Engine, Session, OK, UNHANDLED, GUARD, FAILED, BAD_EVENT, ROLE_UAC, ROLE_UAS, \
    ERR_FAILED, ERR_UNSUPPORTED, state_text


def recorder(fail=None):
    log = []

    def make(name):
        def run(fx, s, arg, ev):
            log.append((name, arg))
            return (fail or {}).get(name, 0)
        return run
    return log, actions.bind_all(make)


def test_actions_run_in_order_then_state_and_conditions_commit():
    log, acts = recorder()
    seen = []
    e = Engine(acts, lambda s, frm, ev, row: seen.append((T.STATES[frm], T.EVENTS[ev], T.STATES[s.state])))
    s = Session("c1", T.K_call, ROLE_UAC)
    assert e.dispatch(s, T.E_MakeCall) == OK
    assert [n for n, _ in log] == ["CreateDialog", "CreateMediaSession", "GenerateLocalSDP", "SendINVITE"]
    assert s.state == T.S_Initiating and s.cond == T.C_HasMediaSession
    assert seen == [("Idle", "MakeCall", "Initiating")]


def test_arguments_come_from_the_pool():
    log, acts = recorder()
    e = Engine(acts)
    s = Session("c1", T.K_call, ROLE_UAS)
    assert e.dispatch(s, T.E_IncomingCall) == OK
    assert ("SendSIPResponse", (180, "Ringing")) in log


def test_failing_action_leaves_state_and_conditions():
    log, acts = recorder({"GenerateLocalSDP": ERR_FAILED})
    e = Engine(acts)
    s = Session("c1", T.K_call, ROLE_UAC)
    assert e.dispatch(s, T.E_MakeCall) == FAILED
    assert s.state == T.S_Idle and s.cond == 0
    assert T.ACTIONS[e.last_action] == "GenerateLocalSDP" and e.last_error == ERR_FAILED
    assert [n for n, _ in log] == ["CreateDialog", "CreateMediaSession", "GenerateLocalSDP"]   # stops at the failure


def test_guard_and_role_and_kind():
    log, acts = recorder()
    e = Engine(acts)
    s = Session("c1", T.K_call, ROLE_UAS)
    s.reset(T.S_Ringing)
    assert e.dispatch(s, T.E_AcceptCall) == GUARD and log == [] and s.state == T.S_Ringing
    s.cond = T.C_HasMediaSession
    assert e.dispatch(s, T.E_AcceptCall) == OK and s.state == T.S_Active
    uac = Session("c2", T.K_call, ROLE_UAC)
    uac.reset(T.S_Ringing)
    assert e.dispatch(uac, T.E_AcceptCall) == UNHANDLED          # a caller cannot accept
    reg = Session("r1", T.K_registration)
    assert reg.state == T.S_Idle
    assert e.dispatch(reg, T.E_MakeCall) == UNHANDLED            # calls are not registrations
    b = Session("b1", T.K_bridge)
    b.reset(T.S_Terminating)
    assert e.dispatch(b, T.E_DialogBYE) == UNHANDLED             # call-kind row, not the bridge's
    assert e.dispatch(b, 200) == BAD_EVENT and e.dispatch(b, -1) == BAD_EVENT


def test_failed_carries_reason_and_reset_leaves_it():
    log, acts = recorder()
    e = Engine(acts)
    s = Session("c1", T.K_call, ROLE_UAC)
    s.reset(T.S_Initiating)
    assert e.dispatch(s, T.E_Dialog5xxFailure) == OK
    assert state_text(s) == "Failed(NetworkError)" and s.reason == T.R_NetworkError
    assert e.dispatch(s, T.E_Reset) == OK and s.state == T.S_Idle and state_text(s) == "Idle"


def test_every_action_is_bound_and_an_unsupported_one_refuses_cleanly():
    # issue 12: every action of the table has an implementation; none is bound to the refusal any more
    assert actions.UNSUPPORTED == ()
    bound = actions.bind()
    assert [T.ACTIONS[i] for i, fn in enumerate(bound) if fn is actions._unsupported] == []
    # the multi-leg actions are bound on first use (heap); each of them is a function of one of actions.lazy()
    late = [T.ACTIONS[i] for i, fn in enumerate(bound) if fn is actions._lazy]
    assert "CreateAudioMixer" in late and "SendREFERWithReplaces" in late and "CreateBridge" in late
    # actions.LAZY names each lazy module's actions: exactly the functions of that module the table calls
    import inspect
    for mod, names in actions.LAZY:
        m = [x for x in actions.lazy() if x.__name__ == "uphone.ua." + mod][0]
        mine = sorted(n for n, o in vars(m).items() if n in T.ACTIONS and inspect.isfunction(o)
                      and o.__module__ == m.__name__)
        assert sorted(names) == mine, mod
    assert sorted(late) == sorted(n for _mod, names in actions.LAZY for n in names)
    # the refusal itself still leaves the state and conditions as they were
    refuse = list(bound)
    refuse[T.ACTIONS.index("CreateAudioMixer")] = actions._unsupported
    e = Engine(tuple(refuse))
    s = Session("c1", T.K_call, ROLE_UAC)
    s.reset(T.S_Active)
    assert e.dispatch(s, T.E_CreateConference) == FAILED
    assert e.last_error == ERR_UNSUPPORTED and T.ACTIONS[e.last_action] == "CreateAudioMixer"
    assert s.state == T.S_Active and s.cond == 0


def test_dispatch_allocates_nothing_in_micropython(mp):
    code = """
import gc
from uphone import table as T, actions
from uphone.engine import Engine, Session, ROLE_UAC
def ok(fx, s, a, e):
    return 0
e = Engine(actions.bind_all(lambda n: ok))
s = Session('c1', T.K_call, ROLE_UAC)
EV = (T.E_MakeCall, T.E_Dialog180Ringing, T.E_HangupCall, T.E_Reset)
for i in range(8):
    e.dispatch(s, EV[i % 4])
gc.collect()
gc.disable()
before = gc.mem_alloc()
i = 0
while i < 10000:
    e.dispatch(s, EV[i & 3])
    i += 1
after = gc.mem_alloc()
gc.enable()
print(T.STATES[s.state], after - before)
"""
    out = mp(code)
    state, delta = out.split()
    assert state == "Idle"
    assert int(delta) == 0, "dispatch allocated %s bytes over 10,000 dispatches" % delta


def test_names_and_ids_in_micropython(mp):
    # the packed names behave like tuples there too (len, [i], in via __contains__, iteration, join, index) and the
    # ids resolve on first use, then sit in the module's globals
    code = """
from uphone import table as T
from uphone.engine import Session, event_id
print(len(T.STATES), T.STATES[0], T.STATES[-1], T.EVENTS[T.E_DialogREFER], T.ACTIONS[0])
print('Idle' in T.STATES, 'Idle Initiating' in T.STATES, 'Nope' in T.EVENTS, 'call' in T.KINDS)
print('|'.join(T.KINDS), list(T.ROLES), T.CONDS.index('HasMixer'), event_id('Reset'), event_id('Nope'))
print('S_Failed' in T.__dict__, T.S_Failed, 'S_Failed' in T.__dict__, T.C_HasMixer, T.R_Timeout, T.K_bridge)
print(getattr(T, 'E_Nope', -7), hasattr(T, 'E_Reset'), Session('c', T.K_call).is_final())
"""
    out = mp(code)
    # the counts and ids CPython's import of the same table gives (new states and events move them)
    from uphone import table as T
    want = """%d Idle %s DialogREFER CreateDialog
True False False True
call|registration|subscription|publication|bridge ['Both', 'UAC', 'UAS'] 5 %d -1
False 17 True 32 3 4
-7 True False
""" % (len(T.STATES), T.STATES[-1], T.EVENTS.index("Reset"))
    assert out == want
