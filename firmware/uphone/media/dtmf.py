# uPhone: DTMF three ways: RFC 4733 telephone-event send/receive, SIP INFO bodies, and in-band tones
# (generation, and Goertzel detection in integer arithmetic so it allocates nothing per sample on MicroPython).
import math
import struct
from array import array

from uphone.compat import const

DIGITS = "0123456789*#ABCD"
ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
_KEYPAD = "123A456B789C*0#D"      # row-major: ROWS[r], COLS[c] -> _KEYPAD[4 * r + c]
INFO_TYPE = "application/dtmf-relay"
_MIN_BLOCKS = const(2)             # 2 x 20 ms blocks of stable tone before a digit is reported


def event_code(digit):
    i = DIGITS.find(digit.upper())
    if i < 0:
        raise ValueError("dtmf: not a DTMF digit: %r" % (digit,))
    return i


def _freqs(digit):
    k = _KEYPAD.index(digit.upper())
    return ROWS[k // 4], COLS[k % 4]


class _DigitQueue:
    """Digits waiting to be sent; _k >= 0 while one is being sent."""
    queue = ""
    _k = -1

    def send(self, digits):
        for d in digits:
            event_code(d)               # refuses anything that is not a DTMF digit before queueing
        self.queue += digits.upper()

    def active(self):
        return self._k >= 0 or len(self.queue) > 0


class DtmfSender(_DigitQueue):
    """RFC 4733 2.5.1: step() once per frame; the first packet of an event has the marker bit, updates follow every
    frame with the duration so far (timestamp units), the end packet (E bit) is sent 3 times, then a gap of audio."""

    def __init__(self, frame_ts=160, frame_ms=20, duration_ms=100, gap_ms=60, volume=10):
        self.frame_ts = frame_ts
        self._on = max(1, duration_ms // frame_ms)
        self._gap = max(1, gap_ms // frame_ms)
        self.volume = volume
        self.queue = ""
        self._k = -1                         # frame index within the current digit, -1 = idle
        self._code = 0
        self.marker = False
        self.ts = 0                          # RTP timestamp of the current event (its start)

    def step(self, out, ts):
        """-> 4 when an event payload was written into out (send it with self.marker and self.ts), 0 for audio."""
        if self._k < 0:
            if not self.queue:
                return 0
            self._code = DIGITS.find(self.queue[0])
            self.queue = self.queue[1:]
            self._k = 0
            self.ts = ts
        k = self._k
        self._k += 1
        if k >= self._on + 2 + self._gap - 1:
            self._k = -1                     # last gap frame
        if k >= self._on + 2:
            return 0
        self.marker = k == 0
        end = k >= self._on - 1
        dur = min(k + 1, self._on) * self.frame_ts
        out[0] = self._code
        out[1] = (0x80 if end else 0) | (self.volume & 0x3F)
        struct.pack_into(">H", out, 2, dur & 0xFFFF)
        return 4


class DtmfReceiver:
    """Reports each telephone-event once: on the first packet seen with a new event timestamp (start, update or
    end, whichever survives the network). Redundant updates and end packets are ignored."""

    def __init__(self):
        self._ts1 = None
        self._ts2 = None
        self.count = 0

    def feed(self, data, off, n, ts):
        if n < 4:
            return None
        code = data[off]
        if code > 15 or ts == self._ts1 or ts == self._ts2:
            return None
        self._ts2 = self._ts1                # remember two events: a late end of the previous one is no new digit
        self._ts1 = ts
        self.count += 1
        return DIGITS[code]


def parse_info(body, content_type):
    """SIP INFO body -> digit or None. application/dtmf-relay ("Signal=5\\r\\nDuration=160") or application/dtmf."""
    if body is None or content_type is None:
        return None
    ct = content_type.split(";")[0].strip().lower()
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode()
        except UnicodeError:
            return None
    value = None
    if ct == "application/dtmf-relay":
        for line in body.replace("\r", "\n").split("\n"):
            kv = line.split("=", 1)
            if len(kv) == 2 and kv[0].strip().lower() == "signal":
                value = kv[1].strip()
                break
    elif ct == "application/dtmf":
        value = body.strip()
    if not value:
        return None
    if value.isdigit() and len(value) <= 2 and int(value) <= 15:
        return DIGITS[int(value)]            # "10" / "11" for * and # from some phones
    if len(value) == 1 and DIGITS.find(value.upper()) >= 0:
        return value.upper()
    return None


def info_body(digit, duration_ms=160):
    event_code(digit)
    return ("Signal=%s\r\nDuration=%d\r\n" % (digit.upper(), duration_ms)).encode()


def _sine_table():
    t = array("h", bytes(512))
    for i in range(256):
        t[i] = int(math.sin(2 * math.pi * i / 256) * 32767)
    return t


SINE = _sine_table()        # 256 entries, full scale: the in-band digits and the call-progress tones share it


class ToneSender(_DigitQueue):
    """In-band DTMF: fill() writes the tone (or the gap's silence) over a frame of int16 LE PCM while digits
    are queued; returns False when idle so the caller keeps its own audio."""

    def __init__(self, rate=8000, frame_ms=20, duration_ms=100, gap_ms=60, amp_low=7000, amp_high=9000):
        self.rate = rate
        self._on = max(1, duration_ms // frame_ms)
        self._total = self._on + max(1, gap_ms // frame_ms)
        self._amp = (amp_low, amp_high)
        self.queue = ""
        self._k = -1
        self._p1 = self._p2 = self._i1 = self._i2 = 0

    def fill(self, out, n):
        if self._k < 0:
            if not self.queue:
                return False
            f1, f2 = _freqs(self.queue[0])
            self.queue = self.queue[1:]
            self._i1 = (f1 << 24) // self.rate
            self._i2 = (f2 << 24) // self.rate
            self._p1 = self._p2 = 0
            self._k = 0
        k = self._k
        self._k = k + 1 if k + 1 < self._total else -1
        if k >= self._on:
            for j in range(2 * n):
                out[j] = 0
            return True
        p1, p2, i1, i2 = self._p1, self._p2, self._i1, self._i2
        a1, a2 = self._amp
        tab = SINE
        for j in range(0, 2 * n, 2):
            v = (tab[p1 >> 16] * a1 + tab[p2 >> 16] * a2) >> 15
            out[j] = v & 0xFF
            out[j + 1] = (v >> 8) & 0xFF
            p1 = (p1 + i1) & 0xFFFFFF
            p2 = (p2 + i2) & 0xFFFFFF
        self._p1, self._p2 = p1, p2
        return True


class InbandDetector:
    """Goertzel over 20 ms blocks of int16 LE PCM. A digit needs one row and one column tone above the level
    threshold, each 6 dB over the rest of its group, twist within +4/-8 dB, most of the block energy in the two
    tones, 40 ms stable, and a tone-free block since the last digit."""

    def __init__(self, rate=8000):
        self.n = rate // 50
        self._coef = [int(2 * math.cos(2 * math.pi * f / rate) * 1024 + 0.5) for f in ROWS + COLS]
        self._s1 = [0] * 8
        self._s2 = [0] * 8
        self._pw = [0] * 8
        self._i = 0
        self._energy = 0
        self._prev = -1
        self._run = 0
        self._armed = True
        self._min = self.n * self.n // 128   # per-tone power floor (about -39 dBFS per tone)

    def feed(self, pcm, n):
        """Consume n samples; -> a digit the first time one is confirmed, else None."""
        got = None
        s1, s2, coef = self._s1, self._s2, self._coef
        e, i, bn = self._energy, self._i, self.n
        for j in range(0, 2 * n, 2):
            x = pcm[j] | (pcm[j + 1] << 8)
            if x & 0x8000:
                x -= 0x10000
            x >>= 5
            e += x * x
            for f in range(8):
                s = x + ((coef[f] * s1[f]) >> 10) - s2[f]
                s2[f] = s1[f]
                s1[f] = s
            i += 1
            if i == bn:
                self._energy = e
                d = self._block()
                if d is not None:
                    got = d
                e = i = 0
        self._energy, self._i = e, i
        return got

    def _block(self):
        s1, s2, coef, pw = self._s1, self._s2, self._coef, self._pw
        for f in range(8):
            a = s1[f] >> 6
            b = s2[f] >> 6
            pw[f] = a * a + b * b - ((coef[f] * a) >> 10) * b
            s1[f] = s2[f] = 0
        r = c = 0
        for f in range(1, 4):
            if pw[f] > pw[r]:
                r = f
            if pw[f + 4] > pw[c + 4]:
                c = f
        rp, cp = pw[r], pw[c + 4]
        ok = rp >= self._min and cp >= self._min and 10 * rp < 63 * cp and 2 * cp < 5 * rp
        if ok:
            for f in range(4):
                if (f != r and 4 * pw[f] > rp) or (f != c and 4 * pw[f + 4] > cp):
                    ok = False
        if ok and (rp + cp) < (((self._energy >> 8) * self.n) >> 6):
            ok = False                       # the two tones hold less than half of the block energy
        cand = 4 * r + c if ok else -1
        if cand < 0:
            self._armed = True
            self._prev, self._run = -1, 0
            return None
        self._run = self._run + 1 if cand == self._prev else 1
        self._prev = cand
        if self._run >= _MIN_BLOCKS and self._armed:
            self._armed = False
            return _KEYPAD[cand]
        return None
