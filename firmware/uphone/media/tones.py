# uPhone: call-progress tones (dial, ringback, busy, congestion, call waiting) per country.
# Integer sine table (dtmf's) + 24-bit phase accumulators; fill() writes int16 LE into the caller's buffer.
from uphone.compat import const
from uphone.media.dtmf import SINE

_AMP = const(6000)          # peak per frequency component (about -15 dBm0; a dual tone peaks at 12000)
_PHASE_BITS = const(24)     # phase accumulator width; the top 8 bits index the 256-entry sine table
_MASK = const(0xFFFFFF)

# country -> name -> (f1 Hz, f2 Hz or 0, cadence in ms: on, off, on, ... (empty = continuous), repeat), as
# constant tuples (in flash on the phone). Sources: North American Precise Tone Plan (us), ETSI TR 101 041-2 /
# CEPT (eu), BT SIN 350 (uk), Deutsche Telekom 1TR110 (de). Call waiting plays its pattern once and then goes
# inactive.
_TONES = (
    ("us", (("dial", 350, 440, (), True),
            ("ringback", 440, 480, (2000, 4000), True),
            ("busy", 480, 620, (500, 500), True),
            ("congestion", 480, 620, (250, 250), True),
            ("callwaiting", 440, 0, (300,), False))),
    ("eu", (("dial", 425, 0, (), True),
            ("ringback", 425, 0, (1000, 4000), True),
            ("busy", 425, 0, (500, 500), True),
            ("congestion", 425, 0, (250, 250), True),
            ("callwaiting", 425, 0, (200, 200, 200), False))),
    ("uk", (("dial", 350, 440, (), True),
            ("ringback", 400, 450, (400, 200, 400, 2000), True),
            ("busy", 400, 0, (375, 375), True),
            ("congestion", 400, 0, (400, 350, 225, 525), True),
            ("callwaiting", 400, 0, (100,), False))),
    ("de", (("dial", 425, 0, (), True),
            ("ringback", 425, 0, (1000, 4000), True),
            ("busy", 425, 0, (480, 480), True),
            ("congestion", 425, 0, (240, 240), True),
            ("callwaiting", 425, 0, (200, 200, 200), False))),
)


def countries():
    return sorted([c[0] for c in _TONES])


def lookup(country, name):
    """(f1, f2, cadence_ms, repeat) for country/name, ValueError naming the valid choices otherwise."""
    for c, tones in _TONES:
        if c == country:
            for t in tones:
                if t[0] == name:
                    return t[1:]
            raise ValueError("tones: unknown tone %r for %s (known: %s)"
                             % (name, country, ", ".join(sorted([t[0] for t in tones]))))
    raise ValueError("tones: unknown country %r (known: %s)" % (country, ", ".join(countries())))


class ToneGen:
    """Generates one call-progress tone at rate Hz; silence while not active."""

    def __init__(self, rate):
        self.rate = rate
        self.active = False
        self.country = self.name = None
        self._seg = [0] * 8         # cadence segments in samples (preallocated, reused by start())
        self._nseg = 0
        self._idx = 0               # current segment
        self._left = 0              # samples left in it
        self._repeat = True
        self._inc1 = self._inc2 = 0
        self._ph1 = self._ph2 = 0

    def _inc(self, f):
        return (f * (1 << _PHASE_BITS) + self.rate // 2) // self.rate

    def start(self, country, name):
        """Start tone name ("dial", "ringback", "busy", "congestion", "callwaiting") of country."""
        f1, f2, cad, rep = lookup(country, name)
        self.country = country
        self.name = name
        self._inc1 = self._inc(f1)
        self._inc2 = self._inc(f2)
        self._ph1 = self._ph2 = 0
        self._nseg = len(cad)
        for i in range(self._nseg):
            self._seg[i] = cad[i] * self.rate // 1000
        self._idx = 0
        self._left = self._seg[0] if self._nseg else 0
        self._repeat = rep
        self.active = True

    def stop(self):
        self.active = False

    def _zero(self, buf, i0, i1):
        for j in range(2 * i0, 2 * i1):
            buf[j] = 0

    def _tone(self, buf, i0, i1):
        sine = SINE             # full scale: each component is scaled to _AMP
        p1 = self._ph1
        p2 = self._ph2
        d1 = self._inc1
        d2 = self._inc2
        for i in range(i0, i1):
            v = (sine[p1 >> 16] * _AMP) >> 15
            p1 = (p1 + d1) & _MASK
            if d2:
                v += (sine[p2 >> 16] * _AMP) >> 15
                p2 = (p2 + d2) & _MASK
            buf[2 * i] = v & 0xFF
            buf[2 * i + 1] = (v >> 8) & 0xFF
        self._ph1 = p1
        self._ph2 = p2

    def fill(self, buf, nsamples):
        """Write the next nsamples of the tone (int16 LE) into buf; returns nsamples."""
        i = 0
        while i < nsamples:
            if not self.active:
                self._zero(buf, i, nsamples)
                break
            if self._nseg == 0:                     # continuous tone
                self._tone(buf, i, nsamples)
                break
            k = nsamples - i
            if k > self._left:
                k = self._left
            if self._idx & 1:
                self._zero(buf, i, i + k)
            else:
                self._tone(buf, i, i + k)
            i += k
            self._left -= k
            if self._left == 0:
                self._idx += 1
                if self._idx == self._nseg:
                    if not self._repeat:
                        self.active = False
                    self._idx = 0
                if not (self._idx & 1):
                    self._ph1 = self._ph2 = 0       # each burst starts at phase 0 (no click)
                self._left = self._seg[self._idx]
        return nsamples
