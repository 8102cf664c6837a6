# The microphone's level (config audio.volume_mic): a digital gain on each captured frame, the same on every board
# (the generic board's INMP441 has no analog gain; the codec boards' ADC gain is the board's own, board.json
# audio.adc.gain_db, tuned for their microphones). Decision: 70 % (the default) is 0 dB so the default costs nothing
# and changes nothing; each % is 0.5 dB as on esp_codec_dev's volume curve (esp-adf components/esp_codec_dev,
# esp_codec_dev.c _get_vol_db), so 100 % is +15 dB and 1 % is -34.5 dB; 0 % mutes.
from uphone.compat import const

UNITY = const(4096)        # gains are Q12


def percent_to_q12(pct):
    pct = max(0, min(100, int(pct)))
    if pct == 0:
        return 0
    return int(UNITY * 10 ** ((pct - 70) * 0.5 / 20) + 0.5)


def apply_py(buf, n, g):
    """Scale n int16 LE samples of buf in place by g/4096, saturating (the plain twin)."""
    for i in range(0, 2 * n, 2):
        v = buf[i] | buf[i + 1] << 8
        if v & 0x8000:
            v -= 0x10000
        v = (v * g) >> 12
        if v > 32767:
            v = 32767
        elif v < -32768:
            v = -32768
        buf[i] = v & 0xFF
        buf[i + 1] = (v >> 8) & 0xFF


try:
    from uphone.media import gain_viper as _v
    apply = _v.apply
    IMPL = "viper"
except (ImportError, SyntaxError):
    apply = apply_py        # no viper emitter (CPython): plain Python
    IMPL = "plain"
