# ES7210 four-channel microphone ADC (I2C 0x40 with AD1/AD0 low) as an I2S/TDM slave: the Korvo-2's microphones
# and its echo reference.
#
# Source of every register value and of their order: Espressif esp_codec_dev's ES7210 driver,
# esp-adf components/esp_codec_dev/device/es7210/es7210.c (commit df98ef23): es7210_open() (reset, clock off, state
# cycle timing, high-pass filters, slave mode, analog power/bias 2.87 V, OSR, main clock 0xC1, microphone select,
# PGA gain), es7210_set_fs() (word length, I2S format; in slave mode the clock dividers are not written, the chip
# follows MCLK/LRCK), es7210_start() (clocks on, power up, select again, reset release 0x71 -> 0x41); register names
# from es7210_reg.h. Read-modify-write steps (es7210_update_reg_bit) read the chip, as there.
#
# Channels on the Korvo-2 (esp-adf components/audio_board/esp32_s3_korvo2_v3/board_def.h): ES7210_MIC_SELECT =
# MIC1 | MIC2 | MIC3, MIC3 being the echo reference taken from the speaker path (RECORD_HARDWARE_AEC true). Three or
# more microphones switch the chip to TDM (es7210_mic_select: REG12 = 0x02); with a 2-slot host frame the chip
# sends 16-bit samples, two per 32-bit slot (es7210_set_fs: "Use 2 channel to fetch TDM data", bits halved), which
# is how a plain 32-bit stereo I2S receiver reads all four: see uphone.hal.duplex for the frame layout.
from uphone.compat import const

ADDR = const(0x40)          # esp_codec_dev ES7210_CODEC_DEFAULT_ADDR 0x80 is the 8-bit form
MIC1, MIC2, MIC3, MIC4 = 1, 2, 4, 8
TDM_MIN_MICS = const(3)     # es7210.c ENABLE_TDM_MAX_NUM

# PGA gain codes (es7210_reg.h es7210_gain_value_t): 0 dB .. 33 dB in 3 dB steps = 0..11, then 34.5, 36, 37.5 dB
GAIN_30DB = const(10)


def gain_code(db):
    """dB -> gain code, rounding as es7210.c get_db does."""
    db += 0.5
    if db < 33:
        return 0 if db < 3 else int(db / 3)
    if db < 34.5:
        return 10
    if db < 36:
        return 11
    if db < 37:
        return 12
    return 13


def word_bits_reg(bits):
    """REG11 bits 7:5 for the sample word length (es7210_set_bits)."""
    return {16: 0x60, 24: 0x00, 32: 0x80}.get(bits, 0x60)


def mic_count(mics):
    return sum(1 for m in (MIC1, MIC2, MIC3, MIC4) if mics & m)


class ES7210:
    def __init__(self, i2c, addr=ADDR):
        self.i2c = i2c
        self.addr = addr
        self._b = bytearray(1)
        self.mics = MIC1 | MIC2
        self.gain = GAIN_30DB
        self.off_reg = 0x3F

    def write(self, reg, value):
        self._b[0] = value & 0xFF
        self.i2c.writeto_mem(self.addr, reg, self._b)

    def read(self, reg):
        return self.i2c.readfrom_mem(self.addr, reg, 1)[0]

    def update(self, reg, mask, value):
        self.write(reg, (self.read(reg) & ~mask) | (value & mask))

    def tdm(self):
        return mic_count(self.mics) >= TDM_MIN_MICS

    def _select(self):
        """es7210_mic_select: gate every PGA, power all down, then power and gain the chosen inputs; TDM or not."""
        for i in range(4):
            self.update(0x43 + i, 0x10, 0x00)
        self.write(0x4B, 0xFF)
        self.write(0x4C, 0xFF)
        for i, mic in enumerate((MIC1, MIC2, MIC3, MIC4)):
            if not self.mics & mic:
                continue
            if i < 2:
                self.update(0x01, 0x0B, 0x00)       # ADC1/2 clocks on
                self.write(0x4B, 0x00)              # MIC1/2 bias, ADC and PGA power
            else:
                self.update(0x01, 0x15, 0x00)       # ADC3/4 clocks on
                self.write(0x4C, 0x00)
            self.update(0x43 + i, 0x10, 0x10)       # PGA on
            self.update(0x43 + i, 0x0F, self.gain)
        self.write(0x12, 0x02 if self.tdm() else 0x00)

    def open(self, mics=MIC1 | MIC2, gain_db=30):
        """es7210_open for slave mode."""
        self.mics = mics or (MIC1 | MIC2)
        self.gain = gain_code(gain_db)
        for reg, value in ((0x00, 0xFF), (0x00, 0x41), (0x01, 0x3F), (0x09, 0x30), (0x0A, 0x30),
                           (0x23, 0x2A), (0x22, 0x0A), (0x20, 0x0A), (0x21, 0x2A)):
            self.write(reg, value)
        self.update(0x08, 0x01, 0x00)               # bit 0 = 0: slave
        for reg, value in ((0x40, 0x43), (0x41, 0x70), (0x42, 0x70), (0x07, 0x20), (0x02, 0xC1)):
            self.write(reg, value)                  # analog on (VDDA 3.3 V), MIC bias 2.87 V, OSR, DLL clock
        self._select()
        self.set_gain(gain_db)
        self.off_reg = self.read(0x01)
        return self

    def set_format(self, host_bits=32, host_slots=2):
        """es7210_set_fs: the chip's word length (halved in TDM when the host reads two slots) and Philips I2S."""
        bits = host_bits // 2 if self.tdm() and host_slots <= 2 else host_bits
        self.update(0x11, 0xE0, word_bits_reg(bits))
        self.update(0x11, 0x03, 0x00)
        return bits

    def start(self):
        """es7210_start."""
        self.write(0x01, self.off_reg)
        for reg, value in ((0x06, 0x00), (0x40, 0x43), (0x47, 0x08), (0x48, 0x08), (0x49, 0x08), (0x4A, 0x08)):
            self.write(reg, value)
        self._select()
        self.write(0x40, 0x43)
        self.write(0x00, 0x71)
        self.write(0x00, 0x41)

    def init(self, mics=MIC1 | MIC2, gain_db=30, host_bits=32, host_slots=2):
        """open + set_format + start; run after the I2S clocks (MCLK, SCLK, LRCK) are running."""
        self.open(mics, gain_db)
        self.set_format(host_bits, host_slots)
        self.start()
        return self

    def set_gain(self, db, mics=None):
        code = gain_code(db)
        sel = self.mics if mics is None else self.mics & mics
        for i, mic in enumerate((MIC1, MIC2, MIC3, MIC4)):
            if sel & mic:
                self.update(0x43 + i, 0x0F, code)

    def mute(self, on):
        self.update(0x14, 0x03, 0x03 if on else 0x00)
        self.update(0x15, 0x03, 0x03 if on else 0x00)
