# uPhone boot on the phone: config (with last-good fallback) -> Wi-Fi (retry, exponential backoff) -> optional
# auto-provisioning -> board hardware -> watchdog-fed runtime loop with the serial console and the phone.
# It lives in the package (frozen with it on a custom build) and is started by the filesystem's /main.py, which
# `phonectl deploy` / `provision` write when there is none:
#     from uphone import boot
#     boot.main()
# MicroPython runs a FROZEN main.py before the filesystem's (shared/runtime/pyexec.c pyexec_file_if_exists looks
# in the frozen modules first), so no board freezes a main.py: the user's /main.py always decides what boots, and
# deleting it stops the phone from starting.
from uphone import config

# relative: the cwd is "/" on the ESP32, and on the virtual board (v1.27 VfsPosix) config.save_atomic's rename only
# works with relative paths (docs/NOTES.md)
CONFIG_PATH = "config.json"
BOARD_PATH = "board.json"
WDT_TIMEOUT_MS = 10000          # the loop passes every <= 20 ms; Wi-Fi and provisioning finish before it starts
WIFI_WAIT_MS = 10000            # per connect attempt
WIFI_BACKOFF_MS = 1000          # first pause between attempts; doubles up to WIFI_BACKOFF_MAX_MS
WIFI_BACKOFF_MAX_MS = 30000
_POLL_MS = 100

# a unit with no config yet still boots to the console, where `phonectl provision` writes one
FACTORY = {"accounts": [{"user": "uphone", "register": False}]}


def _sleep_ms(ms):
    try:
        from time import sleep_ms
    except ImportError:
        import time
        time.sleep(ms / 1000)
        return
    sleep_ms(ms)


def load_config(path=CONFIG_PATH, log=print):
    cfg, errors = config.load(path, path + ".good")
    if errors and cfg is not None:
        log("config: %s refused, using the last good config:" % path)
    elif errors:
        log("config: no usable config, factory defaults (console only):")
    for e in errors:
        log("  " + e)
    if cfg is None:
        cfg = config.with_defaults(FACTORY)
    return cfg, errors


def wifi_connect(network, wcfg, log=print, sleep_ms=_sleep_ms):
    """Join wcfg["ssid"] as a station. -> connected WLAN or None. Attempts: wcfg["retries"]; between attempts
    the pause doubles from WIFI_BACKOFF_MS to WIFI_BACKOFF_MAX_MS so a rebooting access point is not hammered."""
    if not wcfg.get("ssid"):
        log("wifi: no ssid configured")
        return None
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    host = wcfg.get("hostname")
    if host:
        try:
            network.hostname(host)              # MicroPython >= 1.20
        except (AttributeError, ValueError, OSError):
            pass
    retries = int(wcfg.get("retries", 10))
    delay = WIFI_BACKOFF_MS
    for attempt in range(1, retries + 1):
        wlan.connect(wcfg["ssid"], wcfg.get("password", ""))
        for _ in range(WIFI_WAIT_MS // _POLL_MS):
            if wlan.isconnected():
                log("wifi: connected to %s as %s" % (wcfg["ssid"], wlan.ifconfig()[0]))
                return wlan
            sleep_ms(_POLL_MS)
        try:
            status = wlan.status()
        except (AttributeError, OSError):
            status = "?"
        try:
            wlan.disconnect()
        except OSError:
            pass
        if attempt == retries:
            break
        log("wifi: attempt %d/%d failed (status %s), retrying in %d ms" % (attempt, retries, status, delay))
        sleep_ms(delay)
        delay = min(delay * 2, WIFI_BACKOFF_MAX_MS)
    log("wifi: giving up after %d attempts" % retries)
    return None


def mac_of(wlan):
    mac = wlan.config("mac")
    return "".join(["%02x" % b for b in mac])


def provision(cfg, wlan, path=CONFIG_PATH, log=print, fetch=None):
    """Fetch <provisioning.url>/<mac>.json; a valid, different config is saved atomically and returned."""
    url = cfg.get("provisioning", {}).get("url")
    if not url or wlan is None:
        return cfg
    if fetch is None:
        from uphone.provision import fetch_config as fetch
    try:
        raw = fetch(url, mac_of(wlan))
    except ValueError as e:
        log("provision: %s; keeping the current config" % e)
        return cfg
    errors = config.validate(raw)
    if errors:
        log("provision: fetched config refused:")
        for err in errors:
            log("  " + err)
        return cfg
    new = config.with_defaults(raw)
    if new == cfg:
        log("provision: config unchanged")
        return cfg
    try:
        config.save_atomic(path, raw)
    except OSError as e:
        log("provision: cannot save (%s); using it for this boot only" % e)
    log("provision: new config from %s" % url)
    return new


def make_loop(Loop, console_io, phone, wdt=None, hooks=()):
    """A Loop whose run_once feeds the watchdog and runs the hardware hooks (loop.py stays untouched)."""

    class PhoneLoop(Loop):
        def run_once(self, max_wait_ms=20):
            if wdt is not None:
                wdt.feed()
            Loop.run_once(self, max_wait_ms)
            now = self.clock()
            for fn in hooks:
                fn(now)

    return PhoneLoop(console_io, phone)


def boot(config_path=CONFIG_PATH, board_path=BOARD_PATH, console_io=None, run=True, log=print,
         sleep_ms=_sleep_ms, wdt_timeout_ms=WDT_TIMEOUT_MS, hooks=()):
    """Bring the phone up. -> dict of the parts (cfg, wlan, board, hal, phone, loop); runs forever when run."""
    import machine
    import network
    from uphone import boards
    from uphone.loop import Loop, StdioConsole
    from uphone.phone import Phone

    cfg, _ = load_config(config_path, log)
    wlan = wifi_connect(network, cfg.get("wifi", {}), log, sleep_ms)
    cfg = provision(cfg, wlan, config_path, log)
    if wlan is not None and not cfg["sip"].get("local_ip"):
        cfg["sip"]["local_ip"] = wlan.ifconfig()[0]          # "" means: the address Wi-Fi gave us
    board, note = boards.load(board_path)
    if note:
        log("board: " + note)
    phone = Phone(cfg)
    hal = None
    try:
        from uphone.hal.esp32 import Esp32Hal
        hal = Esp32Hal(machine, board, cfg, phone, log)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log("board: hardware init failed (%s): console and SIP only" % e)
    wdt = machine.WDT(timeout=wdt_timeout_ms) if wdt_timeout_ms else None
    loop = make_loop(Loop, console_io if console_io is not None else StdioConsole(), phone, wdt,
                     ((hal.poll,) if hal is not None else ()) + tuple(hooks))
    parts = {"cfg": cfg, "wlan": wlan, "board": board, "hal": hal, "phone": phone, "loop": loop, "wdt": wdt}
    if run:
        log("uphone: running")
        loop.run()
    return parts


def main(config_path=CONFIG_PATH, board_path=BOARD_PATH, hooks=()):
    """What /main.py calls: bring the phone up and run it. hooks: extra fn(now) run every loop pass (a user's own
    hardware, say)."""
    boot(config_path, board_path, hooks=hooks)
