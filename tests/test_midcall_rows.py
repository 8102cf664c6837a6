# What happens to a call in progress, on phones running on a real loop (both runtimes), against a sipp far end and
# between phones: the phone's address changes under an active, muted, held and resuming call (`net reconnect ip`
# on its console, as a Wi-Fi rejoin with a new lease) and the target-refresh re-INVITEs meet 491 glare (then the
# retry), 488 and 408/481; hold refused and agreed; the far end hangs up or re-INVITEs, transfers and sends digits
# to a held or muted call; media stops arriving; a transfer fails or is cut short; recording. Each case checks
# the phone's transitions and what the peer saw (sipp's exit code: its scenario waits for each request and checks
# the address and direction in the SDP; the other phone's transitions).
import os
import time
import wave

from tests import peers
from tests.proc import phones  # noqa: F401  (phones is a fixture)
from uphone.media.goertzel import dominant_freq

A1, A2 = "127.0.0.1", "127.0.0.2"       # the phone's two addresses (loopback: both are this host)
QUIET = {"sip": {"t1_ms": 100}, "media": {"rtp_timeout_s": 0}, "features": {"auto_answer": True,
                                                                            "auto_answer_delay_ms": 0}}
SDP = peers.sdp()
HOLD_OK = peers.sdp(direction="recvonly", version=2353687638)


class Scenario:
    """sipp's side of one call, put together step by step; every SDP check is an ereg whose variable is
    referenced at the end (sipp refuses a variable assigned and never used)."""

    def __init__(self, name):
        self.name, self.parts, self.vars = name, [], []

    def add(self, *parts):
        self.parts += parts
        return self

    def reinvite(self, *body_has, keep=False):
        """Wait for the phone's re-INVITE; body_has: regexps its SDP must match; keep: remember its Via, From,
        To and CSeq (as $rv $rf $rt $rc) to answer it after other messages."""
        acts = []
        for rx in body_has:
            self.vars.append("v%d" % len(self.vars))
            acts.append('<ereg regexp="%s" search_in="body" check_it="true" assign_to="%s"/>' % (rx, self.vars[-1]))
        if keep:
            for h, v in (("Via:", "rv"), ("From:", "rf"), ("To:", "rt"), ("CSeq:", "rc")):
                acts.append('<ereg regexp=".*" search_in="hdr" header="%s" check_it="true" assign_to="%s"/>' % (h, v))
            self.vars += ["rv", "rf", "rt", "rc"]
        act = "<action>%s</action>" % "".join(acts) if acts else ""
        return self.add('  <recv request="INVITE" timeout="10000">%s</recv>' % act)

    def answer(self, code, reason, body=None):
        return self.add(peers.sipp_reply(code, reason, body, tag=False), '  <recv request="ACK" timeout="5000"/>')

    def glare_then(self, code, reason, body=None, *body_has):
        """491 (RFC 3261 14.1), then the phone's retry after its random wait, answered with code."""
        self.answer(491, "Request Pending")
        return self.reinvite(*body_has).answer(code, reason, body)

    def bye_answered(self):
        return self.add('  <recv request="BYE" timeout="8000"/>', peers.sipp_reply(200, "OK", tag=False))

    def xml(self):
        ref = ['  <Reference variables="%s"/>' % ",".join(self.vars)] if self.vars else []
        return peers.sipp_scenario(self.name, *(self.parts + ref))


def sipp_calls(phone_addr, port):
    """The start of a call from sipp to the phone (auto-answer), with the phone's Contact as next_url."""
    return Scenario("x").add(peers.sipp_send("INVITE", 1, SDP, first=True),
                             peers.ANSWERED % ' rrs="true"', peers.sipp_send("ACK", 1))


# sipp's BYE in the dialog, sent while a request of the phone's is unanswered (its last message is that request,
# so the To is built from the phone's tag rather than from the last message)
SIPP_BYE = ("  <send retrans=\"500\"><![CDATA[\nBYE [next_url] SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            "From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n"
            "To: <sip:bob@[remote_ip]:[remote_port]>[peer_tag_param]\nCall-ID: [call_id]\nCSeq: 2 BYE\n"
            "Max-Forwards: 70\nContent-Length: 0\n\n]]></send>\n  <recv response=\"200\" timeout=\"5000\"/>\n")
# the 487 to the re-INVITE remembered by reinvite(keep=True): the BYE ended the dialog (RFC 3261 15.1.2)
KEPT_487 = ("  <send><![CDATA[\nSIP/2.0 487 Request Terminated\nVia: [$rv]\nFrom: [$rf]\nTo: [$rt]\n"
            "Call-ID: [call_id]\nCSeq: [$rc]\nContent-Length: 0\n\n]]></send>\n"
            "  <recv request=\"ACK\" timeout=\"5000\"/>\n")


def _after(phone, text, pos, timeout=12):
    """The index after the first transition line from pos on that has text, waiting for it; 0 when none came."""
    end = time.time() + timeout
    while True:
        lines = phone.lines
        n = len(lines)
        for i in range(pos, n):
            if lines[i].startswith("tr ") and text in lines[i]:
                return i + 1
        pos = n
        if time.time() > end:
            return 0
        time.sleep(0.05)


def _run(phone, scen, addr, driver, tmp_path, timeout=40):
    """sipp plays scen against the phone at addr; driver: [(line the phone prints, console commands to send)]
    in order. -> the phone's lines from this call."""
    path = tmp_path / (scen.name + ".xml")
    path.write_text(scen.xml())
    start = len(phone.lines)
    proc = peers.sipp_background(["-sf", str(path), "%s:%d" % (addr, phone.port), "-m", "1", "-timeout",
                                  "%ds" % timeout, "-timeout_error"], cwd=str(tmp_path))
    try:
        pos = start
        for wait_for, cmds in driver:
            pos = _after(phone, wait_for, pos)
            assert pos, (scen.name, wait_for, phone.tail())
            for c in cmds:
                ans, _ = phone.cmd(c)
                assert ans.startswith("ok"), (scen.name, c, ans, phone.tail())
    finally:
        rc, out, err = peers.finish(proc, timeout + 5)
    assert rc == 0, "sipp %s failed:\n%s\n%s\n%s" % (scen.name, out[-1500:], err[-2500:], phone.tail())
    return phone.lines[start:]


def _has(lines, *rows):
    for r in rows:
        assert any(l.startswith("tr c") and r in l for l in lines), (r, "\n".join(lines[-40:]))


def test_address_changes_under_active_muted_held_and_resuming_calls(phones, tmp_path):
    bob = phones.add("bob", **QUIET)
    p = bob.port
    s = sipp_calls(A1, p)
    s.name = "moves"
    # active: the refresh meets glare, and its retry is answered
    s.reinvite("c=IN IP4 127.0.0.2").add(peers.sipp_setdest(A2, p)).glare_then(200, "OK", SDP, "c=IN IP4 127.0.0.2")
    # muted: the same, then a refusal (the session stays as it was, RFC 3261 14.1)
    s.reinvite("c=IN IP4 127.0.0.1", "a=sendrecv").add(peers.sipp_setdest(A1, p)).glare_then(200, "OK", SDP)
    s.reinvite("c=IN IP4 127.0.0.2").add(peers.sipp_setdest(A2, p)).answer(488, "Not Acceptable Here")
    # active again: refused
    s.reinvite("c=IN IP4 127.0.0.1").add(peers.sipp_setdest(A1, p)).answer(488, "Not Acceptable Here")
    # held: the hold meets glare; once agreed, the refresh from the new address offers sendonly still
    s.reinvite("a=sendonly").glare_then(200, "OK", HOLD_OK, "a=sendonly")
    s.reinvite("c=IN IP4 127.0.0.2", "a=sendonly").add(peers.sipp_setdest(A2, p)).answer(200, "OK", HOLD_OK)
    # resuming: glare, then refused (the call stays held); resumed again and the address changes while that
    # re-INVITE is out: its answer is ACKed and the newer offer (sendrecv, new address) goes at once
    s.reinvite("a=sendrecv").glare_then(488, "Not Acceptable Here", None, "a=sendrecv")
    s.reinvite("c=IN IP4 127.0.0.2", "a=sendrecv").add('  <pause milliseconds="700"/>', peers.sipp_setdest(A1, p))
    s.answer(200, "OK", SDP).reinvite("c=IN IP4 127.0.0.1", "a=sendrecv").answer(200, "OK", SDP)
    # active: the far end has lost the dialog (408): the phone ends the call with a BYE; sipp's own BYE crosses
    # it and is answered, ours is never answered and Timer F ends the call
    s.reinvite("c=IN IP4 127.0.0.2").add(peers.sipp_setdest(A2, p)).answer(408, "Request Timeout")
    s.add('  <recv request="BYE" timeout="5000"/>', SIPP_BYE)
    net = "net reconnect "
    lines = _run(bob, s, A1, [
        ("c1 Ringing AcceptCall Active", [net + A2]),
        ("c1 Active Dialog200OK Active", ["ev MuteCall", net + A1]),
        ("c1 Muted Dialog200OK Muted", [net + A2]),
        ("c1 Muted Dialog4xxFailure Muted", ["ev UnmuteCall", net + A1]),
        ("c1 Active Dialog4xxFailure Active", ["ev HoldCall"]),
        ("c1 OnHold Dialog200OK OnHold", [net + A2]),
        ("c1 OnHold AddressChanged OnHold", []),
        ("c1 OnHold Dialog200OK OnHold", ["ev ResumeCall"]),
        ("c1 Resuming Dialog4xxFailure OnHold", ["ev ResumeCall", net + A1]),
        ("c1 Resuming Dialog200OK Active", [net + A2]),
    ], tmp_path)
    assert bob.wait_line("tr c1 Terminating DialogTimeout Terminated ReleaseAllResources", 10), bob.tail()
    lines = bob.lines[bob.lines.index(lines[0]):]
    _has(lines, "c1 Active AddressChanged Active SendReINVITE", "c1 Active Dialog491Glare Active StartGlareTimer",
         "c1 Active GlareRetry Active SendReINVITE", "c1 Active Dialog200OK Active StoreRemoteSDP,NegotiateSDPAsUAC,SendACK",
         "c1 Active MuteCall Muted MuteLocalAudio", "c1 Muted AddressChanged Muted SendReINVITE",
         "c1 Muted Dialog491Glare Muted StartGlareTimer", "c1 Muted GlareRetry Muted SendReINVITE",
         "c1 Muted Dialog200OK Muted", "c1 Muted Dialog4xxFailure Muted -", "c1 Muted UnmuteCall Active UnmuteLocalAudio",
         "c1 Active Dialog4xxFailure Active -", "c1 OnHold Dialog491Glare OnHold StartGlareTimer",
         "c1 OnHold GlareRetry OnHold SendReINVITE", "c1 OnHold AddressChanged OnHold SendReINVITE",
         "c1 Resuming Dialog491Glare Resuming StartGlareTimer", "c1 Resuming GlareRetry Resuming SendReINVITE",
         "c1 Resuming Dialog4xxFailure OnHold UpdateMediaDirection(sendonly)",
         "c1 Resuming AddressChanged Resuming SendReINVITE",
         "c1 Resuming Dialog200OK Active StoreRemoteSDP,NegotiateSDPAsUAC,SendACK,RestoreMediaFlow",
         "c1 Active DialogTimeout Terminating SendBYE,StopMediaFlow",
         "c1 Terminating DialogBYE Terminating SendSIPResponse(200,OK)")
    assert any(l.startswith("reinvite c1 200 to a superseded offer") for l in lines), bob.tail()
    # the console's link followed each move
    assert bob.cmd("net")[0] == "ok net up 127.0.0.2"


def test_held_resuming_and_muted_calls_end_every_way(phones, tmp_path):
    bob = phones.add("bob", **QUIET)
    p = bob.port
    net = "net reconnect "
    calls = []

    def call(name):
        s = sipp_calls(A1, p)
        s.name = name
        calls.append(s)
        return s

    # hold refused (488): the call is active again; held; then the far end has lost the dialog (481): BYE
    call("hold-refused-then-gone").reinvite("a=sendonly").answer(488, "Not Acceptable Here")
    calls[-1].reinvite("a=sendonly").answer(200, "OK", HOLD_OK)
    calls[-1].reinvite("c=IN IP4 127.0.0.2", "a=sendonly").add(peers.sipp_setdest(A2, p)).answer(481, "Gone")
    calls[-1].bye_answered()
    # the resume times out (408): BYE
    call("resume-timeout").reinvite("a=sendonly").answer(200, "OK", HOLD_OK)
    calls[-1].reinvite("a=sendrecv").answer(408, "Request Timeout").bye_answered()
    # the far end hangs up instead of answering the resume, then ends that re-INVITE with 487
    call("resume-bye").reinvite("a=sendonly").answer(200, "OK", HOLD_OK)
    calls[-1].reinvite("a=sendrecv", keep=True).add(SIPP_BYE, KEPT_487)
    # our user hangs up while the resume is out
    call("resume-hangup").reinvite("a=sendonly").answer(200, "OK", HOLD_OK)
    calls[-1].reinvite("a=sendrecv", keep=True).add('  <recv request="BYE" timeout="5000"/>',
                                                    peers.sipp_reply(200, "OK", tag=False), KEPT_487)
    # muted, the address changes and the far end has lost the dialog (481): BYE
    call("muted-gone").reinvite("c=IN IP4 127.0.0.2", "a=sendrecv").add(peers.sipp_setdest(A2, p))
    calls[-1].answer(481, "Gone").bye_answered()
    drivers = {
        "hold-refused-then-gone": [("Ringing AcceptCall Active", ["ev HoldCall"]),
                                   ("OnHold Dialog4xxFailure Active", ["ev HoldCall"]),
                                   ("OnHold Dialog200OK OnHold", [net + A2])],
        "resume-timeout": [("Ringing AcceptCall Active", ["ev HoldCall"]),
                           ("OnHold Dialog200OK OnHold", ["ev ResumeCall"])],
        "resume-bye": [("Ringing AcceptCall Active", ["ev HoldCall"]),
                       ("OnHold Dialog200OK OnHold", ["ev ResumeCall"])],
        "resume-hangup": [("Ringing AcceptCall Active", ["ev HoldCall"]),
                          ("OnHold Dialog200OK OnHold", ["ev ResumeCall", "ev HangupCall"])],
        "muted-gone": [("Ringing AcceptCall Active", ["ev MuteCall", net + A2])],
    }
    want = {
        "hold-refused-then-gone": ["OnHold Dialog4xxFailure Active UpdateMediaDirection(sendrecv)",
                                   "OnHold AddressChanged OnHold SendReINVITE",
                                   "OnHold DialogTimeout Terminating SendBYE,StopMediaFlow"],
        "resume-timeout": ["Resuming DialogTimeout Terminating SendBYE,StopMediaFlow"],
        "resume-bye": ["Resuming DialogBYE Terminating SendSIPResponse(200,OK),StopMediaFlow"],
        "resume-hangup": ["Resuming HangupCall Terminating SendBYE,StopMediaFlow"],
        "muted-gone": ["Muted AddressChanged Muted SendReINVITE",
                       "Muted DialogTimeout Terminating SendBYE,StopMediaFlow"],
    }
    for i, s in enumerate(calls):
        lines = _run(bob, s, A1, drivers[s.name], tmp_path, timeout=20)
        assert bob.wait(lambda: not bob.st()["calls"], 5), (s.name, bob.tail())
        _has(lines, *["c%d %s" % (i + 1, w) for w in want[s.name]])
        if bob.cmd("net")[0] != "ok net up " + A1:
            assert bob.cmd(net + A1)[0] == "ok net reconnecting"


def _ok_sid(ans):
    assert ans.startswith("ok c"), ans
    return ans.split()[1]


def test_far_end_requests_reach_muted_and_held_calls_and_transfers_fail_or_are_cut_short(phones):
    auto = {"auto_answer": True, "auto_answer_delay_ms": 0}
    a = phones.add("alice", audio={"source": "tone:1000"})
    b = phones.add("bob", audio={"source": "tone:440"}, features=auto)
    c = phones.add("carol", audio={"source": "tone:700"}, features=auto)
    d = phones.add("dave", features={"dnd": True})         # refuses every call (486)
    e = phones.add("erin")                                 # rings until the caller gives up
    # bob records the call (both directions mixed) while it is active
    a.ev("MakeCall", target=b.uri)
    assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
    assert b.wait_line("c1 Active MediaFlowEstablished", 5), b.tail()
    assert b.ev("StartRecording") == "ok c1 Active"
    a.wait(lambda: False, 1.2)
    assert b.ev("StopRecording") == "ok c1 Active"
    rec = [l.split()[2] for l in b.lines if l.startswith("rec c1 ")][0]
    # muted: digits both ways, the far end's hold and resume (re-INVITE and ACK), then its transfer (REFER) and BYE
    assert b.ev("MuteCall") == "ok c1 Muted"
    assert a.ev("SendDTMF", digits="7") == "ok c1 Active"
    assert b.wait_line("tr c1 Muted DTMFReceived Muted ReportDTMF", 5), b.tail()
    assert b.ev("SendDTMF", digits="3") == "ok c1 Muted"
    assert a.wait(lambda: a.st()["media"]["c1"]["dtmf"] == "3", 5), a.tail()
    assert a.ev("HoldCall") == "ok c1 OnHold"
    assert b.wait(lambda: b.st()["leg"]["c1"]["dir"] == "recvonly", 5), b.tail()
    assert a.ev("ResumeCall") == "ok c1 Resuming" and a.wait(lambda: a.state() == "Active", 5), a.tail()
    assert b.wait(lambda: b.count("tr c1 Muted DialogReINVITE Muted") == 2 and
                  b.count("tr c1 Muted DialogACK Muted") == 2 and b.st()["leg"]["c1"]["dir"] == "sendrecv", 5), \
        b.tail()
    assert a.ev("BlindTransfer", target=c.uri) == "ok c1 Transferring"
    assert b.wait_line("tr c1 Muted DialogREFER Muted AcceptTransfer", 5), b.tail()
    assert b.wait_line("tr c1 Muted DialogBYE Terminating SendSIPResponse(200,OK),StopMediaFlow", 10), b.tail()
    assert a.wait_line("tr c1 Transferring TransferSuccess Terminating", 5), a.tail()
    # bob talks to carol now (c2). Held by bob, carol holds and resumes too, then transfers bob to dave, who
    # refuses: the transfer fails and carol's call goes on; then carol hangs up on the held bob
    assert b.wait(lambda: b.st()["calls"] == {"c2": "Active"} and c.state() == "Active", 10), (b.tail(), c.tail())
    assert b.ev("HoldCall") == "ok c2 OnHold"
    assert c.wait(lambda: c.st()["leg"]["c1"]["dir"] == "recvonly", 5), c.tail()
    assert c.ev("HoldCall") == "ok c1 OnHold"
    assert c.wait_line("tr c1 OnHold Dialog200OK OnHold", 5), c.tail()
    assert c.ev("ResumeCall") == "ok c1 Resuming" and c.wait(lambda: c.state() == "Active", 5), c.tail()
    assert b.wait(lambda: b.count("tr c2 OnHold DialogReINVITE OnHold") == 2 and
                  b.count("tr c2 OnHold DialogACK OnHold") == 2, 5), b.tail()
    assert b.st()["leg"]["c2"]["dir"] == "sendonly"         # bob still holds carol: her resume did not undo that
    assert c.ev("BlindTransfer", target=d.uri) == "ok c1 Transferring"
    assert b.wait_line("tr c2 OnHold DialogREFER OnHold AcceptTransfer", 5), b.tail()
    assert c.wait_line("tr c1 Transferring TransferFailed Active ResumeOriginalCall", 10), c.tail()
    assert b.wait_line("resp c3 invite 486 Busy Here", 5), b.tail()        # dave refused the new call
    assert c.ev("HangupCall") == "ok c1 Terminating"
    assert b.wait_line("tr c2 OnHold DialogBYE Terminating SendSIPResponse(200,OK),StopMediaFlow", 5), b.tail()
    assert b.wait(lambda: not b.st()["calls"] and not c.st()["calls"], 5), (b.tail(), c.tail())
    # held, then hung up; muted, then hung up
    sid = _ok_sid(a.ev("MakeCall", target=b.uri))
    assert a.wait(lambda: a.state() == "Active", 10) and a.ev("HoldCall") == "ok %s OnHold" % sid, a.tail()
    assert a.wait_line("tr %s OnHold Dialog200OK OnHold" % sid, 5), a.tail()
    assert a.ev("HangupCall") == "ok %s Terminating" % sid
    assert a.wait(lambda: not a.st()["calls"] and not b.st()["calls"], 5), (a.tail(), b.tail())
    a.ev("MakeCall", target=b.uri)
    assert b.wait(lambda: b.state() == "Active", 10)
    bsid = _ok_sid(b.ev("MuteCall"))
    assert b.ev("HangupCall") == "ok %s Terminating" % bsid
    assert b.saw("tr %s Muted HangupCall Terminating SendBYE,StopMediaFlow" % bsid)
    assert a.wait(lambda: not a.st()["calls"] and not b.st()["calls"], 5), (a.tail(), b.tail())
    # bob transfers alice to erin, who rings; bob hangs up before it ends, then (again) alice hangs up on bob
    for who_ends in ("transferor", "transferee"):
        orig = _ok_sid(a.ev("MakeCall", target=b.uri))
        assert a.wait(lambda: a.state() == "Active" and b.state() == "Active", 10), (a.tail(), b.tail())
        bsid = _ok_sid(b.ev("BlindTransfer", target=e.uri))
        assert e.wait(lambda: e.state() == "Ringing", 5), e.tail()
        if who_ends == "transferor":
            assert b.ev("HangupCall") == "ok %s Terminating" % bsid
            want = "tr %s Transferring HangupCall Terminating SendBYE,StopMediaFlow" % bsid
        else:
            assert a.ev("HangupCall", sid=orig) == "ok %s Terminating" % orig
            want = "tr %s Transferring DialogBYE Terminating SendSIPResponse(200,OK),StopMediaFlow" % bsid
        assert b.wait_line(want, 5), b.tail()
        assert a.wait(lambda: a.st()["calls"].get(orig) is None, 5), a.tail()
        assert a.ev("HangupCall").split()[2] == "Cancelled", a.tail()      # the call to erin, still ringing
        assert a.wait(lambda: not a.st()["calls"] and not b.st()["calls"] and not e.st()["calls"], 5), \
            (a.tail(), b.tail(), e.tail())
    phones.close()
    # the recording has both sides of the call: alice's 1000 Hz and bob's own 440 Hz, well above a tone not sent
    from uphone.media.goertzel import power
    with wave.open(rec) as w:
        pcm, rate = w.readframes(w.getnframes()), w.getframerate()
    assert len(pcm) >= 2 * rate * 0.8, len(pcm)
    mid = pcm[len(pcm) // 4:len(pcm) // 4 + 2 * 4000]
    p440, p1000, p2500 = (power(mid, len(mid) // 2, rate, f) for f in (440, 1000, 2500))
    assert p440 > 50 * p2500 and p1000 > 50 * p2500, (p440, p1000, p2500)


def test_a_call_without_incoming_media_ends_active_or_muted(phones, tmp_path):
    # sipp's answerer sends no RTP: media.rtp_timeout_s after the media started the phone hangs up (BYE, which
    # sipp waits for), whether the user listens or has muted the call
    from tests.proc import free_port
    alice = phones.add("alice", media={"rtp_timeout_s": 2})
    port = free_port()
    scen = tmp_path / "quiet.xml"
    scen.write_text(peers.sipp_scenario(
        "answers and sends nothing", '  <recv request="INVITE" crlf="true"/>', peers.sipp_reply(180, "Ringing"),
        peers.sipp_reply(200, "OK", SDP), '  <recv request="ACK"/>', '  <recv request="BYE" timeout="6000"/>',
        peers.sipp_reply(200, "OK", tag=False)))
    proc = peers.sipp_background(["-sf", str(scen), "-p", str(port), "-m", "2", "-timeout", "20s", "-timeout_error"],
                                 cwd=str(tmp_path))
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        for sid, mute in (("c1", False), ("c2", True)):
            start = len(alice.lines)
            assert alice.ev("MakeCall", target="sip:quiet@127.0.0.1:%d" % port).startswith("ok %s " % sid)
            assert alice.wait_line("tr %s Ringing Dialog200OK Active" % sid, 5, start), alice.tail()
            t0 = time.time()
            state = "Active"
            if mute:
                assert alice.ev("MuteCall") == "ok %s Muted" % sid, alice.tail()
                state = "Muted"
            assert alice.wait_line("tr %s %s RTPTimeout Terminating SendBYE,StopMediaFlow" % (sid, state), 5,
                                   start), alice.tail()
            assert 1.5 <= time.time() - t0 <= 4.5
            assert alice.wait_line("err %s no RTP for 2 s" % sid, 1, start)
            assert alice.wait(lambda: not alice.st()["calls"], 5), alice.tail()
    finally:
        rc, out, err = peers.finish(proc, 20)
    assert rc == 0, "sipp uas failed:\n%s\n%s" % (out[-1500:], err[-1500:])


def test_a_far_end_whose_media_moves_is_heard_again(phones, tmp_path):
    # the far end's RTP comes from a port other than its SDP names (behind NAT: the phone answers where it comes
    # from, symmetric RTP), then (a NAT rebinding, a media relay failing over) from another with no re-INVITE. The
    # phone had fixed its peer on the first (its RTP socket is connected: other senders are dropped); half the RTP
    # timeout without media it lets the peer go (MediaError, AttemptMediaRecovery), takes the new source and
    # answers there, and the call goes on past the timeout. Its media never goes back to the SDP's address. Then
    # the same while the call is muted
    import socket
    import struct
    import threading
    from tests.proc import free_port, free_range
    alice = phones.add("alice", media={"rtp_timeout_s": 3})
    base = free_range(6)
    socks = []
    for port in (base, base + 2, base + 4):     # the SDP's port (nothing is sent from it), the first and second
        sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sk.bind(("127.0.0.1", port))
        sk.settimeout(0.2)
        socks.append(sk)
    port = free_port()
    scen = tmp_path / "moves.xml"
    scen.write_text(peers.sipp_scenario(
        "media from elsewhere", '  <recv request="INVITE" crlf="true"/>', peers.sipp_reply(180, "Ringing"),
        peers.sipp_reply(200, "OK", peers.sdp(port=str(base))), '  <recv request="ACK"/>',
        '  <recv request="BYE" timeout="20000"/>', peers.sipp_reply(200, "OK", tag=False)))
    proc = peers.sipp_background(["-sf", str(scen), "-p", str(port), "-m", "1", "-timeout", "30s", "-timeout_error"],
                                 cwd=str(tmp_path))
    state = {"from": 1, "stop": False, "phone": None}
    got = [0, 0, 0]     # packets the phone sent to each of our ports

    def far_end():
        seq = 0
        while not state["stop"]:
            for i, sk in enumerate(socks):
                try:
                    while True:
                        data, src = sk.recvfrom(2048)
                        got[i] += 1
                        state["phone"] = src
                except OSError:
                    pass
            if state["phone"] is not None and state["from"] is not None:
                pkt = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, 0x1234ABCD) + b"\xff" * 160
                socks[state["from"]].sendto(pkt, state["phone"])
                seq += 1
            time.sleep(0.02)
    t = threading.Thread(target=far_end, daemon=True)
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        for sk in socks:
            sk.settimeout(0)
        t.start()
        assert alice.ev("MakeCall", target="sip:far@127.0.0.1:%d" % port) == "ok c1 Initiating"
        assert alice.wait_line("media c1 peer 127.0.0.1:%d" % (base + 2), 5), alice.tail()
        time.sleep(0.5)
        to_sdp, to_first = got[0], got[1]
        assert to_first > 10, got
        state["from"] = None                    # the far end goes quiet (its media is moving)
        quiet = time.time()
        assert alice.wait_line("tr c1 Active MediaError Active AttemptMediaRecovery", 4), alice.tail()
        time.sleep(0.4)
        # the peer let go, nothing has come yet: the phone goes on sending where the media had come from (50
        # packets a second), not to the SDP's address (the far end may be only quiet, behind its NAT)
        assert got[1] > to_first + 70 and got[0] == to_sdp, got
        state["from"] = 2                       # the far end's media now comes from base + 4
        assert alice.wait_line("media c1 peer 127.0.0.1:%d" % (base + 4), 2), alice.tail()
        sent_there = got[2]
        time.sleep(max(0.0, quiet + 4.0 - time.time()))     # past the RTP timeout counted from the quiet
        st = alice.st()
        assert st["calls"] == {"c1": "Active"} and not alice.saw("RTPTimeout"), alice.tail()
        assert got[2] > sent_there + 50, got     # the phone answers where the media comes from now
        assert got[0] == to_sdp, got            # and never at the address the SDP named
        # muted (the user still listens), the same again: quiet, then the media comes from the first port again
        assert alice.ev("MuteCall") == "ok c1 Muted"
        state["from"] = None
        quiet = time.time()
        assert alice.wait_line("tr c1 Muted MediaError Muted AttemptMediaRecovery", 4), alice.tail()
        pos = len(alice.lines)
        state["from"] = 1
        assert alice.wait_line("media c1 peer 127.0.0.1:%d" % (base + 2), 2, pos), alice.tail()
        sent_there = got[1]
        time.sleep(max(0.0, quiet + 4.0 - time.time()))
        assert alice.st()["calls"] == {"c1": "Muted"} and not alice.saw("RTPTimeout"), alice.tail()
        assert got[1] > sent_there + 50 and got[0] == to_sdp, got
        assert alice.ev("HangupCall") == "ok c1 Terminating"
        assert alice.wait(lambda: not alice.st()["calls"], 5), alice.tail()
    finally:
        state["stop"] = True
        rc, out, err = peers.finish(proc, 10)
        for sk in socks:
            sk.close()
    assert rc == 0, "sipp failed:\n%s\n%s" % (out[-1500:], err[-1500:])
