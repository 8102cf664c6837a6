# INVITE flood at a phone in a call (tests/flood.py): sipp at 500 INVITE/s for 60 s from one port, then from a new
# port per INVITE (sipp -t un: the per-source limit cannot hold it back, every INVITE is parsed and answered), at a
# phone process on the frozen MicroPython (96 KB heap) and on CPython. Printed beside the targets; the CI test
# (tests/test_flood.py) runs 100/s for 5 s and asserts. FLOOD_RATE / FLOOD_SECONDS change the run.
import os
import pathlib
import sys
import tempfile

from host_tools import runtime

if runtime.FIRMWARE not in sys.path:
    sys.path.insert(0, runtime.FIRMWARE)        # tests.proc validates the phones' configs with the firmware's code

RATE = int(os.environ.get("FLOOD_RATE", "500"))
SECONDS = int(os.environ.get("FLOOD_SECONDS", "60"))


def _one(rt, sources):
    from tests import flood
    from tests.proc import Phones
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="flood-"))
    ps = Phones(rt, tmp)
    try:
        r = flood.run(ps, tmp, RATE, SECONDS, sources=sources)
        r["crashes"] = ps.all["bob"].st()["crashes"]
        return r
    finally:
        ps.close(check=False)


def rows():
    for rt in ("micropython", "cpython"):
        for sources in ("one", "many"):
            name = "%s, %d INVITE/s x %d s, %s" % (rt, RATE, SECONDS, "one source port" if sources == "one" else
                                                   "a new source port each")
            try:
                r = _one(rt, sources)
            except (AssertionError, RuntimeError, OSError) as e:
                yield (name, "failed: %s" % str(e)[:200], "", "")
                continue
            yield (name + ": answered 486 / dropped by limit", "%d / %d of %d" % (
                r["busy_486"], r["limited"], r["invites"]), "INVITEs", "all accounted for")
            # "own": not shared by the other direction's stream through the same relay at that moment (a host stall)
            yield (name + ": gaps > 60 ms in the call's RTP (phone's own / all)", "%d / %d" % (
                r["gaps_over_60_ms_bob_only"], r["gaps_over_60_ms_from_bob"]), "gaps", "0")
            yield (name + ": longest gap in the call's RTP", "%.0f" % r["max_gap_ms_from_bob"], "ms", "<= 60")
            yield (name + ": the phone's longest loop pass (GC included)", "%d" % r["loop_max_pass_ms"], "ms", "< 20")
            yield (name + ": datagrams read / dropped by the loop / refused for memory", "%d / %d / %d" % (
                r["rx"], r["loop_dropped"], r["oom"]), "", "- / 0 / 0")
            yield (name + ": frames concealed (flooded phone / far end)", "%d / %d" % (
                r["bob_concealed"], r["alice_concealed"]), "frames", "0")
            if rt == "micropython":
                yield (name + ": heap before / peak / after GC", "%d / %d / %d" % (
                    r["heap_before"], r["heap_peak"], r["heap_after_gc"]), "bytes", "peak < 96000, after ~ before")
            yield (name + ": OPTIONS answered after, loop crashes", "%s, %d" % (
                "yes" if r["options_after"] else "NO", r["crashes"]), "", "yes, 0")
