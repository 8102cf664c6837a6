# uPhone boot on the phone: config (with last-good fallback) -> Wi-Fi (power save off, first join) -> the clock from
# NTP -> optional auto-provisioning over verified HTTPS -> board hardware -> watchdog-fed runtime loop with the
# serial console and the phone, where the Wi-Fi link is kept up forever and every reconnect re-registers the phone
# and moves it to its new address.
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
WDT_TIMEOUT_MS = 10000          # the loop passes every <= 20 ms: ten seconds without one is a hung phone
REPL_WDT_MS = 900000            # a host holds the REPL (see Watchdog)
BOOT_WDT_MS = 120000            # config, Wi-Fi and provisioning after a soft reset (see Watchdog)
WIFI_WAIT_MS = 21000            # the first join, two tries (provisioning needs it); then the phone starts anyway

# a unit with no config yet still boots to the console, where `phonectl provision` writes one
FACTORY = {"accounts": [{"user": "uphone", "register": False}]}


class Watchdog:
    """The ESP32's machine.WDT used the way it works: once started it cannot be stopped, WDT(timeout=) again only
    changes its timeout (esp_task_wdt_reconfigure in ports/esp32/machine_wdt.c), and it survives a soft reset (its
    task-watchdog user is a static there, and ports/esp32/main.c soft_reset_exit leaves it alone).
      - The phone's loop arms it at WDT_TIMEOUT_MS and feeds it every pass: a hung loop resets the phone, which
        boots again. The phone's console runs inside the loop, so every console command is fed too.
      - A host that interrupts the phone (Ctrl-C: mpremote, `phonectl deploy` / `provision`, a person at the REPL)
        stops the loop, and with it the feeding, for good; nothing the phone does runs in the REPL, and a soft
        reset (mpremote makes one per connection) clears Python timers. So the watchdog gets REPL_WDT_MS instead:
        longer than the slowest console job (a whole deploy at 115200 baud takes about a minute), short enough that
        a phone someone left in the REPL resets and comes back by itself. A longer session feeds it by hand:
        machine.WDT(timeout=ms).
      - After a soft reset it may still be running, with the REPL's timeout or the loop's: the boot gives itself
        BOOT_WDT_MS (config, the first Wi-Fi wait, provisioning) before the loop arms it. After a hard reset it is
        off until the loop arms it."""

    def __init__(self, machine):
        self.machine = machine
        self.wdt = None
        soft = getattr(machine, "SOFT_RESET", None)
        if soft is not None and machine.reset_cause() == soft:
            self.set(BOOT_WDT_MS)

    def set(self, ms):
        self.wdt = self.machine.WDT(timeout=ms)
        self.wdt.feed()

    def feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def for_repl(self):
        """The loop stopped for a host: the running watchdog gets the REPL's timeout (an unstarted one stays off)."""
        if self.wdt is not None:
            self.set(REPL_WDT_MS)


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


def mac_of(wlan):
    mac = wlan.config("mac")
    return "".join(["%02x" % b for b in mac])


def set_clock(cfg, log=print, platform=None, tries=3):
    """Set the RTC from time.ntp_host (micropython-lib's ntptime, frozen on every board) -> True when set.
    Only on the phone: an ESP32's RTC starts at 2000-01-01 at power-up and mbedtls checks certificate dates
    against it (MicroPython 1.27 ports/esp32/main.c: mbedtls_platform_set_time, gettimeofday), so this runs once
    Wi-Fi is up and before provisioning. The desktop runtimes and the virtual board keep the host's clock."""
    if platform is None:
        import sys
        platform = sys.platform
    if platform != "esp32":
        return False
    host = cfg.get("time", {}).get("ntp_host")
    if not host:
        log("time: no time.ntp_host: the clock is not set")
        return False
    import ntptime
    ntptime.host = host
    ntptime.timeout = 2
    err = None
    for _ in range(tries):
        try:
            ntptime.settime()
            log("time: clock set from %s" % host)
            return True
        except (OSError, ValueError) as e:     # no answer, no DNS, a short reply
            err = e
    log("time: no answer from %s (%s): the clock is not set" % (host, err))
    return False


def provision(cfg, wlan, path=CONFIG_PATH, log=print, fetch=None):
    """Fetch <provisioning.url>/<mac>.json over HTTPS (server verified against provisioning.ca); a valid,
    different config is saved atomically and returned. Any failure keeps the current config and says why."""
    url = cfg.get("provisioning", {}).get("url")
    if not url or wlan is None:
        return cfg
    if fetch is None:
        from uphone.provision import fetch_config as fetch
    try:
        raw = fetch(url, mac_of(wlan), cfg["provisioning"].get("ca", ""))
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

    class PhoneLoop(Loop):  # type: ignore[valid-type, misc]  # Loop is passed in (the vboard's own)
        def run_once(self, max_wait_ms=20):
            if wdt is not None:
                wdt.feed()
            Loop.run_once(self, max_wait_ms)
            now = self.clock()
            for fn in hooks:
                fn(now)

    return PhoneLoop(console_io, phone)


def boot(config_path=CONFIG_PATH, board_path=BOARD_PATH, console_io=None, run=True, log=print,
         sleep_ms=_sleep_ms, wdt_timeout_ms=WDT_TIMEOUT_MS, hooks=(), dog=None, parts=None, clock=None):
    """Bring the phone up. -> dict of the parts (cfg, wlan, board, hal, phone, loop, wdt); runs forever when run.
    parts: a dict filled as the parts come up (main() stops what exists when the boot is interrupted)."""
    import machine
    import network
    from uphone import boards
    from uphone.loop import Loop, StdioConsole
    from uphone.phone import Phone

    if clock is None:
        from uphone.compat import ticks_ms as clock
    if dog is None:
        dog = Watchdog(machine)
    parts = {} if parts is None else parts
    parts["wdt"] = dog

    def wait_ms(ms):
        dog.feed()                  # running after a soft reset: the boot's waits keep it fed
        sleep_ms(ms)
    cfg, _ = load_config(config_path, log)
    parts["cfg"] = cfg
    wcfg = cfg.get("wifi", {})
    station = None
    if wcfg.get("ssid"):
        from uphone.wifi import Station
        station = Station(network, wcfg, log, clock)
        station.start(clock())
        if not station.wait(WIFI_WAIT_MS, clock, wait_ms):
            log("wifi: not joined yet (status %s): the phone starts, the link comes when it can" % station.status())
    else:
        log("wifi: no ssid configured")
    wlan = station.wlan if station is not None and station.up else None
    if wlan is not None:
        set_clock(cfg, log)
    cfg = provision(cfg, wlan, config_path, log)
    # sip.local_ip "" = the address Wi-Fi gives us, whichever it is now and after every reconnect
    follow = not cfg["sip"].get("local_ip") and station is not None
    if follow:
        # follow implies a station; no address yet without Wi-Fi
        cfg["sip"]["local_ip"] = station.ip if wlan is not None and station is not None else "0.0.0.0"
    board, note = boards.load(board_path)
    if note:
        log("board: " + note)
    phone = Phone(cfg)
    parts.update(cfg=cfg, wlan=wlan, station=station, board=board, phone=phone)
    hal = None
    try:
        from uphone.hal.esp32 import Esp32Hal
        hal = Esp32Hal(machine, board, cfg, phone, log)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log("board: hardware init failed (%s): console and SIP only" % e)
    parts["hal"] = hal
    if wdt_timeout_ms:
        dog.set(wdt_timeout_ms)
    net = ()  # type: tuple
    if station is not None:
        def link(now):
            ev = station.poll(now)
            if ev is not None and ev[0] == "up":
                phone.network_changed(ev[1] if follow else None)
        net = (link,)
    loop = make_loop(Loop, console_io if console_io is not None else StdioConsole(), phone, dog,
                     net + ((hal.poll,) if hal is not None else ()) + tuple(hooks))
    parts["loop"] = loop
    if station is not None and loop.console is not None:
        loop.console.net = station      # `net`, `net reconnect` on the console
    if run:
        log("uphone: running")
        loop.run()
    return parts


def stop(parts, log=print):
    """Ctrl-C took the console: stop what the boot started without running the loop again (the REPL, not the
    phone's console, must read what the host sends next). The registrar hears an unregister; the I2S DMA, the amp
    and every socket stop; the heap is the REPL's again."""
    phone, loop, hal = parts.get("phone"), parts.get("loop"), parts.get("hal")
    if phone is not None and loop is not None:
        try:
            phone.shutdown()        # unregister and hang up: sent now, answers are not waited for
        except Exception as e:     # noqa: BLE001 - the phone is going away, the REPL must come up
            log("uphone: shutdown: %s" % e)
        phone.close()
    if hal is not None:
        hal.stop()
    parts.clear()


def main(config_path=CONFIG_PATH, board_path=BOARD_PATH, hooks=()):
    """What /main.py calls: bring the phone up and run it. hooks: extra fn(now) run every loop pass (a user's own
    hardware, say). Ctrl-C stops the phone and leaves the board in the REPL (see Watchdog)."""
    import machine
    dog = Watchdog(machine)
    parts = {}  # type: dict
    try:
        boot(config_path, board_path, hooks=hooks, dog=dog, parts=parts)
    except KeyboardInterrupt:
        dog.for_repl()
        stop(parts)
        if dog.wdt is not None:
            print("uphone: stopped by Ctrl-C; the watchdog resets the phone after %d min in the REPL"
                  % (REPL_WDT_MS // 60000))
        else:
            print("uphone: stopped by Ctrl-C")
        import gc
        gc.collect()
