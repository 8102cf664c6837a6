# An INVITE flood at a phone in a call (tests/flood.py), CPython and the frozen MicroPython (96 KB heap): sipp sends
# 100 INVITE/s for 5 s from one port (`make bench` runs 500/s for 60 s and prints its figures). Every INVITE is
# answered 486 or dropped by the per-source limit, none becomes a session, the call's audio keeps flowing (no gap
# over 60 ms in what the flooded phone sends, as the relay's arrival times show), the heap stays bounded and comes
# back, and the phone answers OPTIONS afterwards.
from tests import flood
from tests.proc import phones  # noqa: F401  (fixture)

RATE, SECONDS = 100, 5


def test_an_invite_flood_gets_486_or_is_limited_and_the_call_goes_on(phones, tmp_path):
    r = flood.run(phones, tmp_path, RATE, SECONDS)
    log = r.pop("sipp_out")
    r.pop("passes")
    print("\nflood %s: %s" % (phones.runtime, r))
    # each INVITE answered busy or dropped over the limit (sip.rate_limit 20/s, a 2 s burst), never a second session
    assert r["busy_486"] + r["limited"] == r["invites"], (r, log)
    assert r["busy_486"] >= 40 and r["limited"] > 0, r
    assert r["states"] == ["Active"] and r["sessions_after"] == ["c1"], r
    # the audio: no gap over 60 ms in the flooded phone's RTP that alice's stream through the same relay did not
    # have at the same moment (that one would be the host's, not the phone's), nothing lost to the flood
    assert r["gaps_over_60_ms_bob_only"] == 0, r
    assert r["bob_lost"] == 0 and r["bob_received"] > 0, r
    assert r["options_after"], r
    if phones.runtime == "micropython":
        # what the flood's transactions hold at once is bounded, and the heap after GC comes back
        assert r["heap_peak"] - r["heap_before"] < 16384, r
        assert r["heap_after_gc"] - r["heap_before"] < 2048, r
