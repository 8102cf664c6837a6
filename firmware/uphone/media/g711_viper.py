# uPhone: G.711 inner loops in MicroPython viper (native code); only imported through g711.py.
# Same G.191 segment algorithm and tables as the plain-Python twin there; tables come in as ptr8.
# Word width (viper ints are 64-bit on the x64 unix port, 32-bit on the ESP32): every value here is non-negative and
# below 2**16 (bytes through ptr8, whose loads zero-extend on every port; a sample is its 16-bit pattern u, and a
# negative sample's magnitude is taken as 0xFFFF - u, G.191's ~x, never as a signed int), stores through ptr8 keep
# the low 8 bits, and >> only ever shifts non-negative values: nothing depends on the word width or on sign extension.
import micropython


@micropython.viper
def ulaw_encode(src: ptr8, dst: ptr8, n: int, bl: ptr8):
    j = 0
    for i in range(n):
        u = src[j] | (src[j + 1] << 8)
        j += 2
        if u & 0x8000:
            a = ((0xFFFF - u) >> 2) + 33
            s = 0
        else:
            a = (u >> 2) + 33
            s = 0x80
        if a > 0x1FFF:
            a = 0x1FFF
        seg = bl[a >> 6] + 1
        dst[i] = s | ((8 - seg) << 4) | (15 - ((a >> seg) & 15))


@micropython.viper
def alaw_encode(src: ptr8, dst: ptr8, n: int, bl: ptr8):
    j = 0
    for i in range(n):
        u = src[j] | (src[j + 1] << 8)
        j += 2
        if u & 0x8000:
            ix = (0xFFFF - u) >> 4
            s = 0
        else:
            ix = u >> 4
            s = 0x80
        e = bl[ix >> 4]
        if e:
            ix = (e << 4) | ((ix >> (e - 1)) & 15)
        dst[i] = (ix | s) ^ 0x55


@micropython.viper
def decode(src: ptr8, dst: ptr8, n: int, tbl: ptr8):
    # tbl: 256 int16 LE values, read as byte pairs so dst needs no 2-byte alignment.
    j = 0
    for i in range(n):
        c = src[i] << 1
        dst[j] = tbl[c]
        dst[j + 1] = tbl[c + 1]
        j += 2
