# uPhone: the voice processor's kernels in MicroPython viper (native code); only imported through aec.py.
# Same integer arithmetic as the plain-Python twins there, bit-exact; same state layout (the const offsets below
# are aec.py's: tests/test_aec.py checks the two lists agree).
#
# Word width: viper ints are machine words, 64-bit on x64 and 32-bit on the ESP32's Xtensa, and a ptr32 load is
# sign-extended on Xtensa but zero-extended on x64. So, as in aec.py:
# - the NLMS tap loop only adds and multiplies on ptr32 loads (exact modulo 2**32 on every width), reads a
#   coefficient's Q14 part as the upper half-word of the stored word through ptr16 (unsigned on every width), and
#   the filter sum is masked to 32 bits and sign-extended once per sample;
# - reference samples and state words whose value (not only its low 32 bits) matters are sign-extended after a
#   ptr32 load with ((v & m32) ^ c31) - c31, where c31 = 1 << 31 and m32 = (c31 << 1) - 1 are computed at run time
#   (a literal over 2**30 is not a small int on the ESP32, and viper refuses it): on Xtensa m32 is -1 and the
#   expression is v itself;
# - residuals live in a ptr16 buffer offset by 32768 (unsigned loads).
import micropython
from micropython import const

_L = const(0)
_B = const(1)
_LB = const(2)
_NB = const(3)
_N = const(4)
_R = const(5)
_MU = const(6)
_DELTA = const(7)
_XON = const(8)
_GUARD = const(9)
_TGT = const(10)
_FLAGS = const(11)
_WP = const(12)
_ES = const(14)
_SX = const(15)
_EP = const(16)
_MUC = const(17)
_CONV = const(18)
_ERLE = const(19)
_HANG = const(20)
_FROZEN = const(21)
_GOOD = const(22)
_SNAP = const(23)
_NF = const(24)
_OPEN = const(25)
_HOLD = const(26)
_GG = const(27)
_AG = const(28)
_ALVL = const(29)
_GPREV = const(30)
_DTN = const(31)
_LMAX = const(32)
_DEC = const(33)
_BS = const(34)

_F_GATE = const(1)
_F_AGC = const(2)

_KDT = const(768)
_CONVD = const(1276)
_HANGN = const(5)
_TIMEOUT = const(125)
_SNAPN = const(8)
_BETA = const(150)
_GMIN = const(819)
_GMINU = const(8192)
_OPENL = const(768)
_CLOSEL = const(384)
_HOLDN = const(50)
_NFUP = const(1)
_GSTEP = const(85)
_GFLOOR = const(-1701)
_AUP = const(2)
_ADOWN = const(8)
_AMAX = const(1531)
_AMIN = const(-850)
_LIM = const(239239168)
_OFF = const(32768)


@micropython.viper
def lg(v: int) -> int:
    if v < 1:
        return 0
    b = 8
    while v >= 512:
        v >>= 1
        b += 1
    while v < 256:
        v <<= 1
        b -= 1
    return (b << 8) + v - 256


@micropython.viper
def pow2q14(x: int) -> int:
    k = x >> 8
    m = 16384 + ((x & 255) << 6)
    if k >= 0:
        return m << k
    if k < -30:
        return 0
    return m >> (0 - k)


@micropython.viper
def delay_in(ref: ptr8, ring: ptr8, X: ptr32, st: ptr32):
    L = st[_L]
    N = st[_N]
    R2 = 2 * st[_R]
    for i in range(L):
        X[i] = X[N + i]
    j = 2 * st[_WP]
    k = 0
    for n in range(N):
        ring[j] = ref[k]
        ring[j + 1] = ref[k + 1]
        j += 2
        k += 2
        if j == R2:
            j = 0
    st[_WP] = j >> 1
    for n in range(L, L + N):
        X[n] = ((ring[j] | (ring[j + 1] << 8)) ^ 0x8000) - 0x8000
        j += 2
        if j == R2:
            j = 0


@micropython.viper
def load(mic: ptr8, E: ptr16, st: ptr32):
    B = st[_B]
    for b in range(st[_NB]):
        n0 = b * B
        see = 0
        peak = 0
        for n in range(n0, n0 + B):
            d = mic[2 * n] | (mic[2 * n + 1] << 8)
            d = (d ^ 0x8000) - 0x8000
            if d < -32767:
                d = -32767
            E[n] = d + _OFF
            see += (d * d) >> 7
            if d < 0:
                d = 0 - d
            if d > peak:
                peak = d
        o = _BS + 3 * b
        st[o] = int(lg(see + 1))
        st[o + 1] = peak
        st[o + 2] = 16384


@micropython.viper
def echo(X: ptr32, H: ptr32, mic: ptr8, S: ptr32, E: ptr16, st: ptr32):
    # X and H first: the first two locals live in machine registers (the rest on the stack), and the tap loop walks
    # them as pointers with constant offsets, 8 taps a turn: ~33 cycles a tap on Xtensa, against ~110 for the
    # indexed loop of the plain twin written in viper (bench/echo.py counts them)
    c31 = 1
    c31 <<= 31                     # not the literal 1 << 31: the compiler would fold it into a long int
    m32 = (c31 << 1) - 1
    L = st[_L]
    B = st[_B]
    mu = st[_MUC]
    ep = ((st[_EP] & m32) ^ c31) - c31
    es = st[_ES]
    sx = ((st[_SX] & m32) ^ c31) - c31
    delta = st[_DELTA]
    dec = st[_DEC]
    xbase = uint(X)
    hbase = uint(H)
    for b in range(st[_NB]):
        n0 = b * B
        sdd = 0
        see = 0
        syy = 0
        peak = 0
        for n in range(n0, n0 + B):
            k = L + n
            xv = ((X[k] & m32) ^ c31) - c31          # ptr32 loads: sign-extended on Xtensa, not on x64
            xo = ((X[n] & m32) ^ c31) - c31
            es += ((xv * xv) >> 8) - ((xo * xo) >> 8)
            sx += xv - xo
            d = mic[2 * n] | (mic[2 * n + 1] << 8)
            d = (d ^ 0x8000) - 0x8000
            if es == 0:
                y = 0
                ep = 0
            else:
                # the window's first sample for this one: H[m] goes with X[m + 1] (filter) and X[m] (update);
                # the update is added modulo 2**32 (the same bits on any width), the filter reads the stored
                # word's upper half-word unsigned (l16ui): the Q14 coefficient offset by 32768, on any width
                X = ptr32(xbase + 4 * n)
                acc = 0
                c = L >> 3
                if ep != 0 and n & dec == 0:
                    while c > 0:
                        H[0] = X[0] * ep + H[0]
                        H[1] = X[1] * ep + H[1]
                        H[2] = X[2] * ep + H[2]
                        H[3] = X[3] * ep + H[3]
                        H[4] = X[4] * ep + H[4]
                        H[5] = X[5] * ep + H[5]
                        H[6] = X[6] * ep + H[6]
                        H[7] = X[7] * ep + H[7]
                        acc = X[1] * ptr16(H)[1] + acc
                        acc = X[2] * ptr16(H)[3] + acc
                        acc = X[3] * ptr16(H)[5] + acc
                        acc = X[4] * ptr16(H)[7] + acc
                        acc = X[5] * ptr16(H)[9] + acc
                        acc = X[6] * ptr16(H)[11] + acc
                        acc = X[7] * ptr16(H)[13] + acc
                        acc = X[8] * ptr16(H)[15] + acc
                        H = ptr32(uint(H) + 32)
                        X = ptr32(uint(X) + 32)
                        c -= 1
                else:
                    while c > 0:
                        acc = X[1] * ptr16(H)[1] + acc
                        acc = X[2] * ptr16(H)[3] + acc
                        acc = X[3] * ptr16(H)[5] + acc
                        acc = X[4] * ptr16(H)[7] + acc
                        acc = X[5] * ptr16(H)[9] + acc
                        acc = X[6] * ptr16(H)[11] + acc
                        acc = X[7] * ptr16(H)[13] + acc
                        acc = X[8] * ptr16(H)[15] + acc
                        H = ptr32(uint(H) + 32)
                        X = ptr32(uint(X) + 32)
                        c -= 1
                X = ptr32(xbase)
                H = ptr32(hbase)
                acc = (((acc - (sx << 15)) & m32) ^ c31) - c31
                y = (acc + 8192) >> 14
                if y > 32767:
                    y = 32767
                elif y < -32767:
                    y = -32767
            e = d - y
            if e > 32767:
                e = 32767
            elif e < -32767:
                e = -32767
            E[n] = e + _OFF
            sdd += (d * d) >> 7
            see += (e * e) >> 7
            syy += (y * y) >> 7
            if e > peak:
                peak = e
            elif 0 - e > peak:
                peak = 0 - e
            if mu != 0 and es != 0:
                p = e * mu
                den = (es + delta) >> 8
                if p >= 0:
                    ep = (p + (den >> 1)) // den
                    if ep > 32768:
                        ep = 32768
                else:
                    ep = 0 - ((0 - p + (den >> 1)) // den)
                    if ep < -32768:
                        ep = -32768
            else:
                ep = 0
        ld = int(lg(sdd + 1))
        le = int(lg(see + 1))
        ly = int(lg(syy + 1))
        conv = st[_CONV]
        erle = ((st[_ERLE] & m32) ^ c31) - c31
        if es >= st[_XON]:
            er = ld - le
            lmax = ((st[_LMAX] & m32) ^ c31) - c31
            if ld > lmax:
                lmax = ld
            else:
                lmax -= 1
            st[_LMAX] = lmax
            dt = 0
            if conv:
                if er + _KDT < erle and le + 512 > lmax - erle:
                    dt = 1
            elif ld > int(lg(es + 1)) + st[_GUARD]:
                dt = 1
            if dt:
                st[_HANG] = _HANGN
                st[_DTN] += 1
                fr = st[_FROZEN] + 1
                if conv and fr == 1:
                    o = st[_SNAP] * L
                    o2 = L - o
                    for i in range(L):
                        v = S[o + i]
                        H[i] = v
                        S[o2 + i] = v
                    ep = 0
                if fr > _TIMEOUT:
                    conv = 0
                    erle = 0
                    fr = 0
                st[_FROZEN] = fr
            else:
                st[_FROZEN] = 0
                hang = st[_HANG]
                if hang > 0:
                    hang -= 1
                    st[_HANG] = hang
                if ld + 1024 > lmax:
                    if conv:
                        erle += (er - erle) >> 5
                    else:
                        erle += (er - erle) >> 3
                if conv == 0 and erle > _CONVD:
                    conv = 1
                    for i in range(L):
                        v = H[i]
                        S[i] = v
                        S[L + i] = v
                    st[_GOOD] = 0
                if conv and hang == 0:
                    g = st[_GOOD] + 1
                    if g >= _SNAPN:
                        o = st[_SNAP] * L
                        for i in range(L):
                            S[o + i] = H[i]
                        st[_SNAP] = st[_SNAP] ^ 1
                        g = 0
                    st[_GOOD] = g
            mu = 0
            if st[_HANG] == 0:
                if conv:
                    mu = st[_MU] >> 1
                else:
                    mu = st[_MU]
        else:
            mu = 0
        if mu == 0:
            ep = 0
        st[_CONV] = conv
        st[_ERLE] = erle
        if syy == 0:
            gn = 16384
        else:
            t = ly - le + _BETA
            if erle > 0:
                t -= erle
            gm = _GMINU
            if conv:
                gm = _GMIN
            if t >= 0:
                gn = gm
            else:
                gn = 16384 - int(pow2q14(t))
                if gn < gm:
                    gn = gm
        o = _BS + 3 * b
        st[o] = le
        st[o + 1] = peak
        st[o + 2] = gn
    st[_MUC] = mu
    st[_EP] = ep
    st[_ES] = es
    st[_SX] = sx


@micropython.viper
def post(E: ptr16, out: ptr8, st: ptr32):
    c31 = 1
    c31 <<= 31                     # not the literal 1 << 31: the compiler would fold it into a long int
    m32 = (c31 << 1) - 1
    B = st[_B]
    lb = st[_LB]
    flags = st[_FLAGS]
    g0 = st[_GPREV]
    for b in range(st[_NB]):
        o = _BS + 3 * b
        le = st[o]
        peak = st[o + 1]
        gn = st[o + 2]
        gg = 0
        ag = 0
        if flags != 0:
            lvl = le + int(lg(gn * gn)) - 7168
            nf = ((st[_NF] & m32) ^ c31) - c31
            if lvl < nf:
                nf += (lvl - nf) >> 2
            else:
                nf += _NFUP
            st[_NF] = nf
            op = st[_OPEN]
            if lvl > nf + _OPENL:
                op = 1
                st[_HOLD] = _HOLDN
            elif op != 0 and lvl < nf + _CLOSEL:
                if st[_HOLD] > 0:
                    st[_HOLD] = st[_HOLD] - 1
                else:
                    op = 0
            st[_OPEN] = op
            if flags & _F_GATE:
                gg = ((st[_GG] & m32) ^ c31) - c31
                if op != 0:
                    gg = 0
                elif gg > _GFLOOR:
                    gg -= _GSTEP
                    if gg < _GFLOOR:
                        gg = _GFLOOR
                st[_GG] = gg
            if flags & _F_AGC:
                ag = ((st[_AG] & m32) ^ c31) - c31
                if op != 0 and gn >= 8192:
                    al = ((st[_ALVL] & m32) ^ c31) - c31
                    if lvl > al:
                        al += (lvl - al) >> 2
                    else:
                        al += (lvl - al) >> 5
                    st[_ALVL] = al
                    want = st[_TGT] - al
                    if want > _AMAX:
                        want = _AMAX
                    elif want < _AMIN:
                        want = _AMIN
                    if want > ag:
                        if want - ag > _AUP:
                            ag += _AUP
                        else:
                            ag = want
                    elif want < ag:
                        if ag - want > _ADOWN:
                            ag -= _ADOWN
                        else:
                            ag = want
                    st[_AG] = ag
        g = (gn * (int(pow2q14((gg + ag) >> 1)) >> 2)) >> 13
        if g > 65535:
            g = 65535
        if peak > 0:
            if g * peak > _LIM:
                g = _LIM // peak
            if g0 * peak > _LIM:
                g0 = _LIM // peak                  # a loud onset: the ramp starts limited too (4 ms look-ahead)
        n0 = b * B
        dg = g - g0
        j = 2 * n0
        for i in range(B):
            v = ((E[n0 + i] - _OFF) * (g0 + ((dg * (i + 1)) >> lb)) + 4096) >> 13
            if v > 32767:
                v = 32767
            elif v < -32767:
                v = -32767
            out[j] = v & 0xFF
            out[j + 1] = (v >> 8) & 0xFF
            j += 2
        g0 = g
    st[_GPREV] = g0
