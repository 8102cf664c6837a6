# ESP32 hardware: machine.I2S audio (TX on I2S(0), RX on I2S(1), non-blocking with irq callbacks), codec/amp
# drivers, and the handset pins (hook, keypad matrix, LEDs, ringer, amp) polled from the loop via uphone.handset.
from uphone import handset as H
from uphone import boards
from uphone.compat import const, ticks_diff, ticks_add

_FRAME_MS = const(20)

# ibuf: the ESP32 port splits ibuf into DMA buffers of 256 I2S frames and allocates at least 2 of them
# (ports/esp32/machine_i2s.c get_dma_buf_count). So the smallest real buffer is also the lowest latency:
#   TX 16-bit mono: DMA frame 2 bytes -> 2 x 256 x 2 = 1024 bytes = 64 ms at 8 kHz, 32 ms at 16 kHz
#   RX: always read as 32-bit stereo, DMA frame 8 bytes -> 2 x 256 x 8 = 4096 bytes (same 64 / 32 ms)
# Asking for less (e.g. 640 bytes = two 20 ms frames at 8 kHz) still gets these minimums, so state them.
TX_IBUF = const(1024)
RX_IBUF = const(4096)


class I2SAudio:
    """Audio device for Phone.set_audio: readinto(buf) / write(buf) of one 16-bit mono frame, never blocking.
    Capture and playback run in MicroPython's I2S background task (irq mode): readinto hands over the last frame
    captured and starts the next; write queues the frame unless the previous one is still in flight (dropped)."""

    def __init__(self, machine, pins, rate=8000, capture=True):
        I2S, Pin = machine.I2S, machine.Pin
        self.rate = rate
        n = rate // 1000 * _FRAME_MS * 2                     # bytes per 20 ms frame: 320 at 8 kHz, 640 at 16 kHz
        self._play = bytearray(n)
        self._cap = bytearray(n)                             # last complete capture, handed to readinto
        self._rx = bytearray(n)                              # being filled by the I2S task
        self._tx_busy = self._rx_busy = False
        self._rx_ready = False
        self.dropped = 0                                     # playback frames dropped (I2S still busy)
        self.tx = I2S(0, sck=Pin(pins["sck"]), ws=Pin(pins["ws"]), sd=Pin(pins["sd_out"]), mode=I2S.TX,
                      bits=16, format=I2S.MONO, rate=rate, ibuf=TX_IBUF)
        self.tx.irq(self._tx_done)
        self.rx = None
        self.echo_delay_ms = 0
        if capture and pins.get("sd_in") is not None:
            self.rx = I2S(1, sck=Pin(pins.get("rx_sck", pins["sck"])), ws=Pin(pins.get("rx_ws", pins["ws"])),
                          sd=Pin(pins["sd_in"]), mode=I2S.RX, bits=16, format=I2S.MONO, rate=rate, ibuf=RX_IBUF)
            self.rx.irq(self._rx_done)
            self._start_rx()
            # speaker-to-mic delay for the echo canceller (audio.aec_delay_ms -1): a frame written now plays after
            # what the TX ring holds, a captured frame reaches readinto after part of the RX ring: TX ring + half
            # the RX ring (96 ms at 8 kHz, 48 ms at 16 kHz). An ESTIMATE from the buffer sizes, not measured on a
            # board: measure yours and set audio.aec_delay_ms.
            self.echo_delay_ms = (TX_IBUF // 2 + RX_IBUF // 16) * 1000 // rate

    def _tx_done(self, i2s):
        self._tx_busy = False

    def _rx_done(self, i2s):
        self._rx_busy = False
        self._cap[:] = self._rx                             # same length: copies in place, no allocation
        self._rx_ready = True
        self._start_rx()

    def _start_rx(self):
        self._rx_busy = True
        self.rx.readinto(self._rx)                          # returns at once in irq mode

    def readinto(self, buf):
        if self.rx is None or not self._rx_ready:
            for i in range(len(buf)):
                buf[i] = 0
            return len(buf)
        buf[:] = self._cap
        return len(buf)

    def write(self, buf):
        if self._tx_busy:
            self.dropped += 1
            return 0
        self._play[:] = buf
        self._tx_busy = True
        self.tx.write(self._play)                           # returns at once in irq mode
        return len(buf)

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
        self.audio = None
        self.codec = self.amp = None
        self._init_codec(pins, audio_cfg)
        capture = "audio_rx" in board.get("supports", ())
        if capture and boards.shared_i2s_clock(board):
            # machine.I2S TX (16-bit slots) and RX (always 32-bit slots) are two controllers with different bit
            # clocks: they cannot share one SCLK/LRCK pair. Playback works; capture needs a duplex-capable build.
            log("audio: board shares one I2S clock pair; capture off with stock machine.I2S")
            capture = False
        if "audio_tx" in board.get("supports", ()):
            self.audio = I2SAudio(machine, pins["i2s"], self.rate, capture)
            phone.set_audio(self.audio, self.audio)
        self.handset = H.Handset()
        self.hook = Pin(pins["hook"], Pin.IN, Pin.PULL_UP) if pins.get("hook") is not None else None
        self.hook_off = pins.get("hook_off_level", 1)
        kp = pins.get("keypad") or {}
        self.rows = [Pin(p, Pin.OUT, value=1) for p in kp.get("rows", ())]
        self.cols = [Pin(p, Pin.IN, Pin.PULL_UP) for p in kp.get("cols", ())]
        self.keys = kp.get("keys", "123A456B789C*0#D")
        self.leds = {}
        for name, p in (pins.get("leds") or {}).items():
            if p is not None:
                self.leds[name] = Pin(p, Pin.OUT, value=0)
        self.ringer = Pin(pins["ringer"], Pin.OUT, value=0) if pins.get("ringer") is not None else None
        self._out = {}
        self.tone = None
        self._tone_buf = bytearray(self.rate // 1000 * _FRAME_MS * 2)
        self._tone_next = 0

    def _init_codec(self, pins, audio_cfg):
        codec = self.board.get("codec")
        Pin = self.machine.Pin
        if codec == "es8311":
            from uphone.drivers.es8311 import ES8311
            i2c = self.machine.I2C(0, scl=Pin(pins["i2c"]["scl"]), sda=Pin(pins["i2c"]["sda"]), freq=400000)
            self.codec = ES8311(i2c).init(self.rate, audio_cfg.get("volume_speaker", 70))
        elif codec == "max98357":
            from uphone.drivers.max98357 import MAX98357
            self.amp = MAX98357(Pin, pins.get("amp_enable"), pins.get("amp_gain"))
        elif codec == "es8388":
            self.log("audio: ES8388 needs MCLK, which stock machine.I2S does not output: no audio on this build")
        if self.amp is None and pins.get("amp_enable") is not None:
            from uphone.drivers.max98357 import MAX98357      # a plain enable pin behaves like the SD pin
            self.amp = MAX98357(Pin, pins["amp_enable"])

    # -- pins ------------------------------------------------------------------------------------------------
    def scan_key(self):
        """Keypad matrix: pull one row low at a time, a column reading 0 is a pressed key. -> key or None."""
        found = None
        nc = len(self.cols)
        for r, row in enumerate(self.rows):
            row.value(0)
            for c in range(nc):
                if found is None and self.cols[c].value() == 0:
                    found = self.keys[r * nc + c]
            row.value(1)
        return found

    def off_hook_raw(self):
        return self.hook is not None and self.hook.value() == self.hook_off

    def _set(self, name, pin, on):
        if self._out.get(name) != on:
            self._out[name] = on
            pin.value(1 if on else 0)

    # -- loop hook ---------------------------------------------------------------------------------------------
    def poll(self, now):
        phone = self.phone
        summary = H.call_summary(phone)
        for out in self.handset.poll(now, self.off_hook_raw(), self.scan_key(), summary):
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
