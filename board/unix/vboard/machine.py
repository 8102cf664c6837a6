# Virtual board: the `machine` module of a simulated ESP32 (MicroPython v1.27 ports/esp32 behaviour), for the
# frozen unix port that host_tools/virtual_board.py runs as the board's CPU. On v1.27 `machine` is an extensible
# built-in (extmod/modmachine.c MP_REGISTER_EXTENSIBLE_MODULE), so this file on the child's MICROPYPATH is what
# `import machine` finds; the unix port's own module stays reachable as `umachine`.
#
# Why these modules are on MICROPYPATH and not frozen through board/unix/manifest.py: that manifest builds the one
# desktop runtime every phone-process test uses too, where `machine` must stay the unix port's; this hardware only
# works under a supervisor (it talks to it over UDP), and it is the board's hardware, not firmware. The child
# imports them before it mounts the board folder at "/", so they stay loaded like built-ins.
#
# What is simulated, and from which source:
#   Pin      levels in a table; inputs read their pull level unless a test drives them (`pin N L` on the
#            supervisor) or an output is shorted to them (`short A B`: a keypad key), as the pad would.
#   I2S      ports/esp32/machine_i2s.c: DMA buffers of 256 frames, at least 2 (get_dma_buf_count), RX always
#            32-bit stereo frames in DMA, non-blocking mode = a background task with a 1-slot descriptor queue
#            (xQueueSend(..., 0): a second request while one waits is dropped) that blocks until the DMA took or
#            gave the whole buffer, then mp_sched_schedule(callback) (a full scheduler queue loses the callback).
#            DMA time runs in real time (ticks_us) in one engine thread. Faults for tests: stall (the DMA stops
#            completing), lose N callbacks, late callbacks by N ms.
#   WDT      ports/esp32/machine_wdt.c: one task-watchdog user kept in a static, so it survives a soft reset and
#            cannot be stopped; WDT(timeout=) again reconfigures it. The timer itself runs in the supervisor,
#            which kills and restarts this process when it expires (a hard reset: boot.py and main.py run).
#   reset_cause, reset, soft_reset, unique_id, freq, idle: ports/esp32/modmachine.c.
#   I2C      the board's bus (virtual_board --board): the codecs and the I/O expander as register files on the
#            board's SCL/SDA pins (ES8311 0x18 with its chip id in 0xFD/0xFE, ES7210 0x40, TCA9554A 0x38 with
#            the TI datasheet's power-up values, ES8388 0x10); absent addresses, other pins or a bare module
#            (no --board) NACK every transfer (OSError ENODEV) and scan() finds nothing. Registers hold what was
#            written (other reset values are not modelled: the datasheets' tables are not in this repository);
#            i2s_duplex.py reads them to know whether the codecs run (see there).
#   ADC      ADC(pin, atten=): read_uv/read_u16/read of a voltage a test sets (`adc PIN MV`), clipped at the
#            attenuation's range (ESP-IDF ADC oneshot guide: 12 dB on the ESP32-S3 reads 0-3100 mV, 11 dB on the
#            ESP32 150-2450 mV); a board's button ladder idles at 3300 mV (no key pressed). No noise, exact.
#   board    external pull-ups a board has (generic_max98357: 10 kOhm on the keypad columns GPIO34-36, its README;
#            lyrat_es8388: the REC key's on GPIO36): an input no one drives reads 1 there.
import _thread
import math
import micropython
import struct
import time

import _vbhw

try:
    from umachine import mem8, mem16, mem32, time_pulse_us  # noqa: F401  (the unix port's, unchanged)
except ImportError:
    pass

# reset causes (ports/esp32/modmachine.c reset_reason_t)
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_freq = 160000000

# the parts a board fits around the chip (UPHONE_VB_BOARD, virtual_board --board NAME)
_PARTS = {
    "generic_max98357": {"pull": {34: 1, 35: 1, 36: 1}},
    "korvo2_es8311": {"i2c_pins": (18, 17), "i2c": {0x18: "es8311", 0x40: "es7210", 0x38: "tca9554"},
                      "adc": {5: 3300}, "s3": True},
    "lyrat_es8388": {"pull": {36: 1}, "i2c_pins": (23, 18), "i2c": {0x10: "es8388"}},
}.get(_vbhw.BOARD, {})


def reset_cause():
    return _vbhw.RESET_CAUSE


def reset():
    """esp_restart(): the supervisor kills this process and boots a new one (boot.py, then main.py)."""
    _vbhw.send("reset")
    while True:
        time.sleep_ms(100)


def soft_reset():
    # extmod/modmachine.c: pyexec_system_exit = PYEXEC_FORCED_EXIT; raise SystemExit. On the unix port the REPL
    # then ends the process, which the supervisor reports as "MPY: soft reboot" and starts again.
    raise SystemExit


def unique_id():
    mac = _vbhw.BOARD_ID
    h = 0x240AC4000000 | (sum(mac.encode()) * 2654435761 & 0xFFFFFF)
    return bytes((h >> s) & 0xFF for s in (40, 32, 24, 16, 8, 0))


def freq(hz=None):
    global _freq
    if hz is None:
        return _freq
    if hz not in (20000000, 40000000, 80000000, 160000000, 240000000):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    _freq = hz


def idle():
    time.sleep_ms(1)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


# -- pins ---------------------------------------------------------------------------------------------------------
_levels = {}        # pin -> level driven by an output, or set from outside (`pin N L`)
_modes = {}         # pin -> (mode, pull)
_shorts = []        # (a, b): a closed switch between two pads (a keypad key)


def _set_level(words):
    _levels[int(words[1])] = int(words[2])


def _short(words):
    pair = (int(words[1]), int(words[2]))
    if words[0] == "short":
        if pair not in _shorts:
            _shorts.append(pair)
    elif pair in _shorts:
        _shorts.remove(pair)


_vbhw.on("pin", _set_level)
_vbhw.on("short", _short)
_vbhw.on("open", _short)


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2
    WAKE_LOW = 4
    WAKE_HIGH = 5

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        if not isinstance(id, int) or not 0 <= id <= 48:
            raise ValueError("invalid pin")
        self.id = id
        self._irq = None
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        m, p = _modes.get(self.id, (Pin.IN, None))
        _modes[self.id] = (m if mode == -1 else mode, p if pull == -1 else pull)
        if value is not None:
            _levels[self.id] = 1 if value else 0

    def value(self, v=None):
        _vbhw.poll()
        if v is not None:
            _levels[self.id] = 1 if v else 0
            return None
        mode, pull = _modes.get(self.id, (Pin.IN, None))
        if mode == Pin.OUT:
            return _levels.get(self.id, 0)
        for a, b in _shorts:
            other = b if a == self.id else a if b == self.id else None
            if other is not None and _modes.get(other, (Pin.IN,))[0] == Pin.OUT:
                return _levels.get(other, 0)
        if self.id in _levels:
            return _levels[self.id]
        ext = _PARTS.get("pull", {}).get(self.id)
        if ext is not None:
            return ext                  # the board's own resistor
        return 1 if pull == Pin.PULL_UP else 0

    __call__ = value

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, wake=None):
        self._irq = (handler, trigger)
        return self._irq

    def __repr__(self):
        return "Pin(%d)" % self.id


class Signal:
    def __init__(self, pin, invert=False):
        self.pin, self.invert = pin, invert

    def value(self, v=None):
        if v is None:
            return self.pin.value() ^ (1 if self.invert else 0)
        self.pin.value((1 if v else 0) ^ (1 if self.invert else 0))

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class _Target:
    """An I2C target as a register file: a write's first byte sets the register pointer, the next bytes go to
    consecutive registers; a read reads from the pointer on (multi-register transfers are modelled as
    auto-increment; uPhone's drivers move one register at a time)."""

    def __init__(self, name, regs=()):
        self.name = name
        self.r = bytearray(256)
        for k, v in regs:
            self.r[k] = v
        self.ptr = 0
        self.writes = 0

    def write(self, data):
        if len(data):
            self.ptr = data[0]
            for b in data[1:]:
                self.store(self.ptr, b)
                self.ptr = (self.ptr + 1) & 0xFF

    def store(self, reg, v):
        self.r[reg] = v
        self.writes += 1

    def load(self, reg):
        return self.r[reg]

    def read(self, n):
        out = bytearray(n)
        for i in range(n):
            out[i] = self.load(self.ptr)
            self.ptr = (self.ptr + 1) & 0xFF
        return out


class _TCA9554(_Target):
    """TI TCA9554(A): 0 input port, 1 output port, 2 polarity inversion, 3 configuration (1 = input); power-up
    output 0xFF, polarity 0x00, configuration 0xFF ("Register Descriptions"). The pointer does not move on its own.
    Inputs read 1 (nothing pulls them low here); outputs read back their output bit."""

    def __init__(self, name):
        _Target.__init__(self, name, ((1, 0xFF), (3, 0xFF)))

    def write(self, data):
        if len(data):
            self.ptr = data[0] & 3
            for b in data[1:]:
                self.store(self.ptr, b)

    def load(self, reg):
        reg &= 3
        if reg == 0:
            cfg, out = self.r[3], self.r[1]
            return (cfg | (out & ~cfg & 0xFF)) ^ self.r[2]
        return self.r[reg]

    def read(self, n):
        return bytearray(self.load(self.ptr) for _ in range(n))


def _make_target(kind):
    if kind == "tca9554":
        return _TCA9554(kind)
    if kind == "es8311":
        return _Target(kind, ((0xFD, 0x83), (0xFE, 0x11)))    # CHIP_ID1/2 (esp_codec_dev es8311.c checks them)
    return _Target(kind)


# the board's I2C targets by address: one bus, made with the first I2C() on the board's pins, kept across
# re-creations (the chips keep their registers while powered)
i2c_targets = {}


class I2C:
    """machine.I2C (ports/esp32/machine_i2c.c, hardware I2C): the ESP32 port raises OSError(ENODEV) when an
    address is NACKed. Targets answer only on the board's SCL/SDA pins."""

    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self.id = id
        pins = tuple(p.id if isinstance(p, Pin) else p for p in (scl, sda))
        self._on_board = pins == _PARTS.get("i2c_pins")
        if self._on_board and not i2c_targets:
            for a, kind in _PARTS.get("i2c", {}).items():
                i2c_targets[a] = _make_target(kind)

    def _dev(self, addr):
        d = i2c_targets.get(addr) if self._on_board else None
        if d is None:
            raise OSError(19)       # ENODEV: no ACK
        return d

    def scan(self):
        return sorted(i2c_targets) if self._on_board else []

    def writeto(self, addr, buf, stop=True):
        self._dev(addr).write(buf)
        return len(buf) + 1         # ACKs: the address byte and every data byte

    def readfrom(self, addr, nbytes, stop=True):
        return bytes(self._dev(addr).read(nbytes))

    def readfrom_into(self, addr, buf, stop=True):
        buf[:] = self._dev(addr).read(len(buf))

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        d = self._dev(addr)
        d.write(bytes([memaddr & 0xFF]) + bytes(buf))

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        d = self._dev(addr)
        d.write(bytes([memaddr & 0xFF]))
        return bytes(d.read(nbytes))

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        buf[:] = self.readfrom_mem(addr, memaddr, len(buf))


# -- ADC ------------------------------------------------------------------------------------------------------------
_adc_mv = dict(_PARTS.get("adc", {}))       # pin -> millivolts on it


def _adc_cmd(words):
    # adc <pin> <mV>: a voltage on the pin (a button of a ladder pressed: its window's middle)
    if len(words) > 2:
        _adc_mv[int(words[1])] = int(words[2])


_vbhw.on("adc", _adc_cmd)


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_9BIT = 9
    WIDTH_10BIT = 10
    WIDTH_11BIT = 11
    WIDTH_12BIT = 12
    # full scale by attenuation (ESP-IDF ADC oneshot guide): ESP32-S3 950/1250/1750/3100 mV, ESP32 950/1250/1750/2450
    _TOP = ((950, 1250, 1750, 3100), (950, 1250, 1750, 2450))

    def __init__(self, pin, *, atten=None):
        self.pin = pin.id if isinstance(pin, Pin) else pin
        self._atten = ADC.ATTN_0DB if atten is None else atten

    def atten(self, a):
        self._atten = a

    def width(self, w):
        pass

    def _mv(self):
        _vbhw.poll()
        top = ADC._TOP[0 if _PARTS.get("s3") else 1][self._atten]
        return max(0, min(_adc_mv.get(self.pin, 0), top)), top

    def read_uv(self):
        return self._mv()[0] * 1000

    def read_u16(self):
        mv, top = self._mv()
        return mv * 65535 // top

    def read(self):
        mv, top = self._mv()
        return mv * 4095 // top


# -- watchdog -------------------------------------------------------------------------------------------------------
_FEED_EVERY_MS = 500        # feeds are rate-limited: one datagram per 500 ms (or timeout/8) however often feed() runs


class WDT:
    _timeout = 0
    _sent = 0

    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError()
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        # esp_task_wdt_reconfigure: a new timeout, counted from now; the user handle is added once and kept
        WDT._timeout = timeout
        WDT._sent = time.ticks_ms()
        _vbhw.send("wdt %d" % timeout)

    def feed(self):
        now = time.ticks_ms()
        if time.ticks_diff(now, WDT._sent) >= min(_FEED_EVERY_MS, WDT._timeout // 8):
            WDT._sent = now
            _vbhw.send(b"feed")


# -- I2S ------------------------------------------------------------------------------------------------------------
# One DMA engine thread serves every I2S object and owns their DMA state. The app's thread only appends requests
# (readinto/write), sets fault switches and reads counters: single operations that the GIL makes atomic (the runtime
# is built with it, host_tools/runtime.py). No lock is shared with the app's thread on purpose: scheduled callbacks
# run at any bytecode of that thread, so a callback calling readinto() while the thread held a lock would deadlock.
_DMA_FRAMES = 256           # DMA_BUF_LEN_IN_I2S_FRAMES
_TICK_MS = 2                # the DMA engine's time step
_running = []               # I2S objects the DMA engine serves
_engine = []                # one engine thread, started with the first I2S
_mic = ["tone", 440]        # what the microphones hear: tone <hz> | ramp | noise | silence (`mic ...`, supervisor)
# the acoustic path from a codec board's speaker back into its microphones (`echo <gain %> <delay ms>`); i2s_duplex
# adds it to what the ADC captures
echo = [0, 0]
_NOISE_N = 4093             # a prime: a noise frame never lines up with the table's repeat
_noise = []


def noise_table():
    """White-ish noise, +-8000, from a 16-bit LCG (x * 75 + 74 mod 65537: small ints, no allocation per sample)."""
    if not _noise:
        x = 1
        for _ in range(_NOISE_N):
            x = (x * 75 + 74) % 65537
            _noise.append((x & 0xFFFF) * 16000 // 65536 - 8000)
    return _noise


def _attach(dev):
    """Serve dev._tick(now_us) from the DMA engine thread (started once)."""
    _running.append(dev)
    if not _engine:
        _engine.append(_thread.start_new_thread(_engine_loop, ()))


def _engine_loop():
    while True:
        time.sleep_ms(_TICK_MS)
        now = time.ticks_us()
        for d in tuple(_running):
            d._tick(now)


def _mic_cmd(words):
    if len(words) > 1:
        I2S.mic(words[1], int(words[2]) if len(words) > 2 else 0)


def _echo_cmd(words):
    if len(words) > 2:
        echo[1] = int(words[2])
        echo[0] = int(words[1])


def _i2s_cmd(words):
    # i2s <id> stall on|off | lose <n> | late <ms>
    d = I2S._ids.get(int(words[1]))
    if d is not None and len(words) > 3:
        k, v = words[2], words[3]
        d.fault(**{k: (v == "on") if k == "stall" else int(v)})


_vbhw.on("mic", _mic_cmd)
_vbhw.on("echo", _echo_cmd)
_vbhw.on("i2s", _i2s_cmd)


class I2S:
    RX = 1          # I2S_DIR_RX: MICROPY_PY_MACHINE_I2S_CONSTANT_RX on the esp32 port
    TX = 2          # I2S_DIR_TX
    MONO = 0
    STEREO = 1
    _ids = {}

    def __init__(self, id, *, sck, ws, sd, mck=None, mode, bits, format, rate, ibuf):
        if id not in (0, 1):
            raise ValueError("invalid id")
        if mode not in (I2S.RX, I2S.TX):
            raise ValueError("invalid mode")
        if bits not in (16, 32):
            raise ValueError("invalid bits")
        if format not in (I2S.MONO, I2S.STEREO):
            raise ValueError("invalid format")
        old = I2S._ids.get(id)
        if old is not None:
            old.deinit()                # make_new_instance: the same id is deinit-ed and set up again
        I2S._ids[id] = self
        self.id, self.mode, self.bits, self.format, self.rate = id, mode, bits, format, rate
        self.pins = (sck.id, ws.id, sd.id)
        self._app_frame = bits // 8 * (2 if format == I2S.STEREO else 1)
        # DMA frame: TX as asked; RX always 32-bit stereo (get_dma_bits / get_dma_format)
        dma_frame = self._app_frame if mode == I2S.TX else 8
        self.dma_bufs = max(2, ibuf // (_DMA_FRAMES * dma_frame))
        self._cap = self.dma_bufs * _DMA_FRAMES            # DMA capacity in I2S frames
        # engine-owned state
        self._level = 0             # frames in DMA: TX = written, not yet played; RX = captured, not yet read
        self._mic_at = 0            # RX: sample index of the oldest captured frame
        self._t = time.ticks_us()
        self._rem = 0               # sub-frame time left over (us * rate)
        self._cur = None            # the request the background task works on: [buffer, bytes done, finished]
        self._slot = None           # the one request the 1-slot queue holds
        self._due = []              # [deliver at (us)] callbacks held back by the `late` fault
        self._stall = False
        self._lose = 0
        self._late_us = 0
        # hand-offs from the app's thread
        self._req = []              # requests in the order readinto/write made them
        self._faults = []           # fault switches, applied by the engine at its next step
        self._cb = None
        self._deinit = False
        self.stats = {"frames": 0, "underrun": 0, "overrun": 0, "done": 0, "callbacks": 0, "lost": 0,
                      "dropped_requests": 0}
        _attach(self)

    # -- test hooks (not on a real board) --
    @staticmethod
    def mic(kind, hz=0):
        """What every microphone hears from now on: "tone" (hz), "ramp" (sample k is k & 0x7FFF: each frame
        is unique, a replayed one shows), "noise" (noise_table(), repeating every 4093 samples) or "silence"."""
        _mic[1] = hz
        _mic[0] = kind

    def fault(self, stall=None, lose=None, late=None):
        """stall=True: the DMA stops (no frame moves, nothing completes); lose=N: the next N callbacks are never
        scheduled; late=ms: callbacks arrive that much later."""
        self._faults.append((stall, lose, late))

    # -- the DMA in real time (engine thread only) --
    def _advance(self, now):
        dt = time.ticks_diff(now, self._t)
        self._t = now
        if self._stall or dt <= 0:
            return
        self._rem += dt * self.rate
        n = self._rem // 1000000
        self._rem -= n * 1000000
        if self.mode == I2S.TX:
            played = min(n, self._level)
            self._level -= played
            self.stats["frames"] += played
            if n > played:
                self.stats["underrun"] += n - played        # auto_clear: the DMA sends silence
        else:
            self._level += n
            self.stats["frames"] += n
            if self._level > self._cap:                    # nobody read: the oldest frames are overwritten
                self.stats["overrun"] += self._level - self._cap
                self._mic_at += self._level - self._cap
                self._level = self._cap

    def _transfer(self, req):
        """Move what the DMA can take (TX) or give (RX) now; True when the whole buffer is done."""
        buf, done = req[0], req[1]
        af = self._app_frame
        want = (len(buf) - done) // af
        if self.mode == I2S.TX:
            n = min(want, self._cap - self._level)
            self._level += n
        else:
            n = min(want, self._level)
            self._fill(buf, done, n)
            self._level -= n
            self._mic_at += n
        req[1] = done + n * af
        return n == want

    def _fill(self, buf, off, n):
        kind, hz = _mic
        two = self.format == I2S.STEREO
        fmt = "<h" if self.bits == 16 else "<i"
        step = self.bits // 8
        k = self._mic_at
        for i in range(n):
            if kind == "ramp":
                v = (k + i) & 0x7FFF
            elif kind == "noise":
                v = noise_table()[(k + i) % _NOISE_N]
            elif kind == "tone" and hz:
                v = int(8000 * math.sin(6.283185307179586 * hz * (k + i) / self.rate))
            else:
                v = 0
            if self.bits == 32:
                v <<= 16
            struct.pack_into(fmt, buf, off, v)
            off += step
            if two:
                struct.pack_into(fmt, buf, off, v)
                off += step

    def _schedule(self):
        cb = self._cb
        if cb is None:
            return
        try:
            micropython.schedule(cb, self)
            self.stats["callbacks"] += 1
        except RuntimeError:        # "schedule queue full": mp_sched_schedule returns false, the callback is gone
            self.stats["lost"] += 1

    def _tick(self, now):
        if self._deinit:
            return
        while self._faults:
            stall, lose, late = self._faults.pop(0)
            self._advance(now)
            if stall is not None:
                self._stall = stall
            if lose is not None:
                self._lose = lose
            if late is not None:
                self._late_us = late * 1000
        self._advance(now)
        while self._due and time.ticks_diff(now, self._due[0]) >= 0:
            self._due.pop(0)
            self._schedule()
        while self._req:
            r = self._req.pop(0)
            if self._cur is None:
                self._cur = r               # the idle task takes it from the queue at once
            elif self._slot is None:
                self._slot = r
            else:
                self.stats["dropped_requests"] += 1      # the queue's one slot is taken: xQueueSend gives up
        while self._cur is not None and not self._stall and self._transfer(self._cur):
            self._cur[2] = True
            self._cur, self._slot = self._slot, None
            self.stats["done"] += 1
            if self._cb is None:
                continue
            if self._lose:
                self._lose -= 1
                self.stats["lost"] += 1
            elif self._late_us:
                self._due.append(time.ticks_add(now, self._late_us))
            else:
                self._schedule()

    # -- MicroPython API --
    def irq(self, handler):
        if handler is not None and not callable(handler):
            raise ValueError("invalid callback")
        self._cb = handler

    def _io(self, buf, mode):
        if self.mode != mode:
            raise OSError(1)        # MP_EPERM: wrong direction
        if self._deinit:
            return 0
        req = [memoryview(buf), 0, False]
        self._req.append(req)
        if self._cb is not None:
            return len(buf)         # non-blocking: the background task does it, a callback says when
        while not req[2] and not self._deinit:
            time.sleep_ms(1)        # blocking: the DMA takes or gives it in real time
        return req[1]

    def readinto(self, buf):
        return self._io(buf, I2S.RX)

    def write(self, buf):
        return self._io(buf, I2S.TX)

    def deinit(self):
        self._deinit = True
        if self in _running:
            _running.remove(self)
        if I2S._ids.get(self.id) is self:
            del I2S._ids[self.id]

    @staticmethod
    def shift(*, buf, bits, shift):
        fmt = "<h" if bits == 16 else "<i"
        step = bits // 8
        lim = (1 << (bits - 1)) - 1
        for off in range(0, len(buf) - step + 1, step):
            v = struct.unpack_from(fmt, buf, off)[0]
            v = v << shift if shift >= 0 else v >> -shift
            struct.pack_into(fmt, buf, off, max(-lim - 1, min(lim, v)))
