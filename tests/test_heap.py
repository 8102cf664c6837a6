# The heap budget: two phones on the frozen MicroPython runtime (32-bit, as the ESP32), each in a 96 KB heap
# (-X heapsize=96000; an ESP32 without PSRAM has ~110 KB), register with digest auth at Kamailio, call each other
# through it, hold, resume, send DTMF and hang up, with PCMU and with G.722: not one MemoryError, no loop crash,
# no datagram dropped for want of heap, and the heap they hold afterwards is what it was before the call.
import os

import pytest

from tests import peers
from tests.proc import Phones, RUNTIMES

HEAP = 96000


def _account(user, kam):
    return {"user": user, "domain": "127.0.0.1:%d" % kam.port, "password": "secret", "registrar": kam.uri,
            "proxy": kam.uri, "expires": 60, "register": True}


@pytest.mark.parametrize("codec", ["PCMU", "G722"])
def test_register_call_hold_resume_dtmf_hangup_in_an_esp32_heap(codec, tmp_path):
    assert "micropython" in RUNTIMES
    rate = 16000 if codec == "G722" else 8000
    kam = peers.Kamailio(tmp_path / "kam").start()
    ps = Phones("micropython", tmp_path, heap=HEAP)
    try:
        audio = {"rate": rate}
        a = ps.add("alice", account=_account("alice", kam), media={"codecs": [codec]},
                   audio=dict(audio, source="tone:1000"))
        b = ps.add("bob", account=_account("bob", kam), media={"codecs": [codec]}, audio=dict(audio, source="tone:440"),
                   features={"auto_answer": True, "auto_answer_delay_ms": 0})
        assert a.wait_line("reg r1 registered", 10) and b.wait_line("reg r1 registered", 10), (a.tail(), b.tail())
        assert a.saw("auth r1 register challenged by 401: answered")
        before = [p.mem(True)["alloc"] for p in (a, b)]
        assert a.ev("MakeCall", target="bob").startswith("ok c1")
        assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
        assert a.wait(lambda: a.st()["leg"]["c1"]["flowing"] == "1", 5)
        assert a.st()["leg"]["c1"]["codec"] == codec
        in_call = [p.mem(True) for p in (a, b)]
        assert a.ev("HoldCall").startswith("ok c1 OnHold")
        assert b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "recvonly", 5), b.tail()
        assert a.ev("ResumeCall").startswith("ok c1")
        assert a.wait(lambda: a.state() == "Active", 5) and b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "sendrecv", 5)
        assert a.ev("SendDTMF", digits="123#").startswith("ok c1 Active")
        assert b.wait(lambda: b.st()["media"]["c1"]["dtmf"] == "123#", 5), b.tail()
        assert a.ev("HangupCall").startswith("ok c1")
        assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())
        after = [p.mem(True)["alloc"] for p in (a, b)]
        for p, m in zip((a, b), in_call):
            # the figures the bench prints too: what a phone holds in a call, with room to spare in the heap
            assert 0 < m["alloc"] < HEAP and m["free"] > 0, (p.name, m)
            st = p.st()
            assert st["crashes"] == 0 and st["dropped"] == 0, p.tail()
            assert not p.saw("MemoryError") and not p.saw("err heap"), p.tail()
        for p, x, y, m in zip((a, b), before, after, in_call):
            # what an ended call leaves: the last answers its transactions keep to absorb repeats (for 64*T1, at most
            # 8 of them) and no more: less than the phone held in the call
            assert y < m["alloc"], (p.name, x, y, m)
        ps.close()
    finally:
        ps.close(check=False)
        kam.stop()
    for p in ps.all.values():
        with open(os.path.join(p.dir, p.name + ".log")) as f:
            assert "MemoryError" not in f.read()
