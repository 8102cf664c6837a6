# The runtime loop's own duties: name resolution is cached (a blocking DNS query per packet would stall a phone).
from uphone import loop as L


def test_resolve_caches_and_expires(monkeypatch):
    calls = []
    real = L.socket.getaddrinfo

    def counting(host, port, *a):
        calls.append((host, port))
        return real(host, port, *a)
    monkeypatch.setattr(L.socket, "getaddrinfo", counting)
    t = [0]
    lp = L.Loop(None, phones=[], clock=lambda: t[0])
    for _ in range(100):
        assert lp.resolve(("127.0.0.1", 5060, "udp"))[1] == 5060
    assert len(calls) == 1
    t[0] += 300001                   # five minutes later the name is looked up again
    lp.resolve(("127.0.0.1", 5060, "udp"))
    assert len(calls) == 2
    for port in range(6000, 6100):  # bounded: many peers do not grow it without limit
        lp.resolve(("127.0.0.1", port))
    assert len(lp._dns) <= 64
