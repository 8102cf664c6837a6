# uPhone: SRTP and SRTCP (RFC 3711) with AES_CM_128_HMAC_SHA1_80 and _32, sans-I/O, in place in the caller's buffer.
# AES-CM (RFC 3711 4.1.1) is the ECB encryption of counter blocks XORed onto the payload: MicroPython's cryptolib in
# ECB mode encrypts all of a packet's counter blocks in one call into a preallocated buffer; CPython has no AES in its
# standard library and uses the `cryptography` package behind the same encrypt(src, dst).
#
# Why ECB and not cryptolib's CTR mode (mode 6, only where a build sets MICROPY_PY_CRYPTOLIB_CTR, which v1.27's
# ports and these boards do not): a CTR aes object takes its counter block once, at construction, and keeps running
# it; SRTP needs a fresh IV per packet, so CTR would mean a new aes object (heap, and the key schedule again) per
# packet. ECB with our own counter blocks allocates nothing per packet and runs on stock firmware.
#
# Per packet on MicroPython nothing is allocated: the counter blocks (only bytes 12..13 change while SSRC and ROC
# stay), one cryptolib call, and the XOR and HMAC-SHA1 in viper (srtp_viper.py; SHA-1 from the key's inner and outer
# states, made once). HMAC over hashlib.sha1 is the plain path (CPython, ports without viper): it leaves two sha1
# objects and two digests per packet (~320 bytes of garbage on the 32-bit runtime; the API has no reset, copy or
# digest-into), and on MicroPython those multi-block allocations cost more than the hashing (bench/srtp_mp.py).
import struct

from uphone.compat import const

try:
    import hashlib
    _sha1 = hashlib.sha1
except (ImportError, AttributeError):
    _sha1 = None  # type: ignore[assignment,misc]  # a port without hashlib.sha1 has no SRTP

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
KEY_LEN = const(16)
SALT_LEN = const(14)
RTCP_TAG = const(10)        # SRTCP's tag is 80 bits in both suites (RFC 4568 6.2.1, 6.2.2)
ERR_PACKET = const(-1)      # not (S)RTP/(S)RTCP, too short, too long for max_packet, no room for the tag
ERR_AUTH = const(-2)        # the authentication tag does not match
ERR_REPLAY = const(-3)      # already received, or older than the replay window
ERR_LIMIT = const(-4)       # the key's lifetime is used up, or (sending) more SSRCs than slots
_WIN = const(128)           # replay window in packets (RFC 3711 3.3.2: at least 64)
_WMASK = const(127)
_SLOTS = const(4)           # SRTP streams (SSRCs) per key and direction
_CSLOTS = const(2)          # SRTCP streams
_HALF = const(32768)
MAX_SRTCP = 1 << 31         # RFC 3711 3.4: the SRTCP index is 31 bits

try:
    import cryptolib

    def _ecb(key):
        """-> encrypt(src, dst): AES-ECB of src's 16-byte blocks into dst (cryptolib mode 1), no allocation."""
        return cryptolib.aes(bytes(key), 1).encrypt
    AES = "cryptolib"
except ImportError:
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # type: ignore[import-not-found]

        def _ecb(key):
            """-> encrypt(src, dst): AES-ECB through the `cryptography` package (CPython, the desktop simulator)."""
            e = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()

            def encrypt(src, dst):
                n = len(src)
                dst[:n] = e.update(src)
            return encrypt
        AES = "cryptography"
    except ImportError:
        _ecb = None  # type: ignore[assignment]
        AES = None  # type: ignore[assignment]


# -- per-packet byte loops: plain twins (CPython, ports without viper); srtp_viper.py has the phone's ----------------
def xor_py(p, k, off, n):
    """p[off:off + n] ^= k[:n]."""
    j = off
    for i in range(n):
        p[j] ^= k[i]
        j += 1


def put_py(p, k, off, n):
    """p[off:off + n] = k[:n]."""
    for i in range(n):
        p[off + i] = k[i]


def diff_py(p, k, off, n):
    """OR of p[off + i] ^ k[i] over all n bytes (0: equal); no early exit."""
    x = 0
    for i in range(n):
        x |= p[off + i] ^ k[i]
    return x


def ctr_seq_py(ctr, nb, b12, b13):
    """Bytes 12 and 13 of counter blocks 0..nb-1."""
    for j in range(0, nb << 4, 16):
        ctr[j + 12] = b12
        ctr[j + 13] = b13


def ctr_copy_py(ctr, first, nb):
    """Bytes 0..13 of counter block 0 into blocks first..nb-1."""
    for j in range(first << 4, nb << 4, 16):
        for i in range(14):
            ctr[j + i] = ctr[i]


try:
    from uphone.media import srtp_viper as _v
    xor = _v.xor
    put = _v.put
    diff = _v.diff
    ctr_seq = _v.ctr_seq
    ctr_copy = _v.ctr_copy
    IMPL = "viper"
except (ImportError, SyntaxError):
    _v = None  # type: ignore[assignment]  # no viper emitter (CPython, the VM): plain twins, hashlib's HMAC
    xor = xor_py
    put = put_py
    diff = diff_py
    ctr_seq = ctr_seq_py
    ctr_copy = ctr_copy_py
    IMPL = "python"


# -- setup-time helpers (allocate; not per packet) -----------------------------------------------------------------
def _add(c, k):
    # c, a 16-byte big-endian counter, += k (mod 2**128)
    i = 15
    while k and i >= 0:
        k += c[i]
        c[i] = k & 0xFF
        k >>= 8
        i -= 1


def keystream(encrypt, iv, n, first=0):
    """n bytes of AES-CM keystream (RFC 3711 4.1.1): encrypt(iv + first), encrypt(iv + first + 1), ... mod 2**128.
    encrypt: an ECB encrypt(src, dst) as _ecb returns."""
    nb = (n + 15) >> 4
    c = bytearray(iv)
    _add(c, first)
    ctr = bytearray(16 * nb)
    for i in range(nb):
        ctr[16 * i:16 * i + 16] = c
        _add(c, 1)
    out = bytearray(16 * nb)
    encrypt(ctr, out)
    return bytes(out[:n])


def derive(key, salt, label, n):
    """RFC 3711 4.3.1 with key_derivation_rate 0 (r = 0): x = (label || r) XOR master salt, the label landing on
    byte 7 of the 14-byte salt; the session key is PRF_n(master key, x) = the first n bytes of AES-CM keystream with
    IV = x * 2**16 (4.3.3). Labels (4.3.2): 0/1/2 SRTP encryption/authentication/salt, 3/4/5 the same for SRTCP."""
    if _ecb is None:
        raise RuntimeError("srtp: no AES on this runtime")
    iv = bytearray(16)
    iv[0:14] = salt
    iv[7] ^= label
    return keystream(_ecb(key), iv, n)


def pads(key):
    """RFC 2104: (key XOR ipad, key XOR opad), each 64 bytes, for a key of at most 64 bytes."""
    ip = bytearray(64)
    op = bytearray(64)
    for i in range(64):
        k = key[i] if i < len(key) else 0
        ip[i] = k ^ 0x36
        op[i] = k ^ 0x5C
    return bytes(ip), bytes(op)


def hmac_sha1(ipad, opad, data, extra=None):
    """HMAC-SHA1(key, data || extra) from the key's pads (RFC 2104: H(K^opad, H(K^ipad, text))) -> 20 bytes.
    micropython-lib's hmac.new(key, msg, hashlib.sha1) computes the same, but builds the two pads again with two
    64-step generator loops each call (MicroPython's hashes have no copy() to keep keyed states), which per packet
    costs more than everything else here together (bench/srtp_mp.py measures both); tests check the two agree."""
    h = _sha1(ipad)
    h.update(data)
    if extra is not None:
        h.update(extra)
    d = h.digest()
    h = _sha1(opad)
    h.update(d)
    return h.digest()


_SHA1_IV = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)   # FIPS 180-4 5.3.1
_SHA1_K = (0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6)               # FIPS 180-4 4.2.1
MAC_CTX = const(524)


def mac_ctx(key):
    """The viper HMAC-SHA1's context for an authentication key (srtp_viper.hmac_sha1: the SHA-1 constants, the
    states after the key ^ ipad and key ^ opad blocks, room for the schedule and the last blocks). Setup only."""
    ctx = bytearray(MAC_CTX)
    for i in range(4):
        struct.pack_into("<I", ctx, 20 + 4 * i, _SHA1_K[i])    # ptr32 words: little-endian (x86, Xtensa)
    ip, op = pads(key)
    for pad, at in ((ip, 356), (op, 376)):
        for i in range(5):
            struct.pack_into("<I", ctx, 4 * i, _SHA1_IV[i])
        _v.hmac_sha1(ctx, pad, 64, -2)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        ctx[at:at + 20] = ctx[0:20]
    return ctx


def _hlen(buf, n):
    # RTP header length (RFC 3550 5.1, 5.3.1: CSRCs, extension), -1 when buf[:n] is not RTP
    if n < 12:
        return -1
    b0 = buf[0]
    if b0 & 0xC0 != 0x80:
        return -1
    h = 12 + ((b0 & 0x0F) << 2)
    if b0 & 0x10:
        if h + 4 > n:
            return -1
        h += 4 + (((buf[h + 2] << 8) | buf[h + 3]) << 2)
    return h if h <= n else -1


class _Stream:
    """Per-SSRC state of one direction (RFC 3711 3.2.1): for SRTP the ROC and s_l, the highest SEQ seen (`top`);
    for SRTCP the highest SRTCP index (`top`). The replay window is 128 bits, bit (index mod 128)."""

    def __init__(self):
        self.hi = self.lo = -1               # SSRC as two 16-bit halves (small ints on MicroPython); -1: free
        self.roc = 0
        self.top = 0
        self.win = bytearray(_WIN >> 3)
        self.used = 0


def _advance(st, d, p):
    # accept index p, d > 1 past the highest: the window's bits between are cleared, then p's is set
    w = st.win
    if d >= _WIN:
        for i in range(_WIN >> 3):
            w[i] = 0
    else:
        q = st.top
        for _ in range(d):
            q += 1
            w[(q & _WMASK) >> 3] &= ~(1 << (q & 7))
    w[(p & _WMASK) >> 3] |= 1 << (p & 7)


class Srtp:
    """The crypto contexts of one master key and salt (one SDES key: one direction of a call): the SRTP and SRTCP
    session keys derived from it (RFC 3711 4.3) and the state of up to 4 SSRCs (SRTP) and 2 (SRTCP). protect() and
    protect_rtcp() on
    the sending side, unprotect() and unprotect_rtcp() on the receiving side; all work in place in the caller's
    buffer and return the new length or a negative ERR_*. Pass the same buffer packet after packet: its checks and
    views are made once per (buffer, length).
    max_packet: the longest packet handled, tag included (sizes the two counter/keystream buffers, 2 x 16-byte
    blocks). lifetime: packets allowed under this key (SDES `|2^n`; None: RFC 3711's 2**48 and 2**31).
    The per-packet path is written for MicroPython: a call whose locals and stack need more than 11 words takes its
    frame from the heap there (py/objfun.c, VM_MAX_STATE_ON_STACK), so lookups and the common cases are inline and
    the byte loops and the HMAC are viper."""

    def __init__(self, key, salt, suite="AES_CM_128_HMAC_SHA1_80", max_packet=576, lifetime=None):
        if _ecb is None or _sha1 is None:
            raise RuntimeError("srtp: no AES or SHA-1 here (MicroPython without cryptolib/hashlib.sha1, or CPython "
                               "without the cryptography package)")
        if suite not in SUITES:
            raise ValueError("srtp: unsupported suite %r" % (suite,))
        if len(key) != KEY_LEN or len(salt) != SALT_LEN:
            raise ValueError("srtp: master key must be 16 bytes and salt 14")
        self.suite = suite
        self.tag_len = 10 if suite == SUITES[0] else 4
        self.max_packet = max_packet
        nb = (max_packet + 15) >> 4
        self._ctr = bytearray(nb << 4)          # counter blocks: IV in bytes 0..13, block number in 14..15
        for i in range(nb):
            self._ctr[(i << 4) + 14] = i >> 8
            self._ctr[(i << 4) + 15] = i & 0xFF
        self._ks = bytearray(nb << 4)           # their encryption: the keystream
        self._cmv = memoryview(self._ctr)
        self._kmv = memoryview(self._ks)
        self._nb = -1                           # block count of the cached views _cv/_kv
        self._cv = self._kv = self._cmv
        self._cst = None                        # the stream and ROC whose IV bytes 0..11 are in _cnb blocks
        self._croc = -1
        self._cnb = 0
        # lifetime: checked only below 2**30 packets (248 days of one stream at 50 packets/s), where the counters
        # stay small ints on MicroPython; 0 = no check
        self._lim = lifetime if lifetime is not None and lifetime < 1 << 30 else 0
        master = _ecb(key)

        def prf(label, n):
            iv = bytearray(16)
            iv[0:14] = salt
            iv[7] ^= label
            return keystream(master, iv, n)
        self._set_keys(prf(0, 16), prf(2, 14), prf(1, 20), prf(3, 16), prf(5, 14), prf(4, 20))
        self._rtp = [_Stream() for _ in range(_SLOTS)]
        self._rtcp = [_Stream() for _ in range(_CSLOTS)]
        self._last = self._rtp[0]
        self._lastc = self._rtcp[0]
        self._clock = 0
        self._r4 = bytearray(4)                 # the ROC as the hashlib path appends it
        self._pb = self._ub = None              # protect's/unprotect's last buffer and length, checked, and the view
        self._pn = self._un = -1                # of what the tag covers in it
        self._pv = self._uv = self._cmv
        self._xor = xor
        self._put = put
        self._diff = diff
        self._seq = ctr_seq
        self._copy = ctr_copy
        self.rtcp_index = 0                     # the next SRTCP index we send (RFC 3711 3.4: starts at 0)
        self.packets = 0                        # SRTP packets protected/accepted under this key
        self.rtcp_packets = 0
        self.auth_failed = 0
        self.replayed = 0

    def _set_keys(self, k_e, k_s, k_a, kc_e, kc_s, kc_a):
        # session keys (the RFC 3711 B.2 test sets its own through here)
        self._enc = _ecb(k_e)
        self._salt = bytes(k_s)
        self._s12 = k_s[12]
        self._s13 = k_s[13]
        self._cenc = _ecb(kc_e)
        self._csalt = bytes(kc_s)
        self._cst = None
        self._ka = bytes(k_a)
        self._kca = bytes(kc_a)
        if _v is not None:                      # the viper HMAC: nothing allocated per packet
            self._actx = mac_ctx(k_a)
            self._cactx = mac_ctx(kc_a)
            self._dig = memoryview(self._actx)[396:416]
            self._cdig = memoryview(self._cactx)[396:416]
            self._hm = _v.hmac_sha1
        else:
            self.use_hashlib_hmac()

    def use_hashlib_hmac(self):
        """HMAC-SHA1 through hashlib over the keys' pads (the plain path; tests and the bench compare it)."""
        self._ip, self._op = pads(self._ka)
        self._cip, self._cop = pads(self._kca)
        self._hm = None  # type: ignore[assignment]

    def use_plain_twins(self):
        """Run the plain-Python byte loops and hashlib's HMAC instead of the viper ones (tests, the bench)."""
        self._xor = xor_py
        self._put = put_py
        self._diff = diff_py
        self._seq = ctr_seq_py
        self._copy = ctr_copy_py
        self.use_hashlib_hmac()

    # -- streams -------------------------------------------------------------------------------------------------
    def _lookup(self, slots, hi, lo):
        for st in slots:
            if st.lo == lo and st.hi == hi:
                return st
        return None

    def _claim(self, slots, hi, lo, evict):
        # a free slot, else (evict) the one claimed longest ago; its replay window goes with it
        old = None
        for st in slots:
            if st.hi < 0:
                old = st
                break
            if old is None or st.used < old.used:
                old = st
        if old is None or (old.hi >= 0 and not evict):
            return None
        self._clock += 1
        old.hi = hi
        old.lo = lo
        old.roc = old.top = 0
        w = old.win
        for i in range(_WIN >> 3):
            w[i] = 0
        old.used = self._clock
        self._cst = None                        # the slot may have held the stream whose IV is cached
        return old

    def _sender(self, hi, lo, seq):
        # the slow path of protect(): another SSRC than the last packet's
        st = self._lookup(self._rtp, hi, lo)
        if st is None:
            st = self._claim(self._rtp, hi, lo, False)
            if st is None:
                return None                     # a 5th SSRC: refused rather than risk a reused keystream
            st.top = seq
        self._last = st
        return st

    # -- AES-CM --------------------------------------------------------------------------------------------------
    def _views(self, nb):
        # the counter and keystream views of nb blocks (packet after packet the same size: made once)
        self._cv = self._cmv[:nb << 4]
        self._kv = self._kmv[:nb << 4]
        self._nb = nb

    def _rtp_ctr(self, st, roc, seq, nb):
        # IV = salt * 2**16 ^ SSRC * 2**64 ^ (ROC || SEQ) * 2**16 (RFC 3711 4.1.1) into nb counter blocks. The
        # packet path calls this only when SSRC or ROC changed or the packet is longer: otherwise bytes 12..13
        # (salt ^ SEQ) are all that differ, and it writes just those (ctr_seq)
        c = self._ctr
        s = self._salt
        c[0] = s[0]
        c[1] = s[1]
        c[2] = s[2]
        c[3] = s[3]
        c[4] = s[4] ^ (st.hi >> 8)
        c[5] = s[5] ^ (st.hi & 0xFF)
        c[6] = s[6] ^ (st.lo >> 8)
        c[7] = s[7] ^ (st.lo & 0xFF)
        c[8] = s[8] ^ ((roc >> 24) & 0xFF)
        c[9] = s[9] ^ ((roc >> 16) & 0xFF)
        c[10] = s[10] ^ ((roc >> 8) & 0xFF)
        c[11] = s[11] ^ (roc & 0xFF)
        c[12] = s[12] ^ (seq >> 8)
        c[13] = s[13] ^ (seq & 0xFF)
        self._copy(c, 1, nb)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        self._cst = st
        self._croc = roc
        self._cnb = nb

    def _rtcp_ctr(self, buf, idx, nb):
        # the same for SRTCP: SSRC from the packet, the 31-bit SRTCP index in place of ROC || SEQ (RFC 3711 3.4)
        c = self._ctr
        s = self._csalt
        for i in range(4):
            c[i] = s[i]
            c[4 + i] = s[4 + i] ^ buf[4 + i]
        c[8] = s[8]
        c[9] = s[9]
        c[10] = s[10] ^ ((idx >> 24) & 0xFF)
        c[11] = s[11] ^ ((idx >> 16) & 0xFF)
        c[12] = s[12] ^ ((idx >> 8) & 0xFF)
        c[13] = s[13] ^ (idx & 0xFF)
        self._copy(c, 1, nb)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        self._cst = None

    def _roc4(self, v):
        r = self._r4
        r[0] = (v >> 24) & 0xFF
        r[1] = (v >> 16) & 0xFF
        r[2] = (v >> 8) & 0xFF
        r[3] = v & 0xFF
        return r

    # -- SRTP ----------------------------------------------------------------------------------------------------
    def protect(self, buf, n):
        """The RTP packet in buf[:n] -> SRTP in place: payload (after CSRCs and extension) encrypted, the tag
        written at buf[n:n + tag_len]. -> the SRTP length, ERR_PACKET or ERR_LIMIT. The sender's ROC follows SEQ
        wrapping (RFC 3711 3.3.1). The packet path allocates only what hashlib does."""
        tl = self.tag_len
        if buf is not self._pb or n != self._pn:
            if _hlen(buf, n) < 0 or n + tl > len(buf) or n + tl > self.max_packet:
                return ERR_PACKET
            self._pv = memoryview(buf)[:n]
            self._pb = buf
            self._pn = n
        if buf[0] == 0x80:                      # no CSRC, no extension, no padding: 12 bytes
            h = 12
        else:
            h = _hlen(buf, n)
            if h < 0:
                return ERR_PACKET
        if self._lim and self.packets >= self._lim:
            return ERR_LIMIT
        hi = (buf[8] << 8) | buf[9]
        lo = (buf[10] << 8) | buf[11]
        seq = (buf[2] << 8) | buf[3]
        st = self._last
        if st.lo != lo or st.hi != hi:
            st = self._sender(hi, lo, seq)
            if st is None:
                return ERR_LIMIT
        roc = st.roc                            # RFC 3711 3.3.1 / appendix A: the index of this SEQ
        s_l = st.top
        v = roc
        if s_l < _HALF:
            if seq - s_l > _HALF:
                v = roc - 1
        elif s_l - _HALF > seq:
            v = roc + 1
        if v == roc:
            if seq > s_l:
                st.top = seq
        elif v > roc:                           # SEQ wrapped: the ROC goes up
            st.roc = v
            st.top = seq
        elif v < 0:
            return ERR_PACKET                   # a SEQ from before the stream's first: it has no index
        k = n - h
        if k:
            nb = (k + 15) >> 4
            if st is self._cst and v == self._croc and nb <= self._cnb:
                # viper: any buffer for a ptr
                self._seq(self._ctr, nb, self._s12 ^ (seq >> 8), self._s13 ^ (seq & 0xFF))  # type: ignore[arg-type]
            else:
                self._rtp_ctr(st, v, seq, nb)
            if nb != self._nb:
                self._views(nb)
            self._enc(self._cv, self._kv)
            self._xor(buf, self._ks, h, k)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        if self._hm is not None:                # HMAC-SHA1(k_a, packet || ROC) (RFC 3711 4.2.1)
            self._hm(self._actx, buf, n, v)
            self._put(buf, self._dig, n, tl)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        else:                                   # hashlib's (see hmac_sha1)
            x = _sha1(self._ip)
            x.update(self._pv)
            x.update(self._roc4(v))
            y = _sha1(self._op)
            y.update(x.digest())
            self._put(buf, y.digest(), n, tl)
        self.packets += 1
        return n + tl

    def unprotect(self, buf, n):
        """The SRTP packet in buf[:n] -> RTP in place (tag checked, replay checked, payload decrypted). -> the RTP
        length, or ERR_PACKET, ERR_AUTH, ERR_REPLAY, ERR_LIMIT; a refused packet is left as it came."""
        tl = self.tag_len
        m = n - tl
        if buf is not self._ub or n != self._un:
            if _hlen(buf, m) < 0 or n > len(buf) or n > self.max_packet:
                return ERR_PACKET
            self._uv = memoryview(buf)[:m]
            self._ub = buf
            self._un = n
        if buf[0] == 0x80:
            h = 12
        else:
            h = _hlen(buf, m)
            if h < 0:
                return ERR_PACKET
        if self._lim and self.packets >= self._lim:
            return ERR_LIMIT
        hi = (buf[8] << 8) | buf[9]
        lo = (buf[10] << 8) | buf[11]
        seq = (buf[2] << 8) | buf[3]
        st = self._last
        if st.lo != lo or st.hi != hi:
            st = self._lookup(self._rtp, hi, lo)
        if st is None:
            v = roc = 0                         # a new SSRC starts with ROC 0 (RFC 3711 3.3.1)
            d = 1
        else:
            roc = st.roc
            s_l = st.top
            v = roc
            if s_l < _HALF:
                if seq - s_l > _HALF:
                    v = roc - 1
            elif s_l - _HALF > seq:
                v = roc + 1
            d = ((v - roc) << 16) + seq - s_l   # index - highest index (v = -1 gives d < -65535: too old)
            if d <= 0 and (d <= -_WIN or st.win[(seq & _WMASK) >> 3] & (1 << (seq & 7))):
                self.replayed += 1
                return ERR_REPLAY
        if self._hm is not None:
            self._hm(self._actx, buf, m, v)
            x = self._diff(buf, self._dig, m, tl)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        else:
            y = _sha1(self._ip)
            y.update(self._uv)
            y.update(self._roc4(v))
            x = _sha1(self._op)
            x.update(y.digest())
            x = self._diff(buf, x.digest(), m, tl)
        if x:
            self.auth_failed += 1
            return ERR_AUTH
        if st is None:
            st = self._claim(self._rtp, hi, lo, True)
            st.top = seq
            d = 0                               # (its bit is set below)
        elif d > 1:
            _advance(st, d, seq)
        if d > 0:                               # a new highest index: d == 1 clears and sets the same bit
            st.top = seq
            st.roc = v
        st.win[(seq & _WMASK) >> 3] |= 1 << (seq & 7)
        self._last = st
        k = m - h
        if k:
            nb = (k + 15) >> 4
            if st is self._cst and v == self._croc and nb <= self._cnb:
                # viper: any buffer for a ptr
                self._seq(self._ctr, nb, self._s12 ^ (seq >> 8), self._s13 ^ (seq & 0xFF))  # type: ignore[arg-type]
            else:
                self._rtp_ctr(st, v, seq, nb)
            if nb != self._nb:
                self._views(nb)
            self._enc(self._cv, self._kv)
            self._xor(buf, self._ks, h, k)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        self.packets += 1
        return m

    # -- SRTCP ---------------------------------------------------------------------------------------------------
    def protect_rtcp(self, buf, n):
        """The (compound) RTCP packet in buf[:n] -> SRTCP in place: all after the first 8 bytes encrypted, then
        E flag || SRTCP index (4 bytes) and the 10-byte tag (RFC 3711 3.4). -> n + 14, ERR_PACKET or ERR_LIMIT.
        Not per frame (one report per few seconds): its views are allocated."""
        if n < 8 or buf[0] & 0xC0 != 0x80 or n + 4 + RTCP_TAG > len(buf) or n + 4 + RTCP_TAG > self.max_packet:
            return ERR_PACKET
        idx = self.rtcp_index
        if idx >= MAX_SRTCP or (self._lim and self.rtcp_packets >= self._lim):
            return ERR_LIMIT
        self.rtcp_index = idx + 1
        k = n - 8
        if k:
            nb = (k + 15) >> 4
            self._rtcp_ctr(buf, idx, nb)
            if nb != self._nb:
                self._views(nb)
            self._cenc(self._cv, self._kv)
            self._xor(buf, self._ks, 8, k)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        buf[n] = 0x80 | ((idx >> 24) & 0x7F)   # E = 1: encrypted
        buf[n + 1] = (idx >> 16) & 0xFF
        buf[n + 2] = (idx >> 8) & 0xFF
        buf[n + 3] = idx & 0xFF
        if self._hm is not None:
            self._hm(self._cactx, buf, n + 4, -1)
            self._put(buf, self._cdig, n + 4, RTCP_TAG)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        else:
            self._put(buf, hmac_sha1(self._cip, self._cop, memoryview(buf)[:n + 4]), n + 4, RTCP_TAG)
        self.rtcp_packets += 1
        return n + 4 + RTCP_TAG

    def unprotect_rtcp(self, buf, n):
        """The SRTCP packet in buf[:n] -> RTCP in place. -> the RTCP length, or ERR_PACKET, ERR_AUTH, ERR_REPLAY,
        ERR_LIMIT. A packet with E = 0 (sent unencrypted, still authenticated) is accepted as it is."""
        if n < 8 + 4 + RTCP_TAG or n > len(buf) or n > self.max_packet or buf[0] & 0xC0 != 0x80:
            return ERR_PACKET
        if self._lim and self.rtcp_packets >= self._lim:
            return ERR_LIMIT
        m = n - RTCP_TAG
        e = buf[m - 4]
        idx = ((e & 0x7F) << 24) | (buf[m - 3] << 16) | (buf[m - 2] << 8) | buf[m - 1]
        hi = (buf[4] << 8) | buf[5]
        lo = (buf[6] << 8) | buf[7]
        st = self._lastc
        if st.lo != lo or st.hi != hi:
            st = self._lookup(self._rtcp, hi, lo)
        d = 1
        if st is not None:
            d = idx - st.top
            if d <= 0 and (d <= -_WIN or st.win[(idx & _WMASK) >> 3] & (1 << (idx & 7))):
                self.replayed += 1
                return ERR_REPLAY
        if self._hm is not None:
            self._hm(self._cactx, buf, m, -1)
            x = self._diff(buf, self._cdig, m, RTCP_TAG)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        else:
            x = self._diff(buf, hmac_sha1(self._cip, self._cop, memoryview(buf)[:m]), m, RTCP_TAG)
        if x:
            self.auth_failed += 1
            return ERR_AUTH
        if st is None:
            st = self._claim(self._rtcp, hi, lo, True)
            st.top = idx
            d = 0
        elif d > 1:
            _advance(st, d, idx)
        if d > 0:
            st.top = idx
        st.win[(idx & _WMASK) >> 3] |= 1 << (idx & 7)
        self._lastc = st
        k = m - 4 - 8
        if e & 0x80 and k > 0:
            nb = (k + 15) >> 4
            self._rtcp_ctr(buf, idx, nb)
            if nb != self._nb:
                self._views(nb)
            self._cenc(self._cv, self._kv)
            self._xor(buf, self._ks, 8, k)  # type: ignore[arg-type]  # viper: any buffer for a ptr
        self.rtcp_packets += 1
        return m - 4
