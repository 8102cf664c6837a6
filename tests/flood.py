# An INVITE flood at a phone in a call, for tests/test_flood.py (a short run) and `make bench` (bench/flood.py: 500/s
# for 60 s). Two phone processes talk through the loopback relay (host_tools/netem.py, a clean link), which stamps
# every RTP packet as it arrives: the flooded phone's audio is timed as it leaves the phone, and its received audio
# is read from its jitter buffer's figures. sipp sends INVITEs at the flooded phone from one port (a scanner or a
# broken PBX), expecting 486 Busy Here (the phone takes no second call: call waiting off) or nothing (over the
# per-source rate limit the phone drops requests unanswered). Afterwards the phone must answer OPTIONS.
import re
import socket
import threading
import time

from host_tools.fuzz import _msg
from host_tools.netem import Relay

AUTO = {"auto_answer": True, "auto_answer_delay_ms": 0}

# each call: an INVITE (no retransmission: sipp -nr), its 486 ACKed in its transaction (the 486's Via is the
# INVITE's: RFC 3261 17.1.1.3), or nothing within 2 s (dropped by the limit; sipp times a call out from its first
# <recv>, so both carry the timeout)
SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="invite flood">
  <send><![CDATA[
INVITE sip:bob@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: flood <sip:flood@[local_ip]:[local_port]>;tag=[pid]F[call_number]
To: <sip:bob@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:flood@[local_ip]:[local_port]>
Max-Forwards: 70
User-Agent: flood-test
Content-Type: application/sdp
Content-Length: [len]

v=0
o=flood 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio 40000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true" timeout="2000" ontimeout="9"/>
  <recv response="486" timeout="2000" ontimeout="9"/>
  <send><![CDATA[
ACK sip:bob@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: flood <sip:flood@[local_ip]:[local_port]>;tag=[pid]F[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <label id="9"/>
</scenario>
"""


def _media(p):
    m = p.st()["media"]["c1"]
    return {k: int(m[k]) for k in ("received", "lost", "concealed", "late")}


def options_ok(port, timeout=3.0):
    """An OPTIONS from a fresh port is answered 200 (the phone still answers after the flood)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        me = s.getsockname()
        s.sendto(_msg("OPTIONS sip:bob@127.0.0.1:%d SIP/2.0" % port, [
            "Via: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bKafterflood" % me, "Max-Forwards: 70",
            "From: <sip:check@%s:%d>;tag=1" % me, "To: <sip:bob@127.0.0.1>", "Call-ID: after-flood",
            "CSeq: 1 OPTIONS"]), ("127.0.0.1", port))
        s.settimeout(timeout)
        return s.recv(65535).startswith(b"SIP/2.0 200")
    except socket.timeout:
        return False
    finally:
        s.close()


def run(phones, tmp, rate, seconds, sources="one"):
    """A call alice -> bob through the relay; sipp floods bob at `rate` INVITE/s for `seconds`, from one port
    (sources="one") or from a new port for each INVITE ("many": sipp -t un, past the per-source limit). -> figures."""
    from tests import peers
    a = phones.add("alice", audio={"source": "tone:1000"})
    b = phones.add("bob", audio={"source": "tone:440"}, features=dict(AUTO, call_waiting=False))
    relay = Relay({"bob": ("127.0.0.1", b.port)}).start()
    try:
        assert a.ev("MakeCall", target=relay.target("bob")).startswith("ok c1"), a.tail()
        assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
        assert a.wait_line("Active MediaFlowEstablished", 5) and b.wait_line("Active MediaFlowEstablished", 5)
        time.sleep(1.0)
        mp = phones.runtime == "micropython"
        mem0 = b.mem(True) if mp else None
        g0 = _gate(b)
        st0 = b.st()
        a0, b0 = _media(a), _media(b)
        scen = tmp / "flood.xml"
        scen.write_text(SCENARIO)
        t0 = time.monotonic()         # the relay's clock
        proc = peers.sipp_background(["127.0.0.1:%d" % b.port, "-sf", str(scen), "-r", str(rate), "-m",
                                      str(rate * seconds), "-nr", "-timeout", "%ds" % (seconds + 30)] +
                                     (["-t", "un", "-max_socket", "4000"] if sources == "many" else []), cwd=str(tmp))
        # while it lasts: the flooded phone's heap (MicroPython) and its state, every half second
        peak, longest, states, passes = 0, 0, set(), []
        stop = threading.Event()

        def watch():
            nonlocal peak, longest
            while not stop.is_set():
                try:
                    m = b.mem()         # its max_pass_ms: the loop's longest pass since the last read
                    peak, longest = max(peak, m["alloc"]), max(longest, m["max_pass_ms"])
                    passes.append((round(time.monotonic() - t0, 1), m["max_pass_ms"], m["alloc"]))
                    states.add(b.state())
                except AssertionError:
                    states.add("no answer")
                stop.wait(0.5)
        w = threading.Thread(target=watch, daemon=True)
        w.start()
        try:
            rc, out, err = peers.finish(proc, seconds + 60)
        finally:
            stop.set()
            w.join(5)
        t1 = time.monotonic()
        time.sleep(0.3)
        fig = relay.figures()
        a1, b1 = _media(a), _media(b)
        g1 = _gate(b)
        st1 = b.st()
        # the relay's log of arrival gaps over 60 ms, in the flood's window: "ba" is what bob sent
        gaps = {d: [(when, g) for when, g in relay.dirs[d].gap_log if t0 <= when <= t1] for d in ("ab", "ba")}
        # a gap in what bob sent that alice's stream had too (within 50 ms) is the host's (the relay's process was
        # not scheduled, or the machine stalled), not the flooded phone's
        own = [g for when, g in gaps["ba"] if not any(abs(when - w2) < 0.05 for w2, _ in gaps["ab"])]
        busy = re.findall(r"486 <-+\s+(\d+)", out)
        res = {
            "runtime": phones.runtime, "rate": rate, "seconds": seconds, "invites": rate * seconds,
            "sipp_rc": rc, "sipp_out": out[-3000:] + err[-1000:], "flood_s": t1 - t0,
            "busy_486": int(busy[0]) if busy else 0, "limited": g1["limited"] - g0["limited"],
            "gaps_over_60_ms_from_bob": len(gaps["ba"]),
            "max_gap_ms_from_bob": max([g for _, g in gaps["ba"]] or [0.0]),
            "gaps_over_60_ms_from_alice": len(gaps["ab"]), "gaps_over_60_ms_bob_only": len(own),
            "gap_log": {d: [(round(w - t0, 3), round(g, 1)) for w, g in gaps[d]] for d in gaps},
            "bob_concealed": b1["concealed"] - b0["concealed"], "bob_late": b1["late"] - b0["late"],
            "bob_received": b1["received"] - b0["received"], "bob_lost": b1["lost"] - b0["lost"],
            "alice_concealed": a1["concealed"] - a0["concealed"], "states": sorted(states),
            "sessions_after": sorted(b.st()["sessions"]),
            # the phone's own view: its loop's longest pass (GC included), datagrams it read, dropped, or could not
            # take for want of memory (st's loop line)
            "loop_max_pass_ms": longest, "passes": passes, "rx": st1["rx"] - st0["rx"], "loop_dropped": st1["dropped"] - st0["dropped"],
            "oom": st1["oom"] - st0["oom"],
        }
        if mp:
            res["heap_before"] = mem0["alloc"]
            res["heap_peak"] = peak
        assert a.ev("HangupCall").startswith("ok c1"), a.tail()
        assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())
        res["options_after"] = options_ok(b.port)
        if mp:
            # the flood's server transactions (486s wait for their ACK, Timer I) are over once 64*T1 has passed
            res["heap_after_gc"] = b.mem(True)["alloc"]
        return res
    finally:
        relay.stop()


def _gate(p):
    line = [l for l in p.st()["lines"] if l.startswith("gate ")][0]
    return {k: int(v) for k, v in (x.split("=", 1) for x in line.split()[1:]) if v.isdigit()}
