# Two (or more) phones on the in-memory loopback network, driven like a person would with the console events.
from uphone import table as T
from uphone import config as cfgmod
from uphone.loopback import LoopNet, LoopRT, run
from uphone.phone import Phone


def make_cfg(user, port, rtp, rtp_span=20, **over):
    """A validated config for a phone on 127.0.0.1; `over` = {section: {key: value}} ("account" = accounts[0])."""
    raw = {"accounts": [{"user": user, "domain": "127.0.0.1"}],
           "sip": {"local_ip": "127.0.0.1", "local_port": port},
           "media": {"rtp_port_min": rtp, "rtp_port_max": rtp + rtp_span}}
    for section, values in over.items():
        if section == "account":
            raw["accounts"][0].update(values)
        else:
            raw.setdefault(section, {}).update(values)
    errors = cfgmod.validate(raw)
    assert errors == [], errors
    return cfgmod.with_defaults(raw)


class Rig:
    def __init__(self, net=None):
        self.net = net or LoopNet()
        self.phones = {}
        self.lines = {}

    def add(self, name, port, rtp, **over):
        p = Phone(make_cfg(name, port, rtp, **over))
        self.lines[name] = []
        p.add_listener(self.lines[name].append)
        p.attach(LoopRT(self.net))
        self.phones[name] = p
        return p

    def ev(self, name, event, sid=None, **args):
        return self.phones[name].user_event(sid, getattr(T, "E_" + event), args)

    def call(self, name, i=-1):
        calls = [s for s in self.phones[name].sessions() if s.kind == T.K_call]
        return calls[i] if calls else None

    def state(self, name):
        c = self.call(name)
        return T.STATES[c.state] if c is not None else "-"

    def run(self, ms, until=None):
        return run(self.net, list(self.phones.values()), ms, until=until)

    def tr(self, name):
        return [l for l in self.lines[name] if l.startswith("tr ")]
