# ESP32 hardware: machine.I2S audio (TX on I2S(0), RX on I2S(1), non-blocking with irq callbacks), codec/amp
# drivers, and the handset pins (hook, keypad matrix, LEDs, ringer, amp) polled from the loop via uphone.handset.
from uphone import handset as H
from uphone import boards
from uphone.hal.board_io import BoardIO
from uphone.compat import TYPE_CHECKING, const, ticks_diff, ticks_add, ticks_ms

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

_FRAME_MS = const(20)

# ibuf: the ESP32 port splits ibuf into DMA buffers of 256 I2S frames and allocates at least 2 of them
# (ports/esp32/machine_i2s.c get_dma_buf_count). So the smallest real buffer is also the lowest latency:
#   TX 16-bit mono: DMA frame 2 bytes -> 2 x 256 x 2 = 1024 bytes = 64 ms at 8 kHz, 32 ms at 16 kHz
#   RX: always read as 32-bit stereo, DMA frame 8 bytes -> 2 x 256 x 8 = 4096 bytes (same 64 / 32 ms)
# Asking for less (e.g. 640 bytes = two 20 ms frames at 8 kHz) still gets these minimums, so state them.
TX_IBUF = const(1024)
RX_IBUF = const(4096)


try:
    from micropython import RingIO          # v1.27: a byte ring in C (readinto/write never allocate)
except ImportError:                         # CPython (the drivers' tests): the same calls, in Python
    class RingIO:  # type: ignore[no-redef]
        def __init__(self, size):
            self._b = bytearray(size)
            self._r = self._n = 0

        def any(self):
            return self._n

        def write(self, buf):
            k = min(len(buf), len(self._b) - self._n)
            for i in range(k):
                self._b[(self._r + self._n + i) % len(self._b)] = buf[i]
            self._n += k
            return k

        def readinto(self, buf, nbytes=None):
            k = min(len(buf) if nbytes is None else nbytes, self._n)
            for i in range(k):
                buf[i] = self._b[(self._r + i) % len(self._b)]
            self._r = (self._r + k) % len(self._b)
            self._n -= k
            return k

_RING_FRAMES = const(4)         # frames each ring holds: 80 ms at most between the phone and the I2S task
_STALL_MS = const(200)          # a transfer not done by then lost its callback, or the DMA stalled
_REOPEN_AFTER = const(3)        # stalls in a row before the I2S channel is set up again


class I2SAudio:
    """Audio device for Phone.set_audio: readinto(buf) / write(buf) of one 16-bit mono frame, never blocking.
    machine.I2S runs in non-blocking mode (irq): a background task moves one app buffer at a time from or to the
    DMA and then schedules our callback (ports/esp32/machine_i2s.c: a 1-slot queue, mp_sched_schedule).
      capture   each completed frame goes into a ring (micropython.RingIO); readinto takes the oldest one, or
                silence when there is none: never the previous frame again (a stalled capture replayed it: a buzz)
      playback  write puts the frame into a ring; one frame at a time goes to the task, each callback sends the
                next; a full ring drops the new frame (latency stays bounded)
      stalls    poll(now), every loop pass: a transfer not done after _STALL_MS lost its callback (the scheduler's
                queue was full: mp_sched_schedule drops it) or the DMA stalled; it is written off and the next one
                started, so playback and capture carry on; after _REOPEN_AFTER stalls in a row the channel is
                deinit-ed and created again (a new background task and DMA)
    One transfer per direction is in flight at a time, so a late callback costs capture time (the DMA keeps the
    next 64 ms meanwhile); two in flight could not tell whose callback came after a written-off one. One more
    transfer than we know of may be in flight after a stall (the task still held the written-off one): its late
    callback is taken like any other, at worst one glitched frame."""

    def __init__(self, machine, pins, rate=8000, capture=True, clock=None):
        self.machine, self.pins, self.rate = machine, pins, rate
        self.clock = clock or ticks_ms
        n = rate // 1000 * _FRAME_MS * 2                     # bytes per 20 ms frame: 320 at 8 kHz, 640 at 16 kHz
        self.frame = n
        self._silence = bytes(n)
        self._play = (bytearray(n), bytearray(n))            # the task reads one while we fill the other
        self._pk = 0
        self._rx = bytearray(n)                              # being filled by the I2S task
        self._scratch = bytearray(n)
        self._out = RingIO(n * _RING_FRAMES)
        self._in = RingIO(n * _RING_FRAMES)
        self._tx_busy = False
        self._rx_busy = False
        self._tx_at = self._rx_at = 0  # type: Any  # ticks_ms when the transfer in flight started
        self._tx_stalls = self._rx_stalls = 0                # in a row
        self._interrupted = False                            # a Ctrl-C caught in a callback, for poll() to raise
        # counters (st / tests): frames dropped because the playback ring was full, silent reads, stalls, reopens
        self.dropped = self.silent = self.tx_stalled = self.rx_stalled = self.reopened = 0
        self.tx = self.rx = None  # type: Any  # machine.I2S once open
        self.echo_delay_ms = 0
        self._open_tx()
        if capture and pins.get("sd_in") is not None:
            self._open_rx()
            # speaker-to-mic delay for the echo canceller (audio.aec_delay_ms -1): a frame written now plays after
            # what the TX DMA holds, a captured frame reaches readinto after part of the RX DMA: TX DMA + half the
            # RX DMA (96 ms at 8 kHz, 48 ms at 16 kHz). An ESTIMATE from the buffer sizes (the rings above add up to
            # a frame or two when the loop runs late), not measured on a board: measure yours, set aec_delay_ms.
            self.echo_delay_ms = (TX_IBUF // 2 + RX_IBUF // 16) * 1000 // rate

    # -- channels ---------------------------------------------------------------------------------------------
    def _open_tx(self):
        I2S, Pin, p = self.machine.I2S, self.machine.Pin, self.pins
        self.tx = I2S(0, sck=Pin(p["sck"]), ws=Pin(p["ws"]), sd=Pin(p["sd_out"]), mode=I2S.TX, bits=16,
                      format=I2S.MONO, rate=self.rate, ibuf=TX_IBUF)
        self.tx.irq(self._tx_done)
        self._tx_busy = False

    def _open_rx(self):
        I2S, Pin, p = self.machine.I2S, self.machine.Pin, self.pins
        self.rx = I2S(1, sck=Pin(p.get("rx_sck", p["sck"])), ws=Pin(p.get("rx_ws", p["ws"])), sd=Pin(p["sd_in"]),
                      mode=I2S.RX, bits=16, format=I2S.MONO, rate=self.rate, ibuf=RX_IBUF)
        self.rx.irq(self._rx_done)
        self._start_rx()

    # -- callbacks (scheduled by the I2S task) ---------------------------------------------------------------------
    # A Ctrl-C that arrives while a scheduled callback runs is raised inside it, and the scheduler's protected call
    # prints and drops it (py/scheduler.c mp_sched_run_pending -> mp_call_function_1_protected): the host would
    # never get its REPL. So the callbacks keep it and poll() raises it again in the loop.
    def _tx_done(self, i2s):
        try:
            self._tx_busy = False
            self._tx_stalls = 0
            self._pump()
        except KeyboardInterrupt:
            self._interrupted = True

    def _rx_done(self, i2s):
        try:
            self._rx_busy = False
            self._rx_stalls = 0
            n = self.frame
            if self._in.any() + n > n * _RING_FRAMES:
                self._in.readinto(self._scratch, n)         # nobody read for a while: the oldest frame goes
            self._in.write(self._rx)
            self._start_rx()
        except KeyboardInterrupt:
            self._interrupted = True

    # -- transfers ------------------------------------------------------------------------------------------
    def _start_rx(self):
        self._rx_busy = True
        self._rx_at = self.clock()
        self.rx.readinto(self._rx)                          # returns at once in irq mode

    def _pump(self):
        n = self.frame
        if self._tx_busy or self._out.any() < n:
            return
        buf = self._play[self._pk]
        self._pk ^= 1
        self._out.readinto(buf, n)
        self._tx_busy = True
        self._tx_at = self.clock()
        self.tx.write(buf)                                  # returns at once in irq mode

    def readinto(self, buf):
        n = len(buf)
        if self._in.any() >= n:
            self._in.readinto(buf, n)
        else:
            buf[:] = self._silence if n == self.frame else bytes(n)
            self.silent += 1
        return n

    def write(self, buf):
        n = len(buf)
        if self._out.any() + n > self.frame * _RING_FRAMES:
            self.dropped += 1
            return 0
        self._out.write(buf)
        self._pump()
        return n

    def poll(self, now):
        """Every loop pass: write off transfers that never completed, restart them, reopen a dead channel."""
        if self._interrupted:
            self._interrupted = False
            raise KeyboardInterrupt
        if self._tx_busy and ticks_diff(now, self._tx_at) > _STALL_MS:
            self.tx_stalled += 1
            self._tx_stalls += 1
            if self._tx_stalls >= _REOPEN_AFTER:
                self._tx_stalls = 0
                self.reopened += 1
                self.tx.deinit()
                self._open_tx()
            self._tx_busy = False
            self._pump()
        if self.rx is not None and self._rx_busy and ticks_diff(now, self._rx_at) > _STALL_MS:
            self.rx_stalled += 1
            self._rx_stalls += 1
            if self._rx_stalls >= _REOPEN_AFTER:
                self._rx_stalls = 0
                self.reopened += 1
                self.rx.deinit()
                self._open_rx()
            else:
                self._start_rx()

    def deinit(self):
        self.tx.deinit()
        if self.rx is not None:
            self.rx.deinit()


class Esp32Hal:
    """Binds the board's pins and drives uphone.handset from Loop hooks: call poll(now) every loop pass."""

    def __init__(self, machine, board, cfg, phone, log=print):
        self.machine, self.board, self.cfg, self.phone, self.log = machine, board, cfg, phone, log
        Pin = machine.Pin
        pins = board["pins"]
        audio_cfg = cfg.get("audio", {})
        self.rate = int(audio_cfg.get("rate", board.get("rate", 8000)))
        self.audio = None  # type: Any  # the I2S audio device, once the board has one
        self.codec = self.amp = None
        self.codecs = []
        self._init_codec(pins, audio_cfg)
        i2c_pins = pins.get("i2c") or {}
        self.i2c = None
        if i2c_pins.get("scl") is not None:
            self.i2c = machine.I2C(0, scl=Pin(i2c_pins["scl"]), sda=Pin(i2c_pins["sda"]), freq=400000)
        if (board.get("audio") or {}).get("duplex"):
            # codec boards: one I2S controller for both directions (board/modules/i2s_duplex), started before the
            # codecs are configured over I2C (they clock from MCLK/SCLK/LRCK); see uphone.hal.codec
            from uphone.hal import codec
            self.audio, self.codecs = codec.start(machine, board, audio_cfg, self.rate, self.i2c, log)
            self.codec = self.codecs[0] if self.codecs else None
        elif "audio_tx" in board.get("supports", ()):
            capture = "audio_rx" in board.get("supports", ())
            if capture and boards.shared_i2s_clock(board):
                # machine.I2S TX (16-bit slots) and RX (always 32-bit slots) are two controllers with different
                # bit clocks: they cannot share one SCLK/LRCK pair; such boards declare audio.duplex instead.
                log("audio: board shares one I2S clock pair; capture off with stock machine.I2S")
                capture = False
            self.audio = I2SAudio(machine, pins["i2s"], self.rate, capture)
        if self.audio is not None:
            phone.set_audio(self.audio, self.audio)
        self.handset = H.Handset()
        # hook switch or hook button, keypad or ADC ladder, LEDs on GPIOs or the I2C expander (uphone.hal.board_io)
        self.io = BoardIO(machine, board, self.i2c, log)
        self.leds, self.ringer = self.io.leds, self.io.ringer
        self._out = {}
        self.tone = None
        self._tone_buf = bytearray(self.rate // 1000 * _FRAME_MS * 2)
        self._tone_next = 0  # type: Any  # a ticks_ms value

    def stop(self):
        """The phone is stopping (Ctrl-C to the REPL): I2S DMA off, amp and ringer off."""
        if self.audio is not None:
            self.audio.deinit()
            self.audio = None
        if self.amp is not None:
            self.amp.enable(False)
        if self.ringer is not None:
            self.ringer.value(0)

    def _init_codec(self, pins, audio_cfg):
        """Amplifier pins (MAX98357A SD/GAIN, or a codec board's PA enable). I2C codecs are set up by
        uphone.hal.codec once their I2S clocks run."""
        Pin = self.machine.Pin
        if self.board.get("codec") == "max98357":
            from uphone.drivers.max98357 import MAX98357
            self.amp = MAX98357(Pin, pins.get("amp_enable"), pins.get("amp_gain"))
        if self.amp is None and pins.get("amp_enable") is not None:
            from uphone.drivers.max98357 import MAX98357      # a plain enable pin behaves like the SD pin
            self.amp = MAX98357(Pin, pins["amp_enable"])

    # -- pins ------------------------------------------------------------------------------------------------
    def scan_key(self):
        return self.io.scan_key()

    def off_hook_raw(self, now=0, summary=H.IDLE):
        return self.io.off_hook_raw(now, summary)

    def _set(self, name, pin, on):
        if self._out.get(name) != on:
            self._out[name] = on
            pin.value(1 if on else 0)

    # -- loop hook ---------------------------------------------------------------------------------------------
    def poll(self, now):
        if self.audio is not None:
            self.audio.poll(now)
        phone = self.phone
        summary = H.call_summary(phone)
        for out in self.handset.poll(now, self.off_hook_raw(now, summary), self.scan_key(), summary):
            if out[0] == "ev":
                self._event(out[1], out[2])
            else:
                self._start_tone(out[1], now)
        ind = H.indicators(H.call_summary(phone), self.handset.off_hook, phone.mwi, H.registered(phone), now)
        for name, pin in self.leds.items():
            self._set(name, pin, ind.get(name, False))
        if self.ringer is not None:
            self._set("ringer", self.ringer, ind["ringer"])
        if self.amp is not None:
            self.amp.enable(ind["amp"] or self.tone is not None)
        self._pump_tone(now)

    def _event(self, name, args):
        from uphone import table as T
        res = self.phone.user_event(None, getattr(T, "E_" + name), args)
        if res[0] != 0:
            self.log("handset: %s not taken (%s)" % (name, res[2] or "no transition"))

    def _start_tone(self, name, now):
        self.tone = None
        if name is None or self.audio is None:
            return
        try:
            from uphone.media.tones import ToneGen
            g = ToneGen(self.rate)
            g.start(self.cfg.get("features", {}).get("tones_country", "eu"), name)
        except (ImportError, KeyError, ValueError) as e:
            self.log("handset: no %s tone (%s)" % (name, e))
            return
        self.tone = g
        self._tone_next = now

    def _pump_tone(self, now):
        if self.tone is None:
            return
        n = 0
        while ticks_diff(now, self._tone_next) >= 0 and n < 3:
            self.tone.fill(self._tone_buf, len(self._tone_buf) // 2)
            self.audio.write(self._tone_buf)
            self._tone_next = ticks_add(self._tone_next, _FRAME_MS)
            n += 1
