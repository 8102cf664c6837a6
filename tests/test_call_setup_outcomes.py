# How a call that is being set up ends, on phones running on a real loop (both runtimes): every answer a far end
# can give an outgoing call before it is answered (183 early media, 200 at once, 4xx/5xx/6xx at each stage, nothing
# at all, a CANCEL crossing the 200), each from a sipp answerer of its own on 127.0.0.1; and what an incoming call
# meets while it rings (rejected, declined, cancelled, unanswered), between two phones and from a sipp caller.
# Each case checks the transitions the phone printed and that the peer saw the messages the RFC asks for (sipp's
# exit code: its scenario waits for each ACK, CANCEL and BYE).
import time

from tests import peers
from tests.proc import free_port, phones  # noqa: F401  (phones is a fixture)

T1 = {"t1_ms": 100}          # Timer B / F: 6.4 s
SDP = peers.sdp()
RECV_INVITE = '  <recv request="INVITE" crlf="true"/>'
ACK = '  <recv request="ACK" timeout="5000"/>'
BYE_200 = '  <recv request="BYE" timeout="8000"/>\n' + peers.sipp_reply(200, "OK", tag=False)
CANCEL_487 = ('  <recv request="CANCEL" timeout="5000"/>\n' + peers.sipp_reply(200, "OK") +
              peers.sipp_reply(487, "Request Terminated", cseq="INVITE") + ACK)


def pause(ms):
    return '  <pause milliseconds="%d"/>' % ms


def refused(code, reason):
    return peers.sipp_reply(code, reason) + ACK


RING = peers.sipp_reply(180, "Ringing")
EARLY = peers.sipp_reply(183, "Session Progress", SDP)
# name: (sipp's side after the INVITE, what the phone does ("hangup" when EarlyMedia/Ringing/Initiating is
# reached), the transitions the phone prints, in order)
UAC_CASES = {
    "early-then-answered": (
        [EARLY, pause(700), EARLY, pause(700), peers.sipp_reply(200, "OK", SDP), ACK, BYE_200], "after-active",
        ["c1 Initiating Dialog183SessionProgress EarlyMedia StoreRemoteSDP,NegotiateSDPAsUAC,StartMediaSession",
         "c1 EarlyMedia Dialog183SessionProgress EarlyMedia -",
         "c1 EarlyMedia Dialog200OK Active StoreNegotiatedConfig,SendACK,StartMediaFlow",
         "c1 Active HangupCall Terminating"]),
    "answered-at-once": (
        [peers.sipp_reply(200, "OK", SDP), ACK, BYE_200], "after-active",
        ["c1 Initiating Dialog200OK Active StopTone,StoreRemoteSDP,NegotiateSDPAsUAC,SendACK,StartMediaFlow"]),
    "busy": ([refused(486, "Busy Here")], None,
             ["c1 Initiating Dialog4xxFailure Failed(Rejected) CleanupResources"]),
    "unavailable": ([refused(503, "Service Unavailable")], None,
                    ["c1 Initiating Dialog5xxFailure Failed(NetworkError) CleanupResources"]),
    "declined": ([refused(603, "Decline")], None,
                 ["c1 Initiating Dialog6xxFailure Failed(Rejected) CleanupResources"]),
    "rings-then-busy": ([RING, pause(100), RING, pause(200), refused(486, "Busy Here")], None,
                        ["c1 Initiating Dialog180Ringing Ringing StartTone(ringback)",
                         "c1 Ringing Dialog180Ringing Ringing -",
                         "c1 Ringing Dialog4xxFailure Failed(Rejected) StopTone,CleanupResources"]),
    "rings-then-server-error": ([RING, pause(200), refused(500, "Server Internal Error")], None,
                                ["c1 Ringing Dialog5xxFailure Failed(NetworkError) StopTone,CleanupResources"]),
    "rings-then-busy-everywhere": ([RING, pause(200), refused(600, "Busy Everywhere")], None,
                                   ["c1 Ringing Dialog6xxFailure Failed(Rejected) StopTone,CleanupResources"]),
    "early-then-busy": ([EARLY, pause(200), refused(486, "Busy Here")], None,
                        ["c1 EarlyMedia Dialog4xxFailure Failed(Rejected) CleanupResources"]),
    "early-then-unavailable": ([EARLY, pause(200), refused(503, "Service Unavailable")], None,
                               ["c1 EarlyMedia Dialog5xxFailure Failed(NetworkError) CleanupResources"]),
    "early-then-declined": ([EARLY, pause(200), refused(603, "Decline")], None,
                            ["c1 EarlyMedia Dialog6xxFailure Failed(Rejected) CleanupResources"]),
    "rings-after-ringback-180": ([RING, EARLY, CANCEL_487], "EarlyMedia",
                                 ["c1 Ringing Dialog183SessionProgress EarlyMedia "
                                  "StopTone,StoreRemoteSDP,NegotiateSDPAsUAC,StartEarlyMedia",
                                  "c1 EarlyMedia HangupCall Cancelled SendCANCEL,StartDialogCleanup,StartMediaCleanup",
                                  "c1 Cancelled Dialog4xxFailure Cancelled ReleaseAllResources"]),
    # the 200 crosses our CANCEL (RFC 3261 9.1 / 15): the call was answered anyway, so it is ACKed and ended by BYE
    "answered-across-cancel": (
        [RING, '  <recv request="CANCEL" timeout="5000"/>', peers.sipp_reply(200, "OK"),
         peers.sipp_reply(200, "OK", SDP, cseq="INVITE"), ACK, BYE_200], "Ringing",
        ["c1 Ringing HangupCall Cancelled StopTone,SendCANCEL,StartDialogCleanup,StartMediaCleanup",
         "c1 Cancelled Dialog200OK Cancelled SendACK,SendBYE"]),
    # hung up before anything came back: the CANCEL waits for the first provisional, a 100 Trying (RFC 3261 9.1)
    "hangup-before-trying": (
        [pause(600), peers.sipp_reply(100, "Trying", tag=False), CANCEL_487], "Initiating",
        ["c1 Initiating HangupCall Cancelled SendCANCEL,StartDialogCleanup,StartMediaCleanup",
         "c1 Cancelled Dialog4xxFailure Cancelled ReleaseAllResources"]),
}


def _tr(p, text):
    return any(l.startswith("tr " + text) for l in p.lines)


def test_outgoing_call_outcomes_from_sipp_answerers(phones, tmp_path):
    # a second phone calls where nothing answers (a bound socket that reads and says nothing): Timer B ends it
    # while the first phone goes through the cases
    silent = free_port()
    import socket
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", silent))
    alice = phones.add("alice", sip=T1, audio={"source": "tone:1000"})
    dave = phones.add("dave", sip=T1)
    procs = {}
    try:
        assert dave.ev("MakeCall", target="sip:nobody@127.0.0.1:%d" % silent).startswith("ok c1 Initiating")
        started = time.time()
        for name, (steps, _act, _want) in UAC_CASES.items():
            scen = tmp_path / (name + ".xml")
            scen.write_text(peers.sipp_scenario(name, RECV_INVITE, *steps))
            port = free_port()
            extra = ["-rtp_echo"] if name == "early-then-answered" else []
            procs[name] = (port, peers.sipp_background(["-sf", str(scen), "-p", str(port), "-m", "1", "-timeout",
                                                        "30s", "-timeout_error"] + extra, cwd=str(tmp_path)))
        for name, (port, proc) in procs.items():
            assert peers.wait_listening(port, proc), (name, proc.communicate())
        early_heard = None
        for i, (name, (steps, act, want)) in enumerate(UAC_CASES.items()):
            sid = "c%d" % (i + 1)
            port, proc = procs[name]
            start = len(alice.lines)
            assert alice.ev("MakeCall", target="sip:%s@127.0.0.1:%d" % (name, port)).startswith("ok %s " % sid)
            if act in ("Initiating", "Ringing", "EarlyMedia"):
                if act != "Initiating":
                    assert alice.wait(lambda: alice.state() == act, 5), (name, alice.tail())
                assert alice.ev("HangupCall").startswith("ok %s Cancelled" % sid), (name, alice.tail())
            elif act == "after-active":
                if name == "early-then-answered":
                    # early media flows both ways before the answer: sipp echoes what the phone sends
                    def heard_early():
                        st = alice.st()
                        return st["calls"].get(sid) == "EarlyMedia" and int(st["media"][sid]["received"]) > 0
                    early_heard = alice.wait(heard_early, 5)
                assert alice.wait(lambda: alice.state() == "Active", 5), (name, alice.tail())
                assert alice.ev("HangupCall").startswith("ok %s Terminating" % sid), (name, alice.tail())
            assert alice.wait(lambda: alice.state() == "-", 8), (name, alice.tail())
            rc, out, err = peers.finish(proc, 10)
            assert rc == 0, "sipp %s failed:\n%s\n%s\n%s" % (name, out[-1500:], err[-1500:], alice.tail())
            for w in want:
                w = w.replace("c1 ", sid + " ", 1)
                assert any(l.startswith("tr " + w) for l in alice.lines[start:]), (name, w, alice.tail())
        assert early_heard, "no early media came back while the call was in EarlyMedia"
        # nothing answered dave's INVITE: 64*T1 after it was sent the call failed, and only then
        assert dave.wait_line("tr c1 Initiating DialogTimeout Failed(Timeout) CleanupResources", 10), dave.tail()
        assert time.time() - started >= 6.0
        assert dave.saw("timeout c1 invite")
        assert hole.recvfrom(4096)[0].startswith(b"INVITE sip:nobody@")
    finally:
        hole.close()
        for _port, proc in procs.values():
            peers.stop(proc)


def _same_branch(method, back, to="[last_To:]"):
    """A request of sipp's caller in the INVITE's transaction (the ACK of a non-2xx, a CANCEL: RFC 3261 17.1.1.3,
    9.1): the INVITE's branch, `back` scenario steps before this one."""
    return ("  <send><![CDATA[\n%s sip:bob@[remote_ip]:[remote_port] SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-%d]\n"
            "From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n%s\n"
            "Call-ID: [call_id]\nCSeq: 1 %s\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>\n"
            % (method, back, to, method))


CALLER = [peers.sipp_send("INVITE", 1, SDP, first=True), '  <recv response="100" optional="true"/>',
          '  <recv response="180"/>']


def _refused_by_phone(code, wait=8000):
    return CALLER + ['  <recv response="%d" timeout="%d"/>' % (code, wait), _same_branch("ACK", 4)]


# name: (sipp's caller, what the phone's user does while it rings, the phone's transition)
UAS_CASES = {
    "rejected": (_refused_by_phone(486), "RejectCall",
                 "Ringing RejectCall Terminated SendSIPResponse(486,Busy Here),ReleaseAllResources"),
    "declined": (_refused_by_phone(603), "HangupCall",
                 "Ringing HangupCall Terminated SendSIPResponse(603,Decline),ReleaseAllResources"),
    "cancelled": (CALLER + [_same_branch("CANCEL", 3, "To: <sip:bob@[remote_ip]:[remote_port]>"),
                            '  <recv response="200"/>', '  <recv response="487"/>', _same_branch("ACK", 6)], None,
                  "Ringing DialogCANCEL Cancelled SendSIPResponse(487,Request Terminated),StartMediaCleanup"),
}


def test_incoming_call_rejected_declined_cancelled_and_unanswered(phones, tmp_path):
    bob = phones.add("bob", sip=T1)
    # nobody picks up carol's phone: its ring timeout answers 480 (features.ring_timeout_s, 5 s at least)
    carol = phones.add("carol", sip=T1, features={"ring_timeout_s": 5})
    scen = tmp_path / "unanswered.xml"
    # addressed to carol: the phone answers 404 to a Request-URI user it is not (ua/gate.py)
    scen.write_text(peers.sipp_scenario("unanswered", *_refused_by_phone(480, 10000)).replace("sip:bob@", "sip:carol@"))
    quiet = peers.sipp_background(["-sf", str(scen), "127.0.0.1:%d" % carol.port, "-m", "1", "-timeout", "20s",
                                   "-timeout_error"], cwd=str(tmp_path))
    started = time.time()
    try:
        assert carol.wait_line("tr c1 Idle IncomingCall Ringing", 5), carol.tail()
        for name, (steps, act, want) in UAS_CASES.items():
            scen = tmp_path / (name + ".xml")
            scen.write_text(peers.sipp_scenario(name, *steps))
            start = len(bob.lines)
            proc = peers.sipp_background(["-sf", str(scen), "127.0.0.1:%d" % bob.port, "-m", "1", "-timeout", "15s",
                                          "-timeout_error"], cwd=str(tmp_path))
            try:
                assert bob.wait_line(lambda l: l.startswith("tr ") and " Idle IncomingCall Ringing " in l, 5,
                                     start), (name, bob.tail())
                if act:
                    assert bob.ev(act).split()[2] in ("Terminated", "Idle"), (name, bob.tail())
            finally:
                rc, out, err = peers.finish(proc, 15)
            assert rc == 0, "sipp %s failed:\n%s\n%s\n%s" % (name, out[-1500:], err[-1500:], bob.tail())
            assert bob.wait_line(lambda l: l.startswith("tr ") and want in l, 3, start), (name, want, bob.tail())
            assert bob.wait(lambda: not bob.st()["calls"], 5), (name, bob.tail())
        rc, out, err = peers.finish(quiet, 15)
        assert rc == 0, "sipp unanswered failed:\n%s\n%s\n%s" % (out[-1500:], err[-1500:], carol.tail())
        assert time.time() - started >= 4.5
        assert carol.saw("tr c1 Ringing DialogTimeout Failed(Timeout) "
                         "SendSIPResponse(480,Temporarily Unavailable),CleanupResources"), carol.tail()
        assert carol.wait(lambda: not carol.st()["calls"], 5), carol.tail()
    finally:
        peers.stop(quiet)


def test_a_ringing_call_fails_when_the_far_ends_connection_drops(phones, tmp_path):
    # over TCP: the far end (sipp -t t1) rings or plays early media, then its connection closes (sipp ends): the
    # INVITE can never be answered, so the call fails at once (its transaction's transport error, RFC 3261
    # 8.1.3.1) instead of ringing on to the 3-minute guard
    alice = phones.add("alice", sip={"transport": "tcp", "t1_ms": 100})
    for i, (stage, prov, actions) in enumerate((("Ringing", RING, "StopTone,SendCANCEL,CleanupResources"),
                                                ("EarlyMedia", EARLY, "SendCANCEL,CleanupResources"))):
        scen = tmp_path / ("drop-%s.xml" % stage)
        scen.write_text(peers.sipp_scenario("drop", RECV_INVITE, prov, pause(500)))
        port = free_port()
        proc = peers.sipp_background(["-sf", str(scen), "-t", "t1", "-p", str(port), "-m", "1", "-timeout", "15s",
                                      "-timeout_error"], cwd=str(tmp_path))
        try:
            assert peers.wait_listening(port, proc, kind="tcp"), proc.communicate()
            sid = "c%d" % (i + 1)
            assert alice.ev("MakeCall", target="sip:drop@127.0.0.1:%d" % port).startswith("ok %s " % sid)
            assert alice.wait_line("tr %s " % sid + {"Ringing": "Initiating Dialog180Ringing Ringing",
                                                     "EarlyMedia": "Initiating Dialog183SessionProgress"}[stage], 5)
            assert alice.wait_line("tr %s %s DialogTimeout Failed(Timeout) %s" % (sid, stage, actions), 5), \
                alice.tail()
        finally:
            rc, out, err = peers.finish(proc, 10)
        assert rc == 0, "sipp failed:\n%s\n%s" % (out[-1500:], err[-1500:])
        assert alice.saw("tcp 127.0.0.1:%d closed" % port)
        assert alice.wait(lambda: not alice.st()["calls"], 5), alice.tail()
