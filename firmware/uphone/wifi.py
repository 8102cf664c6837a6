# Wi-Fi station for the phone: join at boot, power save off, and keep the link up for as long as the phone runs,
# telling the boot code each time it comes back (maybe with a new address) so the phone re-registers and moves.
from uphone.compat import TYPE_CHECKING, const, ticks_add, ticks_diff, ticks_ms

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

WAIT_MS = const(10000)          # a join that has not worked after this gets a fresh connect()
BACKOFF_MS = const(1000)        # pause added before the next fresh connect(); doubles up to BACKOFF_MAX_MS
BACKOFF_MAX_MS = const(30000)
_POLL_MS = const(100)


class Station:
    """The station interface, never given up on.
    The ESP32 driver re-joins by itself after a loss for as long as a connect() stands (MicroPython v1.27
    ports/esp32/network_wlan.c: the STA_DISCONNECTED handler calls esp_wifi_connect() again, forever unless
    config(reconnects=n)). What it does not do is start over when a join keeps failing, or tell anyone the address
    it got: poll() does both. A join that has not worked for WAIT_MS gets a fresh disconnect()/connect(), then
    again after WAIT_MS plus a pause that doubles from BACKOFF_MS to BACKOFF_MAX_MS, forever (an access point
    that reboots is not hammered, and a phone whose router was off for an hour still comes back)."""

    def __init__(self, network, wcfg, log=print, clock=ticks_ms):
        self.net, self.cfg, self.log, self.clock = network, wcfg, log, clock
        self.wlan = None  # type: Any  # network.WLAN once started
        self.up = False
        self.ip = None
        self.backoff = BACKOFF_MS
        self.retry_at = 0  # type: Any  # a ticks_ms value
        self.tries = 0

    def start(self, now):
        net, cfg = self.net, self.cfg
        wlan = net.WLAN(net.STA_IF)
        self.wlan = wlan
        wlan.active(True)
        host = cfg.get("hostname")
        if host:
            try:
                net.hostname(host)              # MicroPython >= 1.20
            except (AttributeError, ValueError, OSError):
                pass
        # Power save off. ESP-IDF starts a station in modem sleep (WIFI_PS_MIN_MODEM, its default: the radio only
        # wakes for DTIM beacons, so the access point holds packets for the phone up to a beacon interval or more,
        # 100-300 ms and beyond: late RTP, late SIP). MicroPython v1.27 maps config(pm=WLAN.PM_NONE) to
        # esp_wifi_set_ps(WIFI_PS_NONE) (network_wlan.c); ESP-IDF Wi-Fi guide, "Station Sleep".
        try:
            wlan.config(pm=wlan.PM_NONE)
        except (AttributeError, ValueError, TypeError, OSError) as e:
            self.log("wifi: cannot turn power save off (%s)" % e)
        try:
            wlan.config(reconnects=-1)          # re-join forever after a loss (the driver's default, said here)
        except (AttributeError, ValueError, TypeError, OSError):
            pass
        self._connect(now)

    def _connect(self, now):
        self.tries += 1
        self.wlan.connect(self.cfg["ssid"], self.cfg.get("password", ""))
        self.retry_at = ticks_add(now, WAIT_MS)

    def status(self):
        try:
            return self.wlan.status()
        except (AttributeError, OSError):
            return "?"

    def describe(self):
        """The console's `net`."""
        return ("up %s" % self.ip) if self.up else "down (status %s)" % self.status()

    def reconnect(self, ip=None):
        """The console's `net reconnect`: drop the link and join again now, with the backoff back at its start. The
        address the join brings reaches the phone as after any loss (poll() says "up" once it is joined). -> None,
        or why not: a board's address comes from the access point, so ip is refused."""
        if ip is not None:
            return "the address comes from the access point (DHCP), not from the console"
        if self.wlan is None:
            return "Wi-Fi is not started"
        self.log("wifi: reconnecting (asked on the console)")
        try:
            self.wlan.disconnect()
        except OSError:
            pass
        self.up = False
        self.backoff = BACKOFF_MS
        self._connect(self.clock())
        return None

    def poll(self, now):
        """Every loop pass. -> ("up", address) when the link has come up, ("down", None) when it was lost, else
        None."""
        if self.wlan is None:
            return None
        if self.wlan.isconnected():
            if self.up:
                return None
            self.up = True
            self.ip = self.wlan.ifconfig()[0]
            self.backoff = BACKOFF_MS
            self.log("wifi: connected to %s as %s" % (self.cfg["ssid"], self.ip))
            return ("up", self.ip)
        if self.up:
            self.up = False
            self.retry_at = ticks_add(now, WAIT_MS)
            self.log("wifi: link lost (status %s), joining again" % self.status())
            return ("down", None)
        if ticks_diff(now, self.retry_at) >= 0:
            self.log("wifi: not connected after %d ms (status %s), connecting again; the next try waits %d ms more"
                     % (WAIT_MS, self.status(), self.backoff))
            try:
                self.wlan.disconnect()
            except OSError:
                pass
            self._connect(now)
            self.retry_at = ticks_add(self.retry_at, self.backoff)
            self.backoff = min(self.backoff * 2, BACKOFF_MAX_MS)
        return None

    def wait(self, ms, clock, sleep_ms):
        """Poll until the link is up or ms have passed (the boot's first join). -> True when up."""
        start = clock()
        while not self.up and ticks_diff(clock(), start) < ms:
            self.poll(clock())
            if not self.up:
                sleep_ms(_POLL_MS)
        return self.up
