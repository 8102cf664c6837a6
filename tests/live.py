# Simulated phones with real UDP sockets on 127.0.0.1 (the same Phone and Loop that `phonectl sim` runs),
# driven from a test: events in, lines out, the loop run until a condition holds or a bound runs out.
import time

import pytest

from uphone import table as T
from uphone.loop import Loop
from uphone.phone import Phone
from tests import peers
from tests.phone_rig import make_cfg


class Live:
    def __init__(self):
        self.phones = {}
        self.lines = {}
        self.loop = None
        self._pending = []

    def add(self, name, port, rtp, audio=None, **over):
        p = Phone(make_cfg(name, port, rtp, rtp_span=40, **over))
        self.lines[name] = []
        p.add_listener(self.lines[name].append)
        if audio is not None:
            p.set_audio(*audio)
        self.phones[name] = p
        self._pending.append(p)
        return p

    def start(self):
        self.loop = Loop(None, phones=self._pending)
        return self

    def ev(self, name, event, sid=None, **args):
        return self.phones[name].user_event(sid, getattr(T, "E_" + event), args)

    def calls(self, name):
        return [s for s in self.phones[name].sessions() if s.kind == T.K_call]

    def state(self, name):
        c = self.calls(name)
        return T.STATES[c[-1].state] if c else "-"

    def run(self, seconds, until=None):
        """Run the loop for at most `seconds`; True when `until` became true."""
        t0 = time.time()
        self.loop.run(until=lambda: (until is not None and until()) or time.time() - t0 > seconds)
        return until() if until is not None else True

    def saw(self, name, text):
        return any(text in line for line in self.lines[name])

    def stop(self):
        if self.loop is None:
            return
        for p in self.phones.values():
            try:
                p.shutdown(self.loop, wait_ms=1500)
            except Exception:
                pass
        for p in self.phones.values():
            for s in list(p.sessions()):
                p.drop_session(s)
            if p.sock is not None:
                self.loop.udp_close(p.sock)


@pytest.fixture
def live():
    """Phones on the real loop, stopped (unregistered, sockets closed) after the test."""
    lv = Live()
    yield lv
    lv.stop()


def finish(proc, timeout=15):
    """Wait for a peer process to end (bounded), killing it when it does not: -> (exit code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except Exception:
        peers.stop(proc)
        out, err = proc.communicate()
    return proc.returncode, out, err
