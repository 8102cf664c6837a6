# Drivers against recording doubles: the ES8311, ES7210 and ES8388 register sequences in the order and with the
# values of Espressif's esp_codec_dev drivers (transcribed here by hand from esp-adf components/esp_codec_dev, commit
# df98ef23, independently of the driver code), their clock plans and volume scales, the TCA9554 expander and the
# ADC button ladder, MAX98357A/INMP441 timing limits, MAX98357 SD and GAIN pins, and the ESP32 I2S audio device's
# non-blocking frame hand-over.
import pytest

from uphone.drivers import es7210, es8311, es8388, inmp441, max98357, tca9554
from uphone.drivers.adc_keys import AdcKeys
from uphone.drivers.max98357 import MAX98357

EVENTS = []         # ("i2c", addr, reg, value) / ("i2s", ...) across doubles: who touched the hardware first


# -- doubles of MicroPython's machine and network modules (Pin, I2C, I2S, WDT, WLAN); test_boot uses them too

class Pin:
    IN, OUT, PULL_UP = 1, 3, 2
    log = []
    levels = {}          # pin id -> level read by value()

    made = {}

    def __init__(self, pid, mode=None, pull=None, value=None):
        self.id, self.mode, self.pull = pid, mode, pull
        Pin.made[pid] = self
        if value is not None:
            Pin.levels[pid] = value
            Pin.log.append((pid, value))

    def value(self, v=None):
        if v is None:
            return Pin.levels.get(self.id, 1)
        Pin.levels[self.id] = v
        Pin.log.append((self.id, v))


class I2C:
    """Registers per (address, register), all 0 until written, except the ES8311 chip id; devices answer scan()."""
    devices = (0x18, 0x40, 0x38)

    def __init__(self, bus=0, scl=None, sda=None, freq=400000):
        self.writes = []
        self.regs = {(0x18, 0xFD): 0x83, (0x18, 0xFE): 0x11}

    def writeto_mem(self, addr, reg, buf):
        self.writes.append((addr, reg, bytes(buf)[0]))
        self.regs[(addr, reg)] = bytes(buf)[0]
        EVENTS.append(("i2c", addr, reg, bytes(buf)[0]))

    def readfrom_mem(self, addr, reg, n):
        return bytes([self.regs.get((addr, reg), 0)])

    def scan(self):
        return list(self.devices)


class ADC:
    ATTN_11DB = 3
    made = []
    uv = 3300000            # nothing pressed: the ladder sits near the supply

    def __init__(self, pin, atten=None):
        self.pin, self.atten = pin.id, atten
        ADC.made.append(self)

    def read_uv(self):
        return ADC.uv


class I2S:
    TX, RX, MONO, STEREO = 0, 1, 0, 1
    made = []

    def __init__(self, bus, sck=None, ws=None, sd=None, mode=None, bits=16, format=0, rate=8000, ibuf=0):
        self.bus, self.sck, self.ws, self.sd = bus, sck.id, ws.id, sd.id
        self.mode, self.bits, self.format, self.rate, self.ibuf = mode, bits, format, rate, ibuf
        self.cb = None
        self.pending = None
        self.written = []
        I2S.made.append(self)

    def irq(self, cb):
        self.cb = cb

    def readinto(self, buf):
        self.pending = buf

    def write(self, buf):
        self.written.append(bytes(buf))
        self.pending = buf

    def complete(self, fill=None):
        """The background task finished the pending transfer."""
        if fill is not None:
            for i in range(len(self.pending)):
                self.pending[i] = fill
        self.pending = None
        self.cb(self)

    def deinit(self):
        pass


class WDT:
    made = []

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        WDT.made.append(self)

    def feed(self):
        self.feeds += 1


def make_machine():
    import types
    m = types.ModuleType("machine")
    Pin.log, Pin.levels, Pin.made, I2S.made, WDT.made, ADC.made = [], {}, {}, [], [], []
    ADC.uv = 3300000
    del EVENTS[:]
    m.Pin, m.I2C, m.I2S, m.WDT, m.ADC = Pin, I2C, I2S, WDT, ADC
    return m


class WLAN:
    PM_NONE, PM_PERFORMANCE, PM_POWERSAVE = 0, 1, 2

    def __init__(self, net, iface):
        self.net = net
        self.connects = 0
        self.disconnects = 0
        self._active = False
        self.pm = 1

    def active(self, on=None):
        if on is not None:
            self._active = on
        return self._active

    def connect(self, ssid, password):
        self.connects += 1
        self.net.log.append(("connect", ssid))

    def isconnected(self):
        return self.connects >= self.net.connect_on

    def status(self):
        return 201

    def disconnect(self):
        self.disconnects += 1

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def config(self, key=None, **kw):
        if kw:
            self.net.log.append(("config", kw))
            self.pm = kw.get("pm", self.pm)
            return None
        assert key == "mac"
        return b"\x24\x0a\xc4\x12\x34\x56"


def make_network(connect_on=1):
    import types
    n = types.ModuleType("network")
    n.STA_IF = 0
    n.log = []
    n.connect_on = connect_on
    n.wlans = []

    def wlan(iface):
        w = WLAN(n, iface)
        n.wlans.append(w)
        return w

    def hostname(h):
        n.log.append(("hostname", h))

    n.WLAN, n.hostname = wlan, hostname
    return n


class _NS:
    pass


FM = _NS()
FM.Pin, FM.I2C, FM.I2S, FM.WDT, FM.make_machine, FM.make_network = Pin, I2C, I2S, WDT, make_machine, make_network
FM.ADC = ADC

# -- ES8311 (esp_codec_dev device/es8311/es8311.c: es8311_open, es8311_set_fs, es8311_start, set_vol, set_mute) ---
def es8311_expected(reg02, vol, reg01=0x3F, reg44=0x08):
    return [
        (0x44, 0x08), (0x44, 0x08), (0x01, 0x30), (0x02, 0x00), (0x03, 0x10), (0x16, 0x24), (0x04, 0x10),
        (0x05, 0x00), (0x0B, 0x00), (0x0C, 0x00), (0x10, 0x1F), (0x11, 0x7F), (0x00, 0x80), (0x00, 0x80),
        (0x01, reg01), (0x06, 0x03), (0x13, 0x10), (0x1B, 0x0A), (0x1C, 0x6A), (0x44, reg44),
        (0x09, 0x0C), (0x0A, 0x0C), (0x02, reg02), (0x05, 0x00), (0x03, 0x10), (0x04, 0x20), (0x07, 0x00),
        (0x08, 0xFF), (0x06, 0x03),
        (0x00, 0x80), (0x01, reg01), (0x09, 0x0C), (0x0A, 0x0C), (0x17, 0xBF), (0x0E, 0x02), (0x12, 0x00),
        (0x14, 0x1A), (0x14, 0x1A), (0x0D, 0x01), (0x15, 0x40), (0x37, 0x08), (0x45, 0x00),
        (0x32, vol), (0x31, 0x00)]


KORVO_HW_GAIN = 20 * __import__("math").log10(3.3 / 5.0)      # esp-bsp Korvo-2: PA 5 V, DAC 3.3 V


@pytest.mark.parametrize("rate", [8000, 16000])
def test_es8311_mclk_pin_sequence(rate):
    # Korvo-2: MCLK = 256 fs on GPIO16, coeff_div rows {2048000, 8000} / {4096000, 16000}: pre_div 1, x1, OSR
    # 0x10/0x20, LRCK divider 0x0FF, SCLK divider 4
    i2c = FM.I2C()
    codec = es8311.ES8311(i2c, hw_gain_db=KORVO_HW_GAIN).init(rate, slot_bits=32, volume=70)
    assert [(r, v) for a, r, v in i2c.writes] == es8311_expected(0x00, 0xA8)
    assert all(a == 0x18 for a, r, v in i2c.writes)
    assert codec.chip_id() == (0x83, 0x11)


def test_es8311_mclk_from_sclk_clock_range():
    # SCLK as MCLK source (REG01 bit 7): SCLK x multiplier = 256 fs and SCLK >= 512 kHz (es8311_config_sample)
    with pytest.raises(ValueError, match="512000"):
        es8311.init_sequence(8000, slot_bits=16, mclk_from_sclk=True)     # 256 kHz: out of range
    seq = es8311.init_sequence(8000, slot_bits=32, mclk_from_sclk=True, volume=70)
    assert seq == es8311_expected(0x10, 161, reg01=0xBF)                 # 512 kHz x4 (REG02 bits 4:3 = 2)
    seq = es8311.init_sequence(16000, slot_bits=16, mclk_from_sclk=True, volume=70)
    assert seq == es8311_expected(0x18, 161, reg01=0xBF)                 # 512 kHz x8 (= 3)
    mclk, sclk, pre_div, mult, _ = es8311.clock_plan(16000, 32, mclk_from_sclk=True)
    assert (mclk, sclk, mult) == (4096000, 1024000, 4)
    with pytest.raises(ValueError):
        es8311.init_sequence(44100)


def test_es8311_volume_on_the_codec_db_scale():
    # esp_codec_dev: 70 % -> -15 dB on the default curve; minus the board's analog gain (-3.6 dB) -> -11.4 dB ->
    # REG32 = (dB + 95.5) * 2 truncated = 168 (0xA8, -11.5 dB). The old linear map gave 0x86 (-28.5 dB).
    from uphone.drivers import volume as V
    assert es8311.volume_reg(70, KORVO_HW_GAIN) == 0xA8
    assert V.reg_to_db(0xA8, 0, -95.5, 0xFF, 32.0) == -11.5
    assert es8311.volume_reg(70) == 161 and V.reg_to_db(161, 0, -95.5, 0xFF, 32.0) == -15.0
    assert es8311.volume_reg(100) == 0xBF                                 # 0 dB: no digital boost
    assert es8311.volume_reg(0, KORVO_HW_GAIN) == 0


def test_es8311_controls():
    i2c = FM.I2C()
    c = es8311.ES8311(i2c)
    c.set_volume(0)
    c.set_volume(50)
    c.set_mic_gain(42)
    c.mute(True)
    c.mute(False)
    assert [(r, v) for a, r, v in i2c.writes] == [(0x32, 0), (0x32, 141), (0x16, 7), (0x31, 0x60), (0x31, 0)]


# -- ES7210 (esp_codec_dev device/es7210/es7210.c: es7210_open, es7210_set_fs, es7210_start) ----------------------
def es7210_select_mic123(gain):
    """es7210_mic_select for MIC1|MIC2|MIC3 from registers that read 0 before the first pass."""
    return [(0x43, 0x00), (0x44, 0x00), (0x45, 0x00), (0x46, 0x00), (0x4B, 0xFF), (0x4C, 0xFF),
            (0x01, 0x00), (0x4B, 0x00), (0x43, 0x10), (0x43, 0x10 | gain),
            (0x01, 0x00), (0x4B, 0x00), (0x44, 0x10), (0x44, 0x10 | gain),
            (0x01, 0x00), (0x4C, 0x00), (0x45, 0x10), (0x45, 0x10 | gain),
            (0x12, 0x02)]


def test_es7210_korvo_sequence_tdm_with_reference():
    i2c = FM.I2C()
    adc = es7210.ES7210(i2c).init(es7210.MIC1 | es7210.MIC2 | es7210.MIC3, 30, host_bits=32, host_slots=2)
    writes = [(r, v) for a, r, v in i2c.writes]
    assert all(a == 0x40 for a, r, v in i2c.writes)
    g = es7210.GAIN_30DB
    assert g == 10 and es7210.gain_code(30) == 10
    opened = [(0x00, 0xFF), (0x00, 0x41), (0x01, 0x3F), (0x09, 0x30), (0x0A, 0x30), (0x23, 0x2A), (0x22, 0x0A),
              (0x20, 0x0A), (0x21, 0x2A), (0x08, 0x00), (0x40, 0x43), (0x41, 0x70), (0x42, 0x70), (0x07, 0x20),
              (0x02, 0xC1)]
    opened += [(0x43, 0x00), (0x44, 0x00), (0x45, 0x00), (0x46, 0x00), (0x4B, 0xFF), (0x4C, 0xFF),
               (0x01, 0x3F & ~0x0B), (0x4B, 0x00), (0x43, 0x10), (0x43, 0x10 | g),
               (0x01, 0x34), (0x4B, 0x00), (0x44, 0x10), (0x44, 0x10 | g),
               (0x01, 0x34 & ~0x15), (0x4C, 0x00), (0x45, 0x10), (0x45, 0x10 | g), (0x12, 0x02)]
    opened += [(0x43, 0x10 | g), (0x44, 0x10 | g), (0x45, 0x10 | g)]     # _es7210_set_channel_gain(0xF, 30)
    fs = [(0x11, 0x60), (0x11, 0x60)]       # TDM read as two 32-bit slots: 16-bit words (bits halved), I2S format
    started = [(0x01, 0x20), (0x06, 0x00), (0x40, 0x43), (0x47, 0x08), (0x48, 0x08), (0x49, 0x08), (0x4A, 0x08)]
    started += [(0x43, 0x0A), (0x44, 0x0A), (0x45, 0x0A), (0x46, 0x00), (0x4B, 0xFF), (0x4C, 0xFF),
                (0x01, 0x20), (0x4B, 0x00), (0x43, 0x1A), (0x43, 0x1A),
                (0x01, 0x20), (0x4B, 0x00), (0x44, 0x1A), (0x44, 0x1A),
                (0x01, 0x20), (0x4C, 0x00), (0x45, 0x1A), (0x45, 0x1A), (0x12, 0x02)]
    started += [(0x40, 0x43), (0x00, 0x71), (0x00, 0x41)]
    assert writes == opened + fs + started
    assert adc.tdm() and adc.set_format(32, 2) == 16
    assert es7210.ES7210(FM.I2C()).open(es7210.MIC1 | es7210.MIC2).tdm() is False   # two mics: plain I2S


# -- ES8388 (esp_codec_dev device/es8388/es8388.c: es8388_open, es8388_set_fs, es8388_start, set_vol) -------------
def test_es8388_lyrat_sequence():
    lyrat_hw_gain = KORVO_HW_GAIN           # esp-bsp esp32_lyrat: PA 5 V, DAC 3.3 V as well
    i2c = FM.I2C()
    es8388.ES8388(i2c, hw_gain_db=lyrat_hw_gain).init(16000, volume=70, mic_gain_db=24)
    writes = [(r, v) for a, r, v in i2c.writes]
    assert all(a == 0x10 for a, r, v in i2c.writes)
    # volume: -15 dB + 3.6 dB = -11.4 dB on 0xC0 (-96 dB) .. 0x00 (0 dB): int(0xC0 - 84.6 * 2) = 22 (-11 dB)
    assert writes == [
        (0x19, 0x04), (0x01, 0x50), (0x02, 0x00), (0x35, 0xA0), (0x37, 0xD0), (0x39, 0xD0), (0x08, 0x00),
        (0x04, 0xC0), (0x00, 0x12), (0x17, 0x18), (0x18, 0x02), (0x26, 0x00), (0x27, 0x90), (0x2A, 0x90),
        (0x2B, 0x80), (0x2D, 0x00), (0x1B, 0x00), (0x1A, 0x00), (0x2E, 0x1E), (0x2F, 0x1E), (0x30, 0x00),
        (0x31, 0x00), (0x04, 0x3C), (0x03, 0xFF), (0x09, 0xBB), (0x0A, 0x00), (0x0B, 0x02), (0x0C, 0x0C),
        (0x0D, 0x02), (0x11, 0x00), (0x10, 0x00), (0x03, 0x09),
        (0x0C, 0x0C), (0x17, 0x18), (0x0C, 0x0C), (0x17, 0x18),
        (0x2B, 0x80), (0x03, 0x00), (0x04, 0x3C), (0x19, 0x00),
        (0x1B, 22), (0x1A, 22), (0x09, 0x88)]
    assert es8388.clock_check(8000) == 2048000 and es8388.clock_check(16000) == 4096000
    with pytest.raises(ValueError):
        es8388.clock_check(16000, mclk_multiple=384)
    with pytest.raises(ValueError):
        es8388.init_sequence(96000)
    assert es8388.volume_reg(100) == 0x00 and es8388.volume_reg(0) == 0xC0


# -- TCA9554, ADC ladder, I2S timing limits -----------------------------------------------------------------------
def test_tca9554_leds_leave_other_pins_alone():
    i2c = FM.I2C()
    assert tca9554.probe(i2c) == 0x38
    x = tca9554.TCA9554(i2c, 0x38)
    x.setup_outputs((1 << 6) | (1 << 7), 0)
    red, blue = tca9554.ExpanderPin(x, 6), tca9554.ExpanderPin(x, 7)
    red.value(1)
    red.value(1)
    blue.value(1)
    red.value(0)
    # output register before direction (no flash), P0-P5 stay inputs at their power-up level
    assert [(r, v) for a, r, v in i2c.writes] == [(0x01, 0x3F), (0x03, 0x3F), (0x01, 0x7F), (0x01, 0xFF),
                                                   (0x01, 0xBF)]
    assert blue.value() == 1 and red.value() == 0


def test_adc_ladder_windows_from_the_bsp():
    m = FM.make_machine()
    keys = AdcKeys(m.ADC(m.Pin(5), atten=m.ADC.ATTN_11DB),
                   (("1", 2310, 2510), ("2", 1880, 2080), ("hook", 1550, 1750), ("#", 1010, 1210),
                    ("3", 720, 920), ("4", 280, 480)))
    for mv, key in ((2410, "1"), (1980, "2"), (1650, "hook"), (1110, "#"), (820, "3"), (380, "4"),
                    (3300, None), (1400, None)):
        FM.ADC.uv = mv * 1000
        assert keys.read() == key, mv


def test_i2s_timing_limits():
    assert max98357.check_timing(8000, 16) == 256000          # 16-bit mono TX: 32 BCLK per LRCLK
    with pytest.raises(ValueError):
        max98357.check_timing(4000, 16)
    assert inmp441.check_timing(8000) == 512000               # 64 SCK per WS: inside 0.5-3.2 MHz
    assert inmp441.check_timing(16000) == 1024000
    with pytest.raises(ValueError):
        inmp441.check_timing(8000, slot_bits=16)              # 32 SCK per frame: not an INMP441 frame
    with pytest.raises(ValueError):
        inmp441.check_timing(6000)


def test_max98357_pins():
    m = FM.make_machine()
    amp = MAX98357(m.Pin, sd=21, gain=19, gain_db=12)
    assert FM.Pin.levels[21] == 0 and FM.Pin.levels[19] == 0     # starts shut down; 12 dB = GAIN low
    amp.enable(True)
    amp.enable(True)
    amp.enable(False)
    assert [x for x in FM.Pin.log if x[0] == 21] == [(21, 0), (21, 1), (21, 0)]
    amp.set_gain(6)
    assert FM.Pin.levels[19] == 1
    amp.set_gain(9)
    assert amp.gain_pin.mode == FM.Pin.IN                        # floating
    with pytest.raises(ValueError):
        amp.set_gain(15)
    with pytest.raises(ValueError):
        MAX98357(m.Pin, sd=21).set_gain(6)


def test_i2s_audio_nonblocking_frames():
    from uphone.hal import esp32
    m = FM.make_machine()
    pins = {"sck": 26, "ws": 25, "sd_out": 22, "sd_in": 32, "rx_sck": 14, "rx_ws": 15}
    now = [0]
    a = esp32.I2SAudio(m, pins, 8000, clock=lambda: now[0])
    tx, rx = FM.I2S.made
    assert (tx.bus, tx.mode, tx.bits, tx.format, tx.rate, tx.ibuf) == (0, m.I2S.TX, 16, m.I2S.MONO, 8000, 1024)
    assert (rx.bus, rx.mode, rx.sck, rx.ws, rx.sd, rx.ibuf) == (1, m.I2S.RX, 14, 15, 32, 4096)
    buf = bytearray(320)
    buf[0] = 9
    a.readinto(buf)
    assert buf == bytearray(320)                # nothing captured yet: silence, no waiting
    rx.complete(fill=7)                         # the I2S task filled a frame; the next read starts at once
    assert rx.pending is not None
    a.readinto(buf)
    assert buf == bytearray([7] * 320)
    a.readinto(buf)
    assert buf == bytearray(320) and a.silent == 2     # no new capture: silence, never the last frame again
    assert a.write(bytes([1] * 320)) == 320
    assert a.write(bytes([2] * 320)) == 320     # queued in the ring while the first is in flight
    tx.complete()
    assert a.write(bytes([3] * 320)) == 320
    assert tx.written == [bytes([1] * 320), bytes([2] * 320)]
    # the callback for frame 2 is lost: after the stall time the transfer is written off and playback goes on
    now[0] += esp32._STALL_MS + 1
    a.poll(now[0])
    assert a.tx_stalled == 1 and tx.written[-1] == bytes([3] * 320)
    assert a.rx_stalled == 1                    # the capture started at 0 never completed either: a new read
    for k in range(6):                          # frame 3 is in flight; the ring takes 4 of these 6
        a.write(bytes([10 + k] * 320))
    assert a.dropped == 2
    # transfers that never complete (this fake's task is dead): after three stalls in a row each channel is set
    # up again, and the capture gives silence meanwhile
    for k in range(esp32._REOPEN_AFTER - 1):
        now[0] += esp32._STALL_MS + 1
        a.poll(now[0])
    assert a.rx_stalled == 3 and a.tx_stalled == 3 and a.reopened == 2
    assert [i.mode for i in FM.I2S.made[2:]] == [m.I2S.TX, m.I2S.RX]
    a.readinto(buf)
    assert buf == bytearray(320)


def test_i2s_audio_keeps_a_ctrl_c_that_lands_in_its_callback():
    # a KeyboardInterrupt raised inside a scheduled callback would be printed and dropped by the scheduler: the
    # callback keeps it and the loop's poll() raises it, so Ctrl-C still reaches the boot code (and the REPL)
    from uphone.hal import esp32
    m = FM.make_machine()
    pins = {"sck": 26, "ws": 25, "sd_out": 22, "sd_in": 32, "rx_sck": 14, "rx_ws": 15}
    a = esp32.I2SAudio(m, pins, 8000, clock=lambda: 0)
    tx, rx = FM.I2S.made
    a.write(bytes(320))
    a.write(bytes(320))

    def interrupted(buf):
        raise KeyboardInterrupt
    tx.write = interrupted
    tx.complete()                                   # the callback sends the next frame: Ctrl-C lands there
    with pytest.raises(KeyboardInterrupt):
        a.poll(0)
    a.poll(0)                                       # raised once


# -- full duplex: one I2S controller, TX and RX on one clock (board/modules/i2s_duplex + uphone.hal.duplex) --------
class FakeDuplex:
    """i2s_duplex.I2SDuplex double: a TX DMA queue of `space` bytes and an RX wire fed by the test; both calls
    return at once with what fits / what is there, as the C module's timeout-0 calls do."""
    made = []

    def __init__(self, id=0, sck=None, ws=None, dout=None, din=None, rate=16000, mck=-1, bits=32, frames=320, bufs=4):
        self.args = dict(id=id, sck=sck, ws=ws, dout=dout, din=din, rate=rate, mck=mck, bits=bits, frames=frames,
                         bufs=bufs)
        self.space = frames * bits // 4 * bufs
        self.sent = bytearray()
        self.wire = bytearray()
        FakeDuplex.made.append(self)
        EVENTS.append(("i2s", "duplex", rate, bits))

    def write(self, buf):
        n = min(len(buf), self.space)
        self.sent += bytes(buf[:n])
        self.space -= n
        return n

    def readinto(self, buf):
        n = min(len(buf), len(self.wire))
        buf[:n] = self.wire[:n]
        del self.wire[:n]
        return n

    def deinit(self):
        pass


def s16(v):
    return (v & 0xFFFF).to_bytes(2, "little")


def korvo_wire(mics, refs):
    """What the ES7210 sends in TDM read as 32-bit stereo (esp-adf AEC example for the Korvo-2, "RMNM"):
    left slot = ref (low half) + mic (high half), right slot = unused + second mic."""
    out = bytearray()
    for m, r in zip(mics, refs):
        out += s16(r) + s16(m) + s16(0) + s16(-m)
    return out


def test_duplex_framing_korvo_mic_and_echo_reference():
    from uphone.hal import duplex
    lay = duplex.Layout(slot_bits=32, tx=(2, 6), mic=2, ref=0)
    dev = FakeDuplex(rate=16000, bits=32, frames=320)
    a = duplex.DuplexAudio(dev, 16000, lay)
    assert a.samples == 320 and lay.frame == 8
    mic, ref = bytearray(640), bytearray(640)
    a.readinto(mic)
    assert mic == bytearray(640)                            # nothing captured yet: silence, no waiting
    mics = [(i * 37) % 30000 - 15000 for i in range(320)]
    refs = [(i * 91) % 20000 - 10000 for i in range(320)]
    wire = korvo_wire(mics, refs)
    dev.wire += wire[:1000]                                 # a partial frame: kept, not handed out
    a.readinto(mic)
    assert mic == bytearray(640) and a.frames_in == 0
    dev.wire += wire[1000:]
    a.readinto(mic)
    a.read_ref(ref)
    assert mic == b"".join(s16(v) for v in mics)            # sample-aligned: same frame, same instants
    assert ref == b"".join(s16(v) for v in refs)
    a.readinto(mic)                                         # nothing new on the wire (a stalled DMA): silence,
    a.read_ref(ref)                                         # never the last frame again (a buzz)
    assert mic == bytearray(640) and ref == bytearray(640) and a.silent == 3
    # playback: each 16-bit sample goes to the upper half of both 32-bit slots (16-bit I2S in 32-bit slots)
    play = b"".join(s16(v) for v in mics)
    assert a.write(play) == 640
    assert bytes(dev.sent[:16]) == b"\0\0" + play[0:2] + b"\0\0" + play[0:2] + b"\0\0" + play[2:4] + b"\0\0" + play[2:4]
    assert len(dev.sent) == 2560


def test_duplex_capture_keeps_frames_that_complete_between_two_reads():
    # the DMA completes a buffer every 20 ms and so does the media pump read, but their moments jitter: two frames
    # may complete between two reads (then none before the next); both are returned, in order, no silence
    from uphone.hal import duplex
    lay = duplex.Layout(slot_bits=32, tx=(2, 6), mic=2, ref=0)
    dev = FakeDuplex(rate=8000, bits=32, frames=160)
    a = duplex.DuplexAudio(dev, 8000, lay)
    mic, ref = bytearray(320), bytearray(320)

    def frame(n):
        return korvo_wire([n * 10 + i % 7 for i in range(160)], [-n] * 160)

    dev.wire += frame(1) + frame(2)
    got = []
    for n in range(3, 60):
        a.readinto(mic)
        a.read_ref(ref)
        got.append((mic[0] | mic[1] << 8, ref[0] | ref[1] << 8))
        if n % 2:
            dev.wire += frame(n) + frame(n + 1) if n + 1 < 60 else frame(n)
    firsts = [m // 10 for m, _r in got if m]
    assert firsts[:5] == [1, 2, 3, 4, 5] and a.silent == 0, got[:6]
    assert all(r == (-f) & 0xFFFF for (m, r), f in zip(got, firsts))     # each frame with its own reference
    # a backlog that stands for _TRIM reads is latency: its oldest frame goes (counted), then none stands
    assert a.overrun == 1 and firsts == sorted(firsts) and len(set(firsts)) == len(firsts)
    # the ring holds 3 frames: a pump that stopped for 5 loses the 2 oldest, not the newest
    b = duplex.DuplexAudio(FakeDuplex(rate=8000, bits=32, frames=160), 8000, lay)
    b.readinto(mic)
    for n in range(1, 6):
        b.dev.wire += frame(n)
    b.readinto(mic)
    assert mic[0] | mic[1] << 8 == 30 and b.overrun == 2 and b.frames_in == 5
    # nobody reading (no call) for 100 ms: the newest frame only, a call starts with no stale audio
    b.poll(0)
    for n in range(6, 9):
        b.dev.wire += frame(n)
    b.poll(101)
    b.dev.wire += frame(9)
    b.readinto(mic)
    assert mic[0] | mic[1] << 8 == 80 and b.overrun == 2 and b._count == 1


def test_duplex_tx_queue_full_drops_a_frame_not_the_loop():
    from uphone.hal import duplex
    lay = duplex.Layout(slot_bits=16, tx=(0, 2), mic=0, ref=None)     # LyraT: ES8388, 16-bit slots
    dev = FakeDuplex(rate=8000, bits=16, frames=160, bufs=2)
    a = duplex.DuplexAudio(dev, 8000, lay)
    frame = bytes(range(256)) + bytes(64)
    assert a.write(frame) == 320 and a.write(frame) == 320 and len(dev.sent) == 1280     # both DMA buffers full
    assert a.write(frame) == 320                            # queued partly: 0 bytes fit, rest pending
    assert a.write(frame) == 0 and a.dropped == 1           # still pending: dropped, returns at once
    dev.space = 10000
    assert a.write(frame) == 320 and len(dev.sent) == 1280 + 640 + 640
    ref = bytearray(b"\1" * 320)
    a.read_ref(ref)
    assert ref == bytearray(320)                            # no reference channel on this board


def test_codec_board_starts_i2s_before_the_codecs(monkeypatch):
    import json
    import os
    import sys
    import types
    from uphone import boards
    from uphone.hal import codec
    mod = types.ModuleType("i2s_duplex")
    mod.I2SDuplex = FakeDuplex
    monkeypatch.setitem(sys.modules, "i2s_duplex", mod)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name, rate, want in (("korvo2_es8311", 8000, (0x18, 0x40)), ("lyrat_es8388", 16000, (0x10,))):
        m = FM.make_machine()
        FakeDuplex.made = []
        with open(os.path.join(root, "board", name, "board.json")) as f:
            board = boards._merge(boards.DEFAULT, json.load(f))
        audio, codecs = codec.start(m, board, {"volume_speaker": 70}, rate, m.I2C())
        assert EVENTS[0][0] == "i2s" and len(EVENTS) > 1 and all(e[0] == "i2c" for e in EVENTS[1:]), EVENTS[:3]
        assert tuple(sorted({e[1] for e in EVENTS[1:]})) == want
        d = FakeDuplex.made[0].args
        p = board["pins"]["i2s"]
        assert (d["mck"], d["sck"], d["ws"], d["dout"], d["din"], d["rate"]) == (
            p["mck"], p["sck"], p["ws"], p["sd_out"], p["sd_in"], rate)
        assert d["frames"] == rate // 50
        if name == "korvo2_es8311":
            assert d["bits"] == 32 and rate * 64 >= es8311.MIN_SCLK_HZ     # BCLK 512 kHz at 8 kHz
            assert audio.layout.ref is not None
        else:
            assert d["bits"] == 16 and audio.layout.ref is None
    monkeypatch.delitem(sys.modules, "i2s_duplex")
    m = FM.make_machine()
    logs = []
    assert codec.start(m, board, {}, 16000, m.I2C(), logs.append) == (None, [])
    assert "make firmware BOARD=lyrat_es8388" in logs[0]


class HalPhone:
    """The parts of Phone that Esp32Hal touches at start-up and in poll()."""

    def __init__(self):
        self.audio = None
        self.mwi = None
        self.events = []

    def set_audio(self, source, sink):
        self.audio = (source, sink)

    def current_call(self):
        return None

    def sessions(self):
        return []

    def user_event(self, session, ev, args):
        self.events.append((ev, args))
        return (0, None, "")


def codec_board_hal(name, monkeypatch, rate=16000):
    import json
    import os
    import sys
    import types
    from uphone import boards
    from uphone.hal import esp32
    mod = types.ModuleType("i2s_duplex")
    mod.I2SDuplex = FakeDuplex
    monkeypatch.setitem(sys.modules, "i2s_duplex", mod)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "board", name, "board.json")) as f:
        board = boards._merge(boards.DEFAULT, json.load(f))
    m = FM.make_machine()
    FakeDuplex.made = []
    phone = HalPhone()
    logs = []
    hal = esp32.Esp32Hal(m, board, {"audio": {"rate": rate, "volume_speaker": 70}}, phone, logs.append)
    return hal, phone, m, logs


@pytest.mark.parametrize("name", ["korvo2_es8311", "lyrat_es8388"])
def test_codec_board_hal_plays_and_captures(name, monkeypatch):
    from uphone.hal import duplex
    hal, phone, m, logs = codec_board_hal(name, monkeypatch)
    assert isinstance(hal.audio, duplex.DuplexAudio) and phone.audio == (hal.audio, hal.audio)
    assert not FM.I2S.made                                  # stock machine.I2S not used on these boards
    first_i2c = next(i for i, e in enumerate(EVENTS) if e[0] == "i2c")
    assert EVENTS[first_i2c - 1][0] == "i2s"                # the duplex clock runs before any codec register
    regs = {(e[1], e[2]): e[3] for e in EVENTS if e[0] == "i2c"}
    if name == "korvo2_es8311":
        assert regs[(0x18, 0x32)] == 0xA8 and regs[(0x40, 0x12)] == 0x02      # -11.5 dB; ES7210 in TDM
        assert hal.audio.layout.ref == 0
    else:
        assert regs[(0x10, 0x1B)] == 22 and regs[(0x10, 0x03)] == 0x00          # ES8388 DAC volume, ADC on
    assert hal.amp is not None and hal.amp.sd.id == board_pin(name, "amp_enable")


def board_pin(name, key):
    import json
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "board", name, "board.json")) as f:
        return json.load(f)["pins"][key]


def test_korvo_keys_from_the_adc_ladder_and_leds_on_the_expander(monkeypatch):
    hal, phone, m, logs = codec_board_hal("korvo2_es8311", monkeypatch)
    adc = FM.ADC.made[0]
    assert (adc.pin, adc.atten) == (5, m.ADC.ATTN_11DB)
    # the expander: LED bits P6/P7 made outputs, low, before anything else on 0x38; P0-P5 left as inputs
    x = [(e[2], e[3]) for e in EVENTS if e[0] == "i2c" and e[1] == 0x38]
    assert x == [(0x01, 0x3F), (0x03, 0x3F)]
    assert not [p for p in FM.Pin.made if p in (1, 4, 6, 7, 15, 21, 39, 40, 41, 42)]    # board parts untouched
    FM.ADC.uv = 2410000                     # REC: key "1"
    assert hal.scan_key() == "1"
    FM.ADC.uv = 1650000                     # PLAY: the hook button, not a key
    assert hal.scan_key() is None
    levels = [hal.off_hook_raw(now) for now in range(0, 100, 10)]
    assert levels[-1] is True
    FM.ADC.uv = 3300000
    hal.poll(200)                           # idle, registered nowhere: LEDs off
    hal.leds["ring"].value(1)
    assert [(e[2], e[3]) for e in EVENTS if e[0] == "i2c" and e[1] == 0x38][-1] == (0x01, 0x7F)    # P6 (red) on


def test_input_only_pins_get_no_pull_request(monkeypatch):
    hal, phone, m, logs = codec_board_hal("lyrat_es8388", monkeypatch)
    assert FM.Pin.made[36].pull is None and FM.Pin.made[36].mode == FM.Pin.IN      # REC key, external pull-up
    assert 19 not in FM.Pin.made                                                   # headphone detect left alone
    assert FM.Pin.made[22].mode == FM.Pin.OUT
    from uphone import boards
    from uphone.hal import esp32
    m = FM.make_machine()
    esp32.Esp32Hal(m, boards._merge(boards.DEFAULT, {}), {}, HalPhone(), logs.append)
    assert [FM.Pin.made[c].pull for c in (34, 35, 36)] == [None, None, None]      # keypad columns: external
    assert FM.Pin.made[27].pull == FM.Pin.PULL_UP                                 # hook: internal pull-up
    assert not [p for p in FM.Pin.made if p in (0, 2, 5, 12, 15, 16, 17)]          # no strapping / PSRAM pins


MP_DUPLEX = """
from uphone.hal import duplex
from uphone.drivers import es8311, es8388, es7210, volume
class Dev:
    def __init__(self):
        self.wire = bytearray()
        self.sent = bytearray()
    def write(self, b):
        self.sent += bytes(b)
        return len(b)
    def readinto(self, b):
        n = min(len(b), len(self.wire))
        b[:n] = self.wire[:n]
        self.wire = self.wire[n:]
        return n
d = Dev()
a = duplex.DuplexAudio(d, 16000, duplex.Layout(32, (2, 6), 2, 0))
for k in range(320):
    m, r = (k * 37) & 0xFFFF, (k * 91) & 0xFFFF
    d.wire += bytes([r & 255, r >> 8, m & 255, m >> 8, 0, 0, 0, 0])
mic, ref = bytearray(640), bytearray(640)
a.readinto(mic)
a.read_ref(ref)
a.write(bytes(range(256)) * 2 + bytes(128))
hw = volume.hw_gain_db(3.3, 5.0, 0)
print(sum(mic), sum(ref), mic[2:4] == bytes([37, 0]), ref[2:4] == bytes([91, 0]), sum(d.sent), len(d.sent))
print(es8311.init_sequence(8000, 32, True, 70, hw)[-2:], es8388.init_sequence(16000, 70, hw)[-3:])
"""


def test_duplex_framing_and_codec_values_on_micropython(mp):
    # the same framing and register values inside MicroPython v1.27 (firmware/ as on the phone)
    out = mp(MP_DUPLEX)
    import io
    import contextlib
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(MP_DUPLEX, "mp_duplex", "exec"), {})
    assert out.split() == buf.getvalue().split()
    assert "True True" in out
