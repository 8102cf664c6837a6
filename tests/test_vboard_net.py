# Wi-Fi on the virtual board: the phone (the frozen firmware on MicroPython) joins the simulated access point with
# power save off, registers from the address it got, and while it is in a call with a second phone (uphone.run in
# its own process) the link drops and comes back: with the same address it registers again; with a new one it moves
# its sockets, registers the new Contact and sends the far end a re-INVITE whose Contact and SDP carry the new
# address. A small UDP registrar on 127.0.0.1 records every REGISTER. Real sockets, loopback only, bounded waits.
import json
import os
import socket
import threading
import time

import pytest

from host_tools.deploy import MAIN_PY
from tests.proc import PhoneProc, free_port, free_range, phone_config
from tests.vboard import Console, VBoard
from uphone.sip import headers as H
from uphone.sip import message as M
from uphone.sip import parse as P

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Registrar:
    """200 OK to every REGISTER (Contact echoed, expires=60); remembers the Contacts in order. Also the voicemail
    server: 200 to SUBSCRIBE (message-summary, in one dialog) and a NOTIFY to the SUBSCRIBE's Contact right after
    it (RFC 6665 4.2.1.2), sent again at 0.5, 1, 2 s until answered (RFC 3261 17.1.2.2 Timer E); keeps the answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.port = free_port()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.contacts = []
        self.subscribes = []        # parsed SUBSCRIBE requests
        self.notified = []          # (status, source address) of the answers to our NOTIFYs
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                data, src = self.sock.recvfrom(4096)
            except OSError:
                continue
            if not data.strip():
                continue
            msg = P.parse(data)
            if not msg.is_request:
                if msg.cseq_method == "NOTIFY":
                    self.notified.append((msg.status, src, msg.cseq_num))
                continue
            via = msg.get("Via")
            sent_by = via.split()[1].split(";")[0]
            host, port = sent_by.rsplit(":", 1)
            if msg.method == "SUBSCRIBE":
                self.subscribes.append(msg)
                resp = M.make_response(msg, 200, "OK", to_tag="vm1",
                                       headers=[("Expires", "3600"), ("Contact", "<sip:vm@127.0.0.1:%d>" % self.port)])
                self.sock.sendto(resp.to_bytes(), (host, int(port)))
                self.notify(msg)
                continue
            if msg.method != "REGISTER":
                continue
            self.contacts.append(msg.get("Contact"))
            resp = M.make_response(msg, 200, "OK", to_tag="reg1",
                                   headers=[("Contact", msg.get("Contact").split(";")[0] + ";expires=60")])
            self.sock.sendto(resp.to_bytes(), (host, int(port)))

    def notify(self, sub):
        """The NOTIFY a notifier sends after accepting or refreshing a subscription, to the subscriber's Contact
        (its remote target)."""
        target = H.parse_name_addr(sub.get("Contact")).uri
        n = len(self.subscribes)
        req = M.make_request("NOTIFY", target, [
            ("Via", "SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKvm%d" % (self.port, n)), ("Max-Forwards", "70"),
            ("From", sub.get("To") + ";tag=vm1"), ("To", sub.get("From")), ("Call-ID", sub.call_id),
            ("CSeq", "%d NOTIFY" % n), ("Contact", "<sip:vm@127.0.0.1:%d>" % self.port),
            ("Event", "message-summary"), ("Subscription-State", "active;expires=3600"),
            ("Content-Type", "application/simple-message-summary")],
            b"Messages-Waiting: yes\r\nVoice-Message: %d/0\r\n" % n)
        host, port = target.split("@", 1)[1].split(";")[0].rsplit(":", 1)

        def send():
            for wait in (0.5, 1.0, 2.0, 0):
                self.sock.sendto(req.to_bytes(), (host, int(port)))
                end = time.time() + wait
                while time.time() < end:
                    if any(x[2] == n for x in self.notified):
                        return
                    time.sleep(0.02)
        threading.Thread(target=send, daemon=True).start()

    def wait(self, pred, timeout, start=0):
        end = time.time() + timeout
        while time.time() < end:
            if any(pred(c) for c in self.contacts[start:]):
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


@pytest.fixture
def registrar():
    r = Registrar()
    yield r
    r.close()


def test_wifi_drops_and_returns_with_a_new_address_mid_call(tmp_path, registrar):
    bob = PhoneProc("cpython", phone_config("bob", features={"auto_answer": True, "auto_answer_delay_ms": 0}),
                    tmp_path / "bob", "bob")
    root = tmp_path / "board"
    root.mkdir()
    rtp = free_range(22)
    port = free_port()
    (root / "config.json").write_text(json.dumps({
        "accounts": [{"user": "alice", "domain": "127.0.0.1", "registrar": "sip:127.0.0.1:%d" % registrar.port,
                      "expires": 60}],
        "sip": {"local_ip": "", "local_port": port},          # "": the address Wi-Fi gives the phone
        "media": {"rtp_port_min": rtp, "rtp_port_max": rtp + 20},
        "wifi": {"ssid": "lab", "password": "wifi-pass"}}))
    (root / "main.py").write_bytes(MAIN_PY)
    (root / "board.json").write_text(open(os.path.join(ROOT, "board", "generic_max98357", "board.json")).read())
    b = VBoard(root, extra=["--ip", "127.0.0.2", "--ssid", "lab", "--wifi-password", "wifi-pass",
                            "--board", "generic_max98357"])     # its keypad pull-ups: no key reads pressed
    con = None
    try:
        assert b.wait_line("wifi up ip=127.0.0.2", 30), b.lines
        assert registrar.wait(lambda c: "@127.0.0.2:%d" % port in c, 30), registrar.contacts
        con = Console(b.port)
        ans, _ = con.cmd("ev MakeCall target=%s" % bob.uri)
        assert ans.startswith("ok c1"), ans
        assert con.wait(lambda ln: ln.startswith("tr c1 ") and " Dialog200OK Active " in ln, 15), con.lines[-20:]
        assert bob.wait(lambda: bob.state() == "Active", 10), bob.tail()
        assert bob.st()["leg"]["c1"]["rtp"].startswith("127.0.0.2:")

        # the link drops and comes back with the same address: the phone registers again, the call stays as it is
        n = len(registrar.contacts)
        b.command("net down")
        assert con.wait("wifi: link lost", 15), con.lines[-20:]
        b.command("net up")
        assert con.wait("net back on 127.0.0.2", 15), con.lines[-20:]
        assert registrar.wait(lambda c: "@127.0.0.2:" in c, 15, start=n), registrar.contacts
        assert not bob.saw("DialogReINVITE")

        # and again, now with a new address: sockets move, new Contact registered, the far end gets a re-INVITE
        b.command("net down")
        b.command("net up 127.0.0.3")
        assert con.wait("net address 127.0.0.2 -> 127.0.0.3", 15), con.lines[-20:]
        assert registrar.wait(lambda c: "@127.0.0.3:%d" % port in c, 15), registrar.contacts
        assert bob.wait_line("c1 Active DialogReINVITE Active", 15), bob.tail()
        assert con.wait("c1 Active Dialog200OK Active", 15), con.lines[-20:]
        assert bob.wait(lambda: bob.st()["leg"]["c1"]["rtp"].startswith("127.0.0.3:"), 10), bob.tail()
        assert bob.state() == "Active"
        # media reaches bob from the new address (symmetric RTP from 127.0.0.3)
        before = int(bob.st()["media"]["c1"]["received"])
        assert bob.wait(lambda: int(bob.st()["media"]["c1"]["received"]) > before + 25, 10), bob.tail()
        # bob hangs up: his BYE goes to the Contact of the re-INVITE, the only address the phone listens on now
        assert bob.ev("HangupCall").startswith("ok c1"), bob.tail()
        assert con.wait("c1 Active DialogBYE Terminating", 15), con.lines[-20:]
        assert bob.wait(lambda: bob.state() == "-", 10), bob.tail()
    finally:
        if con is not None:
            con.close()
        # power save was turned off (WLAN.PM_NONE) by the phone's boot
        pm = b.exec("import network; print(network.WLAN(network.STA_IF).config('pm'))", resume=True).strip()
        b.close()
        bob.close()
    assert pm == "0"
    bob.check_clean()


def test_wifi_returns_with_a_new_address_while_the_call_is_held(tmp_path, registrar):
    """Held call and message-waiting subscription: the new address reaches the far end in a re-INVITE that keeps
    the call held (sendonly, answered recvonly), and the voicemail server in a re-SUBSCRIBE of the same dialog."""
    bob = PhoneProc("cpython", phone_config("bob", features={"auto_answer": True, "auto_answer_delay_ms": 0}),
                    tmp_path / "bob", "bob")
    root = tmp_path / "board"
    root.mkdir()
    rtp = free_range(22)
    port = free_port()
    (root / "config.json").write_text(json.dumps({
        "accounts": [{"user": "alice", "domain": "127.0.0.1", "registrar": "sip:127.0.0.1:%d" % registrar.port,
                      "expires": 60}],
        "sip": {"local_ip": "", "local_port": port},
        "media": {"rtp_port_min": rtp, "rtp_port_max": rtp + 20},
        "features": {"voicemail_uri": "sip:alice@127.0.0.1:%d" % registrar.port},
        "wifi": {"ssid": "lab", "password": "wifi-pass"}}))
    (root / "main.py").write_bytes(MAIN_PY)
    (root / "board.json").write_text(open(os.path.join(ROOT, "board", "generic_max98357", "board.json")).read())
    b = VBoard(root, extra=["--ip", "127.0.0.2", "--ssid", "lab", "--wifi-password", "wifi-pass",
                            "--board", "generic_max98357"])     # its keypad pull-ups: no key reads pressed
    con = None
    try:
        con = Console(b.port)
        assert con.wait("mwi on 1/0", 30), con.lines          # registered, subscribed, first NOTIFY taken
        first = registrar.subscribes[0]
        assert "@127.0.0.2:%d" % port in first.get("Contact")
        ans, _ = con.cmd("ev MakeCall target=%s" % bob.uri)
        assert ans.startswith("ok c1"), ans
        assert con.wait(lambda ln: ln.startswith("tr c1 ") and " Dialog200OK Active " in ln, 15), con.lines[-20:]
        ans, _ = con.cmd("ev HoldCall")
        assert ans.startswith("ok c1 OnHold"), ans
        assert con.wait("tr c1 OnHold Dialog200OK OnHold", 15), con.lines[-20:]
        assert bob.wait(lambda: bob.st()["leg"]["c1"]["dir"] == "recvonly", 10), bob.tail()

        mark = len(con.lines)
        b.command("net down")
        b.command("net up 127.0.0.3")
        assert con.wait("net address 127.0.0.2 -> 127.0.0.3", 15), con.lines[-20:]
        # the far end: a re-INVITE from the new address that still holds the call
        assert bob.wait_line("c1 Active DialogReINVITE Active", 15), bob.tail()
        assert con.wait("tr c1 OnHold AddressChanged OnHold SendReINVITE", 15, mark), con.lines[-20:]
        assert con.wait("tr c1 OnHold Dialog200OK OnHold", 15, mark), con.lines[-20:]
        leg = bob.st()["leg"]["c1"]
        assert leg["rtp"].startswith("127.0.0.3:") and leg["dir"] == "recvonly", leg
        ans, lines = con.cmd("st")
        assert [ln for ln in lines if ln.startswith("leg c1 OnHold") and "dir=sendonly" in ln], lines
        # the voicemail server: a re-SUBSCRIBE in the same dialog with the new Contact, and its NOTIFY answered there
        assert con.wait("tr s1 Subscribed AddressChanged Subscribing SendSUBSCRIBE", 15, mark), con.lines[-20:]
        assert con.wait("mwi on 2/0", 15, mark), con.lines[-20:]
        re = registrar.subscribes[1]
        assert re.call_id == first.call_id and re.to_tag == "vm1" and "@127.0.0.3:%d" % port in re.get("Contact")
        assert registrar.wait(lambda c: "@127.0.0.3:%d" % port in c, 15), registrar.contacts
        assert registrar.notified[-1] == (200, ("127.0.0.3", port), 2), registrar.notified
        # and the held call comes back from the new address
        ans, _ = con.cmd("ev ResumeCall")
        assert ans.startswith("ok c1 Resuming"), ans
        assert con.wait("tr c1 Resuming Dialog200OK Active", 15, mark), con.lines[-20:]
        assert bob.wait(lambda: bob.st()["leg"]["c1"]["dir"] == "sendrecv", 10), bob.tail()
        assert bob.ev("HangupCall").startswith("ok c1"), bob.tail()
        assert con.wait("c1 Active DialogBYE Terminating", 15, mark), con.lines[-20:]
    finally:
        if con is not None:
            con.close()
        b.close()
        bob.close()
    bob.check_clean()
