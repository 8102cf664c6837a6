# Drivers against recording doubles: the ES8311 datasheet init sequence in order over I2C, volume/gain/mute,
# MAX98357 SD and GAIN pins, and the ESP32 I2S audio device's non-blocking frame hand-over.
import pytest

from uphone.drivers import es8311
from uphone.drivers.max98357 import MAX98357


# -- doubles of MicroPython's machine and network modules (Pin, I2C, I2S, WDT, WLAN); test_boot uses them too

class Pin:
    IN, OUT, PULL_UP = 1, 3, 2
    log = []
    levels = {}          # pin id -> level read by value()

    def __init__(self, pid, mode=None, pull=None, value=None):
        self.id, self.mode, self.pull = pid, mode, pull
        if value is not None:
            Pin.levels[pid] = value
            Pin.log.append((pid, value))

    def value(self, v=None):
        if v is None:
            return Pin.levels.get(self.id, 1)
        Pin.levels[self.id] = v
        Pin.log.append((self.id, v))


class I2C:
    def __init__(self, bus=0, scl=None, sda=None, freq=400000):
        self.writes = []
        self.regs = {0xFD: 0x83, 0xFE: 0x11}

    def writeto_mem(self, addr, reg, buf):
        self.writes.append((addr, reg, bytes(buf)[0]))
        self.regs[reg] = bytes(buf)[0]

    def readfrom_mem(self, addr, reg, n):
        return bytes([self.regs.get(reg, 0)])


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
    Pin.log, Pin.levels, I2S.made, WDT.made = [], {}, [], []
    m.Pin, m.I2C, m.I2S, m.WDT = Pin, I2C, I2S, WDT
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

SEQ = [(0x00, 0x1F), (0x00, 0x00), (0x00, 0x80), (0x01, 0xBF), (0x02, 0x18), (0x03, 0x10), (0x04, 0x10),
       (0x05, 0x00), (0x06, 0x03), (0x07, 0x00), (0x08, 0xFF), (0x09, 0x0C), (0x0A, 0x0C), (0x0D, 0x01),
       (0x0E, 0x02), (0x12, 0x00), (0x13, 0x10), (0x14, 0x1A), (0x16, 0x04), (0x17, 0xBF), (0x1C, 0x6A),
       (0x37, 0x08), (0x32, 0xBF), (0x31, 0x00)]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_es8311_init_writes_datasheet_sequence_in_order(rate):
    i2c = FM.I2C()
    sleeps = []
    codec = es8311.ES8311(i2c, sleep_ms=sleeps.append).init(rate, volume=100, mic_gain_db=24)
    assert [(r, v) for a, r, v in i2c.writes] == SEQ
    assert all(a == 0x18 for a, r, v in i2c.writes)
    assert sleeps == [20]                        # after the reset write, before anything else
    assert i2c.writes[3][2] & 0x80               # MCLK from SCLK: no MCLK pin needed
    assert codec.chip_id() == (0x83, 0x11)


def test_es8311_controls():
    i2c = FM.I2C()
    c = es8311.ES8311(i2c, sleep_ms=lambda ms: None)
    c.set_volume(0)
    c.set_volume(50)
    c.set_mic_gain(42)
    c.mute(True)
    c.mute(False)
    assert [(r, v) for a, r, v in i2c.writes] == [(0x32, 0), (0x32, 96), (0x16, 7), (0x31, 0x60), (0x31, 0)]
    with pytest.raises(ValueError):
        es8311.init_sequence(44100)


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
