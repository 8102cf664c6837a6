# Attended transfer (RFC 5589 6) with Replaces (RFC 3891), each phone its own process on CPython and on the frozen
# MicroPython runtime over real UDP sockets: bob (transferor) holds alice, consults carol, and completes the transfer
# with a REFER whose Refer-To carries Replaces; alice (transferee) INVITEs carol with Replaces; carol (target) takes
# the consultation dialog's place with the new call and ends the consultation with BYE. Then sipp plays a peer
# sending carol INVITEs with Replaces that name a wrong, an early or a confirmed dialog (RFC 3891 3: 481 / 486 /
# accepted), and a transferor whose REFER carries Replaces to a sipp target.
import re

import pytest

from tests import peers
from tests.multileg import hears, heard, mic
from tests.proc import free_port, phones  # noqa: F401  (phones is a fixture)

AUTO = {"auto_answer": True, "auto_answer_delay_ms": 0}


def test_attended_transfer_phone_to_phone(phones):
    alice = phones.add("alice", audio=mic(1000))
    bob = phones.add("bob", audio=mic(440), features=AUTO)
    carol = phones.add("carol", audio=mic(700), features=AUTO)
    assert alice.ev("MakeCall", target=bob.uri).startswith("ok c1")
    assert alice.wait(lambda: alice.state() == "Active" and bob.state() == "Active", 10), (alice.tail(), bob.tail())
    # bob consults carol: alice is held (sendonly from bob), the consultation is a call of its own
    assert bob.ev("StartAttendedTransfer", target=carol.uri).startswith("ok c1 ConsultationCall"), bob.tail()
    assert bob.wait(lambda: bob.st()["calls"] == {"c1": "ConsultationCall", "c2": "Active"}, 10), bob.tail()
    assert alice.wait(lambda: alice.st()["leg"]["c1"]["dir"] == "recvonly", 5), alice.tail()
    assert bob.wait_line("tr c1 ConsultationCall Dialog200OK ConsultationCall", 5), bob.tail()
    assert carol.wait(lambda: carol.state() == "Active", 5), carol.tail()
    # bob completes: REFER to alice with Replaces naming bob-carol's dialog
    assert bob.ev("CompleteAttendedTransfer", sid="c1").startswith("ok c1 Transferring"), bob.tail()
    assert alice.wait_line("tr c1 Active DialogREFER Active AcceptTransfer", 5), alice.tail()
    # carol takes the consultation's place with alice's call; the consultation ends (Replaced), bob lets alice go
    assert carol.wait_line(lambda l: re.search(r"ring c2 from sip:alice@\S+ replacing c1", l), 10), carol.tail()
    assert carol.wait_line("tr c1 Active DialogReplaced Replaced SendBYE,StopMediaFlow", 10), carol.tail()
    assert bob.wait(lambda: not bob.st()["calls"], 10), bob.tail()
    assert bob.saw("Transferring TransferSuccess Terminating")
    assert bob.saw("tr c2 Active DialogBYE Terminating"), bob.tail(60)
    assert alice.wait(lambda: alice.st()["calls"] == {"c2": "Active"}, 10), alice.tail()
    assert carol.wait(lambda: carol.st()["calls"] == {"c2": "Active"}, 10), carol.tail()
    assert carol.saw("tr c1 Replaced InternalCleanupComplete Terminated")
    # the call is alice <-> carol now, with audio both ways
    assert alice.st()["leg"]["c2"]["remote"].startswith("sip:carol@")
    assert alice.wait(lambda: alice.st()["leg"]["c2"]["flowing"] == "1"
                      and carol.st()["leg"]["c2"]["flowing"] == "1", 5), (alice.tail(), carol.tail())
    alice.wait(lambda: False, 2.0)
    assert alice.ev("HangupCall").startswith("ok c2 Terminating")
    assert alice.wait(lambda: alice.state() == "-" and carol.state() == "-", 5), (alice.tail(), carol.tail())
    phones.close()
    ok, lv = hears(heard(alice)[-8000 * 2 * 2:-8000 * 2 // 4], [700], [440])
    assert ok, ("alice", lv)
    ok, lv = hears(heard(carol)[-8000 * 2 * 2:-8000 * 2 // 4], [1000], [440])
    assert ok, ("carol", lv)


def test_consultation_refused_and_abandoned(phones):
    # the consultation refused by the target (486): bob gets alice back (resumed). Then consulted again and hung up
    # by bob before completing: alice is resumed again and the call goes on.
    alice = phones.add("alice", audio=mic(1000))
    bob = phones.add("bob", audio=mic(440), features=AUTO)
    carol = phones.add("carol", audio=mic(700), features={"dnd": True})
    dave = phones.add("dave", audio=mic(700), features=AUTO)
    alice.ev("MakeCall", target=bob.uri)
    assert alice.wait(lambda: alice.state() == "Active" and bob.state() == "Active", 10), (alice.tail(), bob.tail())
    assert bob.ev("StartAttendedTransfer", target=carol.uri).startswith("ok c1 ConsultationCall")
    assert bob.wait_line("consult c2 ended: back to c1", 10), bob.tail()
    assert bob.wait(lambda: bob.st()["calls"] == {"c1": "Active"}, 10), bob.tail()
    assert bob.saw("tr c1 ConsultationCall HangupCall Active TerminateConsultationCall,ResumeOriginalCall")
    assert alice.wait(lambda: alice.st()["leg"]["c1"]["dir"] == "sendrecv", 5), alice.tail()
    assert bob.ev("StartAttendedTransfer", target=dave.uri).startswith("ok c1 ConsultationCall")
    assert bob.wait(lambda: bob.st()["calls"].get("c3") == "Active", 10), bob.tail()
    assert bob.ev("HangupCall", sid="c1").startswith("ok c1 Active"), bob.tail()
    assert bob.wait(lambda: bob.st()["calls"] == {"c1": "Active"} and dave.state() == "-", 10), (bob.tail(),
                                                                                                  dave.tail())
    assert alice.wait(lambda: alice.st()["leg"]["c1"]["dir"] == "sendrecv", 5), alice.tail()
    alice.ev("HangupCall")
    assert alice.wait(lambda: alice.state() == "-" and bob.state() == "-", 5), (alice.tail(), bob.tail())
    phones.close()


# -- sipp: RFC 3891 3 answers of the target, and a transferee whose REFER's target is sipp --------------------------------
_ACK_FINAL = """  <send><![CDATA[
ACK sip:carol@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: <sip:sipp@[local_ip]:[local_port]>;tag=%(tag)s
To: <sip:carol@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: %(cseq)d ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
"""


def _invite(tag, cseq, replaces=None, to_tag=False):
    rep = "Replaces: %s\n" % replaces if replaces else ""
    return """  <send retrans="500"><![CDATA[
INVITE sip:carol@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=%s
To: <sip:carol@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: %d INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
%sContent-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
""" % (tag, cseq, rep)


def _refused(tag, cseq, code, replaces):
    return (_invite(tag, cseq, replaces) + '  <recv response="100" optional="true"/>\n'
            '  <recv response="%d"/>\n' % code + _ACK_FINAL % {"tag": tag, "cseq": cseq})


def test_target_answers_replaces_per_rfc3891_to_sipp(phones, tmp_path):
    # sipp calls carol (she rings: an early dialog she did not start), sends an INVITE with Replaces naming that
    # early dialog (481), answers... carol picks up, then INVITEs with a wrong to-tag (481), with early-only on the
    # confirmed dialog (486), and finally one that names it right: accepted at once, and carol ends the old
    # dialog with BYE (Replaced)
    carol = phones.add("carol", audio=mic(700))
    port = free_port()
    early = "[call_id];to-tag=[$tt];from-tag=A1"
    scen = tmp_path / "replaces.xml"
    scen.write_text("""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="replaces at the target">
""" + _invite("A1", 1) + """  <recv response="100" optional="true"/>
  <recv response="180"><action><ereg regexp="tag=([^;>]*)" search_in="hdr" header="To:" assign_to="junk,tt"/></action></recv>
""" + _refused("B1", 1, 481, early) + """  <recv response="200" timeout="15000"/>
""" + _ACK_FINAL.replace("[peer_tag_param]", ";tag=[$tt]") % {"tag": "A1", "cseq": 1} + """  <pause milliseconds="500"/>
""" + _refused("C1", 1, 481, "[call_id];to-tag=nosuchtag;from-tag=A1")
        + _refused("D1", 1, 486, early + ";early-only") + _invite("E1", 1, early) + """  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"><action><ereg regexp="tag=([^;>]*)" search_in="hdr" header="To:" assign_to="junk,et"/></action></recv>
""" + _ACK_FINAL.replace("[peer_tag_param]", ";tag=[$et]") % {"tag": "E1", "cseq": 1} + """  <recv request="BYE" timeout="10000"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <pause milliseconds="1000"/>
  <send retrans="500"><![CDATA[
BYE sip:carol@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=E1
To: <sip:carol@[remote_ip]:[remote_port]>;tag=[$et]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
  <Reference variables="junk"/>
</scenario>
""")
    proc = peers.sipp_background(["-sf", str(scen), "-p", str(port), "-m", "1", "-timeout", "40s",
                                  "-timeout_error", "-trace_err", "-trace_msg", "127.0.0.1:%d" % carol.port], cwd=str(tmp_path))
    try:
        assert carol.wait(lambda: carol.state() == "Ringing", 10), carol.tail()
        # the INVITE naming the ringing dialog is refused (481: sipp checks); carol still rings, then answers
        carol.wait(lambda: False, 1.0)
        assert carol.st()["calls"] == {"c1": "Ringing"}, carol.tail()
        assert carol.ev("AcceptCall").startswith("ok c1"), carol.tail()
        assert carol.wait_line("tr c1 Active DialogReplaced Replaced SendBYE,StopMediaFlow", 15), carol.tail()
        carol.wait(lambda: carol.state() == "-", 10)
    finally:
        rc, out, err = peers.finish(proc, 20)
    assert rc == 0, "sipp failed:\n%s\n%s\n%s" % (out[-2000:], err[-3000:], carol.tail(60))
    assert carol.saw("replaced c1 by c")
    assert carol.saw("tr c1 Replaced InternalCleanupComplete Terminated")
    phones.close()


def _uac(method, cseq, extra="", body=None):
    """A request sipp (the transferor) sends alice in the dialog its INVITE made."""
    head = ("%s sip:alice@[remote_ip]:[remote_port] SIP/2.0\nVia: SIP/2.0/[transport] [local_ip]:[local_port];"
            "branch=[branch]\nFrom: <sip:bob@[local_ip]:[local_port]>;tag=X1\nTo: <sip:alice@[remote_ip]:"
            "[remote_port]>%s\nCall-ID: [call_id]\nCSeq: %d %s\nContact: <sip:bob@[local_ip]:[local_port]>\n"
            "Max-Forwards: 70\n%s" % (method, "" if method == "INVITE" else ";tag=[$at]", cseq, method, extra))
    if body:
        head += "Content-Type: application/sdp\nContent-Length: [len]\n\n" + body
    else:
        head += "Content-Length: 0\n\n"
    return "  <send%s><![CDATA[\n%s]]></send>\n" % ("" if method == "ACK" else ' retrans="500"', head)


_OK = """  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""


def test_transferee_follows_a_refer_with_replaces_from_sipp(phones, tmp_path):
    # sipp (bob, the transferor) calls alice and REFERs her to a second sipp (carol, the target) with Replaces in
    # the Refer-To's headers (escaped, RFC 5589 7.1): alice's INVITE to carol carries the Replaces header unescaped
    # (carol's sipp checks it), alice reports 100 then 200 in NOTIFYs, and bob ends his call with BYE
    from tests.multileg import FIRST_INVITE, answer, recv, scenario, sdp
    alice = phones.add("alice", audio=mic(1000), features=AUTO)
    cport, bport = free_port(), free_port()
    target = tmp_path / "target.xml"
    target.write_text(scenario(
        "target", FIRST_INVITE.replace(
            "  </action></recv>",
            '    <ereg regexp="abc@h;to-tag=t1;from-tag=f1" search_in="hdr" header="Replaces:" check_it="true" '
            'assign_to="rep"/>\n'
            '    <ereg regexp="sip:bob@" search_in="hdr" header="Referred-By:" check_it="true" assign_to="rb"/>\n'
            "  </action></recv>"),
        answer(body=sdp(), tag=True), recv("ACK"), recv("BYE", 20000), answer(),
        "  <Reference variables=\"rep,rb,from,to,contact\"/>\n"))
    sdp_uac = ("v=0\no=sipp 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\nm=audio [media_port] RTP/AVP 0\n"
               "a=rtpmap:0 PCMU/8000\n")
    xferor = tmp_path / "xferor.xml"
    xferor.write_text(
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="transferor">\n'
        + _uac("INVITE", 1, body=sdp_uac)
        + '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
        '  <recv response="200"><action><ereg regexp="tag=([^;>]*)" search_in="hdr" header="To:" '
        'assign_to="junk,at"/></action></recv>\n'
        + _uac("ACK", 1) + '  <pause milliseconds="500"/>\n'
        + _uac("REFER", 2, "Refer-To: <sip:carol@127.0.0.1:%d?Replaces=abc%%40h%%3Bto-tag%%3Dt1%%3Bfrom-tag%%3Df1>\n"
               "Referred-By: <sip:bob@[local_ip]:[local_port]>\n" % cport)
        + '  <recv response="202"/>\n  <recv request="NOTIFY"/>\n' + _OK
        + '  <recv request="NOTIFY" timeout="10000"><action><ereg regexp="SIP/2.0 200" search_in="body" '
        'check_it="true" assign_to="ok"/></action></recv>\n' + _OK
        + _uac("BYE", 3) + '  <recv response="200"/>\n  <Reference variables="junk,ok"/>\n</scenario>\n')
    tproc = peers.sipp_background(["-sf", str(target), "-p", str(cport), "-m", "1", "-timeout", "40s",
                                   "-timeout_error", "-trace_err"], cwd=str(tmp_path))
    bproc = None
    try:
        assert peers.wait_listening(cport, tproc), tproc.communicate()
        bproc = peers.sipp_background(["-sf", str(xferor), "-p", str(bport), "-m", "1", "-timeout", "40s",
                                       "-timeout_error", "-trace_err", "127.0.0.1:%d" % alice.port],
                                      cwd=str(tmp_path))
        assert alice.wait_line("tr c1 Active DialogREFER Active AcceptTransfer", 10), alice.tail()
        assert alice.wait(lambda: alice.st()["calls"] == {"c2": "Active"}, 10), alice.tail()
        assert alice.saw("tr c1 Active DialogBYE Terminating")
        alice.wait(lambda: False, 1.0)
        alice.ev("HangupCall")
        assert alice.wait(lambda: alice.state() == "-", 10), alice.tail()
    finally:
        results = [peers.finish(p, 20) for p in (bproc, tproc) if p is not None]
    for rc, out, err in results:
        assert rc == 0, "sipp failed:\n%s\n%s\n%s" % (out[-1500:], err[-2500:], alice.tail(60))
    phones.close()


def test_replaces_takes_over_our_own_early_call(phones, tmp_path):
    # alice calls sipp, which rings (180, an early dialog alice started); sipp then sends alice an INVITE with
    # Replaces naming that early dialog: alice answers it at once and CANCELs her own INVITE (RFC 3891 3)
    alice = phones.add("alice", audio=mic(1000))
    port = free_port()
    tag = "[pid]SIPpTag01[call_number]"
    scen = tmp_path / "early.xml"
    scen.write_text("""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="replacing the phone's early call">
  <recv request="INVITE"><action>
    <ereg regexp="tag=([^;>]*)" search_in="hdr" header="From:" assign_to="junk,ft"/>
    <ereg regexp="([0-9]+)" search_in="hdr" header="CSeq:" assign_to="cs"/>
    <ereg regexp="&lt;([^&gt;]*)&gt;" search_in="hdr" header="Contact:" assign_to="junk,ac"/>
  </action></recv>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=%(tag)s
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:bob@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[
INVITE [$ac] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carol@[local_ip]:[local_port]>;tag=N1
To: <[$ac]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:carol@[local_ip]:[local_port]>
Replaces: [call_id];to-tag=[$ft];from-tag=%(tag)s
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"><action><ereg regexp="tag=([^;>]*)" search_in="hdr" header="To:" assign_to="junk,nt"/></action></recv>
  <send><![CDATA[
ACK [$ac] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carol@[local_ip]:[local_port]>;tag=N1
To: <[$ac]>;tag=[$nt]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv request="CANCEL"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <send><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=%(tag)s
[last_Call-ID:]
CSeq: [$cs] INVITE
Content-Length: 0

]]></send>
  <recv request="ACK"/>
  <pause milliseconds="1000"/>
  <send retrans="500"><![CDATA[
BYE [$ac] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carol@[local_ip]:[local_port]>;tag=N1
To: <[$ac]>;tag=[$nt]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
  <Reference variables="junk"/>
</scenario>
""" % {"tag": tag})
    proc = peers.sipp_background(["-sf", str(scen), "-p", str(port), "-m", "1", "-timeout", "30s",
                                  "-timeout_error", "-trace_err"], cwd=str(tmp_path))
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        assert alice.ev("MakeCall", target="sip:bob@127.0.0.1:%d" % port).startswith("ok c1")
        assert alice.wait_line("replaced c1 by c2", 10), alice.tail()
        assert alice.wait_line("tr c1 Ringing HangupCall Cancelled StopTone,SendCANCEL", 5), alice.tail()
        assert alice.wait(lambda: alice.st()["calls"] == {"c2": "Active"}, 10), alice.tail()
        assert alice.wait(lambda: alice.state() == "-", 10), alice.tail()
    finally:
        rc, out, err = peers.finish(proc, 20)
    assert rc == 0, "sipp failed:\n%s\n%s\n%s" % (out[-1500:], err[-2500:], alice.tail(60))
    assert alice.saw("tr c2 Active DialogBYE Terminating")
    phones.close()


def test_transfer_refused_by_the_target_gives_the_call_back(phones):
    # carol holds the consultation, so the Replaces INVITE alice sends her names a call she is doing something
    # with: 486 (ua/replaces.py). alice reports it in her NOTIFY; bob's transfer failed, alice is resumed and the
    # consultation waits on hold. Then alice hangs up while bob consults again: the consultation goes on alone.
    alice = phones.add("alice", audio=mic(1000))
    bob = phones.add("bob", audio=mic(440), features=AUTO)
    carol = phones.add("carol", audio=mic(700), features=AUTO)
    alice.ev("MakeCall", target=bob.uri)
    assert alice.wait(lambda: alice.state() == "Active" and bob.state() == "Active", 10), (alice.tail(), bob.tail())
    assert bob.ev("StartAttendedTransfer", target=carol.uri).startswith("ok c1 ConsultationCall")
    assert bob.wait(lambda: bob.st()["calls"] == {"c1": "ConsultationCall", "c2": "Active"}, 10), bob.tail()
    assert carol.wait(lambda: carol.state() == "Active", 5), carol.tail()
    assert carol.ev("HoldCall").startswith("ok c1 OnHold"), carol.tail()
    assert carol.wait(lambda: carol.state() == "OnHold", 5) and bob.wait(
        lambda: bob.st()["leg"]["c2"]["dir"] == "recvonly", 5), bob.tail()
    assert bob.ev("CompleteAttendedTransfer", sid="c1").startswith("ok c1 Transferring")
    assert bob.wait_line("tr c1 Transferring TransferFailed Active ResumeOriginalCall", 10), (bob.tail(),
                                                                                               alice.tail())
    assert bob.wait(lambda: bob.st()["calls"] == {"c1": "Active", "c2": "OnHold"}, 10), bob.tail()
    assert alice.wait(lambda: alice.st()["calls"] == {"c1": "Active"}
                      and alice.st()["leg"]["c1"]["dir"] == "sendrecv", 10), alice.tail()
    assert alice.saw("Failed(") and carol.st()["calls"] == {"c1": "OnHold"}
    # bob hangs up the consultation, consults carol again; alice hangs up meanwhile
    bob.ev("HangupCall", sid="c2")
    assert bob.wait(lambda: bob.st()["calls"] == {"c1": "Active"} and carol.state() == "-", 10), bob.tail()
    assert bob.ev("StartAttendedTransfer", sid="c1", target=carol.uri).startswith("ok c1 ConsultationCall")
    assert bob.wait(lambda: bob.st()["calls"].get("c3") == "Active", 10), bob.tail()
    alice.ev("HangupCall")
    assert bob.wait_line("tr c1 ConsultationCall DialogBYE Terminating SendSIPResponse(200,OK),StopMediaFlow", 10), \
        bob.tail()
    assert bob.wait(lambda: bob.st()["calls"] == {"c3": "Active"}, 10), bob.tail()
    bob.ev("HangupCall", sid="c3")
    assert bob.wait(lambda: bob.state() == "-" and carol.state() == "-", 10), (bob.tail(), carol.tail())
    phones.close()


@pytest.mark.parametrize("who", ["transferee", "transferor"])
def test_call_ended_while_the_transfer_is_under_way(phones, tmp_path, who):
    # bob's REFER with Replaces is accepted (202) by sipp (the transferee), which then sends no NOTIFY: the call
    # ends while bob waits, by sipp's BYE or by bob hanging up; bob's consultation with carol goes on
    from tests.multileg import FIRST_INVITE, answer, recv, request, scenario, sdp
    bob = phones.add("bob", audio=mic(440))
    carol = phones.add("carol", audio=mic(700), features=AUTO)
    port = free_port()
    end = ['  <pause milliseconds="500"/>\n', request("BYE", 1), recv("200")] if who == "transferee" else \
        [recv("BYE", 10000), answer()]
    scen = tmp_path / "xferee.xml"
    scen.write_text(scenario(
        "transferee", FIRST_INVITE, answer(180, "Ringing", tag=True), answer(body=sdp(), tag=True), recv("ACK"),
        recv("INVITE"), answer(body=sdp(direction="recvonly", version=2)), recv("ACK"),
        recv("REFER"), answer(202, "Accepted"), *end,
        '  <Reference variables="from,to,contact"/>\n'))
    proc = peers.sipp_background(["-sf", str(scen), "-p", str(port), "-m", "1", "-timeout", "30s",
                                  "-timeout_error", "-trace_err"], cwd=str(tmp_path))
    try:
        assert peers.wait_listening(port, proc), proc.communicate()
        assert bob.ev("MakeCall", target="sip:alice@127.0.0.1:%d" % port).startswith("ok c1")
        assert bob.wait(lambda: bob.state() == "Active", 10), bob.tail()
        assert bob.ev("StartAttendedTransfer", target=carol.uri).startswith("ok c1 ConsultationCall")
        assert bob.wait(lambda: bob.st()["calls"].get("c2") == "Active", 10), bob.tail()
        assert bob.ev("CompleteAttendedTransfer", sid="c1").startswith("ok c1 Transferring")
        assert bob.wait_line("resp c1 refer 202", 5), bob.tail()
        if who == "transferee":
            assert bob.wait_line("tr c1 Transferring DialogBYE Terminating SendSIPResponse(200,OK),StopMediaFlow",
                                 10), bob.tail()
        else:
            assert bob.ev("HangupCall", sid="c1").startswith("ok c1 Terminating"), bob.tail()
            assert bob.saw("tr c1 Transferring HangupCall Terminating SendBYE,StopMediaFlow")
        assert bob.wait(lambda: bob.st()["calls"] == {"c2": "Active"}, 10), bob.tail()
    finally:
        rc, out, err = peers.finish(proc, 20)
    assert rc == 0, "sipp failed:\n%s\n%s\n%s" % (out[-1500:], err[-2500:], bob.tail(60))
    bob.ev("HangupCall", sid="c2")
    assert bob.wait(lambda: bob.state() == "-" and carol.state() == "-", 10), (bob.tail(), carol.tail())
    phones.close()
