# Virtual board: `i2s_duplex`, the C module the codec boards build into their own firmware
# (board/modules/i2s_duplex/i2s_duplex.c), for the frozen unix runtime that host_tools/virtual_board.py runs as the
# board's CPU. Same API and semantics as the C module; what lies under it is ESP-IDF's i2s_std driver and the I2S
# DMA, simulated here in real time, and what lies on the wire is what the board's codecs send and take.
#
# Only a board whose own image has the module has it (virtual_board --board korvo2_es8311 | lyrat_es8388): on any
# other (a stock image) `import i2s_duplex` raises ImportError, as on a stock ESP32_GENERIC_S3.
#
# Copied from the C module (board/modules/i2s_duplex/i2s_duplex.c):
#   I2SDuplex(id, *, sck, ws, dout, din, rate, mck=-1, bits=32, frames=320, bufs=4): bits 16 or 32 else
#     ValueError("bits must be 16 or 32"); bufs >= 2 and frames 8..1023 else ValueError("bufs >= 2, frames
#     8..1023"); one controller, TX and RX channels created and enabled at once (one frame clock for both).
#   write(buf) / readinto(buf): i2s_channel_write / i2s_channel_read with timeout 0: they move what the DMA queue
#     has room for / has now and return that many bytes, possibly 0 (ESP_ERR_TIMEOUT is not an error); a partial
#     read returns the bytes of the DMA buffers completed so far, including the rest of a buffer half read before.
#   deinit() (also __del__ in C): both channels disabled and deleted; after it every call raises OSError(EBADF).
#   A second I2SDuplex on an id whose channels were never released fails in i2s_new_channel: OSError(-261,
#   "ESP_ERR_NOT_FOUND") (ports/esp32 check_esp_err: OSError(-code, esp_err_to_name(code))); so does an id that
#   is not 0 or 1 (SOC_I2S_NUM is 2 on the ESP32 and the ESP32-S3): OSError(-258, "ESP_ERR_INVALID_ARG").
# Copied from ESP-IDF (components/esp_driver_i2s/i2s_common.c, v5.x; the "I2S" chapter of the ESP-IDF
# Programming Guide, full-duplex and DMA buffer sections):
#   - bufs DMA descriptors of `frames` frames each in a ring (i2s_alloc_dma_desc), each buffer at most 4092 bytes
#     (i2s_get_buf_size: the frame count is cut to fit), all zero at start; the DMA runs round the ring
#     continuously from descriptor 0 once enabled, at `rate` frames a second.
#   - each channel has a message queue of bufs - 1 buffer pointers (i2s_register_channel: xQueueCreate(desc_num -
#     1)), emptied at enable (xQueueReset). At the end of every buffer (the DMA's EOF interrupt,
#     i2s_dma_tx_callback / i2s_dma_rx_callback) the finished buffer goes into the queue; a full queue first
#     loses its oldest entry (the *_q_ovf case). TX: the finished buffer is zeroed first (chan_cfg.auto_clear, set
#     by the C module: an underrun plays silence, not the old buffer).
#   - i2s_channel_write/read take a buffer from the queue when the one in hand (dma.curr_ptr) is used up
#     (rw_pos == buf_size) and copy into / out of it at rw_pos; the buffer in hand is not protected from the DMA
#     (a reader slower than the ring gets data the DMA has overwritten since, as on the chip). So a TX write lands
#     in the buffer the DMA finished longest ago: it plays when the DMA comes round to it.
# What the codecs put on the wire (Korvo-2, 32-bit slots; board.json audio.duplex and uphone/hal/duplex.py):
#   - the DAC (ES8311) plays the 16-bit sample in the upper half of the left slot (16-bit I2S in a 32-bit slot;
#     MSB first on the wire = bytes 2-3 of the slot as the DMA stores it), scaled by its digital volume REG32
#     (0xBF = 0 dB, 0.5 dB steps, es8311.c vol_range), only once it runs: REG00 bit 7 (CSM on) set and REG31's
#     soft mute bits (6:5) clear. The loudspeaker sounds only while the power amplifier is enabled (GPIO48).
#   - the ADC (ES7210) in TDM with 16-bit words (REG12 = 0x02, REG11 bits 7:5 = 011, out of reset REG00 = 0x41)
#     sends four words a frame, read as two 32-bit slots "RMNM" (esp-adf's AEC example for this board): bytes
#     0-1 the reference (MIC3, wired to the DAC output: what the DAC plays in that same frame), 2-3 MIC1, 4-5 MIC4
#     (not fitted: 0), 6-7 MIC2. Anything else: the chip sends zeros.
#   - the microphones hear machine's `mic` source (tone <hz> | ramp | noise | silence, as ADC codes: the codec's
#     PGA and the capsule's sensitivity are not modelled) plus the loudspeaker through the air: `echo <gain %>
#     <delay ms>` (default none). Both mics hear the same.
#   LyraT (ES8388, 16-bit slots): the DAC plays the left slot, the ADC sends the microphone (LINPUT1) in the left
#   slot and 0 in the right; no reference channel, and the ES8388's registers are not read (always running).
# Fault injection (test hooks, not on a board; `duplex tx|rx|both stall on|off | lose N | late MS` on the
# supervisor, or fault() here):
#   stall  the channel's DMA stops: no frame moves, no buffer completes (TX: the loudspeaker gets silence).
#   lose   the next N end-of-buffer interrupts are lost: GDMA reports only the newest EOF descriptor when two
#          interrupts are pending before the ISR runs (gdma's *_eof_desc_addr), so the older buffer never reaches
#          the queue. RX: a captured buffer is never delivered. TX: the buffer is neither cleared nor handed back,
#          so the DMA plays its old content once more when it comes round (the driver clears only in the ISR).
#   late   every EOF interrupt is served MS later (interrupts masked, e.g. flash writes with the cache off);
#          EOFs that come while one is pending are coalesced as above.
# What it cannot copy: a codec's analog path (filters, group delay, noise, levels) and its clock domain (one
# crystal here: no drift between the frame clock and ticks_us), the I2S FIFO, the time the CPU spends in the
# ISR, cache effects; DMA time advances in 2 ms steps of the shared engine thread (machine.py), so a buffer
# completes up to 2 ms late; the DMA buffers live on the MicroPython heap here (4 x 2 x 2560 bytes at 16 kHz), in
# ESP-IDF's heap on the board. The loudspeaker's output streams to the supervisor (`--speaker-wav`).
import os
import socket
import struct
import time
from array import array

import _vbhw
import machine

_WIRE = {"korvo2_es8311": "RMNM", "lyrat_es8388": "M-"}.get(_vbhw.BOARD)
if _WIRE is None:
    raise ImportError("no module named 'i2s_duplex' (a stock image: the codec boards build it into their own)")

_DMA_MAX = 4092             # I2S_DMA_BUFFER_MAX_SIZE: DMA_DESCRIPTOR_BUFFER_MAX_SIZE_4B_ALIGNED
_PA_PIN = {"korvo2_es8311": 48, "lyrat_es8388": 21}[_vbhw.BOARD]
_ECHO_MAX = 4096            # samples of loudspeaker history for the acoustic echo (256 ms at 16 kHz)
_open_ids = {}              # id -> I2SDuplex whose channels are not released


def _esp_err(code, name):
    return OSError(-code, name)


class _Chan:
    """One direction's DMA: the descriptor ring, the message queue and the buffer in the app's hand."""

    def __init__(self, n, size, tx):
        self.tx = tx
        self.n = n
        self.size = size
        self.bufs = [bytearray(size) for _ in range(n)]
        self.mv = [memoryview(b) for b in self.bufs]
        self.q = []             # msg_queue: buffer indices, at most n - 1
        self.cur = None         # dma.curr_ptr
        self.pos = 0            # dma.rw_pos
        self.desc = 0           # the descriptor the DMA works in
        self.off = 0            # byte offset there
        self.stall = False
        self.lose = 0
        self.late_us = 0
        self.pending = None     # [deliver at (ticks_us), descriptor]: an EOF interrupt not served yet
        self.stats = {"eof": 0, "lost": 0, "overflow": 0, "frames": 0}

    def eof(self, desc, now):
        """The DMA finished buffer desc: its interrupt, now or later."""
        self.stats["eof"] += 1
        if self.lose:
            self.lose -= 1
            self.stats["lost"] += 1
            return
        if self.pending is not None:
            self.stats["lost"] += 1             # coalesced: the ISR will see only this newer descriptor
            self.pending[1] = desc
        elif self.late_us:
            self.pending = [time.ticks_add(now, self.late_us), desc]
        else:
            self.isr(desc)

    def isr(self, desc):
        # i2s_dma_{tx,rx}_callback: a full queue loses its oldest entry, TX clears the buffer, then it is queued
        q = self.q
        if len(q) >= self.n - 1:
            q.pop(0)
            self.stats["overflow"] += 1
        if self.tx:
            b = self.bufs[desc]
            for i in range(len(b)):
                b[i] = 0
        q.append(desc)

    def serve(self, now):
        p = self.pending
        if p is not None and time.ticks_diff(now, p[0]) >= 0:
            self.pending = None
            self.isr(p[1])

    def take(self):
        """The buffer in hand, or the next from the queue (timeout 0): False when there is none."""
        if self.cur is None or self.pos == self.size:
            if not self.q:
                return False
            self.cur = self.q.pop(0)
            self.pos = 0
        return True


class I2SDuplex:
    def __init__(self, id, *, sck, ws, dout, din, rate, mck=-1, bits=32, frames=320, bufs=4):
        for v in (id, sck, ws, dout, din, rate, mck, bits, frames, bufs):
            if not isinstance(v, int):
                raise TypeError("can't convert %s to int" % type(v).__name__)
        if bits not in (16, 32):
            raise ValueError("bits must be 16 or 32")
        if bufs < 2 or frames < 8 or frames > 1023:
            raise ValueError("bufs >= 2, frames 8..1023")
        if id not in (0, 1):
            raise _esp_err(0x102, "ESP_ERR_INVALID_ARG")
        if id in _open_ids:
            raise _esp_err(0x105, "ESP_ERR_NOT_FOUND")
        self.id, self.rate, self.bits = id, rate, bits
        self.pins = {"sck": sck, "ws": ws, "dout": dout, "din": din, "mck": mck}
        self.frame = bits // 4                                  # bytes a stereo frame
        self.frames = min(frames, _DMA_MAX // self.frame)      # i2s_get_buf_size
        size = self.frames * self.frame
        self.tx = _Chan(bufs, size, True)
        self.rx = _Chan(bufs, size, False)
        self._k = 0                     # frame clock since enable: sample index of the wire
        self._t = time.ticks_us()
        self._rem = 0
        self._faults = []
        self._spk = bytearray(2 * (rate // 50))                # 20 ms of loudspeaker output for the supervisor
        self._spk_n = 0
        self._hist = array("h", bytes(2 * _ECHO_MAX))           # loudspeaker output, for the echo into the mics
        self._mic_key = None
        self._mic_tab = None
        self._closed = False
        self._sock = None
        ctrl = os.getenv("UPHONE_VB_CTRL")
        if ctrl:
            # our own socket: the DMA thread sends on it (the bus socket in _vbhw belongs to the app's thread)
            host, port = ctrl.rsplit(":", 1)
            self._dest = socket.getaddrinfo(host, int(port))[0][-1]
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        _open_ids[id] = self
        machine._attach(self)

    # -- test hooks (not on a board) --
    def fault(self, chan="both", stall=None, lose=None, late=None):
        """chan "tx" | "rx" | "both"; stall=True/False, lose=N interrupts, late=ms (see the header)."""
        self._faults.append((chan, stall, lose, late))

    @property
    def stats(self):
        return {"tx": dict(self.tx.stats), "rx": dict(self.rx.stats), "frames": self._k,
                "tx_queue": len(self.tx.q), "rx_queue": len(self.rx.q)}

    # -- the codecs, read from their registers once per engine step --
    def _codecs(self):
        t = machine.i2c_targets
        if _WIRE == "M-":
            return 32768, True                                  # ES8388: not modelled, always running at 0 dB
        dac = t.get(0x18)
        adc = t.get(0x40)
        gain = 0
        if dac is not None and dac.r[0x00] & 0x80 and not dac.r[0x31] & 0x60 and dac.r[0x32]:
            # REG32: 0x00 = -95.5 dB .. 0xBF = 0 dB .. 0xFF = +32 dB, 0.5 dB steps; Q15 gain
            gain = int(32768 * 10 ** ((dac.r[0x32] - 0xBF) / 40) + 0.5)
        tdm = adc is not None and adc.r[0x00] == 0x41 and adc.r[0x12] == 0x02 and adc.r[0x11] & 0xE0 == 0x60
        return gain, tdm

    def _mic_table(self):
        kind, hz = machine._mic
        key = (kind, hz)
        if key != self._mic_key:
            self._mic_key = key
            if kind == "tone" and hz:
                # one period of the tone (rate / gcd(rate, hz) samples), amplitude 8000 as machine.I2S's
                import math
                a, b = self.rate, hz
                while b:
                    a, b = b, a % b
                n = self.rate // a
                self._mic_tab = [int(8000 * math.sin(6.283185307179586 * hz * i / self.rate)) for i in range(n)]
            elif kind == "noise":
                self._mic_tab = machine.noise_table()
            else:
                self._mic_tab = None
        return kind

    # -- the DMA in real time (engine thread only) --
    def _tick(self, now):
        if self._closed:
            return
        while self._faults:
            chan, stall, lose, late = self._faults.pop(0)
            self._run(now)
            for c in ((self.tx, self.rx) if chan == "both" else (self.tx if chan == "tx" else self.rx,)):
                if stall is not None:
                    c.stall = stall
                if lose is not None:
                    c.lose = lose
                if late is not None:
                    c.late_us = late * 1000
                    if not late and c.pending is not None:
                        c.pending[0] = now      # interrupts unmasked: the pending one is served first
        self._run(now)

    def _run(self, now):
        dt = time.ticks_diff(now, self._t)
        self._t = now
        tx, rx = self.tx, self.rx
        tx.serve(now)
        rx.serve(now)
        if dt <= 0:
            return
        self._rem += dt * self.rate
        n = self._rem // 1000000
        self._rem -= n * 1000000
        if not n:
            return
        gain, tdm = self._codecs()
        # the loudspeaker's amplifier: on while its enable pin is an output driven high (read without Pin(): this
        # thread must not poll the supervisor's bus)
        pa = machine._levels.get(_PA_PIN, 0) if machine._modes.get(_PA_PIN, (0,))[0] == machine.Pin.OUT else 0
        kind = self._mic_table()
        tab = self._mic_tab
        tn = len(tab) if tab else 1
        eg = machine.echo[0] * 256 // 100
        ed = machine.echo[1] * self.rate // 1000
        hist, hm = self._hist, _ECHO_MAX - 1
        f = self.frame
        txo = 2 if f == 8 else 0                                # the DAC's 16 bits in the frame
        spk, sn, sfull = self._spk, self._spk_n, len(self._spk)
        k = self._k
        tsize, rsize = tx.size, rx.size
        tb = tx.bufs[tx.desc]
        rb = rx.bufs[rx.desc]
        tn0, rn0 = 0, 0
        for _ in range(n):
            # TX: the frame the DAC plays now
            v = 0
            if not tx.stall:
                o = tx.off + txo
                v = tb[o] | (tb[o + 1] << 8)
                if v & 0x8000:
                    v -= 0x10000
                tx.off += f
                tn0 += 1
                if tx.off >= tsize:
                    tx.off = 0
                    tx.eof(tx.desc, now)
                    tx.desc = (tx.desc + 1) % tx.n
                    tb = tx.bufs[tx.desc]
            dac = (v * gain) >> 15
            out = dac if pa else 0
            hist[k & hm] = out
            spk[sn] = out & 0xFF
            spk[sn + 1] = (out >> 8) & 0xFF
            sn += 2
            if sn >= sfull:
                self._send(spk)
                sn = 0
            # RX: what the ADC sends in the same frame
            if not rx.stall:
                if kind == "ramp":
                    m = k & 0x7FFF
                elif tab is not None:
                    m = tab[k % tn]
                else:
                    m = 0
                if eg:
                    m += (hist[(k - ed) & hm] * eg) >> 8
                    m = -32768 if m < -32768 else 32767 if m > 32767 else m
                o = rx.off
                if _WIRE == "RMNM":
                    r = dac if tdm else 0
                    if not tdm:
                        m = 0
                    rb[o] = r & 0xFF
                    rb[o + 1] = (r >> 8) & 0xFF
                    rb[o + 2] = m & 0xFF
                    rb[o + 3] = (m >> 8) & 0xFF
                    rb[o + 4] = 0
                    rb[o + 5] = 0
                    rb[o + 6] = m & 0xFF
                    rb[o + 7] = (m >> 8) & 0xFF
                else:
                    rb[o] = m & 0xFF
                    rb[o + 1] = (m >> 8) & 0xFF
                    rb[o + 2] = 0
                    rb[o + 3] = 0
                rx.off += f
                rn0 += 1
                if rx.off >= rsize:
                    rx.off = 0
                    rx.eof(rx.desc, now)
                    rx.desc = (rx.desc + 1) % rx.n
                    rb = rx.bufs[rx.desc]
            k += 1
        self._k = k
        self._spk_n = sn
        tx.stats["frames"] += tn0
        rx.stats["frames"] += rn0

    def _send(self, spk):
        if self._sock is not None:
            try:
                self._sock.sendto(b"pcm" + struct.pack("<I", self.rate) + spk, self._dest)
            except OSError:
                pass

    # -- the C module's API --
    def _check_open(self):
        if self._closed:
            raise OSError(9)        # MP_EBADF

    def write(self, buf):
        self._check_open()
        c = self.tx
        src = memoryview(buf)
        done = 0
        total = len(src)
        while done < total and c.take():
            k = min(c.size - c.pos, total - done)
            c.mv[c.cur][c.pos:c.pos + k] = src[done:done + k]
            c.pos += k
            done += k
        return done

    def readinto(self, buf):
        self._check_open()
        c = self.rx
        dst = memoryview(buf)
        done = 0
        total = len(dst)
        while done < total and c.take():
            k = min(c.size - c.pos, total - done)
            dst[done:done + k] = c.mv[c.cur][c.pos:c.pos + k]
            c.pos += k
            done += k
        return done

    def deinit(self):
        if self._closed:
            return
        self._closed = True
        if self in machine._running:
            machine._running.remove(self)
        if _open_ids.get(self.id) is self:
            del _open_ids[self.id]
        if self._sock is not None:
            self._send(self._spk[:self._spk_n])         # the loudspeaker's last part of a chunk
            self._sock.close()
            self._sock = None

    __del__ = deinit


def _duplex_cmd(words):
    # duplex tx|rx|both stall on|off | lose N | late MS
    if len(words) > 3:
        chan, k, v = words[1], words[2], words[3]
        for d in _open_ids.values():
            d.fault(chan, **{k: (v == "on") if k == "stall" else int(v)})


_vbhw.on("duplex", _duplex_cmd)
