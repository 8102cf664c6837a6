# uPhone: SRTP's per-packet byte loops in MicroPython viper (native code); only imported through srtp.py.
# Same semantics as the plain twins there (xor_py, put_py, diff_py, ctr_seq_py, ctr_copy_py).
# Registers: frozen viper code keeps only its first two locals in registers (docs/NOTES.md), parameters first, so the
# two pointers a loop walks are the first two parameters and are advanced in place.
# Word width: ptr32 loads are zero-extended on x64 and the whole word on Xtensa; XOR of two such words stored back
# through ptr32 keeps the low 32 bits on both, so the result does not depend on the word width. Every other value is
# a byte read through ptr8 (zero-extended on every port) or a count below 2**16. ptr32 is used only when both
# addresses are 4-byte aligned (Xtensa faults on unaligned 32-bit access).
import micropython


@micropython.viper
def xor(p: ptr32, k: ptr32, off: int, n: int):
    # (p + off)[:n] ^= k[:n]: the AES-CM keystream onto the payload (RFC 3711 4.1.1)
    p = ptr32(uint(p) + off)
    if (int(uint(p)) | int(uint(k))) & 3 == 0:   # RTP/RTCP payloads start 4-aligned in a heap buffer: words
        end = uint(k) + (n & 0xFFFC)
        while uint(k) < end:
            p[0] = p[0] ^ k[0]
            p = ptr32(uint(p) + 4)
            k = ptr32(uint(k) + 4)
        n = n & 3
    end = uint(k) + n
    while uint(k) < end:
        b = ptr8(uint(p))
        b[0] = b[0] ^ ptr8(uint(k))[0]
        p = ptr32(uint(p) + 1)
        k = ptr32(uint(k) + 1)


@micropython.viper
def put(p: ptr8, k: ptr8, off: int, n: int):
    # (p + off)[:n] = k[:n]: the tag into the packet
    p = ptr8(uint(p) + off)
    end = uint(k) + n
    while uint(k) < end:
        p[0] = k[0]
        p = ptr8(uint(p) + 1)
        k = ptr8(uint(k) + 1)


@micropython.viper
def diff(p: ptr8, k: ptr8, off: int, n: int) -> int:
    # OR of (p + off)[i] ^ k[i] over all n bytes: 0 when equal; every byte is looked at (no early exit, no timing)
    p = ptr8(uint(p) + off)
    x = 0
    end = uint(k) + n
    while uint(k) < end:
        x = x | (p[0] ^ k[0])
        p = ptr8(uint(p) + 1)
        k = ptr8(uint(k) + 1)
    return x


@micropython.viper
def ctr_seq(ctr: ptr8, nb: int, b12: int, b13: int):
    # bytes 12 and 13 of counter blocks 0..nb-1 (the IV's salt ^ SEQ part; the block counter in 14..15 stays)
    end = uint(ctr) + (nb << 4)
    while uint(ctr) < end:
        ctr[12] = b12
        ctr[13] = b13
        ctr = ptr8(uint(ctr) + 16)


@micropython.viper
def ctr_copy(ctr: ptr8, first: int, nb: int):
    # bytes 0..13 of counter block 0 (the IV) into blocks first..nb-1
    src = ctr
    ctr = ptr8(uint(ctr) + (first << 4))
    end = uint(src) + (nb << 4)
    while uint(ctr) < end:
        k = 0
        while k < 14:
            ctr[k] = src[k]
            k += 1
        ctr = ptr8(uint(ctr) + 16)


@micropython.viper
def hmac_sha1(ctx: ptr32, w: ptr32, n: int, roc: int):
    # HMAC-SHA1 (RFC 2104; SHA-1: FIPS 180-4 6.1) of w's first n bytes (the packet, any buffer) || ROC (4 bytes,
    # big-endian; none when roc == -1), from the key's inner and outer states kept in ctx; the 20-byte digest goes
    # to ctx's bytes 396..415. roc == -2: only compress the message's whole blocks into state words 0..4 (how
    # srtp.mac_ctx makes the inner/outer states).
    # ctx (32-bit words): 0..4 state, 5..8 the constants K, 9..88 the message schedule W, 89..93 the state after
    # the key ^ ipad block, 94..98 after key ^ opad; bytes 396..523: the last blocks.
    # Registers: ctx and w (the first two locals) are the pointers the loops walk; w starts as the message and
    # then walks the schedule. Rounds are unrolled five at a time with the variables renamed (no moves). Every word
    # is kept below 2**32 (x64 viper words are 64-bit; on Xtensa M is -1): sums and ROTL1 are masked, ROTL30 is
    # written as (x >> 2) | ((x & 3) << 30), which needs no mask.
    M = (uint(0xFFFF) << 16) | uint(0xFFFF)
    src = uint(w)
    W = uint(ctx) + 36
    tail = ptr8(uint(ctx) + 396)
    phase = 2                               # roc == -2: the blocks only
    if roc != -2:
        phase = 0
        i = 0
        while i < 5:
            ctx[i] = ctx[89 + i]
            i += 1
    cnt = n >> 6
    while True:
        while cnt > 0:
            m = ptr8(src)                   # W[0..15]: the block, big-endian
            w = ptr32(W)
            i = 0
            while i < 16:
                w[i] = (uint(m[0]) << 24) | (uint(m[1]) << 16) | (uint(m[2]) << 8) | uint(m[3])
                m = ptr8(uint(m) + 4)
                i += 1
            src += 64
            end = W + 256
            while uint(w) < end:            # W[t] = ROTL1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16]), w at W[t-16]
                x = uint(w[13]) ^ uint(w[8]) ^ uint(w[2]) ^ uint(w[0])
                w[16] = ((x << 1) | (x >> 31)) & M
                x = uint(w[14]) ^ uint(w[9]) ^ uint(w[3]) ^ uint(w[1])
                w[17] = ((x << 1) | (x >> 31)) & M
                x = uint(w[15]) ^ uint(w[10]) ^ uint(w[4]) ^ uint(w[2])
                w[18] = ((x << 1) | (x >> 31)) & M
                x = uint(w[16]) ^ uint(w[11]) ^ uint(w[5]) ^ uint(w[3])
                w[19] = ((x << 1) | (x >> 31)) & M
                w = ptr32(uint(w) + 16)
            w = ptr32(W)
            a = uint(ctx[0])
            b = uint(ctx[1])
            c = uint(ctx[2])
            d = uint(ctx[3])
            e = uint(ctx[4])
            k = uint(ctx[5])
            end = uint(w) + 80
            while uint(w) < end:
                e = (e + ((a << 5) | (a >> 27)) + (d ^ (b & (c ^ d))) + k + uint(w[0])) & M
                b = (b >> 2) | ((b & 3) << 30)
                d = (d + ((e << 5) | (e >> 27)) + (c ^ (a & (b ^ c))) + k + uint(w[1])) & M
                a = (a >> 2) | ((a & 3) << 30)
                c = (c + ((d << 5) | (d >> 27)) + (b ^ (e & (a ^ b))) + k + uint(w[2])) & M
                e = (e >> 2) | ((e & 3) << 30)
                b = (b + ((c << 5) | (c >> 27)) + (a ^ (d & (e ^ a))) + k + uint(w[3])) & M
                d = (d >> 2) | ((d & 3) << 30)
                a = (a + ((b << 5) | (b >> 27)) + (e ^ (c & (d ^ e))) + k + uint(w[4])) & M
                c = (c >> 2) | ((c & 3) << 30)
                w = ptr32(uint(w) + 20)
            k = uint(ctx[6])
            end = uint(w) + 80
            while uint(w) < end:
                e = (e + ((a << 5) | (a >> 27)) + (b ^ c ^ d) + k + uint(w[0])) & M
                b = (b >> 2) | ((b & 3) << 30)
                d = (d + ((e << 5) | (e >> 27)) + (a ^ b ^ c) + k + uint(w[1])) & M
                a = (a >> 2) | ((a & 3) << 30)
                c = (c + ((d << 5) | (d >> 27)) + (e ^ a ^ b) + k + uint(w[2])) & M
                e = (e >> 2) | ((e & 3) << 30)
                b = (b + ((c << 5) | (c >> 27)) + (d ^ e ^ a) + k + uint(w[3])) & M
                d = (d >> 2) | ((d & 3) << 30)
                a = (a + ((b << 5) | (b >> 27)) + (c ^ d ^ e) + k + uint(w[4])) & M
                c = (c >> 2) | ((c & 3) << 30)
                w = ptr32(uint(w) + 20)
            k = uint(ctx[7])
            end = uint(w) + 80
            while uint(w) < end:
                e = (e + ((a << 5) | (a >> 27)) + ((b & c) | (d & (b | c))) + k + uint(w[0])) & M
                b = (b >> 2) | ((b & 3) << 30)
                d = (d + ((e << 5) | (e >> 27)) + ((a & b) | (c & (a | b))) + k + uint(w[1])) & M
                a = (a >> 2) | ((a & 3) << 30)
                c = (c + ((d << 5) | (d >> 27)) + ((e & a) | (b & (e | a))) + k + uint(w[2])) & M
                e = (e >> 2) | ((e & 3) << 30)
                b = (b + ((c << 5) | (c >> 27)) + ((d & e) | (a & (d | e))) + k + uint(w[3])) & M
                d = (d >> 2) | ((d & 3) << 30)
                a = (a + ((b << 5) | (b >> 27)) + ((c & d) | (e & (c | d))) + k + uint(w[4])) & M
                c = (c >> 2) | ((c & 3) << 30)
                w = ptr32(uint(w) + 20)
            k = uint(ctx[8])
            end = uint(w) + 80
            while uint(w) < end:
                e = (e + ((a << 5) | (a >> 27)) + (b ^ c ^ d) + k + uint(w[0])) & M
                b = (b >> 2) | ((b & 3) << 30)
                d = (d + ((e << 5) | (e >> 27)) + (a ^ b ^ c) + k + uint(w[1])) & M
                a = (a >> 2) | ((a & 3) << 30)
                c = (c + ((d << 5) | (d >> 27)) + (e ^ a ^ b) + k + uint(w[2])) & M
                e = (e >> 2) | ((e & 3) << 30)
                b = (b + ((c << 5) | (c >> 27)) + (d ^ e ^ a) + k + uint(w[3])) & M
                d = (d >> 2) | ((d & 3) << 30)
                a = (a + ((b << 5) | (b >> 27)) + (c ^ d ^ e) + k + uint(w[4])) & M
                c = (c >> 2) | ((c & 3) << 30)
                w = ptr32(uint(w) + 20)
            ctx[0] = (uint(ctx[0]) + a) & M
            ctx[1] = (uint(ctx[1]) + b) & M
            ctx[2] = (uint(ctx[2]) + c) & M
            ctx[3] = (uint(ctx[3]) + d) & M
            ctx[4] = (uint(ctx[4]) + e) & M
            cnt -= 1
        if phase == 0:
            # the inner hash's last blocks: the message's rest, the ROC, 0x80, zeros, the length in bits (the key
            # block counted: 64 + n + 4 bytes) as 64 bits big-endian
            m = ptr8(src)
            r = n & 63
            j = 0
            while j < r:
                tail[j] = m[j]
                j += 1
            total = 64 + n
            if roc >= 0:
                tail[j] = roc >> 24
                tail[j + 1] = roc >> 16
                tail[j + 2] = roc >> 8
                tail[j + 3] = roc
                j += 4
                total += 4
            tail[j] = 0x80
            j += 1
            cnt = 1
            if j > 56:
                cnt = 2
            stop = (cnt << 6) - 4
            while j < stop:
                tail[j] = 0
                j += 1
            bits = total << 3
            tail[j] = bits >> 24
            tail[j + 1] = bits >> 16
            tail[j + 2] = bits >> 8
            tail[j + 3] = bits
            src = uint(tail)
            phase = 1
        elif phase == 1:
            # the outer hash: the inner digest, 0x80, zeros, (64 + 20) * 8 bits, from the outer state
            i = 0
            while i < 5:
                x = uint(ctx[i])
                tail[4 * i] = x >> 24
                tail[4 * i + 1] = x >> 16
                tail[4 * i + 2] = x >> 8
                tail[4 * i + 3] = x
                ctx[i] = ctx[94 + i]
                i += 1
            tail[20] = 0x80
            j = 21
            while j < 62:
                tail[j] = 0
                j += 1
            tail[62] = 0x02
            tail[63] = 0xA0
            src = uint(tail)
            cnt = 1
            phase = 2
            roc = -1
        else:
            break
    if roc != -2:
        i = 0                               # the digest, big-endian, to ctx bytes 396..415 (the tail, done with)
        while i < 5:
            x = uint(ctx[i])
            tail[4 * i] = x >> 24
            tail[4 * i + 1] = x >> 16
            tail[4 * i + 2] = x >> 8
            tail[4 * i + 3] = x
            i += 1
