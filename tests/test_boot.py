# uphone/boot.py (the phone's boot, started by /main.py) on CPython with fake machine/network modules: the Wi-Fi
# station (power save off, reconnect with backoff forever), the last-good config fallback message, the clock from
# NTP before provisioning, provisioning from a real HTTPS server on 127.0.0.1, the watchdog policy and the
# watchdog-fed loop. tests/test_provision_https.py runs provisioning on both runtimes; tests/test_vboard_boot.py and
# tests/test_vboard_net.py run the boot on the virtual board.
import json
import os
import sys
import types

import pytest

from tests import test_drivers as D
from tests.pki import HttpsServer, Pki
from tests.proc import free_port
from uphone import config as C
from uphone import provision as P

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAC = "240ac4123456"
BASE = {"accounts": [{"user": "alice", "domain": "127.0.0.1"}],
        "sip": {"local_ip": "127.0.0.1", "local_port": 0},
        "wifi": {"ssid": "lab", "password": "wifi-secret"}}


def load_main():
    from uphone import boot
    return boot


class Clock:
    """Milliseconds that pass only when the code under test sleeps (or the test says so)."""

    def __init__(self):
        self.t = 0
        self.sleeps = []

    def __call__(self):
        return self.t

    def sleep(self, ms):
        self.sleeps.append(ms)
        self.t += ms


def test_station_power_save_off_and_retries_with_backoff_forever():
    from uphone import wifi
    net = D.make_network(connect_on=99)
    logs = []
    st = wifi.Station(net, {"ssid": "lab", "password": "wifi-secret", "hostname": "desk1"}, logs.append)
    clock = Clock()
    st.start(clock())
    w = net.wlans[0]
    assert w.pm == w.PM_NONE and ("config", {"pm": 0}) in net.log      # power save off, explicitly
    assert ("hostname", "desk1") in net.log and w.connects == 1
    assert st.wait(wifi.WAIT_MS, clock, clock.sleep) is False           # the boot waits once, then goes on
    # in the loop: a fresh connect after WAIT_MS, then WAIT_MS plus a pause doubling to 30 s, never giving up
    kicks = []
    for _ in range(20000):
        clock.t += 100
        st.poll(clock.t)
        if w.connects > len(kicks) + 1:
            kicks.append(clock.t)
    gaps = [b - a for a, b in zip(kicks, kicks[1:])]
    assert gaps[:6] == [wifi.WAIT_MS + d for d in (1000, 2000, 4000, 8000, 16000, 30000)], gaps
    assert set(gaps[6:]) == {wifi.WAIT_MS + wifi.BACKOFF_MAX_MS} and len(kicks) > 40     # forever
    assert w.disconnects == len(kicks) and "wifi-secret" not in " ".join(logs)
    # the link comes up: one "up" with the address, backoff back to the start; lost: one "down"
    net.connect_on = 0
    assert st.poll(clock.t) == ("up", "127.0.0.1") and st.poll(clock.t) is None
    assert st.backoff == wifi.BACKOFF_MS
    net.connect_on = 10 ** 6
    assert st.poll(clock.t) == ("down", None) and st.poll(clock.t) is None


def test_station_reconnects_when_the_console_asks():
    # `net reconnect`: the link is dropped and joined again at once, and the join is reported as after a loss
    from uphone import wifi
    net = D.make_network(connect_on=1)
    logs = []
    clock = Clock()
    st = wifi.Station(net, {"ssid": "lab"}, logs.append, clock)
    st.start(clock())
    assert st.poll(clock()) == ("up", "127.0.0.1") and st.describe() == "up 127.0.0.1"
    w = net.wlans[0]
    assert st.reconnect("10.0.0.9") == "the address comes from the access point (DHCP), not from the console"
    assert w.disconnects == 0 and w.connects == 1
    assert st.reconnect() is None
    assert w.disconnects == 1 and w.connects == 2 and "wifi: reconnecting (asked on the console)" in logs
    assert st.poll(clock()) == ("up", "127.0.0.1") and st.poll(clock()) is None


def test_config_fallback_is_printed(tmp_path):
    main = load_main()
    p = str(tmp_path / "config.json")
    C.save_atomic(p, BASE)
    with open(p, "w") as f:
        f.write(json.dumps(dict(BASE, sip={"local_port": 70000})))
    logs = []
    cfg, errors = main.load_config(p, logs.append)
    assert cfg["accounts"][0]["user"] == "alice"
    assert logs[0] == "config: %s refused, using the last good config:" % p
    assert logs[1] == "  %s: sip.local_port: expected an integer 0-65535, got 70000" % p
    os.remove(p)
    os.remove(p + ".good")
    logs = []
    cfg, errors = main.load_config(p, logs.append)
    assert cfg["accounts"][0]["user"] == "uphone" and "factory defaults" in logs[0]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def Server(pki, routes, cert="good"):
    """HTTPS on 127.0.0.1 (a certificate for 127.0.0.1 from pki's CA) with canned responses by path."""
    return HttpsServer(pki, cert, routes, port=free_port())


def with_ca(folder, pki):
    """The CA file beside the config, as provisioning.ca names it (a relative path, as on the phone)."""
    import shutil
    shutil.copy(pki.path("ca.pem"), os.path.join(str(folder), "ca.pem"))
    return os.path.join(str(folder), "ca.pem")


class PipeConsole:
    def __init__(self):
        self.r, self.w = os.pipe()
        self.pollable = self.r
        self.lines = []

    def read(self):
        return os.read(self.r, 512)

    def write(self, line):
        self.lines.append(line)


class FakeNtp(types.ModuleType):
    """micropython-lib's ntptime as boot.set_clock uses it: host, timeout, settime() (raising until `answer_on`)."""

    def __init__(self, events, answer_on=1):
        super().__init__("ntptime")
        self.host, self.timeout, self.events, self.answer_on, self.calls = "pool.ntp.org", 1, events, answer_on, 0

    def settime(self):
        self.calls += 1
        self.events.append(("settime", self.host))
        if self.calls < self.answer_on:
            raise OSError(110)


def test_boot_sets_the_clock_then_provisions_over_https(tmp_path, monkeypatch, pki):
    main = load_main()
    machine, net = D.make_machine(), D.make_network(connect_on=2)
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.setitem(sys.modules, "network", net)
    events = []
    monkeypatch.setitem(sys.modules, "ntptime", FakeNtp(events))
    monkeypatch.setattr(sys, "platform", "esp32")          # the phone: its RTC needs NTP before TLS
    p = str(tmp_path / "config.json")
    with_ca(tmp_path, pki)
    board = str(tmp_path / "board.json")
    with open(os.path.join(ROOT, "board", "generic_max98357", "board.json")) as f:
        open(board, "w").write(f.read())
    served = json.loads(json.dumps(BASE))
    served["accounts"][0]["display_name"] = "Provisioned Alice"
    with Server(pki, {}) as srv:
        prov = {"url": srv.url, "ca": "ca.pem"}
        C.save_atomic(p, dict(BASE, provisioning=prov, time={"ntp_host": "ntp.lab.example"}))
        served["provisioning"] = prov
        srv.routes["/prov/%s.json" % MAC] = (200, json.dumps(served).encode())
        logs = []
        con = PipeConsole()
        clock = Clock()
        cwd = os.getcwd()
        os.chdir(str(tmp_path))                 # provisioning.ca is relative to the cwd ("/" on the phone)
        try:
            parts = main.boot(p, board, console_io=con, run=False, log=lambda m: (logs.append(m), events.append(m)),
                              sleep_ms=clock.sleep, clock=clock)
        finally:
            os.chdir(cwd)
    try:
        # the clock first (from time.ntp_host), then the verified fetch
        assert events.index(("settime", "ntp.lab.example")) < events.index("provision: new config from %s" % srv.url)
        assert "time: clock set from ntp.lab.example" in logs
        assert srv.hits == ["/prov/%s.json" % MAC]
        assert parts["cfg"]["accounts"][0]["display_name"] == "Provisioned Alice"
        assert json.load(open(p)) == served and json.load(open(p + ".good")) == served
        assert "provision: new config from %s" % srv.url in logs
        assert net.wlans[0].connects == 2           # joined on the second try, within the boot's wait
        assert net.wlans[0].pm == 0
        assert parts["hal"] is not None and len(machine.I2S.made) == 2
        wdt = machine.WDT.made[0]
        assert wdt.timeout == main.WDT_TIMEOUT_MS and len(machine.WDT.made) == 1     # armed once, for the loop
        before = wdt.feeds
        parts["loop"].run_once(0)
        parts["loop"].run_once(0)
        assert wdt.feeds == before + 2
        os.write(con.w, b"st\n")
        parts["loop"].run_once(0)
        assert any(l.startswith("ok") for l in con.lines), con.lines
        # `net reconnect` on the console drops the Wi-Fi link and joins again; the phone hears it is back
        drops = net.wlans[0].disconnects
        os.write(con.w, b"net reconnect\n")
        parts["loop"].run_once(0)
        assert "ok net reconnecting" in con.lines and net.wlans[0].disconnects == drops + 1, con.lines
        assert con.lines.index("net back on 127.0.0.1") > con.lines.index("ok net reconnecting"), con.lines
        os.write(con.w, b"net\n")
        parts["loop"].run_once(0)
        assert con.lines[-1] == "ok net up 127.0.0.1", con.lines
    finally:
        parts["loop"].udp_close(parts["phone"].sock)
        os.close(con.r)
        os.close(con.w)


def test_watchdog_policy():
    # ESP32: a started WDT cannot be stopped and survives a soft reset; WDT(timeout=) again changes the timeout
    main = load_main()
    m = D.make_machine()
    m.SOFT_RESET, m.HARD_RESET = 5, 2
    m.reset_cause = lambda: 2
    dog = main.Watchdog(m)
    assert dog.wdt is None and m.WDT.made == []         # after a hard reset it is off until the loop arms it
    dog.for_repl()
    assert m.WDT.made == []                             # Ctrl-C before the loop: nothing is started for the REPL
    dog.set(main.WDT_TIMEOUT_MS)
    dog.feed()
    dog.for_repl()                                      # a host took the REPL: its timeout, not the loop's
    assert [w.timeout for w in m.WDT.made] == [main.WDT_TIMEOUT_MS, main.REPL_WDT_MS]
    assert main.REPL_WDT_MS > 10 * 60000 and main.REPL_WDT_MS <= 30 * 60000
    m = D.make_machine()
    m.SOFT_RESET = 5
    m.reset_cause = lambda: 5
    dog = main.Watchdog(m)                              # after a soft reset it may be running: time to boot
    assert [w.timeout for w in m.WDT.made] == [main.BOOT_WDT_MS] and m.WDT.made[0].feeds == 1


def test_set_clock_asks_time_ntp_host_only_on_the_phone(monkeypatch):
    main = load_main()
    events = []
    ntp = FakeNtp(events, answer_on=3)
    monkeypatch.setitem(sys.modules, "ntptime", ntp)
    cfg = C.with_defaults(dict(BASE, time={"ntp_host": "10.0.0.1"}))
    logs = []
    assert main.set_clock(cfg, logs.append, platform="esp32") is True
    assert events == [("settime", "10.0.0.1")] * 3 and logs == ["time: clock set from 10.0.0.1"]   # 2 misses
    assert C.with_defaults(BASE)["time"]["ntp_host"] == "pool.ntp.org"
    # a desktop runtime or the virtual board keeps the host's clock
    events.clear()
    assert main.set_clock(cfg, logs.append, platform="linux") is False and events == []
    # "" = never asked
    logs = []
    assert main.set_clock(C.with_defaults(dict(BASE, time={"ntp_host": ""})), logs.append, platform="esp32") is False
    assert events == [] and logs == ["time: no time.ntp_host: the clock is not set"]
    # no answer at all: said, and the boot goes on (provisioning then refuses the unset clock, below)
    ntp.calls, ntp.answer_on, logs = 0, 99, []
    assert main.set_clock(cfg, logs.append, platform="esp32") is False
    assert logs == ["time: no answer from 10.0.0.1 (110): the clock is not set"] and ntp.calls == 3


def test_set_clock_with_micropython_lib_ntptime(mp):
    # the frozen ntptime (board/unix/manifest.py requires it, as the boards do) answers boot.set_clock: an NTP reply
    # (a fake socket: port 123 needs root) for 2026-05-01 12:00:00 UTC sets machine.RTC to that date
    out = mp("""
import sys, struct, ntptime
from uphone import boot, config
class Sock:
    def __init__(self, *a): pass
    def settimeout(self, t): pass
    def sendto(self, q, a): assert q[0] == 0x1b and a == ("ntp.lab", 123)
    def recv(self, n):
        r = bytearray(48)
        struct.pack_into("!I", r, 40, 1777636800 + 2208988800)
        return bytes(r)
    def close(self): pass
class S:
    AF_INET, SOCK_DGRAM = 2, 2
    socket = Sock
    def getaddrinfo(h, p): return [(2, 2, 0, "", (h, p))]
ntptime.socket = S
class RTC:
    def datetime(self, t): print("RTC", t)
class Machine:
    pass
Machine.RTC = RTC
sys.modules["machine"] = Machine
cfg = config.with_defaults({"accounts": [{"user": "a"}], "time": {"ntp_host": "ntp.lab"}})
print(boot.set_clock(cfg, print, platform="esp32"))
""")
    assert "RTC (2026, 5, 1, 5, 12, 0, 0, 0)" in out and "time: clock set from ntp.lab" in out, out


def test_provision_failures_keep_config(tmp_path, pki):
    main = load_main()
    net = D.make_network()
    wlan = net.WLAN(0)
    cfg = C.with_defaults(BASE)
    ca = with_ca(tmp_path, pki)
    with Server(pki, {"/prov/%s.json" % MAC: (200, b'{"accounts": [{"user": 5}]}')}) as srv:
        cfg["provisioning"] = {"url": srv.url, "ca": ca}
        logs = []
        assert main.provision(cfg, wlan, str(tmp_path / "c.json"), logs.append) is cfg
        assert logs == ["provision: fetched config refused:", "  accounts[0].user: expected a non-empty string, got 5"]
        cfg["provisioning"] = {"url": srv.url + "/missing", "ca": ca}
        logs = []
        assert main.provision(cfg, wlan, str(tmp_path / "c.json"), logs.append) is cfg
        assert logs[0].startswith("provision: HTTP 404 for https://127.0.0.1:")
    assert not os.path.exists(str(tmp_path / "c.json"))


def test_unset_clock_refuses_before_connecting(tmp_path, pki, monkeypatch):
    # an ESP32 whose NTP failed says 2000: every certificate would be "not yet valid", so say why instead
    monkeypatch.setattr(P, "clock_year", lambda: 2000)
    with Server(pki, {}) as srv:
        with pytest.raises(ValueError) as e:
            P.fetch_config(srv.url, MAC, with_ca(tmp_path, pki))
    assert "the clock says 2000" in str(e.value) and srv.hits == []


def test_ca_files_pem_der_and_garbage(tmp_path, pki):
    with open(pki.path("ca.der"), "rb") as f:
        der = f.read()
    assert P.load_ca(pki.path("ca.der")) == [der]
    assert P.load_ca(pki.path("ca.pem")) == [der]
    both = tmp_path / "two.pem"
    both.write_bytes(open(pki.path("other_ca.pem"), "rb").read() + b"\n" + open(pki.path("ca.pem"), "rb").read())
    assert P.load_ca(str(both))[1] == der and len(P.load_ca(str(both))) == 2
    (tmp_path / "junk.pem").write_bytes(b"hello")
    with pytest.raises(ValueError) as e:
        P.load_ca(str(tmp_path / "junk.pem"))
    assert "neither PEM" in str(e.value)
    (tmp_path / "big.pem").write_bytes(b"x" * (P.MAX_CA + 1))
    with pytest.raises(ValueError) as e:
        P.load_ca(str(tmp_path / "big.pem"))
    assert "larger than" in str(e.value)


def test_http_parsing_and_limits(tmp_path, pki):
    assert P.split_url("https://h:8443/a/b") == ("h", 8443, "/a/b")
    assert P.split_url("https://h") == ("h", 443, "/")
    for bad, why in (("http://h/", "plain http:// is refused"), ("ftp://h/", "must start with https://"),
                     ("https://h:x/", "bad port"), ("https:///p", "no host")):
        with pytest.raises(ValueError) as e:
            P.split_url(bad)
        assert why in str(e.value)
    assert P.config_url("https://h/p/", "24:0A:C4:12:34:56") == "https://h/p/240ac4123456.json"
    st, hd, body = P.parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nX: y\r\n\r\n{}extra")
    assert (st, hd["x"], body) == (200, "y", b"{}")
    for bad, why in ((b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "chunked"),
                     (b"HTTP/1.0 200 OK\r\nContent-Length: 99999\r\n\r\n", "too large"),
                     (b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n{}", "cut short"),
                     (b"SSH-2.0\r\n\r\n", "not an HTTP"),
                     (b"HTTP/1.0 200 OK\r\n", "incomplete")):
        with pytest.raises(ValueError) as e:
            P.parse_response(bad)
        assert why in str(e.value)
    with pytest.raises(ValueError) as e:
        P.fetch_config("https://127.0.0.1:1/", MAC, with_ca(tmp_path, pki), timeout_s=2)
    assert "cannot fetch" in str(e.value)
