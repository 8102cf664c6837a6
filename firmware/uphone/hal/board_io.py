# The handset's inputs and indicators as board.json wires them: hook switch or hook button, keypad matrix or an
# ADC button ladder, LEDs on GPIOs or on an I2C expander. Pulls follow uphone.boards.input_pull: none on the
# ESP32's input-only pins (GPIO34-39 have no pull resistors; machine.Pin would silently ask for one).
from uphone import boards
from uphone import handset as H


class BoardIO:
    def __init__(self, machine, board, i2c=None, log=print):
        Pin = machine.Pin
        p = board["pins"]
        self.log = log

        def inp(pin, pull):
            if boards.input_pull(board, pin, pull) == "up":
                return Pin(pin, Pin.IN, Pin.PULL_UP)
            return Pin(pin, Pin.IN)

        self.hook = inp(p["hook"], p.get("hook_pull", "up")) if p.get("hook") is not None else None
        self.hook_off = p.get("hook_off_level", 1)
        self.toggle = H.HookToggle() if p.get("hook_toggle") else None
        kp = p.get("keypad") or {}
        self.rows = [Pin(r, Pin.OUT, value=1) for r in kp.get("rows", ())]
        self.cols = [inp(c, kp.get("cols_pull", "up")) for c in kp.get("cols", ())]
        self.keys = kp.get("keys", "")
        self.ladder = None
        btn = p.get("buttons") or {}
        if btn.get("adc") is not None:
            from uphone.drivers.adc_keys import AdcKeys
            adc = machine.ADC(Pin(btn["adc"]), atten=machine.ADC.ATTN_11DB)     # the BSP's 12 dB attenuation
            self.ladder = AdcKeys(adc, btn.get("keys", ()))
        self.leds = {}
        for name, pin in (p.get("leds") or {}).items():
            if pin is not None:
                self.leds[name] = Pin(pin, Pin.OUT, value=0)
        x = p.get("expander") or {}
        if x.get("leds") and i2c is not None:
            self._expander_leds(i2c, x)
        self.ringer = Pin(p["ringer"], Pin.OUT, value=0) if p.get("ringer") is not None else None

    def _expander_leds(self, i2c, x):
        from uphone.drivers import tca9554
        addr = tca9554.probe(i2c, x.get("addr") or tca9554.ADDRESSES)
        if addr is None:
            self.log("board: no TCA9554 answers at %r: LEDs off" % (x.get("addr"),))
            return
        ex = tca9554.TCA9554(i2c, addr)
        mask = 0
        for bit in x["leds"].values():
            mask |= 1 << bit
        ex.setup_outputs(mask, 0)
        for name, bit in x["leds"].items():
            self.leds[name] = tca9554.ExpanderPin(ex, bit)

    def scan_key(self):
        """Keypad matrix (one row low at a time, a column reading 0 is a pressed key) or the ADC ladder.
        -> key or None; the ladder's "hook" button is not a key."""
        if self.ladder is not None:
            k = self.ladder.read()
            return None if k == "hook" else k
        found = None
        nc = len(self.cols)
        for r, row in enumerate(self.rows):
            row.value(0)
            for c in range(nc):
                if found is None and self.cols[c].value() == 0:
                    found = self.keys[r * nc + c]
            row.value(1)
        return found

    def off_hook_raw(self, now, summary):
        if self.toggle is not None:
            if self.ladder is not None and self.hook is None:
                pressed = self.ladder.read() == "hook"
            else:
                pressed = self.hook is not None and self.hook.value() == self.hook_off
            return self.toggle.update(pressed, now, summary)
        return self.hook is not None and self.hook.value() == self.hook_off
