# `make demo`, the README's first command, runs and says what happened: tones heard both ways, the DTMF digits, the
# rejected call with the status the far end really sent, a pcap with the SIP of both calls and the two WAV files.
import os
import subprocess

from tests.conftest import ROOT
from host_tools.pcap import read_pcap


def test_make_demo_reports_what_happened(tmp_path):
    r = subprocess.run(["make", "-s", "demo", "DEMO_OUT=%s" % tmp_path], cwd=ROOT, capture_output=True, text=True,
                       timeout=180)
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-2000:]
    assert out.strip().splitlines()[-1] == "demo OK", out[-3000:]
    assert "alice heard 440 Hz from bob (sent 440 Hz): OK" in out
    assert "bob heard 1000 Hz from alice (sent 1000 Hz): OK" in out
    assert "bob received DTMF: 123#" in out
    assert "bob's call to alice: rejected (486 Busy Here)" in out
    for name in ("alice_heard.wav", "bob_heard.wav", "demo.pcap"):
        assert os.path.getsize(os.path.join(str(tmp_path), name)) > 1000, name
    sip = [p for p in read_pcap(os.path.join(str(tmp_path), "demo.pcap"))]
    starts = [p[2].split(b"\r\n", 1)[0] for p in sip]
    assert sum(s.startswith(b"INVITE ") for s in starts) >= 2 and any(s.endswith(b"486 Busy Here") for s in starts)
    assert any(s.startswith(b"BYE ") for s in starts)
