# Dialog state (RFC 3261 12): UAS/UAC creation, route sets with loose and strict routers, CSeq rules,
# target refresh and the RFC 6665 NOTIFY-before-2xx dialog.
from uphone.sip import message as M
from uphone.sip import parse as P
from uphone.sip import headers as H
from uphone.sip.dialog import Dialog


def invite(rr=(), contact="<sip:alice@10.0.0.1:5070>", cseq=7):
    hs = [("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1"), ("From", '"Alice" <sip:alice@a.example>;tag=at'),
          ("To", "<sip:bob@b.example>"), ("Call-ID", "call-1"), ("CSeq", "%d INVITE" % cseq)]
    for r in rr:
        hs.append(("Record-Route", r))
    if contact:
        hs.append(("Contact", contact))
    return P.parse(M.make_request("INVITE", "sip:bob@b.example", hs).to_bytes())


def answer(req, code=200, tag="bt", rr=(), contact="<sip:bob@10.0.0.2:5080>"):
    hs = [("Contact", contact)] if contact else []
    r = M.make_response(req, code, "OK", to_tag=tag, headers=hs)
    r.remove("Record-Route")
    for x in rr:
        r.add("Record-Route", x)
    return P.parse(r.to_bytes())


def test_uas_dialog_from_invite():
    req = invite(rr=("<sip:p1.example;lr>", "<sip:p2.example;lr>"))
    d = Dialog.uas(req, "bt", "<sip:bob@10.0.0.2>")
    assert (d.call_id, d.local_tag, d.remote_tag) == ("call-1", "bt", "at")
    assert d.local_uri == "sip:bob@b.example" and d.remote_uri == "sip:alice@a.example"
    assert d.remote_target == "sip:alice@10.0.0.1:5070"
    assert d.route_set == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]      # in order for the UAS
    assert d.remote_cseq == 7 and d.local_cseq >= 1 and d.secure is False
    bye, hop = d.create_request("BYE")
    assert bye.uri == "sip:alice@10.0.0.1:5070"
    assert bye.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert hop == "sip:p1.example;lr"
    assert bye.from_tag == "bt" and bye.to_tag == "at" and bye.call_id == "call-1"
    assert H.parse_name_addr(bye.get("To")).uri == "sip:alice@a.example"
    assert bye.get("Via") is None and bye.get("Max-Forwards") == "70"


def test_uac_dialog_reverses_record_route_and_uses_contact():
    req = invite()
    d = Dialog.uac(req, answer(req, rr=("<sip:p2;lr>", "<sip:p1;lr>")))
    assert d.route_set == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert d.remote_target == "sip:bob@10.0.0.2:5080"
    assert (d.local_tag, d.remote_tag, d.local_cseq, d.remote_cseq) == ("at", "bt", 7, None)
    assert d.local_uri == "sip:alice@a.example" and d.remote_uri == "sip:bob@b.example"
    # no Contact: fall back to the Request-URI
    d2 = Dialog.uac(req, answer(req, contact=None))
    assert d2.remote_target == "sip:bob@b.example" and d2.route_set == []
    msg, hop = d2.create_request("INFO", body=b"Signal=1\r\n", content_type="application/dtmf-relay",
                                 extra=[("X-Test", "1")])
    assert msg.uri == "sip:bob@b.example" and hop == "sip:bob@b.example" and msg.get("Route") is None
    assert msg.get("Content-Type") == "application/dtmf-relay" and msg.get("X-Test") == "1"
    assert msg.body == b"Signal=1\r\n"


def test_confirm_recomputes_route_set_and_target():
    req = invite()
    d = Dialog.uac(req, answer(req, 180, rr=("<sip:early;lr>",), contact="<sip:early@10.0.0.5>"))
    d.confirm(answer(req, 200, rr=("<sip:b;lr>", "<sip:a;lr>"), contact="<sip:final@10.0.0.6>"))
    assert d.route_set == ["<sip:a;lr>", "<sip:b;lr>"] and d.remote_target == "sip:final@10.0.0.6"


def test_strict_router_first_in_request_uri():
    req = invite()
    d = Dialog.uac(req, answer(req, rr=("<sip:loose.example;lr>", "<sip:strict.example>")))
    assert d.route_set == ["<sip:strict.example>", "<sip:loose.example;lr>"]
    msg, hop = d.create_request("BYE")
    assert msg.uri == "sip:strict.example" and hop == "sip:strict.example"
    assert msg.get_all("Route") == ["<sip:loose.example;lr>", "<sip:bob@10.0.0.2:5080>"]


def test_cseq_numbering_for_ack_and_cancel():
    req = invite(cseq=7)
    d = Dialog.uac(req, answer(req))
    ack, _ = d.create_request("ACK")
    assert ack.cseq_num == 7 and ack.cseq_method == "ACK"
    bye, _ = d.create_request("BYE", contact="<sip:alice@10.0.0.1>")
    assert bye.cseq_num == 8 and bye.get("Contact") == "<sip:alice@10.0.0.1>"
    cancel, _ = d.create_request("CANCEL")
    assert cancel.cseq_num == 8
    reinv, _ = d.create_request("INVITE", body=b"v=0\r\n")
    assert reinv.cseq_num == 9 and reinv.get("Content-Type") == "application/sdp"
    assert d.local_cseq == 9


def in_dialog(method, n):
    return M.make_request(method, "sip:bob@10.0.0.2", [("Via", "SIP/2.0/UDP x;branch=z9hG4bKq"),
                                                       ("From", "<sip:alice@a>;tag=at"), ("To", "<sip:bob@b>;tag=bt"),
                                                       ("Call-ID", "call-1"), ("CSeq", "%d %s" % (n, method)),
                                                       ("Contact", "<sip:alice@10.9.9.9>")])


def test_check_remote_cseq():
    d = Dialog.uas(invite(cseq=7), "bt", None)
    assert d.check_remote_cseq(in_dialog("INFO", 8)) is True and d.remote_cseq == 8
    assert d.check_remote_cseq(in_dialog("BYE", 5)) is False and d.remote_cseq == 8
    assert d.check_remote_cseq(in_dialog("ACK", 3)) is True and d.remote_cseq == 8
    assert d.check_remote_cseq(in_dialog("CANCEL", 3)) is True and d.remote_cseq == 8
    req = invite()
    u = Dialog.uac(req, answer(req))
    assert u.check_remote_cseq(in_dialog("BYE", 1)) is True and u.remote_cseq == 1     # empty: anything goes


def test_refresh_target():
    d = Dialog.uas(invite(), "bt", None)
    d.refresh_target(in_dialog("INVITE", 8))
    assert d.remote_target == "sip:alice@10.9.9.9"
    d.refresh_target(M.make_request("UPDATE", "sip:x", [("CSeq", "9 UPDATE")]))     # no Contact: unchanged
    assert d.remote_target == "sip:alice@10.9.9.9"


def test_uac_from_notify():
    sub = M.make_request("SUBSCRIBE", "sip:vm@b.example", [
        ("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2"), ("From", "<sip:alice@a.example>;tag=st"),
        ("To", "<sip:vm@b.example>"), ("Call-ID", "sub-1"), ("CSeq", "3 SUBSCRIBE"),
        ("Contact", "<sip:alice@10.0.0.1>")])
    notify = M.make_request("NOTIFY", "sip:alice@10.0.0.1", [
        ("Via", "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK3"), ("Record-Route", "<sip:p1;lr>, <sip:p2;lr>"),
        ("From", "<sip:vm@b.example>;tag=nt"), ("To", "<sip:alice@a.example>;tag=st"), ("Call-ID", "sub-1"),
        ("CSeq", "1 NOTIFY"), ("Contact", "<sip:vm@10.0.0.2:5090>")])
    d = Dialog.uac_from_notify(sub, notify)
    assert (d.call_id, d.local_tag, d.remote_tag) == ("sub-1", "st", "nt")
    assert d.remote_target == "sip:vm@10.0.0.2:5090" and d.route_set == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert d.local_cseq == 3 and d.remote_cseq == 1
    unsub, hop = d.create_request("SUBSCRIBE", extra=[("Expires", "0")])
    assert unsub.cseq_num == 4 and hop == "sip:p1;lr" and unsub.to_tag == "nt"
