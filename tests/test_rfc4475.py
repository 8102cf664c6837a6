# RFC 4475 torture messages sent to a phone as UDP datagrams: each gets the answer EXPECTED.tsv names (or none),
# and the phone still answers an OPTIONS afterwards. The phone under test is the real Phone on the loopback net.
import os

import pytest

from uphone.sip import parse as P
from tests.phone_rig import Rig
from tests.conftest import shared_dir

DIR = shared_dir("conformance", "rfc4475")


def expected():
    rows = []
    with open(os.path.join(DIR, "EXPECTED.tsv")) as f:
        for line in f:
            if line.startswith("#") or line.startswith("file\t") or not line.strip():
                continue
            name, section, cls, ua, title = line.rstrip("\n").split("\t")
            rows.append((name, section, cls, ua, title))
    return rows


class CatchAll(dict):
    """Loopback sockets where every address nobody bound is the test's: torture messages carry odd Via hosts."""

    def __init__(self, sink):
        dict.__init__(self)
        self.sink = sink

    def get(self, key, default=None):
        h = dict.get(self, key)
        return h if h is not None else self.sink


def send(rig, data, src=("127.0.0.1", 5099)):
    rig.net.queue.append((rig.net.t, data, src, ("127.0.0.1", 5064)))


OPTIONS = (b"OPTIONS sip:user@127.0.0.1:5064 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKalive%d\r\n"
           b"Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=9\r\nTo: <sip:bob@127.0.0.1>\r\n"
           b"Call-ID: alive-%d@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize("name,section,cls,ua,title", expected(), ids=[r[0] for r in expected()])
def test_torture_message(name, section, cls, ua, title):
    got = []
    rig = Rig()
    # only what the phone's SIP socket sends: the auto-answered calls also send RTP
    rig.net.socks = CatchAll(lambda d, a: got.append(d) if a == ("127.0.0.1", 5064) else None)
    # the torture messages are addressed to sip:user@example.com: the phone is that user (one it is not gets 404)
    rig.add("bob", 5064, 21100, features={"auto_answer": True, "auto_answer_delay_ms": 0}, account={"user": "user"})
    with open(os.path.join(DIR, name), "rb") as f:
        data = f.read()
    # the parser alone: 'valid' must parse, 'invalid' must be refused (that is what makes the 400 or the drop)
    if cls == "valid" and name != "dblreq.dat":
        P.parse(data)
    elif cls == "invalid" and name != "baddate.dat":
        with pytest.raises(P.ParseError):
            P.parse(data)
    send(rig, data)
    rig.run(300)
    codes = []
    for d in got:
        # a 400 echoes the request's broken From/To/CSeq (RFC 3261 8.2.6), so read the status line only
        assert d.startswith(b"SIP/2.0 ") or d.split(b" ", 1)[0] in (b"ACK", b"BYE"), d[:80]
        if d.startswith(b"SIP/2.0 "):
            codes.append(int(d[8:11]))
    finals = [c for c in codes if c >= 200]
    allowed = ua.split("|")
    if "drop" in allowed and not finals and not codes:
        pass
    elif "any" in allowed and finals and 400 not in finals:
        pass
    else:
        assert finals, "%s (%s): expected %s, the phone answered nothing" % (name, title, ua)
        assert str(finals[0]) in allowed, "%s (%s): expected %s, got %s" % (name, title, ua, codes)
        if name == "dblreq.dat":
            assert len(finals) == 1, "only the first request of the datagram is answered: %s" % codes
    if "drop" not in allowed and "any" not in allowed:
        assert len(set(finals)) == 1, "one answer per request: %s" % codes
    # the phone is still up and answers the next request
    del got[:]
    send(rig, OPTIONS % (1, 1))
    rig.run(100)
    assert any(P.parse(d).status == 200 for d in got), "the phone stopped answering after %s" % name
