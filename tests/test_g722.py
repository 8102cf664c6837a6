# G.722 64 kbit/s: our plain-Python encoder and decoder are bit-exact with the PyPI G722 package
# (libg722, spandsp arithmetic) over tones, speech-like noise, full-scale clipping and silence.
import array
import math
import random

import pytest

from uphone.media import g722

import G722  # noqa: E402  (PyPI g722, the C reference; in requirements-dev.txt)

RATE = 16000


def _signal():
    rnd = random.Random(722)
    out = array.array("h")

    def put(v):
        out.append(max(-32768, min(32767, int(v))))

    for i in range(RATE):                                   # 1 s: 1 kHz + 5 kHz tones, high band busy
        put(7000 * math.sin(2 * math.pi * 1000 * i / RATE) + 3000 * math.sin(2 * math.pi * 5000 * i / RATE))
    for i in range(int(1.5 * RATE)):                        # 1.5 s: speech-like: formants, envelope, noise
        env = 0.5 + 0.5 * math.sin(2 * math.pi * 3 * i / RATE)
        v = (9000 * math.sin(2 * math.pi * 220 * i / RATE) + 5000 * math.sin(2 * math.pi * 730 * i / RATE)
             + 2500 * math.sin(2 * math.pi * 2400 * i / RATE) + 1200 * math.sin(2 * math.pi * 6100 * i / RATE))
        put(env * v + rnd.randint(-2000, 2000))
    for i in range(RATE // 4):                              # 0.25 s: full-scale square + noise (limits)
        put((32767 if (i // 9) & 1 else -32768) + rnd.randint(-20000, 20000))
    for i in range(RATE // 4):                              # 0.25 s: silence (scale factors decay)
        put(0)
    return out


@pytest.fixture(scope="module")
def sig():
    return _signal()


@pytest.fixture(scope="module")
def ref_bits(sig):
    return G722.G722(RATE, 64000).encode(sig)


def _ref_decode(bits):
    return array.array("h", [int(v) for v in G722.G722(RATE, 64000).decode(bytes(bits))]).tobytes()


def test_encode_bit_exact(sig, ref_bits):
    out = bytearray(len(sig) // 2)
    assert g722.Encoder().encode(sig.tobytes(), len(sig), out) == len(ref_bits)
    bad = [i for i in range(len(out)) if out[i] != ref_bits[i]]
    assert not bad, "%d of %d codes differ, first at byte %d" % (len(bad), len(out), bad[0])


def test_encode_in_20ms_frames_matches_one_shot(sig, ref_bits):
    enc = g722.Encoder()
    pcm = memoryview(sig.tobytes())
    frame = bytearray(160)
    got = bytearray()
    for off in range(0, 2 * RATE, 640):                     # first second, 320 samples a frame
        assert enc.encode(pcm[off:off + 640], 320, frame) == 160
        got += frame
    assert bytes(got) == ref_bits[:len(got)]


def test_decode_bit_exact(ref_bits):
    out = bytearray(4 * len(ref_bits))
    assert g722.Decoder().decode(ref_bits, len(ref_bits), out) == 2 * len(ref_bits)
    assert bytes(out) == _ref_decode(ref_bits)


def test_decode_arbitrary_codes(ref_bits):
    rnd = random.Random(5)
    data = bytes(rnd.randrange(256) for _ in range(8000))    # every code, including the unused 0..3
    out = bytearray(4 * len(data))
    dec = g722.Decoder()
    for off in range(0, len(data), 160):
        dec.decode(memoryview(data)[off:off + 160], 160, memoryview(out)[4 * off:])
    assert bytes(out) == _ref_decode(data)


def test_round_trip_keeps_a_tone():
    from uphone.media import goertzel
    n = 3200
    pcm = array.array("h", [int(8000 * math.sin(2 * math.pi * 1000 * i / RATE)) for i in range(n)]).tobytes()
    bits = bytearray(n // 2)
    g722.Encoder().encode(pcm, n, bits)
    out = bytearray(2 * n)
    g722.Decoder().decode(bits, n // 2, out)
    tail = memoryview(out)[1600:]
    assert goertzel.power(tail, 1600, RATE, 1000) > 0.7 * 8000 * 8000


def test_micropython_viper_and_plain(mp, sig, ref_bits):
    # on the real MicroPython (x64 unix port, which has the native emitter): the viper twin the phone uses and the
    # plain-Python one, both bit-exact
    n = 320
    pcm = sig[RATE:RATE + n].tobytes()                      # speech-like part: fresh codec state
    expect = G722.G722(RATE, 64000).encode(sig[RATE:RATE + n])
    code = ("from uphone.media import g722\npcm = bytes.fromhex(%r)\nprint(g722.IMPL)\n"
            "for E, D in ((g722.Encoder, g722.Decoder), (g722.EncoderPy, g722.DecoderPy)):\n"
            "    out = bytearray(%d)\n    E().encode(pcm, %d, out)\n    print(out.hex())\n"
            "    dec = bytearray(%d)\n    D().decode(out, %d, dec)\n    print(dec.hex())\n"
            % (pcm.hex(), n // 2, n, 2 * n, n // 2))
    impl, *hexes = mp(code).split()
    assert impl == "viper"
    for enc_hex, dec_hex in (hexes[0:2], hexes[2:4]):
        assert enc_hex == expect.hex()
        assert dec_hex == _ref_decode(expect).hex()
