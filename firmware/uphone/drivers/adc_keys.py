# A resistor-ladder button row on one ADC pin: each button pulls the pin to its own voltage; none pressed reads
# near the supply. The Korvo-2 has six on GPIO5 (ADC1 channel 4); esp-bsp bsp/esp32_s3_korvo_2/src/bsp_button.c
# gives each a [min, max] window in mV at 12 dB attenuation (espressif/button button_adc: calibrated millivolts):
# REC 2310-2510, MUTE 1880-2080, PLAY 1550-1750, SET 1010-1210, VOL- 720-920, VOL+ 280-480.


class AdcKeys:
    """adc: machine.ADC (read_uv) or a double; windows: ((key, lo_mv, hi_mv), ...). read() -> key or None."""

    def __init__(self, adc, windows):
        self.adc = adc
        self.windows = tuple((k, int(lo), int(hi)) for k, lo, hi in windows)

    def millivolts(self):
        return self.adc.read_uv() // 1000

    def read(self):
        mv = self.millivolts()
        for key, lo, hi in self.windows:
            if lo <= mv <= hi:
                return key
        return None
