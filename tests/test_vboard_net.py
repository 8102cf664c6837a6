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
from uphone.sip import message as M
from uphone.sip import parse as P

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Registrar:
    """200 OK to every REGISTER (Contact echoed, expires=60); remembers the Contacts in order."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.port = free_port()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.contacts = []
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
            if not msg.is_request or msg.method != "REGISTER":
                continue
            self.contacts.append(msg.get("Contact"))
            resp = M.make_response(msg, 200, "OK", to_tag="reg1",
                                   headers=[("Contact", msg.get("Contact").split(";")[0] + ";expires=60")])
            via = msg.get("Via")
            sent_by = via.split()[1].split(";")[0]
            host, port = sent_by.rsplit(":", 1)
            self.sock.sendto(resp.to_bytes(), (host, int(port)))

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
    b = VBoard(root, extra=["--ip", "127.0.0.2", "--ssid", "lab", "--wifi-password", "wifi-pass"])
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
