# uPhone: the conference and bridge inner loops in MicroPython viper (native code); only imported through mixer.py,
# whose plain-Python twins compute the same bytes. Frames are int16 LE read and written as byte pairs (no alignment
# needed); a sample is sign-extended by hand (v - 0x10000 when bit 15 is set) and sums are clamped to int16 before
# the low 16 bits are stored, so nothing depends on the word width (32-bit on the ESP32, 64-bit on x64).
import micropython


@micropython.viper
def mix2(a: ptr8, b: ptr8, n: int):
    # two parties: each hears the other (an exchange in place)
    j = 0
    for i in range(n):
        x = a[j]
        a[j] = b[j]
        b[j] = x
        x = a[j + 1]
        a[j + 1] = b[j + 1]
        b[j + 1] = x
        j += 2


@micropython.viper
def mix3(a: ptr8, b: ptr8, c: ptr8, n: int):
    # three parties, in place: a <- b + c, b <- a + c, c <- a + b, each clamped to int16
    j = 0
    for i in range(n):
        x = a[j] | (a[j + 1] << 8)
        if x & 0x8000:
            x -= 0x10000
        y = b[j] | (b[j + 1] << 8)
        if y & 0x8000:
            y -= 0x10000
        z = c[j] | (c[j + 1] << 8)
        if z & 0x8000:
            z -= 0x10000
        v = y + z
        if v > 32767:
            v = 32767
        elif v < -32768:
            v = -32768
        a[j] = v
        a[j + 1] = v >> 8
        v = x + z
        if v > 32767:
            v = 32767
        elif v < -32768:
            v = -32768
        b[j] = v
        b[j + 1] = v >> 8
        v = x + y
        if v > 32767:
            v = 32767
        elif v < -32768:
            v = -32768
        c[j] = v
        c[j + 1] = v >> 8
        j += 2


@micropython.viper
def add(dst: ptr8, a: ptr8, n: int):
    # dst <- dst + a, clamped to int16 (the recording of a conference: every party summed)
    j = 0
    for i in range(n):
        x = dst[j] | (dst[j + 1] << 8)
        if x & 0x8000:
            x -= 0x10000
        y = a[j] | (a[j + 1] << 8)
        if y & 0x8000:
            y -= 0x10000
        v = x + y
        if v > 32767:
            v = 32767
        elif v < -32768:
            v = -32768
        dst[j] = v
        dst[j + 1] = v >> 8
        j += 2


@micropython.viper
def tmap(src: ptr8, dst: ptr8, n: int, tbl: ptr8):
    # n codes through a 256-byte table (G.711 law to law, mixer.Bridge's tables)
    for i in range(n):
        dst[i] = tbl[src[i]]
