# The heap budget: two phones on the frozen MicroPython runtime (32-bit, as the ESP32), each in a 96 KB heap
# (-X heapsize=96000; an ESP32 without PSRAM has ~110 KB), register with digest auth at Kamailio, call each other
# through it, hold, resume, send DTMF and hang up, with PCMU and with G.722: not one MemoryError, no loop crash,
# no datagram dropped for want of heap (tests/proc.py heap_scenario; `make bench` bisects the heap it fits in).
import os

import pytest

from tests import peers
from tests.proc import Phones, heap_scenario

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
