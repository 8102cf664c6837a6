# MAX98357A I2S class-D amplifier: no I2C, only the SD (shutdown / channel select) pin and the GAIN pin.
# Audio itself arrives over I2S (hal/esp32.py); this driver switches the amp on and off and sets its gain.

# GAIN pin (datasheet table "Gain Selection"): tied to GND 12 dB, floating 9 dB, tied to VDD 6 dB
# (15 dB and 3 dB need 100k resistors, which a GPIO cannot make).
GAINS_DB = (6, 9, 12)


class MAX98357:
    """pin_cls: machine.Pin (or a test double with the same API). sd / gain: pin numbers or None.
    SD driven high (> 1.4 V) = on, left channel; low = shutdown (clicks are avoided by muting I2S first)."""

    def __init__(self, pin_cls, sd=None, gain=None, gain_db=9):
        self.Pin = pin_cls
        self.sd = pin_cls(sd, pin_cls.OUT, value=0) if sd is not None else None
        self.gain_id = gain
        self.gain_pin = None
        self.on = False
        self.gain_db = None
        if gain is not None:
            self.set_gain(gain_db)

    def enable(self, on):
        on = bool(on)
        if self.sd is not None and on != self.on:
            self.sd.value(1 if on else 0)
        self.on = on

    def set_gain(self, db):
        if db not in GAINS_DB:
            raise ValueError("MAX98357 gain must be one of %r dB, got %r" % (GAINS_DB, db))
        if self.gain_id is None:
            raise ValueError("MAX98357: no gain pin on this board (gain fixed in hardware)")
        P = self.Pin
        if db == 9:
            self.gain_pin = P(self.gain_id, P.IN)           # floating
        else:
            self.gain_pin = P(self.gain_id, P.OUT, value=0 if db == 12 else 1)
        self.gain_db = db
