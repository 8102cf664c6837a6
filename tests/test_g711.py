# G.711 bit-exactness against the ITU-T G.191 reference tables, on CPython and in the MicroPython VM,
# plus the viper twin against the plain twin on the real MicroPython (its xtensawin build: tests/test_mpy_cross.py).
import array
import math
import random
import struct

import pytest

from uphone.media import g711
from tests.conftest import shared_dir

_TEST_HEAP = 8 * 1024 * 1024    # the reference signals are held in memory on the runtime; not a phone heap

G191 = shared_dir("conformance", "g711", "g191.bin")


@pytest.fixture(scope="module")
def ref():
    with open(G191, "rb") as f:
        d = f.read()
    assert len(d) == 131072 + 1024
    return {"enc": (d[0:65536], d[65536:131072]),
            "dec": (d[131072:131584], d[131584:132096])}


@pytest.fixture(scope="module")
def all_pcm():
    b = bytearray(131072)
    for i in range(65536):
        struct.pack_into("<h", b, 2 * i, i - 32768)
    return bytes(b)


def _check_all(encode, decode, ref, all_pcm):
    for law in (g711.ULAW, g711.ALAW):
        out = bytearray(65536)
        encode(law, all_pcm, out, 65536)
        bad = [i - 32768 for i in range(65536) if out[i] != ref["enc"][law][i]]
        assert not bad, "law %d: %d inputs differ, first %s" % (law, len(bad), bad[:5])
        pcm = bytearray(512)
        decode(law, bytes(range(256)), pcm, 256)
        assert bytes(pcm) == ref["dec"][law]


def test_plain_python_bit_exact(ref, all_pcm):
    _check_all(g711.encode_py, g711.decode_py, ref, all_pcm)


def test_bound_functions_bit_exact(ref, all_pcm):
    _check_all(g711.encode, g711.decode, ref, all_pcm)


def test_memoryview_and_offsets(ref, all_pcm):
    src = memoryview(all_pcm)[2 * 1000:2 * 1160]
    out = bytearray(170)
    g711.encode_py(g711.ALAW, src, memoryview(out)[10:], 160)
    assert bytes(out[10:]) == ref["enc"][g711.ALAW][1000:1160]
    back = bytearray(320)
    g711.decode_py(g711.ALAW, memoryview(out)[10:], back, 160)
    for i in range(160):
        assert struct.unpack_from("<h", back, 2 * i)[0] == g711.linear(g711.ALAW, out[10 + i])


def test_codec_for():
    assert g711.codec_for("PCMU") == g711.ULAW
    assert g711.codec_for("pcma") == g711.ALAW
    with pytest.raises(ValueError):
        g711.codec_for("G722")


def _g711_signals():
    """Named int16 streams at 8 kHz: a 1 kHz sine at amplitude 8000, white noise over the whole int16 range, and
    full scale (square waves between +32767 and -32768, and the two extremes alternating sample by sample)."""
    rnd = random.Random(711)
    sine = [int(8000 * math.sin(2 * math.pi * 1000 * i / 8000)) for i in range(8000)]
    noise = [rnd.randint(-32768, 32767) for _ in range(8000)]
    full = [32767 if (i // 4) & 1 else -32768 for i in range(4000)] + [-32768 if i & 1 else 32767 for i in range(4000)]
    return (("sine", sine), ("noise", noise), ("fullscale", full))


MP_G711 = """
from uphone.media import g711
print('IMPL', g711.IMPL)
def save(name, b):
    with open(name, 'wb') as f:
        f.write(b)
with open('all.pcm', 'rb') as f:
    allpcm = f.read()
codes = bytes(range(256))
for law in (g711.ULAW, g711.ALAW):
    for tag, enc, dec in (('vp', g711.encode, g711.decode), ('py', g711.encode_py, g711.decode_py)):
        out = bytearray(65536)
        enc(law, allpcm, out, 65536)
        save('all.%d.%s' % (law, tag), out)
        pcm = bytearray(512)
        dec(law, codes, pcm, 256)
        save('codes.%d.%s' % (law, tag), pcm)
        # the signals 20 ms (160 samples) a call, through memoryviews at odd byte offsets (no alignment assumed)
        for name, n in NAMES:
            with open(name + '.pcm', 'rb') as f:
                src = bytearray(1) + f.read()
            out = bytearray(1 + n)
            back = bytearray(1 + 2 * n)
            s, o, b = memoryview(src), memoryview(out), memoryview(back)
            for i in range(0, n, 160):
                enc(law, s[1 + 2 * i:], o[1 + i:], 160)
                dec(law, o[1 + i:], b[1 + 2 * i:], 160)
            save('%s.%d.%s.enc' % (name, law, tag), o[1:])
            save('%s.%d.%s.dec' % (name, law, tag), b[1:])
"""


def test_viper_twin_exact_on_micropython(mp, tmp_path, ref, all_pcm):
    """The viper twin (g711_viper.py) and the plain twin, both on the real MicroPython (the unix port with the
    firmware frozen, viper compiled for x64): the same bytes for every int16 sample and every code, both laws, and
    for a sine, noise and full-scale input 20 ms a call; the plain twin there is G.191-exact too."""
    sigs = _g711_signals()
    (tmp_path / "all.pcm").write_bytes(all_pcm)
    for name, s in sigs:
        (tmp_path / (name + ".pcm")).write_bytes(array.array("h", s).tobytes())
    out = mp("NAMES = %r\n" % [(name, len(s)) for name, s in sigs] + MP_G711, cwd=tmp_path, heap=_TEST_HEAP)
    assert "IMPL viper" in out                                # the phone's binding is the viper twin
    for law in (g711.ULAW, g711.ALAW):
        for tag in ("vp", "py"):
            got = (tmp_path / ("all.%d.%s" % (law, tag))).read_bytes()
            bad = [i - 32768 for i in range(65536) if got[i] != ref["enc"][law][i]]
            assert not bad, "%s law %d: %d inputs encode wrong, first %s" % (tag, law, len(bad), bad[:5])
            assert (tmp_path / ("codes.%d.%s" % (law, tag))).read_bytes() == ref["dec"][law], (tag, law)
        for name, s in sigs:
            enc = {t: (tmp_path / ("%s.%d.%s.enc" % (name, law, t))).read_bytes() for t in ("vp", "py")}
            dec = {t: (tmp_path / ("%s.%d.%s.dec" % (name, law, t))).read_bytes() for t in ("vp", "py")}
            want = bytearray(len(s))
            g711.encode_py(law, array.array("h", s).tobytes(), want, len(s))
            assert enc["py"] == want, (name, law)                # the same plain twin as on CPython
            assert enc["vp"] == enc["py"], (name, law)
            assert dec["vp"] == dec["py"], (name, law)
            assert len(dec["vp"]) == 2 * len(s)


def test_cpython_binds_the_plain_twins():
    # CPython has no viper emitter: g711_viper fails to import there and the plain twins are bound
    assert g711.IMPL == "python"
    assert g711.encode is g711.encode_py and g711.decode is g711.decode_py


def test_micropython_vm_plain_path(mp, ref):
    # Edges, every 97th sample, and the 508 mu-law inputs where audioop and G.191 disagree (-1..-4 etc).
    samples = sorted(set([-32768, -32767, -8159, -8158, -33, -32, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4,
                          31, 32, 33, 8158, 8159, 32766, 32767] + list(range(-32768, 32768, 97))))
    exp_u = bytes(ref["enc"][0][s + 32768] for s in samples)
    exp_a = bytes(ref["enc"][1][s + 32768] for s in samples)
    code = """
import struct
from uphone.media import g711
S = %r
n = len(S)
pcm = bytearray(2 * n)
for i in range(n):
    struct.pack_into('<h', pcm, 2 * i, S[i])
for law in (g711.ULAW, g711.ALAW):
    out = bytearray(n)
    g711.encode_py(law, pcm, out, n)
    print('ENC', law, out.hex())
    dec = bytearray(512)
    g711.decode_py(law, bytes(range(256)), dec, 256)
    print('DEC', law, dec.hex())
    out2 = bytearray(n)
    g711.encode(law, pcm, out2, n)
    print('BOUND', law, out2 == out)
print('IMPL', g711.IMPL)
""" % (samples,)
    stdout = mp(code)
    lines = dict((" ".join(l.split()[:2]), l.split()[-1]) for l in stdout.splitlines() if l.strip())
    assert lines["ENC 0"] == exp_u.hex()
    assert lines["ENC 1"] == exp_a.hex()
    assert lines["DEC 0"] == ref["dec"][0].hex()
    assert lines["DEC 1"] == ref["dec"][1].hex()
    assert lines["BOUND 0"] == "True" and lines["BOUND 1"] == "True"


def test_micropython_vm_import_heap(mp):
    # Heap growth of importing g711 (module code + 1152 bytes of tables + import-time garbage; no
    # gc.collect(): the WASI VM cannot scan its native stack). Full 16K+4K encode tables would add 20 KB.
    code = "import gc\nimport uphone.compat\nm0 = gc.mem_alloc()\nfrom uphone.media import g711\n" \
           "print(gc.mem_alloc() - m0, len(g711._UDEC) + len(g711._ADEC) + len(g711._BITLEN))\n"
    stdout = mp(code)
    grown, tables = [int(x) for x in stdout.split()]
    print("g711 import: heap +%d bytes, tables %d bytes" % (grown, tables))
    assert tables == 1152
    assert grown < 12 * 1024
