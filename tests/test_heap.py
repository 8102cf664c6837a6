# The heap budget: two phones on the frozen MicroPython runtime (32-bit, as the ESP32), each in a 96 KB heap
# (-X heapsize=96000; an ESP32 without PSRAM has ~110 KB), register with digest auth at Kamailio, call each other
# through it, hold, resume, send DTMF and hang up, with PCMU and with G.722: not one MemoryError, no loop crash,
# no datagram dropped for want of heap (tests/proc.py heap_scenario; `make bench` bisects the heap it fits in).
import os

import pytest

from tests import peers
from tests.proc import Phones, heap_scenario, run_code

HEAP = 96000


@pytest.mark.parametrize("codec", ["PCMU", "G722"])
def test_register_call_hold_resume_dtmf_hangup_in_an_esp32_heap(codec, tmp_path):
    kam = peers.Kamailio(tmp_path / "kam").start()
    ps = Phones("micropython", tmp_path, heap=HEAP)
    try:
        r = heap_scenario(ps, kam, codec)
        for p, m, y in zip(r["phones"], r["in_call"], r["after"]):
            assert 0 < m["alloc"] < HEAP and m["free"] > 0, (p.name, m)
            # what an ended call leaves: the last answers its transactions keep to absorb repeats (for 64*T1, at
            # most 8 of them) and no more: less than the phone held in the call
            assert y["alloc"] < m["alloc"], (p.name, y, m)
        ps.close()
    finally:
        ps.close(check=False)
        kam.stop()
    for p in ps.all.values():
        with open(os.path.join(p.dir, p.name + ".log")) as f:
            assert "MemoryError" not in f.read()


_PEER_TEXT = r"""
import gc, micropython
from uphone.sip import parse as P, headers as H

def utf8(c):
    return bytes([0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F)])

def dgram(k):
    out = bytearray(b"OPTIONS sip:phone@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
                    b"Max-Forwards: 70\r\nTo: <sip:phone@127.0.0.1>\r\n"
                    b"Call-ID: q\r\nCSeq: 1 OPTIONS\r\n")
    out += b"From: \"\\\\" + b"".join(utf8(0x5000 + k * 200 + i) for i in range(200)) + b"\" <sip:c@h>;tag=b\r\n"
    out += b"Contact: \"" + b"".join(utf8(0x3000 + k * 200 + i) for i in range(200)) + b"\" <sip:a@h>, <sip:b@h>\r\n"
    for i in range(250):
        out += utf8(0x800 + k * 250 + i) + b":1\r\n"
    return bytes(out + b"Content-Length: 0\r\n\r\n")

ds = [dgram(k) for k in range(4)]
for d in ds[:1]:
    try:
        P.parse(d)
    except P.ParseError:
        pass
gc.collect()
micropython.qstr_info()
a0 = gc.mem_alloc()
for d in ds[1:]:
    try:
        P.parse(d)
    except P.ParseError:
        pass
    H.split_list(d.decode().split("Contact: ")[1].split("\r\n")[0])
gc.collect()
print("grew", gc.mem_alloc() - a0)
micropython.qstr_info()
"""


def test_a_peers_text_does_not_grow_the_heap_for_good():
    # MicroPython interns every 1-char str that `s[i]` or `for ch in s` makes (a qstr: in the heap, never freed);
    # the parser's scanners look at bytes or use find() instead (sip/headers.py), so datagrams of header names, a
    # Contact list and an escaped From display name of distinct non-ASCII characters leave nothing behind. Before:
    # ~4 KB kept per datagram
    rc, out, err = run_code("micropython", _PEER_TEXT, heap=HEAP)
    assert rc == 0, err
    counts = [l.split("n_qstr=")[1].split(",")[0] for l in out.splitlines() if "n_qstr=" in l]
    assert len(counts) == 2 and counts[0] == counts[1], out
    grew = int([l for l in out.splitlines() if l.startswith("grew")][0].split()[1])
    assert grew < 4096, out         # what the last parse left on the stack; before: MemoryError in this heap
