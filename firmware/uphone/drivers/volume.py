# Volume 0-100 % -> dB -> codec register, the way Espressif's esp_codec_dev does it, so a configured volume sounds
# the same as in Espressif's BSPs on the same board (esp-adf components/esp_codec_dev, commit df98ef23):
#   esp_codec_dev.c _get_default_vol_curve/_get_vol_db: 0 % mutes (-96 dB), 1-100 % map linearly onto
#     -50 dB .. 0 dB (0.5 dB per %);
#   esp_codec_dev_vol.c esp_codec_dev_col_calc_hw_gain: the analog gain after the DAC, 20*log10(Vdac/Vpa) + PA gain,
#     is taken off the requested level first (a 3.3 V DAC into a 5 V PA: -3.6 dB, so the DAC gets +3.6 dB);
#   esp_codec_dev_vol_calc_reg: linear interpolation between the codec's (register, dB) end points, truncated.
import math

MUTE_DB = -96.0


def percent_to_db(pct):
    """0-100 % -> dB on esp_codec_dev's default curve (0 % = MUTE_DB)."""
    pct = max(0, min(100, int(pct)))
    if pct == 0:
        return MUTE_DB
    return -50.0 + pct * 0.5


def hw_gain_db(dac_v=3.3, pa_v=5.0, pa_gain_db=0.0):
    """Gain of the analog path after the DAC (esp_codec_dev_col_calc_hw_gain)."""
    return 20.0 * math.log10(dac_v / pa_v) + pa_gain_db


def db_to_reg(db, reg_min, db_min, reg_max, db_max):
    """dB -> register on a linear scale from (reg_min, db_min) to (reg_max, db_max); clamps at both ends."""
    if db >= db_max:
        return reg_max
    if db <= db_min:
        return reg_min
    return int((db - db_min) * (reg_max - reg_min) / (db_max - db_min) + reg_min)


def reg_to_db(reg, reg_min, db_min, reg_max, db_max):
    return (reg - reg_min) * (db_max - db_min) / (reg_max - reg_min) + db_min
