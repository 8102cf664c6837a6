# Handset logic on CPython: debounce, hook -> AcceptCall / HangupCall / dial tone, digits -> MakeCall after a pause
# or '#', DTMF in a call, LED / ringer / amp decisions, and call_summary against real phone sessions.
from uphone import handset as H


def run(h, t0, t1, hook, key, summary, step=5):
    out = []
    for now in range(t0, t1, step):
        out += h.poll(now, hook, key, summary)
    return out


def test_debounce_needs_a_stable_value():
    d = H.Debouncer(False, 30)
    assert not d.update(True, 0)
    assert not d.update(False, 10)       # bounce: back to the old value
    assert not d.update(True, 20)
    assert not d.update(True, 40)        # 20 ms stable: not yet
    assert d.update(True, 50) and d.value is True
    assert not d.update(True, 60)


def test_bouncing_hook_gives_one_event():
    h = H.Handset()
    out = []
    for now, raw in ((0, 1), (3, 0), (6, 1), (9, 0), (12, 1)):
        out += h.poll(now, raw, None, H.INCOMING)
    out += run(h, 15, 100, 1, None, H.INCOMING)
    assert out == [("ev", "AcceptCall", {})]


def test_off_hook_idle_dial_tone_then_digits_after_pause():
    h = H.Handset(dial_pause_ms=4000)
    out = run(h, 0, 100, 1, None, H.IDLE)
    assert out == [("tone", "dial")]
    out = []
    t = 100
    for d in "1001":
        out += run(h, t, t + 60, 1, d, H.IDLE)
        out += run(h, t + 60, t + 120, 1, None, H.IDLE)
        t += 120
    assert out == [("tone", None)]       # first digit stops the dial tone, no call yet
    out = run(h, t, t + 3800, 1, None, H.IDLE)
    assert out == []
    out = run(h, t + 3800, t + 4200, 1, None, H.IDLE)
    assert out == [("ev", "MakeCall", {"target": "1001"})]


def test_hash_dials_at_once_and_max_digits():
    h = H.Handset()
    run(h, 0, 100, 1, None, H.IDLE)
    out = []
    t = 100
    for d in "42#":
        out += run(h, t, t + 60, 1, d, H.IDLE) + run(h, t + 60, t + 120, 1, None, H.IDLE)
        t += 120
    assert out[-1] == ("ev", "MakeCall", {"target": "42"})
    assert h.digits == "" and not h.dialing


def test_on_hook_hangs_up_calls_and_clears_digits():
    h = H.Handset()
    run(h, 0, 100, 1, None, H.IDLE)
    run(h, 100, 160, 1, "5", H.IDLE)
    out = run(h, 160, 300, 0, None, H.IDLE)
    assert out == [] and h.digits == ""
    run(h, 300, 400, 1, None, H.IN_CALL)
    assert run(h, 400, 500, 0, None, H.IN_CALL) == [("ev", "HangupCall", {})]
    run(h, 500, 600, 1, None, H.INCOMING)
    assert run(h, 600, 700, 0, None, H.CALLING) == [("ev", "HangupCall", {})]


def test_keys_in_call_send_dtmf_and_on_hook_keys_ignored():
    h = H.Handset()
    assert run(h, 0, 100, 0, "5", H.IN_CALL) == []          # on-hook: keypad does nothing
    run(h, 100, 200, 1, None, H.IN_CALL)
    out = run(h, 200, 300, 1, "7", H.IN_CALL) + run(h, 300, 400, 1, None, H.IN_CALL)
    assert out == [("ev", "SendDTMF", {"digits": "7"})]


def test_indicators():
    ind = H.indicators(H.INCOMING, False, None, True, 0)
    assert ind["ring"] and ind["ringer"] and ind["amp"] and ind["reg"] and not ind["line"]
    assert not H.indicators(H.INCOMING, False, None, True, 250)["ring"]      # blinks at 2 Hz
    assert not H.indicators(H.INCOMING, True, None, True, 0)["ringer"]       # picked up: ringer off
    ind = H.indicators(H.IN_CALL, True, (True, "2/0"), False, 0)
    assert ind["line"] and ind["mwi"] and ind["amp"] and not ind["ringer"] and not ind["reg"]
    assert not H.indicators(H.IDLE, False, (True, "2/0"), True, 1000)["mwi"]   # slow blink
    assert not H.indicators(H.IDLE, False, (False, "0/0"), True, 0)["mwi"]
    assert not H.indicators(H.IDLE, False, None, False, 0)["amp"]


class FakeSession:
    def __init__(self, kind, state, role):
        self.kind, self.state, self.role = kind, state, role


class FakePhone:
    def __init__(self, sessions):
        self._s = sessions
        self.mwi = None

    def current_call(self):
        calls = [s for s in self._s if s.kind == 0]
        return calls[-1] if calls else None

    def sessions(self):
        return self._s


def test_call_summary_and_registered():
    from uphone import table as T
    from uphone.engine import ROLE_UAC, ROLE_UAS
    assert H.call_summary(FakePhone([])) == H.IDLE
    assert H.call_summary(FakePhone([FakeSession(T.K_call, T.S_Ringing, ROLE_UAS)])) == H.INCOMING
    assert H.call_summary(FakePhone([FakeSession(T.K_call, T.S_Ringing, ROLE_UAC)])) == H.CALLING
    assert H.call_summary(FakePhone([FakeSession(T.K_call, T.S_Initiating, ROLE_UAC)])) == H.CALLING
    assert H.call_summary(FakePhone([FakeSession(T.K_call, T.S_Active, ROLE_UAS)])) == H.IN_CALL
    reg = FakeSession(T.K_registration, T.S_Registered, 0)
    assert H.registered(FakePhone([reg])) and not H.registered(FakePhone([]))


def press(t, start, summary, hold=60):
    """Press for `hold` ms, release for 60 ms, sampling every 5 ms. -> off-hook level after the release."""
    for now in range(start, start + hold, 5):
        t.update(1, now, summary)
    for now in range(start + hold, start + hold + 60, 5):
        level = t.update(0, now, summary)
    return level


def test_hook_toggle_button():
    # boards without a hook switch (Korvo-2 PLAY key, LyraT REC key): a press flips off-hook, bounces do not
    t = H.HookToggle(30)
    levels = [t.update(p, now, H.IDLE) for now, p in ((0, 1), (5, 0), (10, 1), (50, 1), (60, 1), (100, 0), (140, 0))]
    assert levels == [False, False, False, True, True, True, True]     # one flip, once 30 ms stable
    assert press(t, 200, H.INCOMING, hold=20) is True                   # too short to count: unchanged
    assert press(t, 300, H.IN_CALL) is False                            # second press: on-hook (hang up)
    assert press(t, 500, H.IDLE) is True
    t.update(0, 700, H.IN_CALL)
    assert t.update(0, 710, H.IDLE) is False                           # far end hung up: back on-hook by itself


def test_toggle_feeds_handset_accept_and_hangup():
    t, h = H.HookToggle(), H.Handset()
    out = []
    for now in range(0, 200, 5):
        out += h.poll(now, t.update(50 <= now < 110, now, H.INCOMING), None, H.INCOMING)
    assert out == [("ev", "AcceptCall", {})]
    out = []
    for now in range(200, 400, 5):
        out += h.poll(now, t.update(250 <= now < 310, now, H.IN_CALL), None, H.IN_CALL)
    assert out == [("ev", "HangupCall", {})]
