# ES8388 stereo codec (I2C 0x10 with CE low) as an I2S slave with MCLK = 256 x fs: the ESP32-LyraT's codec.
#
# Source of every register value and of their order: Espressif esp_codec_dev's ES8388 driver,
# esp-adf components/esp_codec_dev/device/es8388/es8388.c (commit df98ef23): es8388_open() (DAC muted, chip power,
# the internal-DLL registers 0x35/0x37/0x39 written "to improve 8K sample rate", slave mode, DAC 16-bit I2S with
# DACFsRatio 256, mixers, shared LRCK (DACCONTROL21 0x80: ADC and DAC on one LRCK, which is what the LyraT wires),
# output volumes, outputs LOUT1/2 ROUT1/2 on; ADC: LIN1/RIN1 input, 16-bit I2S, ADCFsRatio 256, ADC power),
# es8388_set_fs() (format and word length, the same values again), es8388_start() for play and record (ADC and DAC
# power, unmute), es8388_set_vol(); registers and bit values from es8388_reg.h and es_common.h.
#
# Clocks: the ES8388 has no SCLK-as-MCLK mode; it needs MCLK on a pin. Its ratio registers (ADCCONTROL5 0x0D,
# DACCONTROL2 0x18 = 0x02) say MCLK/LRCK = 256 in single speed, i.e. ESP-IDF's default mclk_multiple 256: MCLK
# 2.048 MHz at 8 kHz, 4.096 MHz at 16 kHz. On the LyraT MCLK is GPIO0 (esp-bsp bsp/esp32_lyrat BSP_I2S_MCLK), the
# only pin group (GPIO0/1/3, via IO_MUX CLK_OUTx) where the classic ESP32 can output an I2S MCLK.
from uphone.compat import const
from uphone.drivers import volume as V

ADDR = const(0x10)          # esp_codec_dev ES8388_CODEC_DEFAULT_ADDR 0x20 is the 8-bit form
MCLK_MULTIPLE = const(256)
RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)     # single speed, ratio 256

# DAC volume DACCONTROL4/5 (0x1A/0x1B): 0x00 = 0 dB ... 0xC0 = -96 dB, 0.5 dB steps (es8388.c vol_range)
VOL_REG_MIN, VOL_DB_MIN, VOL_REG_MAX, VOL_DB_MAX = 0xC0, -96.0, 0x00, 0.0


def volume_reg(pct, hw_gain_db=0.0):
    if int(pct) <= 0:
        return VOL_REG_MIN
    db = V.percent_to_db(pct) - hw_gain_db
    return V.db_to_reg(db, VOL_REG_MIN, VOL_DB_MIN, VOL_REG_MAX, VOL_DB_MAX)


def mic_gain_reg(db):
    """ADCCONTROL1 (0x09): left and right PGA gain, 3 dB steps 0..24 dB (es8388_set_mic_gain)."""
    g = max(0, min(8, int(db / 3) if db > 0 else 0))
    return (g << 4) | g


def clock_check(rate, mclk_multiple=MCLK_MULTIPLE):
    if rate not in RATES:
        raise ValueError("ES8388: %r Hz is not a single-speed rate %r" % (rate, RATES))
    if mclk_multiple != MCLK_MULTIPLE:
        raise ValueError("ES8388: MCLK must be %d x fs (ratio registers 0x0D/0x18 = 0x02)" % MCLK_MULTIPLE)
    return rate * mclk_multiple


def init_sequence(rate=16000, volume=70, hw_gain_db=0.0, mic_gain_db=24):
    """-> list of (register, value) in write order (open, set_fs, start for play + record, volume, mic gain)."""
    clock_check(rate)
    dac_vol = volume_reg(volume, hw_gain_db)
    fmt_adc = 0x0C              # ADCCONTROL4: 16-bit (BIT_LENGTH_16BITS 3 << 2), I2S format (0)
    fmt_dac = 0x18              # DACCONTROL1: 16-bit (3 << 3), I2S format (0 << 1)
    return [
        # es8388_open
        (0x19, 0x04),           # DACCONTROL3: DAC soft mute while configuring
        (0x01, 0x50), (0x02, 0x00),                 # CONTROL2, CHIPPOWER: power up all
        (0x35, 0xA0), (0x37, 0xD0), (0x39, 0xD0),   # internal DLL off (esp_codec_dev: better at 8 kHz)
        (0x08, 0x00),           # MASTERMODE: slave
        (0x04, 0xC0),           # DACPOWER: DAC and outputs off while configuring
        (0x00, 0x12),           # CONTROL1: play and record mode
        (0x17, fmt_dac),
        (0x18, 0x02),           # DACCONTROL2: single speed, MCLK/LRCK 256
        (0x26, 0x00),           # DACCONTROL16: LIN1/RIN1 to the mixers (bypass off)
        (0x27, 0x90), (0x2A, 0x90),                 # DACCONTROL17/20: DAC to the left/right mixer, 0 dB
        (0x2B, 0x80),           # DACCONTROL21: ADC and DAC share one LRCK
        (0x2D, 0x00),           # DACCONTROL23: VROI 0
        (0x1B, 0x00), (0x1A, 0x00),                 # DACCONTROL5/4: digital volume 0 dB for now
        (0x2E, 0x1E), (0x2F, 0x1E),                 # DACCONTROL24/25: LOUT1/ROUT1 0 dB
        (0x30, 0x00), (0x31, 0x00),                 # DACCONTROL26/27: LOUT2/ROUT2 as esp_codec_dev leaves them
        (0x04, 0x3C),           # DACPOWER: DAC on, LOUT1/2 ROUT1/2 on
        (0x03, 0xFF),           # ADCPOWER: off while configuring
        (0x09, 0xBB),           # ADCCONTROL1: PGA gain (es8388_open's value)
        (0x0A, 0x00),           # ADCCONTROL2: LINPUT1-RINPUT1 (the LyraT's microphones)
        (0x0B, 0x02),           # ADCCONTROL3
        (0x0C, fmt_adc),
        (0x0D, 0x02),           # ADCCONTROL5: single speed, MCLK/LRCK 256
        (0x11, 0x00), (0x10, 0x00),                 # ADCCONTROL9/8: ADC digital volume 0 dB
        (0x03, 0x09),           # ADCPOWER: ADC on
        # es8388_set_fs (format and word length; same values, written as the driver writes them)
        (0x0C, fmt_adc), (0x17, fmt_dac), (0x0C, fmt_adc), (0x17, fmt_dac),
        # es8388_start (play + record): LRCK setting unchanged, so no state machine restart
        (0x2B, 0x80),
        (0x03, 0x00),           # ADC and line in powered
        (0x04, 0x3C),           # DAC and line out powered
        (0x19, 0x00),           # unmute
        # es8388_set_vol, es8388_set_mic_gain
        (0x1B, dac_vol), (0x1A, dac_vol),
        (0x09, mic_gain_reg(mic_gain_db)),
    ]


class ES8388:
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

    def init(self, rate=16000, volume=70, mic_gain_db=24):
        """Run after MCLK, SCLK and LRCK are running."""
        for reg, value in init_sequence(rate, volume, self.hw_gain_db, mic_gain_db):
            self.write(reg, value)
        return self

    def set_volume(self, pct):
        v = volume_reg(pct, self.hw_gain_db)
        self.write(0x1B, v)
        self.write(0x1A, v)

    def set_mic_gain(self, db):
        self.write(0x09, mic_gain_reg(db))

    def mute(self, on):
        self.write(0x19, 0x04 if on else 0x00)     # DACCONTROL3 bit 2: DAC soft mute
