# uphone/boot.py (the phone's boot, started by /main.py) on CPython with fake machine/network modules: the Wi-Fi
# station (power save off, reconnect with backoff forever), the last-good config fallback message, provisioning
# from a real HTTP server on 127.0.0.1, the watchdog policy and the watchdog-fed loop. tests/test_vboard_boot.py and
# tests/test_vboard_net.py run the same code on the virtual board.
import http.server
import json
import os
import threading

import pytest

from tests import test_drivers as D
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


class Server:
    """http.server on 127.0.0.1 with canned responses by path."""

    def __init__(self, routes):
        self.routes = routes
        self.hits = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                code, body = outer.routes.get(self.path, (404, b"not here"))
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/prov" % self.httpd.server_address[1]
        self.t = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.httpd.shutdown()
        self.httpd.server_close()


class PipeConsole:
    def __init__(self):
        self.r, self.w = os.pipe()
        self.pollable = self.r
        self.lines = []

    def read(self):
        return os.read(self.r, 512)

    def write(self, line):
        self.lines.append(line)


def test_boot_provisions_from_local_http_server(tmp_path, monkeypatch):
    main = load_main()
    machine, net = D.make_machine(), D.make_network(connect_on=2)
    monkeypatch.setitem(__import__("sys").modules, "machine", machine)
    monkeypatch.setitem(__import__("sys").modules, "network", net)
    p = str(tmp_path / "config.json")
    board = str(tmp_path / "board.json")
    with open(os.path.join(ROOT, "board", "generic_max98357", "board.json")) as f:
        open(board, "w").write(f.read())
    served = json.loads(json.dumps(BASE))
    served["accounts"][0]["display_name"] = "Provisioned Alice"
    with Server({"/prov/%s.json" % MAC: (200, json.dumps(served).encode())}) as srv:
        C.save_atomic(p, dict(BASE, provisioning={"url": srv.url}))
        served["provisioning"] = {"url": srv.url}
        srv.routes["/prov/%s.json" % MAC] = (200, json.dumps(served).encode())
        logs = []
        con = PipeConsole()
        clock = Clock()
        parts = main.boot(p, board, console_io=con, run=False, log=logs.append, sleep_ms=clock.sleep, clock=clock)
    try:
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


def test_provision_failures_keep_config(tmp_path):
    main = load_main()
    net = D.make_network()
    wlan = net.WLAN(0)
    cfg = C.with_defaults(BASE)
    with Server({"/prov/%s.json" % MAC: (200, b'{"accounts": [{"user": 5}]}')}) as srv:
        cfg["provisioning"] = {"url": srv.url}
        logs = []
        assert main.provision(cfg, wlan, str(tmp_path / "c.json"), logs.append) is cfg
        assert logs == ["provision: fetched config refused:", "  accounts[0].user: expected a non-empty string, got 5"]
        cfg["provisioning"] = {"url": srv.url + "/missing"}
        logs = []
        assert main.provision(cfg, wlan, str(tmp_path / "c.json"), logs.append) is cfg
        assert logs[0].startswith("provision: HTTP 404 for http://127.0.0.1:")
    assert not os.path.exists(str(tmp_path / "c.json"))


def test_http_parsing_and_limits():
    assert P.split_url("http://h:8080/a/b") == ("h", 8080, "/a/b")
    assert P.split_url("http://h") == ("h", 80, "/")
    with pytest.raises(ValueError):
        P.split_url("https://h/")
    assert P.config_url("http://h/p/", "24:0A:C4:12:34:56") == "http://h/p/240ac4123456.json"
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
        P.fetch_config("http://127.0.0.1:1/", MAC, timeout_s=2)
    assert "cannot fetch" in str(e.value)
