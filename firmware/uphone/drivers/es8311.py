# ES8311 mono codec over I2C: slave-mode init for 16-bit Philips I2S with the internal MCLK taken from SCLK
# (no MCLK pin: stock MicroPython machine.I2S does not output one), ADC/DAC power-up, volume, mic gain, mute.
#
# Drivers in this folder (README):
# - es8311.py: works with stock MicroPython. REG01 bit 7 selects SCLK (BCLK) as the MCLK source, so the codec runs
#   from the bit clock of machine.I2S. TX 16-bit frames carry 32 SCLK per LRCK (2 x 16-bit slots); the pre-multiplier
#   x8 brings that to 256 x fs, the ratio every clock divider below assumes, at 8 kHz and at 16 kHz alike.
#   Espressif's esp-bsp driver refuses rates <= 8 kHz in this mode; boards here use 16 kHz (8 kHz untested).
# - max98357.py: I2S amplifier, no I2C: shutdown/enable and gain pins only.
# - ES8388 (ESP32-LyraT) has no SCLK-as-MCLK option: it needs a real MCLK (256 x fs) on a pin, which stock
#   MicroPython's machine.I2S never drives. On that board audio needs a custom MicroPython build; signalling works.
from uphone.compat import const

ADDR = const(0x18)          # CE pin low; 0x19 with CE high
CHIP_ID1 = const(0xFD)      # reads 0x83
CHIP_ID2 = const(0xFE)      # reads 0x11

_RESET = const(0x00)
_CLK1 = const(0x01)
_CLK2 = const(0x02)
_CLK3 = const(0x03)
_CLK4 = const(0x04)
_CLK5 = const(0x05)
_CLK6 = const(0x06)
_CLK7 = const(0x07)
_CLK8 = const(0x08)
_SDPIN = const(0x09)
_SDPOUT = const(0x0A)
_SYS0D = const(0x0D)
_SYS0E = const(0x0E)
_SYS12 = const(0x12)
_SYS13 = const(0x13)
_SYS14 = const(0x14)
_ADC16 = const(0x16)
_ADC17 = const(0x17)
_ADC1C = const(0x1C)
_DAC31 = const(0x31)
_DAC32 = const(0x32)
_DAC37 = const(0x37)

RATES = (8000, 16000)


def init_sequence(rate=16000, volume=70, mic_gain_db=24):
    """-> tuple of (register, value) in the order they must be written. Pure, so it is tested without hardware."""
    if rate not in RATES:
        raise ValueError("ES8311 with MCLK from SCLK: rate must be one of %r, got %r" % (RATES, rate))
    return (
        (_RESET, 0x1F),     # reset digital, CSM, clock manager ... (then wait ~20 ms)
        (_RESET, 0x00),
        (_RESET, 0x80),     # power-on command: CSM on; bit 6 = 0 keeps the serial port in slave mode
        (_CLK1, 0xBF),      # bit 7: MCLK from SCLK pin; bits 5..0: all ADC/DAC clocks on
        (_CLK2, 0x18),      # pre-divider 1 (bits 7..5 = div-1), pre-multiplier x8 (bits 4..3 = 3): 32 fs -> 256 fs
        (_CLK3, 0x10),      # single speed, ADC oversampling 16
        (_CLK4, 0x10),      # DAC oversampling 16
        (_CLK5, 0x00),      # ADC and DAC clock dividers 1
        (_CLK6, 0x03),      # SCLK not inverted; SCLK divider 4 (only used as master)
        (_CLK7, 0x00),      # LRCK divider high bits
        (_CLK8, 0xFF),      # LRCK divider low: 256 -> LRCK = 256 fs / 256 (only used as master)
        (_SDPIN, 0x0C),     # DAC serial port: Philips I2S, 16-bit (bits 4..2 = 3), not muted
        (_SDPOUT, 0x0C),    # ADC serial port: Philips I2S, 16-bit
        (_SYS0D, 0x01),     # power up analog circuits (reference, bias)
        (_SYS0E, 0x02),     # enable PGA and ADC modulator
        (_SYS12, 0x00),     # power up DAC
        (_SYS13, 0x10),     # enable headphone/line output drive
        (_SYS14, 0x1A),     # analog mic input MIC1P/N, PGA gain
        (_ADC16, mic_gain_reg(mic_gain_db)),
        (_ADC17, 0xBF),     # ADC digital volume 0 dB
        (_ADC1C, 0x6A),     # ADC equalizer bypass, DC offset cancel
        (_DAC37, 0x08),     # DAC equalizer bypass
        (_DAC32, volume_reg(volume)),
        (_DAC31, 0x00),     # DAC unmuted
    )


def volume_reg(pct):
    """0-100 % -> REG32 (0x00 = -95.5 dB ... 0xBF = 0 dB ... 0xFF = +32 dB); 100 % maps to 0 dB, never boost."""
    pct = max(0, min(100, int(pct)))
    return 0 if pct == 0 else (pct * 0xBF + 50) // 100


def mic_gain_reg(db):
    """0-42 dB in 6 dB steps -> REG16 (0..7)."""
    return max(0, min(7, int(db) // 6))


class ES8311:
    def __init__(self, i2c, addr=ADDR, sleep_ms=None):
        self.i2c = i2c
        self.addr = addr
        self._sleep_ms = sleep_ms
        self._b = bytearray(1)

    def write(self, reg, value):
        self._b[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._b)

    def read(self, reg):
        return self.i2c.readfrom_mem(self.addr, reg, 1)[0]

    def chip_id(self):
        return (self.read(CHIP_ID1), self.read(CHIP_ID2))

    def init(self, rate=16000, volume=70, mic_gain_db=24):
        first = True
        for reg, value in init_sequence(rate, volume, mic_gain_db):
            self.write(reg, value)
            if first:
                first = False
                self._sleep(20)     # the reset needs time before the next write
        return self

    def _sleep(self, ms):
        if self._sleep_ms is not None:
            self._sleep_ms(ms)
            return
        try:
            from time import sleep_ms
            sleep_ms(ms)
        except ImportError:
            import time
            time.sleep(ms / 1000)

    def set_volume(self, pct):
        self.write(_DAC32, volume_reg(pct))

    def set_mic_gain(self, db):
        self.write(_ADC16, mic_gain_reg(db))

    def mute(self, on):
        self.write(_DAC31, 0x60 if on else 0x00)    # bits 6 and 5: DAC soft mute
