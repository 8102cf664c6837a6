# MAX98357A I2S class-D amplifier: no I2C, only the SD (shutdown / channel select) pin and the GAIN pin.
# Audio itself arrives over I2S (hal/esp32.py); this driver switches the amp on and off and sets its gain.

# GAIN pin (datasheet table "Gain Selection"): tied to GND 12 dB, floating 9 dB, tied to VDD 6 dB
# (15 dB and 3 dB need 100k resistors, which a GPIO cannot make).
GAINS_DB = (6, 9, 12)

# Interface (datasheet, General Description): I2S data of 16/24/32 bits at 8 kHz .. 96 kHz, no MCLK. machine.I2S TX
# 16-bit mono sends 16-bit data in two 16-bit slots: 32 BCLK per LRCLK, a standard I2S frame (256 kHz at 8 kHz).
MIN_RATE, MAX_RATE = 8000, 96000
DATA_BITS = (16, 24, 32)


def check_timing(rate, data_bits=16, slot_bits=None):
    """-> BCLK in Hz for this I2S frame, or ValueError when the amplifier does not accept it."""
    slot_bits = slot_bits or data_bits
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError("MAX98357A: sample rate %d Hz outside %d-%d Hz" % (rate, MIN_RATE, MAX_RATE))
    if data_bits not in DATA_BITS or slot_bits < data_bits:
        raise ValueError("MAX98357A: %d-bit data in %d-bit slots is not an I2S format it takes" % (data_bits, slot_bits))
    return rate * 2 * slot_bits


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
