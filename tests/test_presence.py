# Presence (RFC 3903 PUBLISH, RFC 3863 PIDF) from phone processes on both runtimes against real peers: a sipp
# presence server of our own that checks every PUBLISH (SIP-If-Match, Expires, body) and answers each way the table's
# publication kind must handle (423, 412, 503, 500, no answer), and Kamailio's presence module with a watcher.
from tests import peers
from tests.proc import free_port, phones  # noqa: F401  (phones is a fixture)


def _reply(code, reason, extra=()):
    hs = "".join(h + "\n" for h in extra)
    return ("  <send><![CDATA[\nSIP/2.0 %d %s\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]SIPpTag01[call_number]\n"
            "[last_Call-ID:]\n[last_CSeq:]\n%sContent-Length: 0\n\n]]></send>\n" % (code, reason, hs))


def _attr(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _recv(name, must=(), must_not=()):
    """A PUBLISH whose text must match every regexp in must and none in must_not (sipp fails the call otherwise)."""
    acts = ""
    must = [_attr(x) for x in must]
    must_not = [_attr(x) for x in must_not]
    for i, rx in enumerate(must):
        acts += ('      <ereg regexp="%s" search_in="msg" check_it="true" assign_to="%s_%d"/>\n' % (rx, name, i))
    for i, rx in enumerate(must_not):
        acts += ('      <ereg regexp="%s" search_in="msg" check_it_inverse="true" assign_to="%s_n%d"/>\n'
                 % (rx, name, i))
    return '  <recv request="PUBLISH">\n    <action>\n%s    </action>\n  </recv>\n' % acts, \
        ["%s_%d" % (name, i) for i in range(len(must))] + ["%s_n%d" % (name, i) for i in range(len(must_not))]


INITIAL = (("Event: presence", "Content-Type: application/pidf\\+xml", "<basic>open</basic>"), ("SIP-If-Match",))


def _server_scenario():
    """The PUBLISHes a phone with accounts.presence sends, in order, and the answers that make it send them."""
    steps, names = [], []

    def step(name, must, must_not, answer):
        r, n = _recv(name, must, must_not)
        steps.append(r + answer)
        names.extend(n)

    # initial PUBLISH: the document, no SIP-If-Match; 423 asks for a longer interval (RFC 3903 4.2)
    step("p1", INITIAL[0] + ("Expires: 3600",), INITIAL[1], _reply(423, "Interval Too Brief", ["Min-Expires: 7200"]))
    step("p2", INITIAL[0] + ("Expires: 7200",), INITIAL[1], _reply(200, "OK", ["SIP-ETag: e1", "Expires: 2"]))
    # refreshes before the 2 s run out: SIP-If-Match with the newest tag, no body (RFC 3903 4.3)
    step("p3", ("SIP-If-Match: e1",), ("Content-Type",), _reply(200, "OK", ["SIP-ETag: e2", "Expires: 2"]))
    # the server lost the entry: 412, and the phone publishes the document anew without SIP-If-Match (4.4)
    step("p4", ("SIP-If-Match: e2",), ("Content-Type",), _reply(412, "Conditional Request Failed"))
    step("p5", INITIAL[0], INITIAL[1], _reply(503, "Service Unavailable", ["Retry-After: 1"]))
    step("p6", INITIAL[0], INITIAL[1], _reply(200, "OK", ["SIP-ETag: e3", "Expires: 60"]))
    # a modification from the console: the new document, naming the entry it replaces
    step("p7", ("SIP-If-Match: e3", "<basic>closed</basic>", "<note>In a meeting &amp; busy</note>"), (),
         _reply(200, "OK", ["SIP-ETag: e4", "Expires: 60"]))
    # removals (Expires: 0, SIP-If-Match, no body; 4.5) refused with 500, then 412, then not answered at all
    step("p8", ("SIP-If-Match: e4", "Expires: 0[^0-9]"), ("Content-Type",), _reply(500, "Server Internal Error"))
    step("p9", INITIAL[0], INITIAL[1], _reply(200, "OK", ["SIP-ETag: e5", "Expires: 60"]))
    step("p10", ("SIP-If-Match: e5", "Expires: 0[^0-9]"), (), _reply(412, "Conditional Request Failed"))
    step("p11", INITIAL[0], INITIAL[1], _reply(200, "OK", ["SIP-ETag: e6", "Expires: 60"]))
    # no answer: the phone's transaction times out (64*T1 = 6.4 s with T1 100 ms); sipp takes its retransmissions
    # for what they are (the message it received last) and waits for the next PUBLISH
    step("p12", ("SIP-If-Match: e6", "Expires: 0[^0-9]"), (), "")
    step("p13", INITIAL[0], INITIAL[1], _reply(200, "OK", ["SIP-ETag: e7", "Expires: 60"]))
    # the phone shuts down: its entry goes (removal answered 200)
    step("p14", ("SIP-If-Match: e7", "Expires: 0[^0-9]"), ("Content-Type",), _reply(200, "OK", ["Expires: 0"]))
    return peers.sipp_scenario("presence server", *steps, '  <Reference variables="%s"/>' % ",".join(names))


def test_publish_refresh_412_failures_and_removal_against_a_sipp_presence_server(phones, tmp_path):
    scen = tmp_path / "presence.xml"
    scen.write_text(_server_scenario())
    port = free_port()
    proc = peers.sipp_background(["-sf", str(scen), "-p", str(port), "-m", "1", "-timeout", "90s",
                                  "-timeout_error", "-trace_err"], cwd=str(tmp_path))
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        # a phone that registers nowhere publishes at once to its domain (here: sipp)
        a = phones.add("alice", account={"domain": "127.0.0.1:%d" % port, "presence": True}, sip={"t1_ms": 100})
        assert a.wait_line("pub p1 published open etag=e1 expires=2", 10), a.tail()
        assert a.wait_line("Publishing Dialog4xxFailure Registered HandlePublishFailure", 5), a.tail()  # 423
        assert a.wait_line("pub p1 published open etag=e2 expires=2", 5), a.tail()
        assert a.wait_line("pub p1 412: the entry is gone, publishing anew", 5), a.tail()
        assert a.wait_line("pub p1 failed (503), retry in 1 s", 5), a.tail()
        assert a.wait_line("Publishing Dialog5xxFailure Registered HandlePublishFailure", 5), a.tail()
        assert a.wait_line("pub p1 published open etag=e3 expires=60", 5), a.tail()
        assert a.ev("PublishPresence", basic="closed", note='"In a meeting & busy"') == "ok p1 Publishing"
        assert a.wait_line("pub p1 published closed etag=e4", 5), a.tail()
        assert a.ev("Unpublish") == "ok p1 Unpublishing"
        assert a.wait_line("pub p1 removed (refused 500", 5), a.tail()
        assert a.wait_line("Unpublishing Dialog5xxFailure Registered ClearETag", 5), a.tail()
        assert a.ev("PublishPresence", basic="open") == "ok p1 Publishing"
        assert a.wait_line("etag=e5", 5), a.tail()
        assert a.ev("Unpublish") == "ok p1 Unpublishing"
        assert a.wait_line("pub p1 removed (refused 412", 5), a.tail()
        assert a.wait_line("Unpublishing Dialog4xxFailure Registered ClearETag", 5), a.tail()
        assert a.ev("PublishPresence") == "ok p1 Publishing"
        assert a.wait_line("etag=e6", 5), a.tail()
        assert a.ev("Unpublish") == "ok p1 Unpublishing"
        assert a.wait_line("timeout p1 unpublish", 10), a.tail()
        assert a.wait_line("Unpublishing DialogTimeout Registered ClearETag", 5), a.tail()
        assert a.ev("PublishPresence") == "ok p1 Publishing"
        assert a.wait_line("etag=e7", 15), a.tail()
        # nothing is published twice at once, and the refresh timer never fired after the removal
        assert a.count("Registered PublishPresence Publishing SendPUBLISH") == 10, a.tail(60)
        a.close()
        assert a.saw("Registered Unpublish Unpublishing SendUnpublish") and a.saw("pub p1 removed"), a.tail()
        assert a.wait_line("Unpublishing Dialog200OK Registered ClearETag", 5), a.tail()
        phones.close()
    finally:
        rc, out, err = peers.finish(proc, 20)
    assert rc == 0, "sipp presence server failed:\n%s\n%s" % (out[-3000:], err[-3000:])


def test_presence_at_kamailio_seen_by_a_watcher_refreshed_recovered_after_412_and_removed(phones, tmp_path):
    # Kamailio's presence server grants 4 s, so the phone refreshes every ~3 s; a watcher sees the PIDF the phone
    # published and its modification; a Kamailio started afresh on the same port no longer knows the entry, answers
    # the next refresh 412 and gets the document anew; at shutdown the entry is removed
    kam = peers.Kamailio(tmp_path / "kam", presence=True, presence_expires=4).start()
    kam2 = w = None
    try:
        acct = {"user": "alice", "domain": "127.0.0.1:%d" % kam.port, "password": "secret", "registrar": kam.uri,
                "proxy": kam.uri, "expires": 60, "register": True, "presence": True}
        a = phones.add("alice", account=acct)
        # bob registers there too, without accounts.presence: he publishes nothing
        b = phones.add("bob", account=dict(acct, user="bob", presence=False))
        assert a.wait_line("reg r1 registered", 10) and b.wait_line("reg r1 registered", 10), (a.tail(), b.tail())
        assert a.wait_line("pub p1 published open", 10), (a.tail(), kam.text()[-2000:])
        assert a.saw("auth p1 publish challenged by 407: answered"), a.tail()
        aor = "sip:alice@127.0.0.1:%d" % kam.port
        w = peers.Watcher(kam.port)
        w.subscribe(aor)
        assert w.poll(lambda w: any("<basic>open</basic>" in b for b in w.bodies), 10), (w.answers, w.bodies)
        # refreshes: each names the entity tag the last 2xx gave (Kamailio hands out a new one each time)
        assert a.wait(lambda: a.count("pub p1 published open") >= 3, 12), a.tail()
        tags = [l.split("etag=")[1].split()[0] for l in a.lines if l.startswith("pub p1 published")]
        for t in tags[:-1]:
            assert kam.text().count("if-match=%s\n" % t) == 1, (t, kam.text()[-3000:])
        assert a.ev("PublishPresence", basic="closed", note='"On the phone"') == "ok p1 Publishing"
        assert a.wait_line("pub p1 published closed", 5), a.tail()
        w.subscribe(aor)        # the first subscription has run out (Kamailio grants at most 4 s here too)
        assert w.poll(lambda w: any("<basic>closed</basic>" in b and "On the phone" in b for b in w.bodies), 10), \
            w.bodies
        kam.stop()
        kam2 = peers.Kamailio(tmp_path / "kam2", port=kam.port, presence=True, presence_expires=4).start()
        assert a.wait_line("pub p1 412: the entry is gone, publishing anew", 10), (a.tail(), kam2.text()[-2000:])
        n = a.count("pub p1 published closed")
        assert a.wait(lambda: a.count("pub p1 published closed") > n, 10), a.tail()
        a.close()
        assert a.saw("Registered Unpublish Unpublishing SendUnpublish") and a.saw("Unpublishing Dialog200OK"), \
            a.tail()
        last = [l for l in a.lines if l.startswith("pub p1 published")][-1].split("etag=")[1].split()[0]
        assert "expires=0 if-match=%s\n" % last in kam2.text(), kam2.text()[-3000:]
        assert not b.saw("pub ") and "PUBLISH from bob" not in kam.text() + kam2.text(), b.tail()
        phones.close()
    finally:
        phones.close(check=False)
        if w is not None:
            w.close()
        kam.stop()
        if kam2 is not None:
            kam2.stop()


def test_a_publish_nobody_answers_times_out_and_the_user_publishes_again(phones, tmp_path):
    # the presence server takes the first PUBLISH and never answers (its retransmissions too): the phone's
    # transaction times out (64*T1 = 6.4 s with T1 100 ms), Publishing x DialogTimeout, and a retry is armed (30 s
    # on); the user publishes again at once, and that one is answered. At shutdown the entry is removed
    steps, names = [], []
    for name, must, must_not, answer in (
            ("q1", INITIAL[0], INITIAL[1], ""),
            ("q2", INITIAL[0], INITIAL[1], _reply(200, "OK", ["SIP-ETag: t1", "Expires: 60"])),
            ("q3", ("SIP-If-Match: t1", "Expires: 0[^0-9]"), ("Content-Type",), _reply(200, "OK", ["Expires: 0"]))):
        r, n = _recv(name, must, must_not)
        steps.append(r + answer)
        names.extend(n)
    scen = tmp_path / "silent.xml"
    scen.write_text(peers.sipp_scenario("silent presence server", *steps,
                                        '  <Reference variables="%s"/>' % ",".join(names)))
    port = free_port()
    proc = peers.sipp_background(["-sf", str(scen), "-p", str(port), "-m", "1", "-timeout", "40s",
                                  "-timeout_error", "-trace_err"], cwd=str(tmp_path))
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        a = phones.add("alice", account={"domain": "127.0.0.1:%d" % port, "presence": True}, sip={"t1_ms": 100})
        assert a.wait_line("Registered PublishPresence Publishing SendPUBLISH", 10), a.tail()
        assert a.wait_line("timeout p1 publish", 10) and a.wait_line("pub p1 failed (408), retry in 30 s", 2), a.tail()
        assert a.wait_line("tr p1 Publishing DialogTimeout Registered HandlePublishFailure", 2), a.tail()
        assert a.ev("PublishPresence") == "ok p1 Publishing"
        assert a.wait_line("pub p1 published open etag=t1 expires=60", 5), a.tail()
        assert a.count("Registered PublishPresence Publishing SendPUBLISH") == 2, a.tail()
        a.close()
        assert a.saw("Unpublishing Dialog200OK Registered ClearETag"), a.tail()
        phones.close()
    finally:
        rc, out, err = peers.finish(proc, 20)
    assert rc == 0, "sipp presence server failed:\n%s\n%s" % (out[-3000:], err[-3000:])
