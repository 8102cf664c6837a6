# Console line protocol: every line gets exactly one ok/err; malformed input changes nothing.
import pytest

from uphone.console import Console, split_args


def make():
    out = []
    c = Console(None, out.append)
    c.handle_line("selftest on")
    c.handle_line("new call UAC")
    del out[:]
    return c, out


@pytest.mark.parametrize("line, err", [
    ("bogus", "err unknown command"),
    ("ev", "err usage"),
    ("ev NoSuchEvent", "err unknown event"),
    ("ev MakeCall target", "err bad argument"),
    ('ev MakeCall target="sip:x', "err unterminated quote"),
    ("selftest maybe", "err usage"),
    ("new nokind", "err usage"),
    ("cond t1 +Nope", "err cond"),
    ("fail NoAction", "err usage"),
    ("ev DialogOPTIONS", "err DialogOPTIONS is answered by the SIP/media core"),
    ("ev t9 MakeCall", "err no session t9"),
    ("\x00\xff garbage \x1b[A", "err unknown command"),
])
def test_malformed_lines_get_err_and_change_nothing(line, err):
    c, out = make()
    c.handle_line(line)
    assert len(out) == 1 and out[0].startswith(err), out
    del out[:]
    c.handle_line("st")
    assert out == ["st t1 call UAC Idle -", "ok 1 sessions"]


def test_transition_lines_and_status():
    c, out = make()
    c.handle_line("ev MakeCall target=sip:bob@127.0.0.1")
    assert out == ["tr t1 Idle MakeCall Initiating CreateDialog,CreateMediaSession,GenerateLocalSDP,SendINVITE",
                   "ok t1 Initiating"]
    del out[:]
    c.handle_line("st")
    assert out == ["st t1 call UAC Initiating HasMediaSession", "ok 1 sessions"]


def test_live_mode_without_phone_says_so():
    out = []
    c = Console(None, out.append)
    c.handle_line("ev MakeCall target=sip:x@127.0.0.1")
    assert out == ["err no phone running (selftest on for the table self-test)"]
    out.clear()
    c.handle_line("new call")
    assert out[0].startswith("err new works only in self-test mode")


def test_split_args():
    assert split_args('ev MakeCall target="sip:a b@x"  k=v') == ["ev", "MakeCall", "target=sip:a b@x", "k=v"]
    with pytest.raises(ValueError):
        split_args('a "b')
