# make demo: two simulated phones on 127.0.0.1 call each other with audio, and the demo says what happened.
import json
import os
import sys
import time

from host_tools import tablec
from host_tools.phoneproc import free_port, free_range

FIRMWARE = os.path.join(tablec.ROOT, "firmware")
OUT = os.path.join(tablec.ROOT, "demo_out")


def register(sub):
    p = sub.add_parser("demo", help="two simulated phones call each other over loopback, with audio",
                       description="alice calls bob (auto-answer), holds, resumes, sends DTMF, hangs up; bob "
                                   "calls alice, who rejects. Prints transitions, audio analysis and a pcap path.")
    p.add_argument("--out", default=OUT, help="folder for the pcap and WAV files (default demo_out/)")
    p.set_defaults(func=run)


def phone_config(name, port, rtp, tone, sink, auto_answer):
    return {
        "accounts": [{"user": name, "domain": "127.0.0.1", "display_name": name.title()}],
        "sip": {"local_ip": "127.0.0.1", "local_port": port},
        "media": {"codecs": ["PCMU", "PCMA"], "dtmf": "rfc4733", "rtp_port_min": rtp, "rtp_port_max": rtp + 20},
        "audio": {"source": "tone:%d" % tone, "sink": sink},
        "features": {"auto_answer": auto_answer, "auto_answer_delay_ms": 300, "tones_country": "eu"},
    }


class Demo:
    def __init__(self, out):
        if FIRMWARE not in sys.path:
            sys.path.insert(0, FIRMWARE)
        from uphone import config as cfgmod
        from uphone.phone import Phone
        from uphone.loop import Loop
        from uphone.hal.desktop import WavSource, WavSink
        from host_tools.pcap import PcapWriter
        os.makedirs(out, exist_ok=True)
        self.out = out
        self.lines = []
        self.phones = {}
        self.sinks = {}
        self.ports = {}
        for name, tone, aa in (("alice", 1000, False), ("bob", 440, True)):
            port, rtp = free_port(), free_range(22)     # two demos (or a demo and the tests) never collide
            self.ports[name] = port
            raw = phone_config(name, port, rtp, tone, os.path.join(out, "%s_heard.wav" % name), aa)
            errors = cfgmod.validate(raw)
            if errors:
                raise SystemExit("demo config for %s is invalid: %s" % (name, errors))
            with open(os.path.join(out, "%s.json" % name), "w") as f:
                json.dump(raw, f, indent=2)
            cfg = cfgmod.with_defaults(raw)
            p = Phone(cfg, base_dir=out)
            sink = WavSink(cfg["audio"]["sink"], 8000)
            p.set_audio(WavSource(cfg["audio"]["source"], 8000), sink)
            self.sinks[name] = sink
            p.add_listener(lambda line, n=name: self._line(n, line))
            self.phones[name] = p
        self.loop = Loop(None, phones=list(self.phones.values()))
        self.loop.pcap = PcapWriter(os.path.join(out, "demo.pcap"))

    def _line(self, who, line):
        self.lines.append((who, line))
        print("  %-5s | %s" % (who, line), flush=True)

    def state(self, who, sid=None):
        p = self.phones[who]
        from uphone import table as T
        calls = [s for s in p.sessions() if s.kind == T.K_call and (sid is None or s.sid == sid)]
        return T.STATES[calls[-1].state] if calls else "-"

    def ev(self, who, event, **args):
        from uphone import table as T
        print("  %-5s > ev %s %s" % (who, event, " ".join("%s=%s" % kv for kv in args.items())), flush=True)
        res, s, why = self.phones[who].user_event(None, getattr(T, "E_" + event), args)
        if s is None:
            print("  %-5s < err %s" % (who, why))
        return res

    def run_until(self, cond, seconds):
        t0 = time.time()
        self.loop.run(until=lambda: cond() or time.time() - t0 > seconds)
        return cond()

    def wait(self, seconds):
        t0 = time.time()
        self.loop.run(until=lambda: time.time() - t0 > seconds)

    def close(self):
        for p in self.phones.values():
            p.shutdown(self.loop, wait_ms=500)
        for s in self.sinks.values():
            s.close()
        self.loop.pcap.close()


def analyse(path, rate=8000):
    """(dominant frequency Hz, seconds of audio) of a WAV the phone wrote."""
    from uphone.media.goertzel import dominant_freq
    from uphone.media.wav import WavReader
    with open(path, "rb") as f:
        r = WavReader(f)
        data = bytearray(r.rate * 2 * 60)
        n = r.readinto(data)
    pcm = data[:n]
    # skip silence before the call was answered: analyse the loudest second
    best, best_e = 0, -1
    for off in range(0, max(1, len(pcm) - rate * 2), rate):
        seg = pcm[off:off + rate * 2]
        e = sum(abs(int.from_bytes(seg[i:i + 2], "little", signed=True)) for i in range(0, len(seg), 16))
        if e > best_e:
            best, best_e = off, e
    seg = pcm[best:best + rate * 2]
    return dominant_freq(seg, rate), len(pcm) / (2.0 * rate)


def run(args):
    d = Demo(args.out)
    ok = True
    print("== call 1: alice calls bob; bob auto-answers; hold, resume, DTMF, hang up")
    print("== alice on 127.0.0.1:%d, bob on 127.0.0.1:%d" % (d.ports["alice"], d.ports["bob"]))
    d.ev("alice", "MakeCall", target="sip:bob@127.0.0.1:%d" % d.ports["bob"])
    ok &= d.run_until(lambda: d.state("alice") == "Active" and d.state("bob") == "Active", 10)
    d.wait(2.0)
    d.ev("alice", "HoldCall")
    ok &= d.run_until(lambda: d.state("alice") == "OnHold" and not d.phones["alice"].current_call().ctx.txns, 5)
    d.wait(1.0)
    d.ev("alice", "ResumeCall")
    ok &= d.run_until(lambda: d.state("alice") == "Active", 5)
    d.ev("alice", "SendDTMF", digits="123#")
    d.wait(2.0)
    d.ev("alice", "HangupCall")
    ok &= d.run_until(lambda: d.state("alice") in ("-", "Idle") and d.state("bob") in ("-", "Idle"), 10)
    print("== call 2: bob calls alice; alice rejects it")
    d.ev("bob", "MakeCall", target="sip:alice@127.0.0.1:%d" % d.ports["alice"])
    ok &= d.run_until(lambda: d.state("alice") == "Ringing", 5)
    d.ev("alice", "RejectCall")
    ok &= d.run_until(lambda: d.state("bob") in ("-", "Idle"), 5)
    d.close()
    print("== what happened")
    for who, other, sent in (("alice", "bob", 440), ("bob", "alice", 1000)):
        f, secs = analyse(os.path.join(args.out, "%s_heard.wav" % who))
        print("  %s heard %.0f Hz from %s (sent %d Hz): %s; %.1f s recorded"
              % (who, f, other, sent, "OK" if abs(f - sent) < 30 else "WRONG", secs))
        ok &= abs(f - sent) < 30
    for who, line in d.lines:
        if line.startswith("media") and " done " in line:
            print("  %s %s" % (who, line))
    digits = [l for w, l in d.lines if w == "bob" and l.startswith("dtmf")]
    print("  bob received DTMF: %s" % "".join(l.split()[-1] for l in digits))
    ok &= "".join(l.split()[-1] for l in digits) == "123#"
    rejected = [l for w, l in d.lines if w == "bob" and "Failed(Rejected)" in l]
    answer = [l.split(None, 3)[3] for w, l in d.lines if w == "bob" and l.startswith("resp c2 invite ")]
    print("  bob's call to alice: %s" % (("rejected (%s)" % answer[-1]) if rejected and answer else "NOT rejected"))
    ok &= bool(rejected) and bool(answer)
    print("  SIP capture: %s (open with Wireshark)" % os.path.join(args.out, "demo.pcap"))
    print("demo %s" % ("OK" if ok else "FAILED"))
    return 0 if ok else 1
