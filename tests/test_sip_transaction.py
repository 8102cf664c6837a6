# Transaction layer and transport helpers: timers driven by fed-in `now`, retransmission absorption, ACK/CANCEL
# construction, 2xx retransmission, server matching (RFC 3261 and RFC 2543 peers), rport/received handling.
from uphone.sip import message as M
from uphone.sip import parse as P
from uphone.sip import headers as H
from uphone.sip import transaction, transport

ME = ("10.0.0.1", 5060, "udp")
PEER = ("10.0.0.2", 5060, "udp")


class FakeTU:
    def __init__(self):
        self.calls = []

    def on_request(self, stx, msg, src):
        self.calls.append(("req", stx, msg))

    def on_response(self, ctx, msg):
        self.calls.append(("resp", ctx, msg))

    def on_timeout(self, ctx):
        self.calls.append(("timeout", ctx))

    def on_ack_timeout(self, key):
        self.calls.append(("acktimeout", key))

    def kinds(self):
        return [c[0] for c in self.calls]


def layer():
    tu, sent = FakeTU(), []
    txl = transaction.TransactionLayer(tu, lambda data, dest: sent.append((P.parse(data), dest)))
    return txl, tu, sent


def invite(branch="z9hG4bKabc1", method="INVITE", cseq=1, routes=(), sent_by="10.0.0.1:5060", to_tag=None,
           uri="sip:bob@10.0.0.2"):
    hs = [("Via", "SIP/2.0/UDP %s;rport;branch=%s" % (sent_by, branch)), ("Max-Forwards", "70")]
    for r in routes:
        hs.append(("Route", r))
    hs += [("From", "<sip:alice@10.0.0.1>;tag=ft1"),
           ("To", "<sip:bob@10.0.0.2>" + (";tag=" + to_tag if to_tag else "")),
           ("Call-ID", "cid1@10.0.0.1"), ("CSeq", "%d %s" % (cseq, method)), ("Contact", "<sip:alice@10.0.0.1>")]
    return M.make_request(method, uri, hs)


def reply(req, code, tag="tt9"):
    return P.parse(M.make_response(req, code, "X", to_tag=tag if code > 100 else None).to_bytes())


def parsed(msg):
    return P.parse(msg.to_bytes())


# ---- client INVITE -------------------------------------------------------------------------------------

def test_invite_timer_a_doubles_and_timer_b_times_out():
    txl, tu, sent = layer()
    c = txl.request(invite(), PEER, 0)
    assert len(sent) == 1 and sent[0][1] == PEER
    times = []
    for now in range(0, 40000, 100):
        before = len(sent)
        txl.tick(now)
        if len(sent) > before:
            times.append(now)
    assert times == [500, 1500, 3500, 7500, 15500, 31500]
    assert tu.calls == [("timeout", c)]
    assert txl.counts() == (0, 0, 0)
    assert txl.next_deadline() is None


def test_invite_provisional_stops_timer_a_and_sets_flag():
    txl, tu, sent = layer()
    req = invite()
    c = txl.request(req, PEER, 0)
    assert c.got_provisional is False
    txl.receive(reply(req, 180), PEER, 100)
    assert c.got_provisional is True
    assert tu.kinds() == ["resp"] and tu.calls[0][1] is c
    txl.tick(600)
    txl.tick(40000)         # Timer B no longer applies after a 1xx
    assert len(sent) == 1 and tu.kinds() == ["resp"]


def test_non2xx_final_acked_by_transaction_and_retransmission_absorbed():
    txl, tu, sent = layer()
    req = invite(routes=("<sip:p1.example;lr>",))
    txl.request(req, PEER, 0)
    r486 = reply(req, 486, tag="bobtag")
    txl.receive(r486, PEER, 200)
    assert [x[0] for x in tu.calls] == ["resp"] and tu.calls[0][2].status == 486
    ack = sent[-1][0]
    assert ack.method == "ACK" and ack.uri == req.uri
    assert ack.branch == "z9hG4bKabc1" and len(ack.get_all("Via")) == 1
    assert ack.to_tag == "bobtag" and ack.from_tag == "ft1"
    assert ack.cseq_num == 1 and ack.cseq_method == "ACK"
    assert ack.get_all("Route") == ["<sip:p1.example;lr>"]
    # the retransmitted 486 is ACKed again and not shown to the TU
    txl.receive(r486, PEER, 900)
    assert len(tu.calls) == 1 and sent[-1][0].method == "ACK" and len(sent) == 3
    txl.tick(200 + 31999)
    assert txl.counts()[0] == 1
    txl.tick(200 + 32000)       # Timer D
    assert txl.counts()[0] == 0 and len(tu.calls) == 1


def test_2xx_ends_invite_txn_and_later_2xx_go_to_tu_without_ctx():
    txl, tu, sent = layer()
    req = invite()
    c = txl.request(req, PEER, 0)
    ok = reply(req, 200, tag="a")
    txl.receive(ok, PEER, 50)
    assert tu.calls[-1][:2] == ("resp", c)
    assert len(sent) == 1           # the UAC core ACKs a 2xx, not the transaction
    txl.receive(ok, PEER, 600)
    txl.receive(reply(req, 200, tag="other-fork"), PEER, 700)
    assert [x[1] for x in tu.calls] == [c, None, None]


def test_cancel_request_construction():
    txl, tu, sent = layer()
    req = invite(routes=("<sip:p1;lr>", "<sip:p2;lr>"))
    req.add("Via", "SIP/2.0/UDP upstream:5060;branch=z9hG4bKup")
    c = txl.request(req, PEER, 0)
    cancel = c.cancel_request()
    assert cancel.method == "CANCEL" and cancel.uri == req.uri
    assert cancel.get_all("Via") == [req.get_all("Via")[0]]
    assert cancel.branch == req.branch
    assert cancel.call_id == req.call_id and cancel.get("To") == req.get("To") and cancel.get("From") == req.get("From")
    assert cancel.cseq_num == 1 and cancel.cseq_method == "CANCEL"
    assert cancel.get_all("Route") == ["<sip:p1;lr>", "<sip:p2;lr>"]
    # the CANCEL is its own client transaction (same branch, other method)
    cc = txl.request(cancel, PEER, 10)
    txl.receive(reply(cancel, 200), PEER, 20)
    txl.receive(reply(req, 487), PEER, 30)
    assert [(k[0], k[1]) for k in tu.calls] == [("resp", cc), ("resp", c)]


# ---- client non-INVITE --------------------------------------------------------------------------------

def test_non_invite_timer_e_capped_at_t2_then_timer_f():
    txl, tu, sent = layer()
    c = txl.request(invite(method="OPTIONS", branch="z9hG4bKo1"), PEER, 0)
    times = []
    for now in range(0, 33000, 100):
        n = len(sent)
        txl.tick(now)
        if len(sent) > n:
            times.append(now)
    assert times == [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    assert tu.calls == [("timeout", c)] and txl.counts()[0] == 0


def test_non_invite_provisional_uses_t2_and_final_absorbed_in_timer_k():
    txl, tu, sent = layer()
    req = invite(method="BYE", branch="z9hG4bKb1", to_tag="x")
    txl.request(req, PEER, 0)
    txl.receive(reply(req, 100), PEER, 100)
    txl.tick(500)                   # pending Timer E still fires, then T2 spacing
    txl.tick(4400)
    assert len(sent) == 2
    txl.tick(4500)
    assert len(sent) == 3
    final = reply(req, 200, tag="x")
    txl.receive(final, PEER, 5000)
    txl.receive(final, PEER, 5100)
    assert [x[0] for x in tu.calls] == ["resp", "resp"] and tu.calls[1][2].status == 200
    txl.tick(9999)
    assert txl.counts()[0] == 1
    txl.tick(10000)                 # Timer K = T4
    assert txl.counts()[0] == 0 and len(sent) == 3


def test_transport_error_times_out_pending_client_txns():
    txl, tu, sent = layer()
    a = txl.request(invite(branch="z9hG4bKa"), PEER, 0)
    b = txl.request(invite(branch="z9hG4bKb", method="OPTIONS"), ("10.9.9.9", 5060, "udp"), 0)
    txl.on_transport_error(("10.0.0.2", 5060, "udp"))
    assert tu.calls == [("timeout", a)]
    assert txl.counts()[0] == 1 and b.dest[0] == "10.9.9.9"


def test_transport_error_inside_send_is_deferred_to_tick():
    tu = FakeTU()
    holder = []

    def send(data, dest):
        holder[0].on_transport_error(dest)      # what the runtime does on a synchronous sendto() failure
    txl = transaction.TransactionLayer(tu, send)
    holder.append(txl)
    c = txl.request(invite(), PEER, 0)
    assert tu.calls == [] and txl.next_deadline() == 0
    txl.tick(0)
    assert tu.calls == [("timeout", c)] and txl.counts() == (0, 0, 0)


# ---- server side --------------------------------------------------------------------------------------

def test_invite_server_sends_100_and_absorbs_retransmission():
    txl, tu, sent = layer()
    req = invite(sent_by="10.0.0.2:5062")
    txl.receive(parsed(req), ("10.0.0.2", 40000, "udp"), 0)
    assert sent[0][0].status == 100 and sent[0][0].to_tag is None
    assert sent[0][1] == ("10.0.0.2", 40000, "udp")          # rport without a value: the source port
    stx = tu.calls[0][1]
    assert stx.method == "INVITE" and stx.request.method == "INVITE"
    stx.respond(M.make_response(stx.request, 180, "Ringing", to_tag="me"), 10)
    txl.receive(parsed(req), PEER, 500)
    assert len(tu.calls) == 1 and sent[-1][0].status == 180 and len(sent) == 3


def test_invite_server_non2xx_timer_g_until_ack_then_timer_i():
    txl, tu, sent = layer()
    req = invite()
    txl.receive(parsed(req), PEER, 0)
    stx = tu.calls[0][1]
    stx.respond(M.make_response(stx.request, 486, "Busy Here", to_tag="me"), 0)
    times = []
    for now in range(0, 8000, 100):
        n = len(sent)
        txl.tick(now)
        if len(sent) > n:
            times.append(now)
    assert times == [500, 1500, 3500, 7500]
    ack = invite(method="ACK", to_tag="me")
    txl.receive(parsed(ack), PEER, 8000)
    assert len(tu.calls) == 1           # ACK for a non-2xx is absorbed
    txl.tick(11500)
    assert len(sent) == 6               # Timer G stopped
    txl.tick(13000)                     # Timer I = T4
    assert txl.counts()[1] == 0


def test_invite_server_timer_h_without_ack():
    txl, tu, sent = layer()
    txl.receive(parsed(invite()), PEER, 0)
    tu.calls[0][1].respond(M.make_response(tu.calls[0][2], 603, "Decline", to_tag="me"), 0)
    for now in range(0, 32000, 500):
        txl.tick(now)
    assert txl.counts()[1] == 1
    txl.tick(32000)
    assert txl.counts()[1] == 0


def test_2xx_accepted_state_and_uas_retransmitter():
    txl, tu, sent = layer()
    req = invite()
    txl.receive(parsed(req), PEER, 0)
    stx = tu.calls[0][1]
    ok = M.make_response(stx.request, 200, "OK", to_tag="me")
    stx.respond(ok, 100)
    txl.send_2xx(ok, stx.dest, 100)
    assert [m.status for m, _ in sent] == [100, 200]
    times = []
    for now in range(100, 10000, 100):
        n = len(sent)
        txl.tick(now)
        if len(sent) > n:
            times.append(now)
    assert times == [600, 1600, 3600, 7600]
    txl.receive(parsed(req), PEER, 8000)     # retransmitted INVITE: the 2xx again, not the TU
    assert len(tu.calls) == 1 and sent[-1][0].status == 200 and len(sent) == 7
    ack = invite(method="ACK", branch="z9hG4bKack2", to_tag="me")
    txl.receive(parsed(ack), PEER, 8100)
    assert tu.calls[-1][0] == "req" and tu.calls[-1][1] is None
    txl.ack_received("cid1@10.0.0.1", 1)
    txl.tick(20000)
    assert len(sent) == 7
    txl.tick(100 + 32000)
    assert txl.counts() == (0, 0, 0) and "acktimeout" not in tu.kinds()


def test_2xx_retransmitter_gives_up_without_ack():
    txl, tu, sent = layer()
    txl.receive(parsed(invite()), PEER, 0)
    stx = tu.calls[0][1]
    ok = M.make_response(stx.request, 200, "OK", to_tag="me")
    stx.respond(ok, 0)
    txl.send_2xx(ok, stx.dest, 0)
    for now in range(0, 32000, 250):
        txl.tick(now)
    assert "acktimeout" not in tu.kinds()
    txl.tick(32000)
    assert tu.calls[-1] == ("acktimeout", ("cid1@10.0.0.1", 1))
    assert txl.next_deadline() is None


def test_non_invite_server_retransmission_and_timer_j():
    txl, tu, sent = layer()
    req = invite(method="OPTIONS", branch="z9hG4bKopt")
    txl.receive(parsed(req), PEER, 0)
    assert sent == []                          # no automatic 100 for non-INVITE
    txl.receive(parsed(req), PEER, 100)         # before any response: absorbed silently
    stx = tu.calls[0][1]
    request = stx.request
    stx.respond(M.make_response(request, 200, "OK", to_tag="me"), 200)
    assert stx.request is None                  # answered: the transaction keeps only what repeats need
    txl.receive(parsed(req), PEER, 700)
    assert len(tu.calls) == 1 and [m.status for m, _ in sent] == [200, 200]
    stx.respond(M.make_response(request, 500, "Late", to_tag="me"), 800)   # ignored after a final
    assert len(sent) == 2
    txl.tick(200 + 32000)
    assert txl.counts()[1] == 0


def test_server_matching_needs_sent_by_and_method():
    txl, tu, sent = layer()
    txl.receive(parsed(invite(method="OPTIONS", branch="z9hG4bKsame")), PEER, 0)
    txl.receive(parsed(invite(method="OPTIONS", branch="z9hG4bKsame", sent_by="10.0.0.7:5060")), PEER, 0)
    txl.receive(parsed(invite(method="INFO", branch="z9hG4bKsame")), PEER, 0)
    assert len(tu.calls) == 3


def test_rfc2543_fallback_matching():
    txl, tu, sent = layer()
    old = invite(branch="1234")            # no magic cookie
    txl.receive(parsed(old), PEER, 0)
    txl.receive(parsed(old), PEER, 300)    # same Request-URI, tags, Call-ID, CSeq, Via: retransmission
    assert len(tu.calls) == 1 and len(sent) == 2
    other = invite(branch="1234", cseq=2)
    txl.receive(parsed(other), PEER, 400)
    assert len(tu.calls) == 2
    stx = tu.calls[0][1]
    stx.respond(M.make_response(stx.request, 486, "Busy", to_tag="uas"), 500)
    # an ACK with the wrong To tag does not match; the right one is absorbed
    txl.receive(parsed(invite(branch="1234", method="ACK", to_tag="nope")), PEER, 600)
    assert tu.calls[-1][0] == "req" and tu.calls[-1][1] is None
    txl.receive(parsed(invite(branch="1234", method="ACK", to_tag="uas")), PEER, 700)
    assert len(tu.calls) == 3
    assert stx.state == transaction._CONFIRMED


def test_cancel_target_matching():
    txl, tu, sent = layer()
    inv = invite(branch="z9hG4bKinv")
    txl.receive(parsed(inv), PEER, 0)
    inv_stx = tu.calls[0][1]
    txl.receive(parsed(invite(method="CANCEL", branch="z9hG4bKinv")), PEER, 100)
    c_stx = tu.calls[1][1]
    assert c_stx is not inv_stx and c_stx.method == "CANCEL" and c_stx.cancel_target is inv_stx
    txl.receive(parsed(invite(method="CANCEL", branch="z9hG4bKelse")), PEER, 200)
    assert tu.calls[2][1].cancel_target is None
    # RFC 2543 CANCEL: matched on Request-URI, tags, Call-ID, CSeq number and top Via
    txl.receive(parsed(invite(branch="old1", cseq=5)), PEER, 300)
    old_stx = tu.calls[3][1]
    txl.receive(parsed(invite(method="CANCEL", branch="old1", cseq=5)), PEER, 400)
    assert tu.calls[4][1].cancel_target is old_stx


def test_terminated_transactions_leave_memory():
    txl, tu, sent = layer()
    for i in range(50):
        req = invite(method="OPTIONS", branch="z9hG4bKm%d" % i)
        txl.receive(parsed(req), PEER, i)
        tu.calls[-1][1].respond(M.make_response(tu.calls[-1][2], 200, "OK", to_tag="t"), i)
        txl.request(invite(method="OPTIONS", branch="z9hG4bKc%d" % i), PEER, i)
    # what an overload leaves is bounded: past _MAX_SRV answered server transactions, the one nearest its end goes
    assert txl.counts() == (50, transaction._MAX_SRV, 0)
    assert sorted(k[0] for k in txl._srv) == sorted("z9hG4bKm%d" % i for i in range(50 - transaction._MAX_SRV, 50))
    txl.tick(100000)
    assert txl.counts() == (0, 0, 0) and txl.next_deadline() is None


# ---- transport helpers --------------------------------------------------------------------------------

def test_tokens_and_via():
    b1, b2 = transport.new_branch(), transport.new_branch()
    assert b1.startswith("z9hG4bK") and b1 != b2 and len(b1) > 16
    assert transport.new_tag() != transport.new_tag()
    cid = transport.new_call_id("10.0.0.1")
    assert cid.endswith("@10.0.0.1") and len(cid) > 12
    v = transport.make_via("10.0.0.1", 5070, "udp", "z9hG4bKx")
    assert v == "SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKx"
    assert H.parse_via(v).params["branch"] == "z9hG4bKx"


def test_stamp_received_fills_rport_and_received():
    req = parsed(invite(sent_by="192.168.1.5:5060"))
    req.headers[0][1] += ", SIP/2.0/UDP proxy:5060;branch=z9hG4bKp"
    transport.stamp_received(req, "203.0.113.9", 40123)
    vias = req.get_all("Via")
    top = H.parse_via(vias[0])
    assert top.params["rport"] == "40123" and top.params["received"] == "203.0.113.9"
    assert top.branch == "z9hG4bKabc1"
    assert vias[1] == "SIP/2.0/UDP proxy:5060;branch=z9hG4bKp"
    assert transport.response_dest(req, None) == ("203.0.113.9", 40123, "udp")


def test_stamp_received_without_rport():
    hs = [("Via", "SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKq"), ("From", "<sip:a@b>;tag=1"), ("To", "<sip:c@d>"),
          ("Call-ID", "x"), ("CSeq", "1 OPTIONS")]
    same = M.make_request("OPTIONS", "sip:c@d", hs)
    transport.stamp_received(same, "10.0.0.2", 6000)
    assert same.get("Via") == "SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKq"       # sent-by is right: untouched
    assert transport.response_dest(same, ("10.0.0.2", 6000, "udp")) == ("10.0.0.2", 5062, "udp")
    natted = M.make_request("OPTIONS", "sip:c@d", hs)
    transport.stamp_received(natted, "198.51.100.1", 6000)
    assert H.parse_via(natted.get("Via")).params == {"branch": "z9hG4bKq", "received": "198.51.100.1"}
    assert transport.response_dest(natted, None) == ("198.51.100.1", 5062, "udp")


def test_response_dest_maddr_and_unstamped_rport():
    hs = [("Via", "SIP/2.0/UDP host.example;maddr=239.1.1.1;branch=z9hG4bKm"), ("CSeq", "1 OPTIONS")]
    assert transport.response_dest(M.make_request("OPTIONS", "sip:x@y", hs), None) == ("239.1.1.1", 5060, "udp")
    hs = [("Via", "SIP/2.0/UDP host.example;rport;branch=z9hG4bKm"), ("CSeq", "1 OPTIONS")]
    req = M.make_request("OPTIONS", "sip:x@y", hs)
    assert transport.response_dest(req, ("1.2.3.4", 7777, "udp")) == ("1.2.3.4", 7777, "udp")
    assert transport.response_dest(req, None) == ("host.example", 5060, "udp")


# ---- the same modules inside MicroPython ----------------------------------------------------------------

MP_CODE = """
from uphone.sip import transaction, transport, dialog
from uphone.sip import message as M
from uphone.sip import parse as P

class TU:
    def on_response(self, ctx, msg):
        print("resp", msg.status, ctx is not None)
    def on_timeout(self, ctx):
        print("timeout", ctx.method)
    def on_request(self, stx, msg, src):
        print("req", msg.method)
    def on_ack_timeout(self, key):
        print("acktimeout")

sent = []
txl = transaction.TransactionLayer(TU(), lambda d, dest: sent.append(P.parse(d)))
b = transport.new_branch()
print(b[:7], len(b) > 7, transport.new_tag() != transport.new_tag())
req = M.make_request("INVITE", "sip:bob@10.0.0.2", [
    ("Via", transport.make_via("10.0.0.1", 5060, "UDP", b)), ("From", "<sip:a@10.0.0.1>;tag=f"),
    ("To", "<sip:bob@10.0.0.2>"), ("Call-ID", "c1"), ("CSeq", "1 INVITE"), ("Contact", "<sip:a@10.0.0.1>")])
c = txl.request(req, ("10.0.0.2", 5060, "udp"), 0)
txl.tick(500)
txl.tick(1500)
print("sent", len(sent))
r = M.make_response(req, 486, "Busy Here", to_tag="bt")
txl.receive(P.parse(r.to_bytes()), ("10.0.0.2", 5060, "udp"), 1600)
print("ack", sent[-1].method, sent[-1].branch == b, sent[-1].to_tag)
txl.receive(P.parse(r.to_bytes()), ("10.0.0.2", 5060, "udp"), 1700)
print("sent", len(sent))
txl.tick(40000)
print("counts", txl.counts())
o = M.make_request("OPTIONS", "sip:x@y", [
    ("Via", transport.make_via("10.0.0.1", 5060, "UDP", transport.new_branch())), ("From", "<sip:a@b>;tag=1"),
    ("To", "<sip:x@y>"), ("Call-ID", "c2"), ("CSeq", "1 OPTIONS")])
txl.request(o, ("10.0.0.3", 5060, "udp"), 0)
txl.tick(40000)
d = dialog.Dialog.uac(req, P.parse(M.make_response(req, 200, "OK", to_tag="bt",
                       headers=[("Contact", "<sip:bob@10.0.0.9>"), ("Record-Route", "<sip:p;lr>")]).to_bytes()))
bye, hop = d.create_request("BYE")
print("bye", bye.uri, bye.cseq_num, hop)
"""


def test_client_transaction_in_micropython(mp):
    out = mp(MP_CODE)
    assert out.split("\n")[:-1] == [
        "z9hG4bK True True",
        "sent 3",
        "resp 486 True",
        "ack ACK True bt",
        "sent 5",
        "counts (0, 0, 0)",
        "timeout OPTIONS",
        "bye sip:bob@10.0.0.9 2 sip:p;lr",
    ]
