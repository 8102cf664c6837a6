# A small Pystone-style CPU yardstick (written for uPhone, not the original pystone.py): one "stone" is one round of
# the classic Dhrystone mix: a record copied and linked through a pointer field, eight small procedures and three
# functions over integers, enums-as-ints, characters and strings, a 1-D and a 2-D array of 51 ints, and short loops.
# It runs unchanged on CPython and MicroPython (no imports), so bench/media_frame.py can measure wasm fuel per stone
# in the MicroPython VM and turn fuel into estimated ESP32 time with the published pystones/s of an ESP32.
# Use: stones(n) runs n rounds and returns a checksum (so nothing can be skipped).

IDENT1, IDENT2, IDENT3, IDENT4, IDENT5 = 1, 2, 3, 4, 5


class Rec:
    def __init__(self, link=None, disc=0, enum=0, num=0, text=""):
        self.link = link
        self.disc = disc
        self.enum = enum
        self.num = num
        self.text = text

    def clone(self):
        return Rec(self.link, self.disc, self.enum, self.num, self.text)


class _G:
    """The benchmark's globals, kept on one object so the module has no `global` statements."""
    int_g = 0
    bool_g = False
    ch1 = "\0"
    ch2 = "\0"
    arr1 = None
    arr2 = None
    rec = None
    next_rec = None


def p1(p):
    nxt = p.link
    G = _G
    # the record the pointer field points at becomes a copy of the global record, then both are updated
    c = G.rec.clone()
    nxt.disc, nxt.enum, nxt.num, nxt.text, nxt.link = c.disc, c.enum, c.num, c.text, c.link
    p.num = 5
    nxt.num = p.num
    nxt.link = p.link
    nxt.link = p3(nxt.link)
    if nxt.disc == IDENT1:
        nxt.num = 6
        nxt.enum = p6(p.enum)
        nxt.link = G.rec.link
        nxt.num = p7(nxt.num, 10)
    else:
        c = nxt.clone()
        p.disc, p.enum, p.num, p.text, p.link = c.disc, c.enum, c.num, c.text, c.link
    return p


def p2(v):
    loc = v + 10
    G = _G
    while True:
        if G.ch1 == "A":
            loc -= 1
            v = loc - G.int_g
            break
    return v


def p3(ptr):
    G = _G
    if G.rec is not None:
        ptr = G.rec.link
    else:
        G.int_g = 100
    G.rec.num = p7(10, G.int_g)
    return ptr


def p4():
    G = _G
    b = G.ch1 == "A"
    G.bool_g = b or G.bool_g
    G.ch2 = "B"


def p5():
    _G.ch1 = "A"
    _G.bool_g = False


def p6(e):
    r = e
    if not f3(e):
        r = IDENT4
    if e == IDENT1:
        r = IDENT1
    elif e == IDENT2:
        r = IDENT1 if _G.int_g > 100 else IDENT4
    elif e == IDENT3:
        r = IDENT2
    elif e == IDENT5:
        r = IDENT3
    return r


def p7(a, b):
    return b + a + 2


def p8(a1, a2, i, j):
    G = _G
    k = i + 5
    a1[k] = j
    a1[k + 1] = a1[k]
    a1[k + 30] = k
    row = a2[k]
    for m in range(k, k + 2):
        row[m] = k
    row[k - 1] += 1
    a2[k + 20][k] = a1[k]
    G.int_g = 5


def f1(c1, c2):
    if c1 != c2:
        return IDENT1
    _G.ch1 = c1
    return IDENT2


def f2(s1, s2):
    i = 2
    c = "\0"
    while i <= 2:
        if f1(s1[i], s2[i + 1]) == IDENT1:
            c = "A"
            i += 1
    if "W" <= c <= "Z":
        i = 7
    if c == "X":
        return True
    if s1 > s2:
        _G.int_g = i + 7
        return True
    return False


def f3(e):
    return e == IDENT3


def setup():
    G = _G
    G.arr1 = [0] * 51
    G.arr2 = [[0] * 51 for _ in range(51)]
    G.next_rec = Rec()
    G.rec = Rec(G.next_rec, IDENT1, IDENT3, 40, "DHRYSTONE PROGRAM, SOME STRING")
    G.int_g = 0
    G.bool_g = False


def stones(n):
    """n rounds of the Dhrystone mix; returns a checksum of the final state."""
    setup()
    G = _G
    s1 = "DHRYSTONE PROGRAM, 1'ST STRING"
    a = b = c = e = 0
    i = 0
    while i < n:
        p5()
        p4()
        a = 2
        b = 3
        s2 = "DHRYSTONE PROGRAM, 2'ND STRING"
        e = IDENT2
        G.bool_g = not f2(s1, s2)
        while a < b:
            c = 5 * a - b
            c = p7(a, b)
            a += 1
        p8(G.arr1, G.arr2, a, c)
        G.rec = p1(G.rec)
        ch = "A"
        while ch <= G.ch2:
            if e == f1(ch, "C"):
                e = p6(IDENT1)
            ch = chr(ord(ch) + 1)
        c = b * a
        b = c // a
        c = 7 * (c - b) - a
        a = p2(a)
        i += 1
    return G.int_g + G.arr1[8] + G.arr2[8][7] + a + b + c + e
