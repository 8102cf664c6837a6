# TCA9554 / TCA9554A 8-bit I2C I/O expander: the Korvo-2's LEDs (red P6, blue P7) and LCD control lines sit on one.
# Registers (TI TCA9554 datasheet, "Register Descriptions"): 0x00 input port, 0x01 output port, 0x02 polarity
# inversion, 0x03 configuration (1 = input, the power-up value 0xFF; 0 = output). Addresses: TCA9554 0x20-0x27,
# TCA9554A 0x38-0x3F. esp-bsp bsp/esp32_s3_korvo_2/src/bsp_io_expander.c probes 0x38 (TCA9554A, address pins 000)
# first, then 0x20; components/io_expander/esp_io_expander_tca9554 uses the same register map.
from uphone.compat import const

_OUTPUT = const(0x01)
_CONFIG = const(0x03)
ADDRESSES = (0x38, 0x20)


def probe(i2c, addrs=ADDRESSES):
    """-> the first of addrs that answers on the bus, or None."""
    present = i2c.scan()
    for a in addrs:
        if a in present:
            return a
    return None


class TCA9554:
    """Drives only the pins it is given (mask); the others keep their power-up state (inputs), so the board's own
    lines on the same chip (LCD reset/CS on the Korvo-2) are left alone."""

    def __init__(self, i2c, addr):
        self.i2c = i2c
        self.addr = addr
        self._b = bytearray(1)
        self.out = 0xFF             # power-up output register
        self.config = 0xFF          # power-up: all inputs

    def _write(self, reg, value):
        self._b[0] = value & 0xFF
        self.i2c.writeto_mem(self.addr, reg, self._b)

    def setup_outputs(self, mask, level=0):
        """Make the pins in mask outputs at level (0/1 for all of them): the level is written before the direction,
        so an LED does not flash on while the pin turns into an output."""
        self.out = (self.out & ~mask) | (mask if level else 0)
        self._write(_OUTPUT, self.out)
        self.config &= ~mask
        self._write(_CONFIG, self.config)

    def set(self, pin, on):
        bit = 1 << pin
        new = (self.out | bit) if on else (self.out & ~bit)
        if new != self.out:
            self.out = new
            self._write(_OUTPUT, new)


class ExpanderPin:
    """One expander output with the machine.Pin value() interface the handset code drives."""

    def __init__(self, expander, pin):
        self.x, self.pin = expander, pin

    def value(self, v=None):
        if v is None:
            return (self.x.out >> self.pin) & 1
        self.x.set(self.pin, v)
        return None
