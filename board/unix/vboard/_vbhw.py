# Virtual board: the bus between the simulated hardware (machine.py, network.py here) and the supervisor
# (host_tools/virtual_board.py), which plays the parts of the chip that outlive this process: the watchdog timer,
# the reset line, the Wi-Fi access point and the test's fault switches.
# One loopback UDP socket: we send "topic args..." datagrams to UPHONE_VB_CTRL; the supervisor pushes commands back
# ("net up 127.0.0.2", "i2s 1 stall on", ...) which poll() hands to the handler registered for their first word.
# Runs inside the child MicroPython; the DMA thread of machine.I2S never calls poll() (one socket, one reader).
import os
import socket
import time

_ctrl = os.getenv("UPHONE_VB_CTRL")      # "127.0.0.1:port" of the supervisor; None outside a virtual board
RESET_CAUSE = int(os.getenv("UPHONE_VB_RESET") or 1)      # machine.PWRON_RESET unless the supervisor says else
BOARD_ID = os.getenv("UPHONE_VB_ID") or "0"
# which board's parts are fitted around the chip (virtual_board --board): "" = a bare module, nothing on the I2C bus,
# no external pull-ups, the stock image (no i2s_duplex)
BOARD = os.getenv("UPHONE_VB_BOARD") or ""

_sock = None
_dest = None
_handlers = {}
_pending = []           # commands that came before their handler was registered
_last_poll = 0
_poller = None


def attached():
    return _ctrl is not None


def _open():
    global _sock, _dest, _poller
    import select
    host, port = _ctrl.rsplit(":", 1)
    _dest = socket.getaddrinfo(host, int(port))[0][-1]
    _sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _sock.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
    _poller = select.poll()
    _poller.register(_sock, select.POLLIN)
    # handshake: what the supervisor keeps across a soft reset (a joined Wi-Fi station) arrives before "welcome"
    _sock.sendto(b"hello", _dest)
    end = time.ticks_add(time.ticks_ms(), 2000)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        if not _poller.poll(100):
            continue
        words = _sock.recv(512).decode().split()
        if words == ["welcome"]:
            break
        _pending.append(words)


def send(text):
    """One datagram to the supervisor (nothing when this is not a virtual board)."""
    if _ctrl is None:
        return
    if _sock is None:
        _open()
    _sock.sendto(text if isinstance(text, bytes) else text.encode(), _dest)


def on(topic, fn):
    """fn(words) runs (from poll(), on the caller's thread) for every pushed command whose first word is topic."""
    _handlers[topic] = fn
    if _ctrl is not None and _sock is None:
        _open()
    for words in [w for w in _pending if w[0] == topic]:
        _pending.remove(words)
        fn(words)


def poll(force=False):
    """Take the supervisor's pushed commands. Cheap enough for every loop pass: at most one poll per 20 ms."""
    global _last_poll
    if _sock is None:
        return
    now = time.ticks_ms()
    if not force and time.ticks_diff(now, _last_poll) < 20:
        return
    _last_poll = now
    while _poller.poll(0):
        try:
            data = _sock.recv(512)
        except OSError:
            return
        words = data.decode().split()
        fn = _handlers.get(words[0]) if words else None
        if fn is not None:
            fn(words)
