# Handset input and indicator logic without hardware: debounced hook switch and keypad -> table events, dial
# tone, digit collection, LED / ringer / amp decisions. hal/esp32.py only reads and drives the pins.
from uphone.compat import const, ticks_diff

DEBOUNCE_MS = const(30)
DIAL_PAUSE_MS = const(4000)     # digits end after this pause, or at '#'
MAX_DIGITS = const(32)

# what the phone is doing, as far as the handset cares
IDLE = "idle"
INCOMING = "incoming"           # our ringer should sound
CALLING = "calling"             # outgoing, not answered yet
IN_CALL = "in_call"


class Debouncer:
    """A raw input must hold a new value for stable_ms before it counts."""

    def __init__(self, initial, stable_ms=DEBOUNCE_MS):
        self.value = initial
        self._raw = initial
        self._since = None
        self.stable_ms = stable_ms

    def update(self, raw, now):
        """-> True when the debounced value changed with this sample."""
        if raw != self._raw:
            self._raw, self._since = raw, now
            return False
        if raw != self.value and self._since is not None and ticks_diff(now, self._since) >= self.stable_ms:
            self.value = raw
            return True
        return False


class HookToggle:
    """A momentary button used as the hook (boards without a hook switch: the Korvo-2's PLAY key, the LyraT's REC
    key): each debounced press flips off-hook. When a call ends from the far side the phone goes back on-hook by
    itself, so the next incoming call is answered with one press, as on a headset."""

    def __init__(self, debounce_ms=DEBOUNCE_MS):
        self.button = Debouncer(False, debounce_ms)
        self.off_hook = False
        self._last = IDLE

    def update(self, pressed, now, summary=IDLE):
        """-> the off-hook level to feed Handset.poll."""
        if self.button.update(bool(pressed), now) and self.button.value:
            self.off_hook = not self.off_hook
        if summary == IDLE and self._last in (CALLING, IN_CALL):
            self.off_hook = False
        self._last = summary
        return self.off_hook


def call_summary(phone):
    """Phone -> IDLE / INCOMING / CALLING / IN_CALL from the current call's state and role."""
    from uphone import table as T
    from uphone.engine import ROLE_UAS
    s = phone.current_call() if phone is not None else None
    if s is None or s.state == T.S_Idle:
        return IDLE
    if s.state == T.S_Ringing and s.role == ROLE_UAS:
        return INCOMING
    if s.state in (T.S_Initiating, T.S_Ringing, T.S_EarlyMedia):
        return CALLING
    return IN_CALL


def registered(phone):
    from uphone import table as T
    return any(s.kind == T.K_registration and s.state == T.S_Registered for s in phone.sessions())


class Handset:
    """poll(now, off_hook_raw, key_raw, summary) -> list of outputs:
    ("ev", EventName, args) for Phone.user_event, ("tone", "dial") / ("tone", None) for the local dial tone."""

    def __init__(self, debounce_ms=DEBOUNCE_MS, dial_pause_ms=DIAL_PAUSE_MS):
        self.hook = Debouncer(False, debounce_ms)
        self.key = Debouncer(None, debounce_ms)
        self.dial_pause_ms = dial_pause_ms
        self.digits = ""
        self.last_digit_at = 0
        self.dialing = False        # off-hook with no call: collecting digits
        self.tone = None

    @property
    def off_hook(self):
        return self.hook.value

    def _tone(self, out, name):
        if self.tone != name:
            self.tone = name
            out.append(("tone", name))

    def poll(self, now, off_hook_raw, key_raw, summary):
        out = []  # type: list
        if self.hook.update(bool(off_hook_raw), now):
            if self.hook.value:
                self._off_hook(out, summary)
            else:
                self._on_hook(out, summary)
        if self.key.update(key_raw, now) and self.key.value is not None and self.hook.value:
            self._key(out, self.key.value, now, summary)
        if self.dialing and self.digits and ticks_diff(now, self.last_digit_at) >= self.dial_pause_ms:
            self._dial(out)
        return out

    def _off_hook(self, out, summary):
        if summary == INCOMING:
            out.append(("ev", "AcceptCall", {}))
        elif summary == IDLE:
            self.dialing, self.digits = True, ""
            self._tone(out, "dial")

    def _on_hook(self, out, summary):
        self.dialing, self.digits = False, ""
        self._tone(out, None)
        if summary in (CALLING, IN_CALL):
            out.append(("ev", "HangupCall", {}))

    def _key(self, out, k, now, summary):
        if summary == IN_CALL:
            out.append(("ev", "SendDTMF", {"digits": k}))
            return
        if not self.dialing:
            return
        self._tone(out, None)           # the first digit ends the dial tone
        if k == "#":
            if self.digits:
                self._dial(out)
            return
        if len(self.digits) < MAX_DIGITS:
            self.digits += k
            self.last_digit_at = now

    def _dial(self, out):
        out.append(("ev", "MakeCall", {"target": self.digits}))
        self.dialing, self.digits = False, ""


def indicators(summary, off_hook, mwi, is_registered, now):
    """-> dict of outputs: LEDs (line, ring, mwi, reg), ringer and amp enable. Blinks derive from now (ms)."""
    fast = (now // 250) % 2 == 0        # 2 Hz: incoming call
    slow = (now // 1000) % 2 == 0       # 0.5 Hz: voicemail waiting
    ringing = summary == INCOMING
    return {
        "ring": ringing and fast,
        "line": summary in (CALLING, IN_CALL),
        "mwi": bool(mwi and mwi[0]) and slow,
        "reg": bool(is_registered),
        "ringer": ringing and not off_hook,
        "amp": ringing or off_hook or summary in (CALLING, IN_CALL),
    }
