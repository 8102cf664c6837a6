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
