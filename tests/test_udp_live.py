# A phone on a real socket as the internet sees it, on both runtimes: every datagram of a burst is read as its own
# message (MicroPython's socket readinto joined them: board/modules/dgram), and 10,000 mutated SIP datagrams with
# junk RTP/RTCP (host_tools/fuzz.py, the CI size of `make fuzz`) leave it crash-free, answering OPTIONS, with no
# session left and its heap back where it was.
import os
import struct
import time

import pytest

from host_tools import fuzz
from tests.proc import RUNTIMES, Phones

CI_CASES = int(os.environ.get("UPHONE_FUZZ_CASES", "10000"))


def _phone(ps):
    # no per-source rate limit (sip.rate_limit, tests/test_faults.py): one peer's burst is what is read here
    return ps.add("phone", sip={"t1_ms": 100, "rate_limit": 0}, features={"auto_answer": True, "auto_answer_delay_ms": 0})


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_burst_of_requests_is_answered_one_by_one(runtime, tmp_path):
    ps = Phones(runtime, tmp_path)
    try:
        p = _phone(ps)
        peer = fuzz.Peer(("127.0.0.1", p.port), "phone")
        opts = fuzz.phone_messages("phone", "127.0.0.1", p.port, peer.me)[0]
        rx0 = p.st()["rx"]
        for i in range(150):             # back to back: they wait together in the socket's queue
            peer.send(opts.replace(b"seed-0@fuzz", b"burst-%d@fuzz" % i))
        end = time.time() + 15
        while time.time() < end and peer.statuses.get("200", 0) < 150:
            peer.drain()
            time.sleep(0.05)
        st = p.st()
        assert peer.statuses == {"200": 150}, peer.statuses
        assert st["rx"] - rx0 == 150 and st["dropped"] == 0, st
        peer.close()
    finally:
        ps.close()


def _rtp(seq, ts, ssrc=0x1234abcd):
    return struct.pack("!BBHII", 0x80, 0, seq & 0xffff, ts & 0xffffffff, ssrc) + b"\xff" * 160


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_rtp_packets_arriving_together_are_each_received(runtime, tmp_path):
    ps = Phones(runtime, tmp_path)
    try:
        p = _phone(ps)
        peer = fuzz.Peer(("127.0.0.1", p.port), "phone")
        assert peer.call(), p.tail()
        port = peer.dialog[3]
        assert p.wait(lambda: p.state() == "Active", 5), p.tail()
        for i in range(25):              # 0.5 s of audio in one burst (a Wi-Fi stall releasing its queue)
            peer.rtp.sendto(_rtp(1000 + i, 160 * i), ("127.0.0.1", port))
        assert p.wait(lambda: int(p.st()["media"]["c1"]["received"]) >= 25, 5), p.st()["lines"]
        media = p.st()["media"]["c1"]
        assert int(media["received"]) == 25 and int(media["lost"]) == 0, media
        peer.hangup()
        peer.close()
    finally:
        ps.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ten_thousand_mutated_datagrams(runtime, tmp_path):
    res = fuzz.fuzz_phone(runtime, CI_CASES, str(tmp_path), seed=13)
    fuzz.report(res, runtime)
    assert res["failed_at"] is None, res                 # OPTIONS answered at every check and at the end
    assert res["crashes"] == 0 and res["clean"], open(res["log"]).read()[-4000:]
    assert res["sessions_left"] == 0, res                # every call the fuzz made ended by its own timers
    assert res["rx"] >= res["sent"], res                 # flow control: the phone read every datagram sent
    if runtime == "micropython":
        # after a warm-up of 4,000 datagrams (what a phone keeps after its first storm) the heap is flat within the
        # noise of settled readings (measured +0.1 to +3.9 KB, and -3 KB): a leak of a byte per datagram, or of
        # 1.6 KB per call (five calls here), would pass 8 KB
        assert res["heap_after"] - res["heap_before"] < 8192, res
        # under the storm (two calls and a third session in 96 KB) a message the fragmented heap cannot take is
        # dropped and counted, not crashed on: measured 1-2.5 %, bound 4 %
        assert res["oom"] <= res["sent"] * 4 // 100, res
    else:
        assert res["oom"] == 0, res
