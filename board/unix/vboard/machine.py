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
#   I2C      a bus with nothing on it: every transfer is NACKed (OSError ENODEV), scan() is empty.
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


class I2C:
    """An I2C bus with no device on it: the ESP32 port raises OSError(ENODEV) when an address is NACKed."""

    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self.id = id

    def scan(self):
        return []

    def _nack(self, *a, **k):
        raise OSError(19)           # ENODEV

    writeto = readfrom = writeto_mem = readfrom_mem = readfrom_into = readfrom_mem_into = _nack


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
_mic = ["tone", 440]        # what the microphone hears: tone <hz> | ramp | silence (`mic ...` on the supervisor)


def _engine_loop():
    while True:
        time.sleep_ms(_TICK_MS)
        now = time.ticks_us()
        for d in tuple(_running):
            d._tick(now)


def _mic_cmd(words):
    if len(words) > 1:
        I2S.mic(words[1], int(words[2]) if len(words) > 2 else 0)


def _i2s_cmd(words):
    # i2s <id> stall on|off | lose <n> | late <ms>
    d = I2S._ids.get(int(words[1]))
    if d is not None and len(words) > 3:
        k, v = words[2], words[3]
        d.fault(**{k: (v == "on") if k == "stall" else int(v)})


_vbhw.on("mic", _mic_cmd)
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
        _running.append(self)
        if not _engine:
            _engine.append(_thread.start_new_thread(_engine_loop, ()))

    # -- test hooks (not on a real board) --
    @staticmethod
    def mic(kind, hz=0):
        """What every microphone hears from now on: "tone" (hz), "ramp" (sample k is k & 0x7FFF: each frame
        is unique, a replayed one shows) or "silence"."""
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
