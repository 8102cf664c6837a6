# Full-duplex codec audio: TX and RX on one I2S controller and one clock pair (board/modules/i2s_duplex, a C module
# in the codec boards' own firmware), with the wire framing done here so it runs and is tested on the desktop.
#
# A board's "audio.duplex" block in board.json says how its frame looks in memory (stereo, slot_bits per slot,
# little-endian as the DMA stores it):
#   tx:  byte offsets of every place a 16-bit playback sample goes in a frame (the sample is copied to each);
#   mic: byte offset of the 16-bit microphone sample; ref: of the echo-reference sample, or null.
# Korvo-2 (ES8311 + ES7210 in TDM, 32-bit slots, 8 bytes a frame): the ES8311 takes the upper 16 bits of each slot
#   (16-bit I2S in a 32-bit slot), so tx = [2, 6]; the ES7210 puts two 16-bit channels into each 32-bit slot, and
#   esp-adf's AEC example for this board reads the left slot as "RM": reference in the low half, microphone in the
#   high half (examples/advanced_examples/aec/main/aec_examples.c: I2S_BITS 32, AEC_INPUT_FORMAT "RM", "16 bits
#   for mic + 16 bits for ref"), so ref = 0, mic = 2.
# LyraT (ES8388, 16-bit slots, 4 bytes a frame): tx = [0, 2] (both speakers), mic = 0 (LINPUT1), no reference
#   (esp-adf lyrat_v4_3/board_def.h RECORD_HARDWARE_AEC false).
# Both directions see the same frame clock, so the microphone and reference samples of one frame are the same
# instants: read_ref() returns the reference for exactly the frame readinto() returned.
# Capture keeps a small ring of unpacked frames between the DMA and the media pump: both run at 20 ms, but the
# pump's reads jitter around the moment a DMA buffer completes, and keeping only the newest frame lost one and
# gave silence for the next whenever two buffers completed between two reads (every other frame, with reads
# straddling the buffer boundary: tests/test_vboard_duplex.py). A backlog that stands for _TRIM reads in a row is
# latency the jitter does not need: its oldest frame goes. While nobody reads (no call) only the newest frame is
# kept, so a call starts with fresh audio.
from uphone.compat import const, ticks_diff

_FRAME_MS = const(20)
_RING = const(3)            # captured frames kept: 60 ms of jitter between the DMA's buffers and the reads
_TRIM = const(50)           # reads in a row that leave a frame waiting (1 s): one frame of latency is dropped
_IDLE_MS = const(100)       # no read for this long: nobody reads


class Layout:
    def __init__(self, slot_bits=32, tx=(2, 6), mic=2, ref=None):
        if slot_bits not in (16, 32):
            raise ValueError("duplex: slot_bits 16 or 32, got %r" % (slot_bits,))
        self.slot_bits = slot_bits
        self.frame = slot_bits // 4                     # two slots, bytes
        for off in tuple(tx) + (mic,) + (() if ref is None else (ref,)):
            if off % 2 or not 0 <= off <= self.frame - 2:
                raise ValueError("duplex: byte offset %r outside a %d-byte frame" % (off, self.frame))
        self.tx = tuple(tx)
        self.mic = mic
        self.ref = ref

    @classmethod
    def from_board(cls, spec):
        return cls(spec.get("slot_bits", 32), spec.get("tx", (2, 6)), spec.get("mic", 2), spec.get("ref"))


def open_device(pins, rate, layout, frames=None):
    """The board's i2s_duplex.I2SDuplex on I2S(0); raises ImportError on firmware built without the module."""
    import i2s_duplex  # type: ignore[import-not-found]  # C module (board/modules/i2s_duplex), codec boards only
    n = frames or rate // 1000 * _FRAME_MS
    mck = pins.get("mck")
    return i2s_duplex.I2SDuplex(0, sck=pins["sck"], ws=pins["ws"], dout=pins["sd_out"], din=pins["sd_in"],
                                rate=rate, mck=-1 if mck is None else mck, bits=layout.slot_bits, frames=n, bufs=4)


class DuplexAudio:
    """Audio device for Phone.set_audio: readinto(buf) / write(buf) of one 20 ms 16-bit mono frame, never
    blocking; read_ref(buf) gives the echo reference of the frame readinto last returned (zeros if the board has
    none). dev: i2s_duplex.I2SDuplex or a double with write(buf) -> n and readinto(buf) -> n, both non-blocking."""

    def __init__(self, dev, rate, layout):
        self.dev = dev
        self.rate = rate
        self.layout = layout
        self.samples = rate // 1000 * _FRAME_MS
        raw = self.samples * layout.frame
        self._tx = bytearray(raw)
        self._txv = memoryview(self._tx)
        self._tx_pos = raw                              # nothing pending
        self._rx = bytearray(raw)
        self._rxv = memoryview(self._rx)
        self._rx_fill = 0
        n = self.samples * 2
        has_ref = layout.ref is not None
        self._mics = [bytearray(n) for _ in range(_RING)]                   # captured frames, oldest at _head
        self._refs = [bytearray(n) if has_ref else None for _ in range(_RING)]  # type: list
        self._head = self._count = 0
        self._behind = 0                                # reads in a row that left a frame in the ring
        self._reading = False                           # a read came within _IDLE_MS (poll's view)
        self._reads = self._reads_seen = 0
        self._read_at = 0
        self._ref = bytearray(n)
        self._given = False                             # readinto returned a frame since the last capture
        self.dropped = 0                                # playback frames dropped: the DMA queue was still full
        self.frames_in = 0
        self.silent = 0                                 # reads that found no new frame and gave silence
        self.overrun = 0                                # frames a reader lost: ring full, or a standing backlog
        # the reference is captured at the microphone's own instants: no bulk delay for the echo canceller to skip
        # (audio.aec_delay_ms -1 takes this), only the acoustic path, inside its tail
        self.echo_delay_ms = 0
        # the codec's echo reference channel, captured with the mic (uphone.media.aec.MicPath takes it as its
        # reference when present): the frame readinto returned last, zeros after a silent read
        self.loopback = self._ref if layout.ref is not None else None

    # -- playback --------------------------------------------------------------------------------------------
    def _flush(self):
        if self._tx_pos < len(self._tx):
            self._tx_pos += self.dev.write(self._txv[self._tx_pos:])
        return self._tx_pos >= len(self._tx)

    def write(self, buf):
        if not self._flush():
            self.dropped += 1
            return 0
        tx, f, offs = self._tx, self.layout.frame, self.layout.tx
        j = base = 0
        for _ in range(self.samples):                   # no allocation: byte copies into the preallocated frame
            lo, hi = buf[j], buf[j + 1]
            for o in offs:
                tx[base + o] = lo
                tx[base + o + 1] = hi
            j += 2
            base += f
        self._tx_pos = 0
        self._flush()
        return len(buf)

    # -- capture ---------------------------------------------------------------------------------------------
    def _pull(self):
        """Read what the DMA has; every complete frame is unpacked into the ring (a full ring drops its oldest)."""
        total = len(self._rx)
        while True:
            n = self.dev.readinto(self._rxv[self._rx_fill:])
            self._rx_fill += n
            if self._rx_fill >= total:
                self._unpack()
                self._rx_fill = 0
                continue
            if n == 0:
                return

    def _unpack(self):
        if self._count == _RING:
            self._head = (self._head + 1) % _RING
            self._count -= 1
            if self._reading:
                self.overrun += 1
        i = (self._head + self._count) % _RING
        rx, cap, ref = self._rx, self._mics[i], self._refs[i]
        f, m, r = self.layout.frame, self.layout.mic, self.layout.ref
        j = base = 0
        for _ in range(self.samples):
            cap[j] = rx[base + m]
            cap[j + 1] = rx[base + m + 1]
            if r is not None:
                ref[j] = rx[base + r]
                ref[j + 1] = rx[base + r + 1]
            j += 2
            base += f
        self._count += 1
        self.frames_in += 1

    def readinto(self, buf):
        # each captured frame is returned once, oldest first: with nothing new (a stalled DMA, a late task) the
        # phone gets silence, never the previous frame again (a buzz)
        self._reading = True
        self._reads += 1
        self._pull()
        if not self._count:
            if self._given and self.loopback is not None:
                for i in range(len(self._ref)):
                    self._ref[i] = 0                    # the reference goes silent with the mic
            self._given = False
            self.silent += 1
            for i in range(len(buf)):
                buf[i] = 0
            return len(buf)
        i = self._head
        buf[:] = self._mics[i]
        if self.loopback is not None:
            self._ref[:] = self._refs[i]                # same buffer object: MicPath holds it
        self._head = (i + 1) % _RING
        self._count -= 1
        self._given = True
        if self._count:
            self._behind += 1
            if self._behind >= _TRIM:
                self._head = (self._head + 1) % _RING
                self._count -= 1
                self.overrun += 1
                self._behind = 0
        else:
            self._behind = 0
        return len(buf)

    def read_ref(self, buf):
        """The echo reference of the frame readinto returned last (zeros after a silent read, or on a board with
        no reference channel)."""
        if not self._given or self.layout.ref is None:
            for i in range(len(buf)):
                buf[i] = 0
            return len(buf)
        buf[:] = self._ref
        return len(buf)

    def poll(self, now):
        """Every loop pass: take what the DMA captured and push what playback left pending, so neither queue
        overflows between frames. Nobody read for _IDLE_MS: only the newest captured frame is kept."""
        if self._reads != self._reads_seen:
            self._reads_seen = self._reads
            self._read_at = now
        elif ticks_diff(now, self._read_at) > _IDLE_MS:
            self._reading = False
        self._pull()
        self._flush()
        if not self._reading and self._count > 1:
            self._head = (self._head + self._count - 1) % _RING
            self._count = 1

    def deinit(self):
        self.dev.deinit()
