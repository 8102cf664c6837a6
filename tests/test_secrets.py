# Secrets stay in the config file: after a full session (digest registration at Kamailio, a call with audio, DTMF,
# hold, a refused config value, the console's status, memory and coverage output, unregistering at the end) the SIP
# and Wi-Fi passwords appear in none of what the phone wrote: its console and error output, its SIP capture, the
# files it kept (the config's last-good copy holds them, as the config does). Both runtimes.
import base64
import binascii
import json
import os
import subprocess

import pytest

from tests.peers import Kamailio
from tests.proc import ROOT, RUNTIMES, Phones, account_at, runtime_cmd

SIP_PW = "Pw9f3kQzsip"
WIFI_PW = "Wf7hZt2wlan"


def _forms(secret):
    b = secret.encode()
    return [b, b.upper(), binascii.hexlify(b), base64.b64encode(b), secret[::-1].encode()]


def _with_pcap(runtime, path, heap=None):
    # the runner with a SIP capture, as `phonectl sim --pcap` runs it
    def argv(code):
        pre = "import sys\nsys.path.append(%r)\nfrom host_tools.pcap import PcapWriter\n" % ROOT
        return runtime_cmd(runtime, pre + code[:-1] + ", pcap=PcapWriter(%r))" % path, heap)
    return argv


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_passwords_appear_in_nothing_the_phone_writes(runtime, tmp_path):
    kam = Kamailio(tmp_path / "kam", users=(("alice", SIP_PW), ("bob", SIP_PW))).start()
    ps = Phones(runtime, tmp_path)
    try:
        wifi = {"ssid": "lab", "password": WIFI_PW}
        # alice runs the desktop simulator's SIP capture (`phonectl sim --pcap`), a host tool compiled into her
        # heap with a buffer per packet: 16 KB more than a phone's 96 KB for it (tests/test_heap.py holds the phone
        # itself to 96 KB); bob is a phone as shipped
        a = ps.add("alice", argv=_with_pcap(runtime, str(tmp_path / "alice.pcap"), 112000), wifi=wifi,
                   account=dict(account_at("alice", kam), password=SIP_PW), audio={"source": "tone:1000"})
        b = ps.add("bob", wifi=wifi, account=dict(account_at("bob", kam), password=SIP_PW),
                   features={"auto_answer": True, "auto_answer_delay_ms": 0})
        assert a.wait_line("reg r1 registered", 10) and b.wait_line("reg r1 registered", 10), (a.tail(), b.tail())
        assert kam.auth_lines("authorized", "REGISTER", "alice") >= 1     # the digest really ran
        assert a.ev("MakeCall", target="bob").startswith("ok c1"), a.tail()
        assert a.wait(lambda: a.state() == "Active", 10), a.tail()
        assert a.ev("SendDTMF", digits="19").startswith("ok c1")
        assert a.ev("HoldCall").startswith("ok c1")
        for p in (a, b):
            p.st()
            p.mem(True)
            p.cmd("cov")
            p.cmd("ev MakeCall target=sip:%s@127.0.0.1:1" % SIP_PW[:3])     # errors echo what they were given
        assert a.ev("HangupCall").startswith("ok c1"), a.tail()
        assert a.wait(lambda: a.state() == "-", 5), a.tail()
    finally:
        ps.close()
        kam.stop()
    # a bad value next to the password: the phone refuses the file, naming key paths, showing no secret
    bad = dict(a.raw, accounts=[dict(a.raw["accounts"][0], expires="often")])
    path = os.path.join(a.dir, "bad.json")
    with open(path, "w") as f:
        json.dump(bad, f)
    r = subprocess.run(runtime_cmd(runtime, "from uphone import config\ncfg, errors = config.load(%r, %r)\n"
                                            "print(cfg is None, errors)" % (path, path + ".none")),
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "accounts[0].expires" in r.stdout, r.stdout + r.stderr
    with open(os.path.join(a.dir, "config-check.out"), "w") as f:
        f.write(r.stdout + r.stderr)
    written = []
    for root, _dirs, files in os.walk(str(tmp_path)):
        if os.path.relpath(root, str(tmp_path)).split(os.sep)[0] == "kam":
            continue                                  # the registrar's own files (its subscriber table)
        for name in files:
            path = os.path.join(root, name)
            if name in ("alice.json", "bob.json", "bad.json") or name.endswith(".json.good"):
                continue                              # the config itself (and its last-good copy) hold them
            written.append(path)
    assert any(w.endswith("alice.pcap") for w in written) and any(w.endswith("alice.log") for w in written)
    with open(str(tmp_path / "alice.pcap"), "rb") as f:
        assert b"Authorization: Digest" in f.read()    # the capture has the registration's digest answer
    for path in written:
        with open(path, "rb") as f:
            data = f.read()
        for secret in (SIP_PW, WIFI_PW):
            for form in _forms(secret):
                assert form not in data, (path, form)
