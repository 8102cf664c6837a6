# INMP441 I2S MEMS microphone: no registers, only clock limits. InvenSense datasheet DS-INMP441-00 rev 1.1:
# Table 3 "Serial data port timing": fSCK 0.5-3.2 MHz, fWS 7.8-50 kHz; "I2S data interface": 64 SCK cycles per WS
# frame (32 per 24-bit data word). machine.I2S RX always reads 32-bit stereo slots, i.e. 64 SCK per frame:
# 512 kHz at 8 kHz (just inside the 0.5 MHz floor), 1.024 MHz at 16 kHz.
MIN_SCK_HZ, MAX_SCK_HZ = 500000, 3200000
MIN_WS_HZ, MAX_WS_HZ = 7800, 50000
SCK_PER_WS = 64


def check_timing(rate, slot_bits=32):
    """-> SCK in Hz, or ValueError when the microphone does not run at this rate / frame."""
    if 2 * slot_bits != SCK_PER_WS:
        raise ValueError("INMP441 needs %d SCK per WS frame (32-bit slots), got %d" % (SCK_PER_WS, 2 * slot_bits))
    if not MIN_WS_HZ <= rate <= MAX_WS_HZ:
        raise ValueError("INMP441: WS %d Hz outside %d-%d Hz" % (rate, MIN_WS_HZ, MAX_WS_HZ))
    sck = rate * SCK_PER_WS
    if not MIN_SCK_HZ <= sck <= MAX_SCK_HZ:
        raise ValueError("INMP441: SCK %d Hz outside %d-%d Hz" % (sck, MIN_SCK_HZ, MAX_SCK_HZ))
    return sck
