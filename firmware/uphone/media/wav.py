# uPhone: minimal RIFF/WAVE reader and writer for 16-bit PCM (recordings, desktop audio, test rigs).
# The writer puts a 44-byte header with zero sizes first and patches both sizes in close().
import struct

_HDR = 44


class WavReader:
    """Parse a 16-bit PCM WAV header from f; readinto(buf) then returns raw int16 LE sample bytes."""

    def __init__(self, f):
        self.f = f
        head = f.read(12)
        if len(head) != 12 or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError("wav: not a RIFF/WAVE file")
        self.rate = self.channels = self.bits = 0
        while True:
            ch = f.read(8)
            if len(ch) < 8:
                raise ValueError("wav: no data chunk")
            cid = ch[0:4]
            size = struct.unpack("<I", ch[4:8])[0]
            if cid == b"fmt ":
                fmt = f.read(size + (size & 1))
                if len(fmt) < 16:
                    raise ValueError("wav: short fmt chunk")
                tag, self.channels, self.rate, _, _, self.bits = struct.unpack("<HHIIHH", fmt[0:16])
                if tag == 0xFFFE and len(fmt) >= 26:
                    tag = struct.unpack("<H", fmt[24:26])[0]   # WAVE_FORMAT_EXTENSIBLE sub-format
                if tag != 1 or self.bits != 16:
                    raise ValueError("wav: only 16-bit PCM is supported (format %d, %d bits)"
                                     % (tag, self.bits))
            elif cid == b"data":
                if not self.rate:
                    raise ValueError("wav: data chunk before fmt chunk")
                self.size = size            # bytes of PCM
                self._left = size
                try:
                    self._start = f.tell()
                except (AttributeError, OSError):
                    self._start = None
                return
            else:
                f.read(size + (size & 1))   # skip LIST, fact, ... (chunks are word aligned)

    @property
    def frames(self):
        """Number of sample frames in the data chunk."""
        return self.size // (2 * self.channels)

    def readinto(self, buf):
        """Fill buf with PCM bytes; returns the count (0 at the end of the data)."""
        n = len(buf)
        if n > self._left:
            n = self._left & ~1
        if n <= 0:
            return 0
        got = self.f.readinto(buf if n == len(buf) else memoryview(buf)[0:n])
        got = got or 0
        self._left -= got
        return got

    def rewind(self):
        """Back to the first sample (needs a seekable file)."""
        if self._start is None:
            raise OSError("wav: file is not seekable")
        self.f.seek(self._start)
        self._left = self.size


class WavWriter:
    """Write 16-bit mono PCM at rate to f. close() patches the sizes; it does not close f."""

    def __init__(self, f, rate, channels=1):
        self.f = f
        self.rate = rate
        self.channels = channels
        self.size = 0
        f.write(self._header(0))

    def _header(self, size):
        align = 2 * self.channels
        return (b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt "
                + struct.pack("<IHHIIHH", 16, 1, self.channels, self.rate, self.rate * align, align, 16)
                + b"data" + struct.pack("<I", size))

    def write(self, buf):
        """Append int16 LE PCM bytes."""
        self.f.write(buf)
        self.size += len(buf)

    def close(self):
        """Patch the RIFF and data sizes (file stays open; seekable file needed)."""
        f = self.f
        if f is None:
            return
        if self.size & 1:
            f.write(b"\x00")
        f.seek(4)
        f.write(struct.pack("<I", 36 + self.size))
        f.seek(40)
        f.write(struct.pack("<I", self.size))
        f.seek(0, 2)
        try:
            f.flush()
        except AttributeError:
            pass
        self.f = None
