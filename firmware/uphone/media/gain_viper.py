# Viper twin of media/gain.py apply_py: the same saturating Q12 scale, about 160 samples a frame on the phone.
import micropython


@micropython.viper
def apply(buf: ptr16, n: int, g: int):
    for i in range(n):
        v = int(buf[i])
        v = (v ^ 0x8000) - 0x8000          # int16 from the unsigned halfword
        v = (v * g) >> 12
        if v > 32767:
            v = 32767
        elif v < -32768:
            v = -32768
        buf[i] = v & 0xFFFF
