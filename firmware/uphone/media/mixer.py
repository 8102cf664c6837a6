# uPhone: N-party conference mixer (each party hears the sum of the others) and a PCMU<->PCMA bridge.
# Per-frame work only touches preallocated buffers: no allocation in put/mix/get or a_to_b/b_to_a.
from uphone.media import g711


def _s16(buf, j):
    v = buf[j] | (buf[j + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


class Mixer:
    """nparties parties, frame_samples int16 samples per frame. Per tick: put() every party that has
    audio (or write into slot(i) and call put(i)), mix() once, then get(i, out) for each party.
    A party that put nothing since the last mix() counts as silence."""

    def __init__(self, nparties, frame_samples):
        if nparties < 2:
            raise ValueError("mixer: need at least 2 parties")
        self.n = nparties
        self.frame = frame_samples
        self._in = [bytearray(2 * frame_samples) for _ in range(nparties)]
        self._fresh = bytearray(nparties)   # 1 = frame put since the last mix()
        self._used = bytearray(nparties)    # 1 = counted in the current sum
        self._sum = [0] * frame_samples

    def slot(self, i):
        """Party i's input frame buffer, for a decoder to write into directly (then call put(i))."""
        return self._in[i]

    def put(self, i, pcm=None):
        """Give party i's decoded frame (int16 LE, frame_samples long) for this tick."""
        if pcm is not None:
            b = self._in[i]
            for j in range(2 * self.frame):
                b[j] = pcm[j]
        self._fresh[i] = 1

    def mix(self):
        """Sum every fresh party once; get() subtracts each party's own share."""
        s = self._sum
        nf = self.frame
        for j in range(nf):
            s[j] = 0
        for p in range(self.n):
            used = self._fresh[p]
            self._used[p] = used
            self._fresh[p] = 0
            if used:
                b = self._in[p]
                k = 0
                for j in range(nf):
                    s[j] += _s16(b, k)
                    k += 2

    def get(self, i, out):
        """Write what party i hears (all other parties, saturated to int16 LE) into out; returns frame."""
        s = self._sum
        own = self._used[i]
        b = self._in[i]
        k = 0
        for j in range(self.frame):
            v = s[j]
            if own:
                v -= _s16(b, k)
            if v > 32767:
                v = 32767
            elif v < -32768:
                v = -32768
            out[k] = v & 0xFF
            out[k + 1] = (v >> 8) & 0xFF
            k += 2
        return self.frame


def _transcode_table(law_from, law_to):
    # Every code through decode -> encode, once: 256 bytes, same result as doing it per sample.
    codes = bytes(range(256))
    pcm = bytearray(512)
    g711.decode_py(law_from, codes, pcm, 256)
    t = bytearray(256)
    g711.encode_py(law_to, pcm, t, 256)
    return bytes(t)


class Bridge:
    """Two-leg G.711 transcoder: leg a speaks law_a, leg b speaks law_b (g711.ULAW / g711.ALAW)."""

    def __init__(self, law_a, law_b, frame=160):
        self.law_a = law_a
        self.law_b = law_b
        self.frame = frame
        self._ab = _transcode_table(law_a, law_b)
        self._ba = _transcode_table(law_b, law_a)

    def _run(self, t, payload, n, out):
        for i in range(n):
            out[i] = t[payload[i]]
        return n

    def a_to_b(self, payload, n, out):
        """n G.711 bytes from leg a -> n bytes for leg b in out; returns n."""
        return self._run(self._ab, payload, n, out)

    def b_to_a(self, payload, n, out):
        """n G.711 bytes from leg b -> n bytes for leg a in out; returns n."""
        return self._run(self._ba, payload, n, out)
