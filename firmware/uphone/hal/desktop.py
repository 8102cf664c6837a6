# uPhone: desktop audio HAL: WAV files, synthesized tones or silence stand in for mic and speaker.
# Sources fill int16 LE frames (readinto); sinks take them (write). Same interface as hal/esp32.py.
import math
from uphone.compat import TYPE_CHECKING, const
from uphone.media.wav import WavReader, WavWriter

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

_TONE_AMP = const(8000)
_TABLE = const(256)      # sine table for tones whose period is too long to render whole (odd frequencies)
_MAX_FRAME = const(1920)  # bytes: 60 ms at 16 kHz, the longest frame a source is asked for
_RING_MAX = const(1024)  # samples: a tone period up to this long is rendered once and frames are copied from it


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


_ZEROS = bytes(320)     # silence is copied from here in pieces (a 60 ms block would be 2 KB of heap for nothing)


def _zero(buf, n):
    off = 0
    while off < n:
        k = n - off if n - off < 320 else 320
        buf[off:off + k] = _ZEROS[:k]
        off += k


class WavSource:
    """spec: "tone:<hz>" (sine, amplitude ~8000, phase continuous across frames), "silence", or the path
    of a 16-bit mono WAV file at rate (looped)."""

    def __init__(self, spec, rate):
        self.spec = spec
        self.rate = rate
        self._f = None
        self._wav = None
        self._sine = None  # type: Any  # array('h') for a tone
        self._ring = None
        if spec == "silence":
            return
        if spec.startswith("tone:"):
            try:
                hz = float(spec[5:])
            except ValueError:
                raise ValueError("audio source %r: tone needs a frequency, e.g. tone:440" % (spec,))
            if not 0 < hz < rate / 2:
                raise ValueError("audio source %r: frequency must be between 0 and %d Hz" % (spec, rate // 2))
            self._ph = 0
            period = rate // _gcd(rate, int(hz)) if hz == int(hz) else 0
            if 0 < period <= _RING_MAX:
                # a whole-Hz tone repeats every rate/gcd(rate, hz) samples: render one period (and enough more
                # that a frame starting anywhere in it fits), then a frame is one slice copy (like the DMA copy
                # of machine.I2S.readinto on the phone) instead of a Python loop
                pb = 2 * period
                ring = bytearray(pb * ((pb + _MAX_FRAME + pb - 1) // pb))
                for i in range(len(ring) // 2):
                    v = int(round(_TONE_AMP * math.sin(2 * math.pi * hz * (i % period) / rate))) & 0xFFFF
                    ring[2 * i] = v & 0xFF
                    ring[2 * i + 1] = v >> 8
                self._ring = memoryview(ring)
                self._period = pb
                self._pos = 0
                self._views = {}
                return
            import array
            self._sine = array.array("h", [int(round(_TONE_AMP * math.sin(2 * math.pi * i / _TABLE)))
                                           for i in range(_TABLE)])
            # phase = table position with 16 fractional bits (stays a small int on MicroPython)
            self._inc = int(round(hz * _TABLE * 65536 / rate))
            self._wrap = _TABLE << 16
            return
        self._f = open(spec, "rb")
        w = WavReader(self._f)
        if w.channels != 1 or w.rate != rate:
            self._f.close()
            raise ValueError("audio source %s: need 16-bit mono at %d Hz, file is %d ch at %d Hz"
                             % (spec, rate, w.channels, w.rate))
        self._wav = w

    def _synth(self, buf, n):
        t = self._sine
        ph = self._ph
        for i in range(0, n - 1, 2):
            v = t[ph >> 16]
            ph += self._inc
            if ph >= self._wrap:
                ph -= self._wrap
            buf[i] = v & 0xFF
            buf[i + 1] = (v >> 8) & 0xFF
        self._ph = ph

    def readinto(self, buf):
        """Fill all of buf with int16 LE samples; returns len(buf)."""
        n = len(buf)
        if self._ring is not None:
            off = 0
            while off < n:
                k = n - off if n - off < _MAX_FRAME else _MAX_FRAME
                p = self._pos
                v = self._views.get(p)      # frames visit few offsets: one cached view each, no slice per frame
                if v is None or len(v) != k:
                    v = self._ring[p:p + k]
                    self._views[p] = v
                buf[off:off + k] = v
                self._pos = (p + k) % self._period
                off += k
        elif self._sine is not None:
            self._synth(buf, n)
        elif self._wav is not None:
            mv = memoryview(buf)
            got = 0
            empty = 0
            while got < n:
                k = self._wav.readinto(mv[got:n])
                if k:
                    got += k
                    empty = 0
                else:
                    empty += 1
                    if empty > 1:           # a file with no samples: pad with silence
                        for i in range(got, n):
                            buf[i] = 0
                        break
                    self._wav.rewind()
        else:
            _zero(buf, n)
        return n

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


class WavSink:
    """Appends every frame written to a 16-bit mono WAV file at path; close() finishes the file."""

    def __init__(self, path, rate):
        self.path = path
        self._f = open(path, "wb")
        self._w = WavWriter(self._f, rate)  # type: Any  # None once closed

    def write(self, buf):
        if self._w is not None:
            self._w.write(buf)
        return len(buf)

    def close(self):
        if self._w is not None:
            self._w.close()
            self._f.close()
            self._w = None


class NullDevice:
    """Silent source and bottomless sink."""

    def readinto(self, buf):
        _zero(buf, len(buf))
        return len(buf)

    def write(self, buf):
        return len(buf)

    def close(self):
        pass


class Link:
    """The desktop's network link, for the console's `net` as a board's Wi-Fi station (uphone.wifi.Station) is: the
    host's interface, which never drops by itself. `net reconnect [ip]` drops it and brings it back at once, with
    the address ip (any 127.x.y.z is this host on loopback) as a Wi-Fi rejoin with a new DHCP lease brings one, or
    on the same address; the phone follows as after a Wi-Fi reconnect (Phone.network_changed)."""

    def __init__(self, phone):
        self.phone = phone

    def describe(self):
        return "up %s" % self.phone.local_ip

    def reconnect(self, ip=None):
        if ip is not None:
            parts = ip.split(".")
            if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
                return "bad address %r (a dotted IPv4 address)" % ip
        self.phone.network_changed(ip)
        return None
