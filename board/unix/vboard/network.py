# Virtual board: the `network` module of a simulated ESP32 station (the unix port has none). Behaviour copied from
# MicroPython v1.27 ports/esp32/network_wlan.c and modnetwork_globals.h:
#   - connect() only starts the join; isconnected() turns true when the station has an address (IP_EVENT_STA_GOT_IP)
#   - once connect() was called the driver re-joins by itself after every loss, forever unless config(reconnects=n)
#     (the WIFI_EVENT_STA_DISCONNECTED handler calls esp_wifi_connect() again); disconnect() stops that
#   - status(): STAT_GOT_IP when connected; NO_AP_FOUND / WRONG_PASSWORD pass through; otherwise STAT_CONNECTING
#     while a join is requested; STAT_IDLE after disconnect()
#   - config('pm') defaults to PM_PERFORMANCE (ESP-IDF's default modem sleep, WIFI_PS_MIN_MODEM)
# The access point is the supervisor (host_tools/virtual_board.py): it hands out a loopback address (127.x.y.z, so
# the phone's sockets really bind to it) and a test takes the link down and brings it back, maybe with a new
# address. Packets are not cut while the link is "down": what the firmware sees is the driver's view (events, status,
# address), which is what it must react to.
import _vbhw

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_CONNECT_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204
_ASSOC_LEAVE = 8

_hostname = ["mpy-esp32"]
# the station: join requested, has an address, last disconnect reason, reconnect budget (0 = forever)
_sta = {"requested": False, "connected": False, "reason": 0, "ip": "0.0.0.0", "reconnects": 0, "tries": 0,
        "active": False, "pm": 1, "ssid": ""}


def _event(words):
    # pushed by the supervisor: "wifi got_ip <ip>" | "wifi lost <reason>" | "wifi resume <ssid hex> <ip or ->"
    if len(words) < 3:
        return
    if words[1] == "resume":
        # after a soft reset: the driver kept the station joined (ports/esp32/main.c does not stop Wi-Fi)
        _sta["active"], _sta["requested"] = True, True
        _sta["ssid"] = bytes.fromhex(words[2]).decode() if words[2] != "-" else ""
        if len(words) > 3 and words[3] != "-":
            _sta["connected"], _sta["ip"] = True, words[3]
    elif words[1] == "got_ip" and _sta["requested"]:
        _sta["connected"], _sta["ip"], _sta["reason"], _sta["tries"] = True, words[2], 0, 0
    elif words[1] == "lost":
        _sta["connected"], _sta["ip"], _sta["reason"] = False, "0.0.0.0", int(words[2])
        if _sta["requested"]:
            _sta["tries"] += 1
            if _sta["reconnects"] and _sta["tries"] >= _sta["reconnects"]:
                _sta["requested"] = False       # conf_wifi_sta_reconnects used up: the driver stops re-joining
                _vbhw.send("wifi leave")


_vbhw.on("wifi", _event)


def hostname(name=None):
    if name is None:
        return _hostname[0]
    _hostname[0] = name


class WLAN:
    IF_STA = 0
    IF_AP = 1
    PM_NONE = 0             # WIFI_PS_NONE
    PM_PERFORMANCE = 1      # WIFI_PS_MIN_MODEM (ESP-IDF's default)
    PM_POWERSAVE = 2        # WIFI_PS_MAX_MODEM
    SEC_OPEN = 0
    SEC_WPA2 = 3

    def __init__(self, interface_id=STA_IF):
        if interface_id != STA_IF:
            raise ValueError("only the station interface is simulated")

    def active(self, is_active=None):
        if is_active is None:
            return _sta["active"]
        _sta["active"] = bool(is_active)
        if not is_active:
            self.disconnect()

    def connect(self, ssid=None, key=None, *, bssid=None):
        if not _sta["active"]:
            raise OSError("Wifi Not Started")
        _sta["ssid"] = ssid or _sta["ssid"]
        _sta["requested"], _sta["tries"], _sta["reason"] = True, 0, 0
        _vbhw.send("wifi join %s %s" % (_hex(_sta["ssid"]), _hex(key or "")))

    def disconnect(self):
        _sta["requested"] = False
        if _sta["connected"] or _sta["reason"] != _ASSOC_LEAVE:
            _sta["connected"], _sta["ip"], _sta["reason"] = False, "0.0.0.0", _ASSOC_LEAVE
            _vbhw.send("wifi leave")

    def isconnected(self):
        _vbhw.poll()
        return _sta["connected"]

    def status(self, param=None):
        _vbhw.poll()
        if param is not None:
            if param == "rssi":
                if not _sta["connected"]:
                    raise OSError("Wifi Not Connected")
                return -50
            raise ValueError("unknown status param")
        r = _sta["reason"]
        if _sta["connected"]:
            return STAT_GOT_IP
        if r in (STAT_NO_AP_FOUND, STAT_WRONG_PASSWORD):
            return r
        if r == _ASSOC_LEAVE:
            return STAT_IDLE
        if _sta["requested"]:
            return STAT_CONNECTING
        return STAT_IDLE if r == 0 else r

    def ifconfig(self, conf=None):
        if conf is not None:
            raise OSError("static addresses are not simulated")
        _vbhw.poll()
        ip = _sta["ip"]
        return (ip, "255.0.0.0", "127.0.0.1" if _sta["connected"] else "0.0.0.0", "127.0.0.1")

    def ipconfig(self, key):
        if key == "addr4":
            return (self.ifconfig()[0], "255.0.0.0")
        raise ValueError("unknown config param")

    def config(self, *args, **kw):
        if args and kw:
            raise TypeError("either pos or kw args are allowed")
        for k, v in kw.items():
            if k == "pm":
                if v not in (0, 1, 2):
                    raise ValueError("invalid pm")
                _sta["pm"] = v
            elif k == "reconnects":
                _sta["reconnects"] = 0 if v == -1 else v + 1      # -1 = forever (network_wlan.c)
            elif k in ("hostname", "dhcp_hostname"):
                _hostname[0] = v
            elif k not in ("txpower", "protocol"):
                raise ValueError("unknown config param")
        if not args:
            return None
        k = args[0]
        if k == "mac":
            import machine
            return machine.unique_id()
        if k == "ssid":
            return _sta["ssid"]
        if k == "pm":
            return _sta["pm"]
        if k == "reconnects":
            return _sta["reconnects"] - 1
        if k in ("hostname", "dhcp_hostname"):
            return _hostname[0]
        raise ValueError("unknown config param")

    def scan(self):
        return []


def _hex(s):
    return "".join("%02x" % b for b in s.encode()) or "-"
