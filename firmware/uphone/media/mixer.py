# uPhone: N-party conference mixer (each party hears the sum of the others) and a PCMU<->PCMA bridge.
# Per-frame work only touches preallocated buffers: no allocation in put/mix/get or a_to_b/b_to_a.
# mix() is what a running phone uses: in place in the parties' own frames (each call's decoded frame in its line's
# reserved block, the microphone's frame), so a conference needs no buffer of its own; mixer_viper.py holds its
# native twins (mix2/mix3/add/tmap), the plain ones here compute the same bytes.
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
    # Every code through decode -> encode, once: 256 bytes, same result as doing it per sample. The bound
    # decode/encode (viper on the phone): the plain encoder would build its 4-8 KB tables for one use.
    codes = bytes(range(256))
    pcm = bytearray(512)
    g711.decode(law_from, codes, pcm, 256)
    t = bytearray(256)
    g711.encode(law_to, pcm, t, 256)
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
        tmap(payload, out, n, t)        # viper where there is one: a bridge maps every packet it relays
        return n

    def a_to_b(self, payload, n, out):
        """n G.711 bytes from leg a -> n bytes for leg b in out; returns n."""
        return self._run(self._ab, payload, n, out)

    def b_to_a(self, payload, n, out):
        """n G.711 bytes from leg b -> n bytes for leg a in out; returns n."""
        return self._run(self._ba, payload, n, out)


# -- in place: what the conference and the bridge run every frame / packet ---------------------------------------------
def mix2_py(a, b, n):
    for j in range(2 * n):
        x = a[j]
        a[j] = b[j]
        b[j] = x


def _put(buf, j, v):
    if v > 32767:
        v = 32767
    elif v < -32768:
        v = -32768
    buf[j] = v & 0xFF
    buf[j + 1] = (v >> 8) & 0xFF


def mix_py(bufs, k, n):
    """k frames of n int16 LE samples, in place: each becomes the sum of the others, clamped to int16."""
    for j in range(0, 2 * n, 2):
        acc = 0
        for p in range(k):
            acc += _s16(bufs[p], j)
        for p in range(k):
            b = bufs[p]
            _put(b, j, acc - _s16(b, j))


def mix3_py(a, b, c, n):
    for j in range(0, 2 * n, 2):
        x, y, z = _s16(a, j), _s16(b, j), _s16(c, j)
        _put(a, j, y + z)
        _put(b, j, x + z)
        _put(c, j, x + y)


def add_py(dst, a, n):
    """dst <- dst + a, n int16 LE samples, clamped."""
    for j in range(0, 2 * n, 2):
        _put(dst, j, _s16(dst, j) + _s16(a, j))


def tmap_py(src, dst, n, tbl):
    """n bytes through a 256-byte table (a Bridge's law-to-law table)."""
    for i in range(n):
        dst[i] = tbl[src[i]]


try:
    from uphone.media import mixer_viper as _v
except (ImportError, SyntaxError):
    _v = None  # type: ignore[assignment]  # no viper emitter (CPython, the VM): the plain twins

if _v is not None:
    mix2, mix3, add, tmap = _v.mix2, _v.mix3, _v.add, _v.tmap
    IMPL = "viper"
else:
    mix2, mix3, add, tmap = mix2_py, mix3_py, add_py, tmap_py
    IMPL = "plain"


def mix(bufs, k, n):
    """Mix k parties' frames (bufs[0..k-1], n samples each) in place: each hears all the others."""
    if k == 2:
        mix2(bufs[0], bufs[1], n)
    elif k == 3:
        mix3(bufs[0], bufs[1], bufs[2], n)
    elif k > 3:
        mix_py(bufs, k, n)
