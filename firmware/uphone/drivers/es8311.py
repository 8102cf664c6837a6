# ES8311 mono codec (I2C 0x18 with CE low) as an I2S slave: clock plan, power-up sequence, volume, mic gain, mute.
#
# Source of every register value and of their order: Espressif esp_codec_dev's ES8311 driver,
# esp-adf components/esp_codec_dev/device/es8311/es8311.c (commit df98ef23): es8311_open() (I2C noise filter,
# clock manager defaults, slave mode, MCLK source), es8311_set_fs() (16-bit Philips I2S, then the clock dividers
# of its coeff_div table for the MCLK/rate pair), es8311_start() (serial ports on, ADC/DAC/PGA power-up), then
# es8311_set_vol() and es8311_set_mute(); register names from es8311_reg.h. The order matters: the codec must see
# its clocks (MCLK or SCLK, and LRCK) before this runs, so the caller starts I2S first (esp-adf's AEC example starts
# the I2S writer before audio_board_init() for the same reason).
#
# Two clock modes:
# - MCLK pin (the Korvo-2 wires GPIO16 to MCLK; esp-adf esp32_s3_korvo2_v3/board_def.h ES8311_MCLK_SOURCE 0):
#   MCLK = 256 x fs from the ESP32 (ESP-IDF's I2S_STD_CLK_DEFAULT_CONFIG mclk_multiple), dividers from the table row.
# - MCLK from SCLK (REG01 bit 7), for boards without an MCLK wire: SCLK x pre-multiplier must make 256 x fs, and
#   SCLK must stay >= 512 kHz (es8311_config_sample: "When the sample rate is 8kHz, BCLK requires at least 512K
#   (slot bit needs to be configured to 32bit)"), so 8 kHz needs 32-bit slots (SCLK 64 fs = 512 kHz, x4) and
#   16 kHz works with 16-bit slots (SCLK 32 fs = 512 kHz, x8).
from uphone.compat import const
from uphone.drivers import volume as V

ADDR = const(0x18)          # esp_codec_dev ES8311_CODEC_DEFAULT_ADDR 0x30 is the 8-bit form
CHIP_ID1 = const(0xFD)      # reads 0x83
CHIP_ID2 = const(0xFE)      # reads 0x11

MCLK_MULTIPLE = const(256)  # MCLK / LRCK the dividers below assume (esp_codec_dev MCLK_DEFAULT_DIV)
MIN_SCLK_HZ = 512000

# coeff_div rows for the rates a phone uses: (mclk, rate) -> (pre_div, pre_multi, adc_div, dac_div, fs_mode,
# lrck_h, lrck_l, bclk_div, adc_osr, dac_osr). Values from es8311.c coeff_div (8k and 16k blocks).
COEFFS = {
    (12288000, 8000): (6, 1, 1, 1, 0, 0x00, 0xFF, 4, 0x10, 0x20),
    (6144000, 8000): (3, 1, 1, 1, 0, 0x00, 0xFF, 4, 0x10, 0x20),
    (4096000, 8000): (2, 1, 1, 1, 0, 0x00, 0xFF, 4, 0x10, 0x20),
    (2048000, 8000): (1, 1, 1, 1, 0, 0x00, 0xFF, 4, 0x10, 0x20),
    (12288000, 16000): (3, 1, 1, 1, 0, 0x00, 0xFF, 4, 0x10, 0x20),
    (8192000, 16000): (2, 1, 1, 1, 0, 0x00, 0xFF, 4, 0x10, 0x20),
    (4096000, 16000): (1, 1, 1, 1, 0, 0x00, 0xFF, 4, 0x10, 0x20),
    (2048000, 16000): (1, 2, 1, 1, 0, 0x00, 0xFF, 4, 0x10, 0x20),
}
_MULTI_CODE = {1: 0, 2: 1, 4: 2, 8: 3}      # REG02 bits 4:3

# DAC volume register REG32: 0x00 = -95.5 dB ... 0xFF = +32 dB, 0.5 dB steps (es8311.c vol_range)
VOL_REG_MIN, VOL_DB_MIN, VOL_REG_MAX, VOL_DB_MAX = 0x00, -95.5, 0xFF, 32.0


def clock_plan(rate, slot_bits=16, mclk_from_sclk=False, mclk_multiple=MCLK_MULTIPLE):
    """-> (mclk_hz, sclk_hz, pre_div, pre_multi, row). Raises ValueError outside the datasheet's clock range."""
    if slot_bits not in (16, 32):
        raise ValueError("ES8311: I2S slots are 16 or 32 bits, got %r" % (slot_bits,))
    sclk = rate * 2 * slot_bits
    mclk = rate * MCLK_MULTIPLE
    row = COEFFS.get((mclk, rate))
    if row is None:
        raise ValueError("ES8311: no clock coefficients for %d Hz at MCLK %d Hz" % (rate, mclk))
    pre_div, pre_multi = row[0], row[1]
    if mclk_from_sclk:
        if sclk < MIN_SCLK_HZ:
            raise ValueError("ES8311 with MCLK from SCLK: SCLK %d Hz < %d Hz at %d Hz; use 32-bit slots"
                             % (sclk, MIN_SCLK_HZ, rate))
        pre_multi = mclk // sclk            # internal MCLK = SCLK x multiplier = 256 fs
        if pre_multi not in _MULTI_CODE or sclk * pre_multi != mclk:
            raise ValueError("ES8311: SCLK %d Hz cannot be multiplied to %d Hz" % (sclk, mclk))
        pre_div = 1
    elif mclk_multiple != MCLK_MULTIPLE:
        raise ValueError("ES8311: MCLK must be %d x fs, got %d x fs" % (MCLK_MULTIPLE, mclk_multiple))
    return mclk, sclk, pre_div, pre_multi, row


def volume_reg(pct, hw_gain_db=0.0):
    """Configured volume 0-100 % -> REG32, through esp_codec_dev's curve and the board's analog gain."""
    if int(pct) <= 0:
        return VOL_REG_MIN                  # silent, whatever the analog gain
    db = V.percent_to_db(pct) - hw_gain_db
    return V.db_to_reg(db, VOL_REG_MIN, VOL_DB_MIN, VOL_REG_MAX, VOL_DB_MAX)


def mic_gain_reg(db):
    """PGA gain in dB -> REG16 code 0..7 (6 dB steps, rounded down as es8311_set_mic_gain does)."""
    return max(0, min(7, int(db) // 6))


def init_sequence(rate=16000, slot_bits=16, mclk_from_sclk=False, volume=70, hw_gain_db=0.0, dac_ref=False):
    """-> list of (register, value) in write order. Pure: tested against the esp_codec_dev order without hardware.
    dac_ref: the ES8311's ADC right channel carries its DAC output as echo reference (REG44 0x58, esp_codec_dev's
    default); boards whose microphones sit on another ADC (Korvo-2: ES7210) leave it off (0x08, no_dac_ref)."""
    _mclk, _sclk, pre_div, pre_multi, row = clock_plan(rate, slot_bits, mclk_from_sclk)
    _, _, adc_div, dac_div, fs_mode, lrck_h, lrck_l, bclk_div, adc_osr, dac_osr = row
    clk01 = 0x3F | (0x80 if mclk_from_sclk else 0)     # all clocks on; bit 7: MCLK from SCLK; bit 6 = 0: not inverted
    sdp = 0x0C                                          # 16-bit (bits 4:2 = 3), Philips I2S (bits 1:0 = 0), unmuted
    seq = [
        # es8311_open
        (0x44, 0x08), (0x44, 0x08),     # I2C noise filter; written twice, the first write after power-up can fail
        (0x01, 0x30), (0x02, 0x00), (0x03, 0x10), (0x16, 0x24), (0x04, 0x10), (0x05, 0x00),
        (0x0B, 0x00), (0x0C, 0x00), (0x10, 0x1F), (0x11, 0x7F),
        (0x00, 0x80),                   # power-on: CSM on
        (0x00, 0x80),                   # bit 6 = 0: slave (the ESP32 drives SCLK/LRCK)
        (0x01, clk01),
        (0x06, bclk_div - 1),           # bit 5 = 0: SCLK not inverted (divider only used as master)
        (0x13, 0x10), (0x1B, 0x0A), (0x1C, 0x6A),
        (0x44, 0x58 if dac_ref else 0x08),
        # es8311_set_fs: serial port format, then the clock dividers
        (0x09, sdp), (0x0A, sdp),
        (0x02, ((pre_div - 1) << 5) | (_MULTI_CODE[pre_multi] << 3)),
        (0x05, ((adc_div - 1) << 4) | (dac_div - 1)),
        (0x03, (fs_mode << 6) | adc_osr),
        (0x04, dac_osr),
        (0x07, lrck_h), (0x08, lrck_l),
        (0x06, bclk_div - 1),
        # es8311_start
        (0x00, 0x80), (0x01, clk01),
        (0x09, sdp), (0x0A, sdp),     # bit 6 = 0: serial ports not muted
        (0x17, 0xBF), (0x0E, 0x02), (0x12, 0x00),
        (0x14, 0x1A), (0x14, 0x1A),     # analog MIC1P/N into the PGA; bit 6 = 0: no PDM digital mic
        (0x0D, 0x01), (0x15, 0x40), (0x37, 0x08), (0x45, 0x00),
        # es8311_set_vol, then unmute (es8311_set_mute)
        (0x32, volume_reg(volume, hw_gain_db)),
        (0x31, 0x00),
    ]
    return seq


class ES8311:
    def __init__(self, i2c, addr=ADDR, hw_gain_db=0.0):
        self.i2c = i2c
        self.addr = addr
        self.hw_gain_db = hw_gain_db
        self._b = bytearray(1)

    def write(self, reg, value):
        self._b[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._b)

    def read(self, reg):
        return self.i2c.readfrom_mem(self.addr, reg, 1)[0]

    def chip_id(self):
        return (self.read(CHIP_ID1), self.read(CHIP_ID2))

    def init(self, rate=16000, slot_bits=16, mclk_from_sclk=False, volume=70, dac_ref=False):
        """Run after the I2S clocks are running (see the header)."""
        for reg, value in init_sequence(rate, slot_bits, mclk_from_sclk, volume, self.hw_gain_db, dac_ref):
            self.write(reg, value)
        return self

    def set_volume(self, pct):
        self.write(0x32, volume_reg(pct, self.hw_gain_db))

    def set_mic_gain(self, db):
        self.write(0x16, mic_gain_reg(db))

    def mute(self, on):
        self.write(0x31, 0x60 if on else 0x00)    # bits 6 and 5: DAC soft mute
