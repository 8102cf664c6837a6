# Network faults, phone processes on CPython and on the frozen MicroPython (96 KB heap): RTP through a lossy relay of
# our own (host_tools/netem.py: loss, reordering, duplication, 200 ms stalls) with the phones' RTCP figures held
# against what the relay did; a far end that dies mid-call (its RTP stops, the BYE for it is never answered); a TCP
# reset in the middle of a call; a registrar (Kamailio) that goes away and comes back.
import array
import math
import os
import signal
import time
import wave

from uphone.media.goertzel import dominant_freq
from host_tools.netem import Relay
from tests.proc import phones  # noqa: F401  (fixture)

AUTO = {"auto_answer": True, "auto_answer_delay_ms": 0}
# (name, relay impairment, seconds): each phase is followed by 0.3 s of clean link, so that the relay's counts and the
# phones' are read with nothing in flight
PHASES = (("loss 1%", {"loss": 0.01}, 2.0), ("loss 10%", {"loss": 0.10}, 1.5), ("loss 30%", {"loss": 0.30}, 1.5),
          ("reorder 10% + duplicate 5%", {"reorder": 0.10, "dup": 0.05}, 1.5),
          ("200 ms stalls every second", {"stall_every_ms": 1000, "stall_ms": 200}, 2.0))


def _ints(media):
    return {k: (float(v) if "." in v else int(v)) for k, v in media.items() if k not in ("dtmf", "srtp")}


def _silent_frames(path, skip_s=1.0, cut_s=0.0):
    """(silent 20 ms frames, frames) of a WAV after its first skip_s and before its last cut_s: a frame whose RMS is
    under 1% of full scale."""
    with wave.open(path) as w:
        rate = w.getframerate()
        pcm = array.array("h", w.readframes(w.getnframes()))
    n = rate // 50
    silent = total = 0
    for i in range(int(rate * skip_s), len(pcm) - n - int(rate * cut_s), n):
        total += 1
        if math.sqrt(sum(v * v for v in pcm[i:i + n]) / n) < 328:
            silent += 1
    return silent, total


def test_lossy_link_rtcp_figures_match_the_relay_and_loss_is_concealed(phones):
    a = phones.add("alice", audio={"source": "tone:1000", "sink": "heard.wav"})
    b = phones.add("bob", audio={"source": "tone:440", "sink": "heard.wav"}, features=AUTO)
    relay = Relay({"bob": ("127.0.0.1", b.port)}).start()
    try:
        assert a.ev("MakeCall", target=relay.target("bob")).startswith("ok c1")
        assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
        # both legs are record-routed through the relay and their RTP comes from its ports
        assert a.st()["leg"]["c1"]["routes"] == "1" and b.st()["leg"]["c1"]["routes"] == "1"
        assert a.wait_line("media c1 peer 127.0.0.1", 5) and b.wait_line("media c1 peer 127.0.0.1", 5)
        time.sleep(1.5)

        def snap():
            f = relay.figures()     # first the relay, then the phones: they can only have seen as much
            return f, {"ab": _ints(b.st()["media"]["c1"]), "ba": _ints(a.st()["media"]["c1"])}
        prev = snap()
        report = []
        for name, imp, secs in PHASES:
            if "stall_ms" in imp:
                t_stalls = time.time()
            relay.impair(**imp)
            time.sleep(secs)
            relay.impair()
            time.sleep(0.3)
            cur = snap()
            for d in ("ab", "ba"):
                f0, f1, m0, m1 = prev[0][d], cur[0][d], prev[1][d], cur[1][d]
                dropped = f1["dropped"] - f0["dropped"]
                # RFC 3550 A.3 counts a duplicate as received, so it takes one off the loss
                want = dropped - (f1["duplicated"] - f0["duplicated"])
                lost = m1["lost"] - m0["lost"]
                concealed = m1["concealed"] - m0["concealed"]
                late = m1["late"] - m0["late"]
                report.append((name, d, dropped, want, lost, concealed, late))
                assert lost == want, (name, d, want, lost, f1, m1)
                assert m1["received"] > m0["received"], (name, d)      # the call's audio kept coming
                if imp.get("loss", 0) and imp["loss"] <= 0.1:
                    # isolated losses are all made up by the jitter buffer's concealment (PLC), none heard as silence
                    assert concealed == dropped, (name, d, dropped, concealed)
                elif imp.get("loss"):
                    # runs of more than 3 lost frames end in silence: most are still concealed
                    assert concealed >= 0.8 * dropped, (name, d, dropped, concealed)
                elif imp.get("stall_ms"):
                    # nothing lost, but 200 ms with nothing overruns the buffer's delay: the gap is concealed (or
                    # the packets come late) and the call goes on
                    assert dropped == 0 and concealed + late > 0, (name, d, m0, m1)
            prev = cur
        # RTCP both ways: once a receiver report covering the end has come (every 5 s), each phone's peer_lost is
        # what the other one counted
        assert a.wait(lambda: int(a.st()["media"]["c1"]["peer_lost"]) == int(b.st()["media"]["c1"]["lost"]) and
                      int(b.st()["media"]["c1"]["peer_lost"]) == int(a.st()["media"]["c1"]["lost"]), 8), \
            (a.st()["media"], b.st()["media"])
        t_end = time.time()
        assert a.ev("HangupCall").startswith("ok c1")
        assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())
    finally:
        relay.stop()
    # the WAVs are written as they play, so their last (t_end - t_stalls) s are the stall phase and after: a 200 ms
    # stall is heard as silence past what concealment covers, with nothing lost; the loss phases are before it
    cut = t_end - t_stalls + 0.3
    phones.close()
    print("\nlossy link %s: (phase, direction, relay dropped, loss expected, phone lost, concealed, late)"
          % phones.runtime)
    for r in report:
        print("  ", r)
    total_lost = sum(r[4] for r in report if r[1] == "ab")
    for p, hz, d in ((b, 1000, "ab"), (a, 440, "ba")):
        with wave.open(p.dir + "/heard.wav") as w:
            pcm, rate = w.readframes(w.getnframes()), w.getframerate()
        assert abs(dominant_freq(pcm[-rate * 2:], rate) - hz) < 20, (p.name, dominant_freq(pcm[-rate * 2:], rate))
        silent, frames = _silent_frames(p.dir + "/heard.wav", cut_s=cut)
        lost = sum(r[4] for r in report if r[1] == d)
        print("   %s heard %d silent frames of %d in the loss phases, %d lost" % (p.name, silent, frames, lost))
        # without concealment every lost frame would be silence; with it only the ends of long runs are
        assert silent < lost / 3, (p.name, silent, frames, lost, report)
    assert total_lost > 0


def test_a_far_end_that_dies_is_hung_up_on_and_its_silence_to_the_bye_ends_the_call(phones):
    # the case: alice (rtp_timeout_s 2, T1 100 ms, the least) calls bob and bob's process is killed mid-call:
    # RTP stops, alice sends BYE once 2 s pass without it, nobody answers, and Timer F (64*T1 = 6.4 s) ends the call:
    # Terminating x DialogTimeout -> Terminated. (A BYE left unanswered by sipp, and a far end that never sends RTP,
    # are in test_midcall_rows; this is the two together, from a phone that dies.)
    a = phones.add("alice", media={"rtp_timeout_s": 2}, sip={"t1_ms": 100})
    b = phones.add("bob", features=AUTO)
    a.ev("MakeCall", target=b.uri)
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    assert a.wait_line("Active MediaFlowEstablished", 5), a.tail()
    b.proc.kill()
    t0 = time.time()
    b.proc.wait(5)
    del phones.all["bob"]       # dead on purpose: not asked for its crash count at the end
    b.close()
    assert a.wait_line("tr c1 Active RTPTimeout Terminating SendBYE", 10), a.tail()
    assert time.time() - t0 >= 1.5, a.tail()       # not before the media went quiet for rtp_timeout_s
    assert a.saw("err c1 no RTP for 2 s"), a.tail()
    assert a.wait_line("timeout c1 bye", 10), a.tail()
    assert a.wait_line("tr c1 Terminating DialogTimeout Terminated ReleaseAllResources", 5), a.tail()
    assert a.wait(lambda: a.state() == "-", 5), a.tail()
    # the phone is not left with anything of the call: a new call can take a line and media
    assert a.st()["sessions"] == {}, a.st()


def test_a_tcp_reset_mid_call_reconnects_and_keeps_the_dialog(phones):
    # SIP over TCP through the relay (it record-routes, so every request of the dialog passes it); RTP goes directly
    tcp = {"transport": "tcp", "t1_ms": 200}
    a = phones.add("alice", sip=tcp, audio={"source": "tone:1000"})
    b = phones.add("bob", sip=tcp, audio={"source": "tone:440"}, features=AUTO)
    relay = Relay({"bob": ("127.0.0.1", b.port)}, transport="tcp", media=False).start()
    try:
        assert a.ev("MakeCall", target=relay.target("bob")).startswith("ok c1")
        assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
        assert a.st()["leg"]["c1"]["routes"] == "1" and b.st()["leg"]["c1"]["routes"] == "1"
        assert a.wait_line("Active MediaFlowEstablished", 5) and b.wait_line("Active MediaFlowEstablished", 5)
        flow = "flow 127.0.0.1:%d out" % relay.port
        assert flow in a.st()["lines"], a.st()["lines"]
        got = int(b.st()["media"]["c1"]["received"])
        relay.reset_tcp()               # RST on every connection: the phones' flows are gone
        assert relay.resets >= 2
        assert a.wait_line("tcp 127.0.0.1:%d closed" % relay.port, 5), a.tail()
        assert a.wait(lambda: flow not in a.st()["lines"], 5), a.st()["lines"]
        # the dialog outlives its connections: a re-INVITE each way and the BYE open new ones
        assert a.ev("HoldCall").startswith("ok c1 OnHold"), a.tail()
        assert b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "recvonly", 5), (a.tail(), b.tail())
        assert a.ev("ResumeCall").startswith("ok c1"), a.tail()
        assert a.wait(lambda: a.state() == "Active", 5), a.tail()
        assert b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "sendrecv", 5), b.tail()
        assert flow in a.st()["lines"], a.st()["lines"]
        assert int(b.st()["media"]["c1"]["received"]) > got        # the audio never stopped
        assert b.ev("HangupCall").startswith("ok c1"), b.tail()
        assert a.wait(lambda: a.state() == "-" and b.state() == "-", 5), (a.tail(), b.tail())
        assert b.saw("resp c1 bye 200 OK"), b.tail()
    finally:
        relay.stop()


def _pids_of(proc):
    """The process and its children (Kamailio forks its workers) from /proc."""
    out = [proc.pid]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == proc.pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def test_a_registrar_outage_is_ridden_out_with_backoff_and_the_phone_registers_again(phones, tmp_path):
    # Kamailio over TCP (so an outage is a refused connection, not a 64*T1 wait per try). The phone registers; then
    # mid-registration the registrar goes: frozen (SIGSTOP) while the phone's refresh REGISTER is out, then killed,
    # so the connection closes under the transaction. The REGISTER fails, every try after it is refused and waits
    # register_retry_s doubled each time (1, 2, 4 s); Kamailio starts again on the same port, with no memory of the
    # binding, and the phone's next try registers it (digest auth again)
    from tests.peers import Kamailio
    from tests.proc import account_at
    kam = Kamailio(tmp_path / "kam", tcp=True).start()
    frozen = []
    try:
        a = phones.add("alice", account=account_at("alice", kam), sip={"transport": "tcp", "register_retry_s": 1})
        assert a.wait_line("reg r1 registered", 10), a.tail()
        assert "flow 127.0.0.1:%d out" % kam.port in a.st()["lines"], a.st()["lines"]
        start = len(a.lines)
        frozen = _pids_of(kam.proc)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        assert a.ev("RefreshRegistration", sid="r1").startswith("ok r1 Registering"), a.tail()
        assert a.wait_line("tr r1 Registered RefreshRegistration Registering SendREGISTER", 5, start), a.tail()
        time.sleep(0.3)                 # the REGISTER is in the frozen registrar's socket, unanswered
        assert not a.saw("reg r1 failed"), a.tail()
        _kill(frozen)
        frozen = []
        kam.proc.wait(5)
        assert a.wait_line("tcp 127.0.0.1:%d closed" % kam.port, 5, start), a.tail()
        assert a.wait_line("reg r1 failed (", 5, start), a.tail()
        assert a.wait_line("retry in 2 s", 5, start), a.tail()
        kam = Kamailio(tmp_path / "kam2", port=kam.port, tcp=True).start()
        assert a.wait_line(lambda l: l.startswith("reg r1 registered"), 10, start), a.tail()
        fails = [l for l in a.lines[start:] if l.startswith("reg r1 failed")]
        delays = [int(l.split("retry in ")[1].split()[0]) for l in fails]
        # each wait twice the one before (none of them a busy loop), and the registration came with the next try
        assert len(delays) >= 2 and delays == [2 ** i for i in range(len(delays))], fails
        print("\nregistrar outage %s: %s" % (phones.runtime, "; ".join(l for l in a.lines[start:] if l.startswith(
            ("reg r1", "tcp ")))))
        assert kam.auth_lines("authorized", "REGISTER", "alice") >= 1, kam.text()[-2000:]
        assert a.st()["sessions"].get("r1") == "Registered", a.st()
    finally:
        _kill(frozen)                   # a failure while frozen leaves no stopped Kamailio behind
        kam.stop()


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
