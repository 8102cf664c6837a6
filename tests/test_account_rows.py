# The account's sessions on phones running on a real loop (both runtimes), against sipp: registration refused
# (4xx, 5xx, 6xx) and registered, OPTIONS and MESSAGE sent, unregistration refused, and a registrar that is gone
# (its TCP connection closed: the REGISTER and the un-REGISTER fail at once); and the message-waiting
# subscription (RFC 6665 / 3842) refused, unanswered, accepted, notified, refreshed (a NOTIFY overtaking the 2xx),
# moved to a new address while it is refreshed, terminated by the notifier and unsubscribed.
# Each case checks the phone's transitions and what sipp saw (its exit code: the scenario waits for each request,
# checks what it must carry and answers it).
import time

from tests import peers
from tests.proc import free_port, phones  # noqa: F401  (phones is a fixture)

T1 = {"t1_ms": 100, "register_retry_s": 1}


def recv(method, *checks, keep=None, rrs=False, timeout=8000):
    """sipp waits for a request; checks: (where, regexp) the request must match (where: "body" or a header name
    ending in ':'); keep: {header: variable} to remember a header's value as [$variable]."""
    acts = []
    for i, (where, rx) in enumerate(checks):
        if where == "body":
            acts.append('<ereg regexp="%s" search_in="body" check_it="true" assign_to="chk"/>' % rx)
        else:
            acts.append('<ereg regexp="%s" search_in="hdr" header="%s" check_it="true" assign_to="chk"/>'
                        % (rx, where))
    for h, v in (keep or {}).items():
        acts.append('<ereg regexp=".*" search_in="hdr" header="%s" check_it="true" assign_to="%s"/>' % (h, v))
    act = "<action>%s</action>" % "".join(acts) if acts else ""
    return '  <recv request="%s" timeout="%d"%s>%s</recv>' % (method, timeout, ' rrs="true"' if rrs else "", act)


def scenario(name, *parts):
    """A sipp scenario; the ereg results above all go to `chk`, referenced here so sipp accepts it."""
    return peers.sipp_scenario(name, *(parts + ('  <Reference variables="chk"/>',)))


def reg_reply(code, reason):
    if code == 200:     # the binding comes back with what the registrar grants
        return peers.sipp_reply(200, "OK", contact="[last_Contact:]", extra="Expires: 60")
    return peers.sipp_reply(code, reason)


def _tr(p, text, start=0, timeout=8):
    return p.wait_line(lambda l: l.startswith("tr ") and text in l, timeout, start)


def test_registration_refused_every_way_then_options_message_and_unregistration(phones, tmp_path):
    reg = free_port()
    scen = tmp_path / "registrar.xml"
    scen.write_text(scenario(
        "registrar", recv("REGISTER"), reg_reply(503, "Service Unavailable"),
        recv("REGISTER"), reg_reply(603, "Decline"), recv("REGISTER"), reg_reply(403, "Forbidden"),
        recv("REGISTER", ("Contact:", "expires=60")), reg_reply(200, "OK"),
        recv("REGISTER", ("Expires:", "^ *0")), reg_reply(403, "Forbidden"),
        recv("REGISTER", ("Expires:", "60")), reg_reply(200, "OK"),
        recv("REGISTER", ("Expires:", "^ *0")), reg_reply(200, "OK")))
    # OPTIONS and MESSAGE go to a second sipp, each its own transaction (a new Call-ID: a new sipp call)
    other = free_port()
    scen2 = tmp_path / "other.xml"
    scen2.write_text(scenario(
        "options then message", '  <recv request="OPTIONS" optional="true" next="1"/>',
        recv("MESSAGE", ("body", "hello from the phone"), ("Content-Type:", "text/plain")),
        '  <label id="1"/>', peers.sipp_reply(200, "OK")))
    procs = [peers.sipp_background(["-sf", str(scen), "-p", str(reg), "-m", "1", "-timeout", "30s",
                                    "-timeout_error"], cwd=str(tmp_path)),
             peers.sipp_background(["-sf", str(scen2), "-p", str(other), "-m", "2", "-timeout", "30s",
                                    "-timeout_error"], cwd=str(tmp_path))]
    try:
        for port, proc in zip((reg, other), procs):
            assert peers.wait_listening(port, proc), proc.communicate()
        alice = phones.add("alice", sip=T1, account={"registrar": "sip:127.0.0.1:%d" % reg, "register": True,
                                                     "expires": 60})
        # each refusal: back to Idle with a retry armed; the user asks again at once rather than wait for it
        for code, row in ((503, "Registering Dialog5xxFailure Idle HandleRegistrationFailure"),
                          (603, "Registering Dialog6xxFailure Idle HandleRegistrationFailure"),
                          (403, "Registering Dialog4xxFailure Idle HandleRegistrationFailure")):
            assert _tr(alice, "r1 " + row), (code, alice.tail())
            assert alice.wait_line("reg r1 failed (%d)" % code, 1), alice.tail()
            assert alice.ev("Register") == "ok r1 Registering", alice.tail()
        assert alice.wait_line("reg r1 registered sip:alice@127.0.0.1 expires=60", 5), alice.tail()
        assert alice.ev("SendOptions", to="sip:127.0.0.1:%d" % other) == "ok r1 Registered"
        assert alice.wait_line("resp r1 options 200 OK", 5), alice.tail()
        assert alice.ev("SendMessage", to="sip:bob@127.0.0.1:%d" % other,
                        body='"hello from the phone"') == "ok r1 Registered"
        assert alice.wait_line("resp r1 message 200 OK", 5), alice.tail()
        # unregistration refused: the phone holds no binding any more all the same
        assert alice.ev("Unregister") == "ok r1 Unregistering"
        assert _tr(alice, "r1 Unregistering Dialog4xxFailure Idle ClearRegistration"), alice.tail()
        assert alice.ev("Register") == "ok r1 Registering"
        assert alice.wait(lambda: alice.count("reg r1 registered") == 2, 5), alice.tail()
        assert alice.ev("Unregister") == "ok r1 Unregistering"
        assert alice.wait(lambda: alice.count("reg r1 unregistered") == 2, 5), alice.tail()
        time.sleep(1.5)     # a retry the refusals armed would fire in this time: none may (sipp has no step for it)
        for proc in procs:
            rc, out, err = peers.finish(proc, 10)
            assert rc == 0, "sipp failed:\n%s\n%s\n%s" % (out[-1500:], err[-2000:], alice.tail())
        assert alice.st()["sessions"]["r1"] == "Idle"
    finally:
        for proc in procs:
            peers.stop(proc)
    for row in ("Registered SendOptions Registered SendOPTIONS", "Registered SendMessage Registered SendMESSAGE",
                "Registered Unregister Unregistering SendUnregister"):
        assert alice.saw("tr r1 " + row), alice.tail()


def test_a_registrar_that_is_gone_fails_the_unregister_and_the_register_at_once(phones, tmp_path):
    # over TCP: sipp registers the phone and ends, closing its connection; the un-REGISTER and the REGISTER after
    # it cannot be sent (connection refused), so their transactions fail at once (RFC 3261 8.1.3.1, 18.4)
    reg = free_port()
    scen = tmp_path / "registrar.xml"
    scen.write_text(scenario("registers once", recv("REGISTER", ("Via:", "SIP/2.0/TCP")), reg_reply(200, "OK")))
    proc = peers.sipp_background(["-sf", str(scen), "-t", "t1", "-p", str(reg), "-m", "1", "-timeout", "15s",
                                  "-timeout_error"], cwd=str(tmp_path))
    try:
        assert peers.wait_listening(reg, proc, kind="tcp"), proc.communicate()
        bob = phones.add("bob", sip=dict(T1, transport="tcp"),
                         account={"registrar": "sip:127.0.0.1:%d" % reg, "register": True, "expires": 60})
        assert bob.wait_line("reg r1 registered", 5), bob.tail()
    finally:
        rc, out, err = peers.finish(proc, 10)
    assert rc == 0, "sipp failed:\n%s\n%s" % (out[-1500:], err[-1500:])
    assert bob.wait_line("tcp 127.0.0.1:%d closed" % reg, 5), bob.tail()
    start = len(bob.lines)
    assert bob.ev("Unregister") == "ok r1 Unregistering"
    assert _tr(bob, "r1 Unregistering DialogTimeout Idle ClearRegistration", start, 5), bob.tail()
    assert bob.ev("Register") == "ok r1 Registering"
    assert _tr(bob, "r1 Registering DialogTimeout Idle HandleRegistrationFailure", start, 5), bob.tail()
    assert bob.wait_line("reg r1 failed (408), retry in 1 s", 1, start), bob.tail()


def notify(cseq, state, waiting, counts="0/0"):
    """sipp's NOTIFY in the subscription's dialog (to the Contact of the last SUBSCRIBE it kept with rrs, To: the
    subscriber's From it kept as $sf), then the subscriber's 200."""
    body = "Messages-Waiting: %s\nMessage-Account: sip:vm@[local_ip]\nVoice-Message: %s (0/0)\n" % (
        waiting, counts)
    return ("  <send retrans=\"500\"><![CDATA[\nNOTIFY [next_url] SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            "From: <sip:vm@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]\nTo: [$sf]\n"
            "Call-ID: [call_id]\nCSeq: %d NOTIFY\nContact: <sip:vm@[local_ip]:[local_port]>\nMax-Forwards: 70\n"
            "Event: message-summary\nSubscription-State: %s\nContent-Type: application/simple-message-summary\n"
            "Content-Length: [len]\n\n%s]]></send>\n  <recv response=\"200\" timeout=\"5000\"/>\n"
            % (cseq, state, body))


SUB_OK = peers.sipp_reply(200, "OK", contact="Contact: <sip:vm@[local_ip]:[local_port]>", extra="Expires: 60")
MWI = ("Event:", "message-summary")
# the 200 to the SUBSCRIBE kept as $rv $rf $rt $rc, sent after sipp's NOTIFY (which overtakes it: RFC 6665 4.1.2.4)
KEPT_200 = ("  <send><![CDATA[\nSIP/2.0 200 OK\nVia: [$rv]\nFrom: [$rf]\nTo: [$rt]\nCall-ID: [call_id]\n"
            "CSeq: [$rc]\nContact: <sip:vm@[local_ip]:[local_port]>\nExpires: 60\nContent-Length: 0\n\n]]></send>\n")


def test_message_waiting_subscription_every_way(phones, tmp_path):
    vm = free_port()
    carol = phones.add("carol", sip=T1, features={"voicemail_uri": "sip:vm@127.0.0.1:%d" % vm})
    # dave's voicemail server is not there at all (TCP, connection refused): his SUBSCRIBE fails at once
    dave = phones.add("dave", sip=T1, features={"voicemail_uri": "sip:vm@127.0.0.1:%d;transport=tcp" % free_port()})
    assert dave.ev("Subscribe") == "ok s1 Subscribing"
    assert _tr(dave, "s1 Subscribing DialogTimeout Registered HandleSubscriptionFailure", 0, 5), dave.tail()
    p = carol.port
    first = recv("SUBSCRIBE", MWI, rrs=True, keep={"From:": "sf"})
    phases = [
        # refused, then unavailable: each time back to Registered, a retry armed for later
        ("refused", [recv("SUBSCRIBE", MWI), peers.sipp_reply(404, "Not Found")], [],
         "s1 Subscribing Dialog4xxFailure Registered HandleSubscriptionFailure"),
        ("unavailable", [recv("SUBSCRIBE", MWI), peers.sipp_reply(503, "Service Unavailable")], [],
         "s1 Subscribing Dialog5xxFailure Registered HandleSubscriptionFailure"),
        # accepted for 2 s and notified; refreshed, the NOTIFY overtaking the 2xx; moved to 127.0.0.2 and at once
        # back while that refresh is out: answered at the address it came to, the phone refreshes again from where
        # it is; then the notifier ends the subscription
        ("accepted", [
            first, peers.sipp_reply(200, "OK", contact="Contact: <sip:vm@[local_ip]:[local_port]>",
                                    extra="Expires: 2"),
            notify(1, "active;expires=2", "yes", "2/8"),
            recv("SUBSCRIBE", ("Expires:", "3600"), rrs=True,
                 keep={"Via:": "rv", "From:": "rf", "To:": "rt", "CSeq:": "rc"}),
            notify(2, "active;expires=60", "no"), KEPT_200,
            recv("SUBSCRIBE", ("Contact:", "127.0.0.2"), rrs=True), '  <pause milliseconds="700"/>',
            peers.sipp_setdest("127.0.0.1", p), peers.sipp_reply(200, "OK", tag=False, extra="Expires: 60"),
            recv("SUBSCRIBE", ("Contact:", "127.0.0.1"), rrs=True),
            peers.sipp_reply(200, "OK", tag=False, extra="Expires: 60"),
            notify(3, "terminated;reason=noresource", "no")],
         [("s1 Subscribed Dialog200OK Subscribed", ["net reconnect 127.0.0.2", "net reconnect 127.0.0.1"])],
         "s1 Subscribed SubscriptionTerminated Registered HandleSubscriptionFailure"),
        # subscribed again, notified, and unsubscribed by the user (Expires: 0); the final NOTIFY is answered
        ("unsubscribed", [first, SUB_OK, notify(1, "active;expires=60", "yes", "1/1"),
                          recv("SUBSCRIBE", ("Expires:", "^ *0$")), peers.sipp_reply(200, "OK", tag=False),
                          notify(2, "terminated;reason=timeout", "yes", "1/1")],
         [("s1 Subscribed DialogNOTIFY Subscribed", ["ev Unsubscribe"])],
         "s1 Subscribed Unsubscribe Registered SendUnsubscribe"),
    ]
    for name, parts, driver, last in phases:
        scen = tmp_path / (name + ".xml")
        scen.write_text(scenario(name, *parts))
        proc = peers.sipp_background(["-sf", str(scen), "-p", str(vm), "-m", "1", "-timeout", "15s",
                                      "-timeout_error"], cwd=str(tmp_path))
        try:
            assert peers.wait_listening(vm, proc), proc.communicate()
            start = len(carol.lines)
            assert carol.ev("Subscribe").startswith("ok s1 Subscribing"), carol.tail()
            for wait_for, cmds in driver:
                assert _tr(carol, wait_for, start), (name, wait_for, carol.tail())
                for c in cmds:
                    assert carol.cmd(c)[0].startswith("ok"), (name, c, carol.tail())
            assert _tr(carol, last, start), (name, last, carol.tail())
        finally:
            rc, out, err = peers.finish(proc, 15)
        assert rc == 0, "sipp %s failed:\n%s\n%s\n%s" % (name, out[-1500:], err[-2000:], carol.tail())
    for row in ("Registered Subscribe Subscribing SendSUBSCRIBE", "Subscribing Dialog200OK Subscribed StoreSubscription",
                "Subscribed DialogNOTIFY Subscribed ProcessNotification,Send200OK",
                "Subscribed RefreshSubscription Subscribing SendSUBSCRIBE",
                "Subscribing DialogNOTIFY Subscribed ProcessNotification,Send200OK",
                "Subscribed Dialog200OK Subscribed StoreSubscription",
                "Subscribed AddressChanged Subscribing SendSUBSCRIBE",
                "Subscribing AddressChanged Subscribing SendSUBSCRIBE"):
        assert carol.saw("tr s1 " + row), (row, carol.tail())
    # the lamp followed the NOTIFYs: on with 2 new, off, on with 1
    lamp = [l for l in carol.lines if l.startswith("mwi ")]
    assert lamp[:3] == ["mwi on 2/8", "mwi off 0/0", "mwi off 0/0"] and lamp[-1] == "mwi on 1/1", lamp
