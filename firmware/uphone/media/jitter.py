# uPhone: adaptive jitter buffer of fixed-length frames keyed by RTP timestamp, with loss concealment and drift control.
# Fixed preallocated slots; put() and pop() allocate nothing but the payload view the caller hands in.
from uphone.compat import const, ticks_diff

OK = const(0)
DUP = const(1)
LATE = const(2)
RESYNC = const(3)
FRAME = const(0)       # pop(): a received frame was decoded
CONCEALED = const(1)   # the frame was missing: last frame repeated, attenuated
SILENCE = const(2)     # nothing to play (buffering, or concealment ran out)
_PLC_FRAMES = const(3)  # gains 3/4, 2/4, 1/4 of the last frame, then silence
_WINDOW = const(25)    # pops per adaptation window (500 ms of 20 ms frames)
_MASK30 = const(0x3FFFFFFF)  # timestamps are kept modulo 2**30: small ints on MicroPython (no heap per packet)
_HALF30 = const(0x20000000)      # (2**30 itself is not a small int: wrap with _MASK30 + 1 split in two steps)


_ZEROS = bytearray(640)     # 20 ms of silence at 16 kHz, shared by every call's buffers
_ZV = {}  # type: dict


def zeros(n):
    """A view of n (<= 640) zero bytes, cached per size: copying silence allocates nothing, and no call keeps a
    zero-filled buffer of its own."""
    v = _ZV.get(n)
    if v is None:
        v = _ZV[n] = memoryview(_ZEROS)[:n]
    return v


class JitterBuffer:
    """put(seq, ts, payload, n, now) on arrival; pop(out, decode) once per frame tick.
    decode(payload_mv, n, out) must write one frame of int16 LE PCM into out (a bytearray of fixed size);
    payload_mv is the slot's preallocated view (max_payload bytes), of which the first n are the frame.
    RTP timestamps count modulo 2**30 inside (any 32-bit value may be passed in)."""

    def __init__(self, slots=16, max_payload=320, frame_ts=160, clock=8000, pcm_bytes=320,
                 min_ms=20, max_ms=200, start_ms=60, mem=None):
        # mem: a memoryview of slots * max_payload + pcm_bytes bytes to keep the frames in (a call's line, reserved
        # at boot), else they are allocated here
        self.nslots = slots
        self.max_payload = max_payload
        self.frame_ts = frame_ts
        self.frame_ms = frame_ts * 1000 // clock
        self.clock = clock
        self.min_ms = min_ms
        self.max_ms = min(max_ms, (slots - 1) * self.frame_ms)
        n = slots * max_payload
        if mem is None:
            mem = memoryview(bytearray(n + pcm_bytes))
        self._store = mem[:n]
        self._views = [self._store[i * max_payload:(i + 1) * max_payload] for i in range(slots)]
        self._sts = [0] * slots             # timestamp held by each slot
        self._slen = [0] * slots            # 0 = empty, else payload length
        self._last = mem[n:n + pcm_bytes]
        self.target_ms = max(min_ms, min(start_ms, self.max_ms))
        self.received = self.lost = self.late = self.duplicates = self.concealed = 0
        self.dropped = self.inserted = 0
        self.jitter16 = 0                   # A.8 jitter in ms * 16
        self._peak = 0                      # decaying peak of |D| in ms
        self._last_arr = None
        self._last_ts = 0
        self._calm = 0
        self.reset()

    def reset(self):
        self.started = False
        self.buffering = True
        self._head = 0
        self._play_ts = 0
        self._newest = 0                    # frames from head to the newest frame held (fill - 1)
        self._count = 0
        self._miss = 0                      # frames missing at playout, counted lost once later audio plays
        self._plc = _PLC_FRAMES             # no last frame yet
        self._wmin = 99
        self._wmax = 0
        self._wn = 0
        for i in range(self.nslots):
            self._slen[i] = 0

    # -- arrival ---------------------------------------------------------------------------------------
    def put(self, seq, ts, payload, n, now):
        if n > self.max_payload:
            n = self.max_payload
        ts &= _MASK30
        self._measure(ts, now)
        if not self.started:
            self.started = True
            self._play_ts = ts
            self._newest = 0
        d = (ts - self._play_ts) & _MASK30
        if d >= _HALF30:
            self.late += 1                  # behind the play point
            return LATE
        d //= self.frame_ts
        if d >= self.nslots:                # far ahead: a timestamp jump (new talkspurt, peer restart)
            self.reset()
            self.started = True
            self._play_ts = ts
            d = 0
            st = RESYNC
        else:
            st = OK
        i = (self._head + d) % self.nslots
        if self._slen[i] and self._sts[i] == ts:
            self.duplicates += 1
            return DUP
        if not self._slen[i]:
            self._count += 1
        if len(payload) == n:
            self._views[i][:n] = payload   # a copy into the slot; slicing only the destination allocates nothing
        else:
            self._views[i][:n] = payload[:n]
        self._sts[i] = ts
        self._slen[i] = n
        if d > self._newest:
            self._newest = d
        self.received += 1
        return st

    def _measure(self, ts, now):
        # A.8 on (arrival ms, RTP ts) in ms; plus a decaying peak that reacts to single spikes
        if self._last_arr is not None:
            dts = (ts - self._last_ts) & _MASK30
            if dts >= _HALF30:
                dts = dts - _MASK30 - 1
            d = ticks_diff(now, self._last_arr) - dts * 1000 // self.clock
            if d < 0:
                d = -d
            if d < 2000:
                self.jitter16 += d - ((self.jitter16 + 8) >> 4)
                self._peak = d if d > self._peak else self._peak - ((self._peak + 63) >> 6)
        self._last_arr = now
        self._last_ts = ts
        fm = self.frame_ms
        need = max(3 * (self.jitter16 >> 4), self._peak)
        t = max(self.min_ms, min(self.max_ms, ((need + fm - 1) // fm + 1) * fm))
        if t >= self.target_ms:
            self.target_ms = t              # more jitter: grow at once
            self._calm = 0
        else:
            self._calm += 1                 # less jitter: shrink one frame per second of calm
            if self._calm >= 1000 // fm:
                self._calm = 0
                self.target_ms -= fm

    # -- playout ---------------------------------------------------------------------------------------
    def fill(self):
        """Frames held from the play point to the newest frame (the current delay in frames)."""
        return self._newest + 1 if self._count else 0

    def delay_ms(self):
        return self.fill() * self.frame_ms

    def pop(self, out, decode):
        if not self.started or (self.buffering and self.fill() * self.frame_ms < self.target_ms):
            return self._silence(out)
        self.buffering = False
        f = self.fill()
        self._wmin = min(self._wmin, f)
        self._wmax = max(self._wmax, f)
        self._wn += 1
        if self._wn >= _WINDOW:
            tf = self.target_ms // self.frame_ms
            lo, hi = self._wmin, self._wmax
            self._wmin, self._wmax, self._wn = 99, 0, 0
            if lo > tf and f > 1:           # fill stayed above target: drop the oldest frame
                self._discard()
                self.dropped += 1
            elif hi < tf and self._plc == 0:  # fill stayed below target: insert one repeated frame
                self.inserted += 1
                return self._conceal(out, 1)
        i = self._head
        n = self._slen[i]
        if n and self._sts[i] == self._play_ts:
            decode(self._views[i], n, out)
            self._last[:] = out
            self._plc = 0
            self._advance()
            self.lost += self._miss         # a gap followed by more audio: those frames were lost
            self._miss = 0
            return FRAME
        self._miss += 1
        self._advance()
        if self._count == 0 and self._plc >= _PLC_FRAMES:
            self.reset()                    # underrun with nothing left: rebuffer on the next packet
            return self._silence(out)
        r = self._conceal(out, 0)
        if r == CONCEALED:
            self.concealed += 1
        return r

    def _advance(self):
        i = self._head
        if self._slen[i]:
            self._slen[i] = 0
            self._count -= 1
        self._head = (i + 1) % self.nslots
        p = self._play_ts
        ft = self.frame_ts
        self._play_ts = p + ft if p <= _MASK30 - ft else p - _MASK30 + ft - 1   # mod 2**30, all small ints
        if self._newest > 0:
            self._newest -= 1

    def _discard(self):
        self._advance()

    def _conceal(self, out, insert):
        if self._plc >= _PLC_FRAMES:
            return self._silence(out)
        self._plc += insert ^ 1
        g = _PLC_FRAMES + 1 - self._plc     # 3, 2, 1 quarters
        src = self._last
        for k in range(0, len(out), 2):
            v = src[k] | (src[k + 1] << 8)
            if v & 0x8000:
                v -= 0x10000
            v = (v * g) >> 2
            out[k] = v & 0xFF
            out[k + 1] = (v >> 8) & 0xFF
        return CONCEALED

    def _silence(self, out):
        if len(out) <= 640:
            out[:] = zeros(len(out))
        else:
            for k in range(len(out)):
                out[k] = 0
        return SILENCE

    def jitter_ms(self):
        return self.jitter16 / 16

    def stats(self):
        return {"received": self.received, "lost": self.lost, "late": self.late, "duplicates": self.duplicates,
                "concealed": self.concealed, "dropped": self.dropped, "inserted": self.inserted,
                "delay_ms": self.delay_ms(), "target_ms": self.target_ms, "jitter_ms": self.jitter_ms()}
