# The phone's config: one SCHEMA table drives validation (errors name the key path) and defaults (the host tools
# export it as a JSON Schema); load/save are power-cut safe (temp file + rename, last good copy kept, truncated
# files refused).
import json
import os

MAX_BYTES = 16384           # a config is a few hundred bytes; refuse anything that could exhaust the heap
HIDDEN = "<hidden>"


# The schema: one row per key, (path, type, default, options), a constant table (frozen into flash on the phone: it
# costs no heap). path "a.b": key b of object a; "accounts.user": key user of every accounts[] item. type: str, int,
# bool, list, object. default None: with_defaults leaves the key out (callers fall back). options, space-separated:
# lo=/hi= (int range), choices=a|b (ints for int keys), nonempty, required, secret (never echoed), step=, even,
# check=sip_uri|https_url|audio_io|ha1, items=<type> (list items; object items are the rows below the list's path),
# min=/max= (list length).
SCHEMA = (
    ("accounts", "list", None, "items=object min=1 max=4 required"),
    ("accounts.user", "str", None, "nonempty required"),
    ("accounts.domain", "str", None, "nonempty"),
    ("accounts.display_name", "str", None, ""),
    ("accounts.auth_user", "str", None, "nonempty"),
    ("accounts.password", "str", None, "secret"),
    ("accounts.ha1", "str", None, "secret check=ha1"),     # MD5(user:realm:password) in hex instead of the password
    ("accounts.registrar", "str", None, "check=sip_uri"),
    ("accounts.proxy", "str", None, "check=sip_uri"),
    ("accounts.expires", "int", 600, "lo=60 hi=86400"),
    ("accounts.register", "bool", True, ""),
    ("accounts.presence", "bool", False, ""),        # publish presence (RFC 3903) for this account (ua/publication.py)
    ("sip", "object", None, ""),
    ("sip.local_ip", "str", "", ""),                    # "": the Wi-Fi address on the phone, 127.0.0.1 on a desktop
    ("sip.local_port", "int", 5060, "lo=0 hi=65535"),
    ("sip.transport", "str", "udp", "choices=udp|tcp|tls"),
    # SIP over TLS (RFC 3261 26.2, sips: URIs): the CA certificate file (PEM or DER, a path on the phone) the
    # registrar's or proxy's certificate must chain to; required with transport tls or a sips: registrar/proxy
    ("sip.tls_ca", "str", "", ""),
    ("sip.t1_ms", "int", 500, "lo=100 hi=10000"),
    ("sip.t2_ms", "int", 4000, "lo=1000 hi=60000"),
    ("sip.t4_ms", "int", 5000, "lo=1000 hi=60000"),
    ("sip.register_retry_s", "int", 30, "lo=1 hi=3600"),
    ("sip.keepalive", "str", "off", "choices=off|crlf|options"),
    ("sip.keepalive_s", "int", 30, "lo=5 hi=3600"),
    ("sip.user_agent", "str", "uPhone/0.1", "nonempty"),
    # who may send the phone requests outside a dialog (uphone/ua/gate.py): "proxy" = only the accounts' proxies and
    # registrars (others get 403), "any" = anyone, "auto" = proxy when an account registers, else any
    ("sip.accept_from", "str", "auto", "choices=auto|proxy|any"),
    # requests a second one source (address and port) may send, with a burst of twice that; over it they are dropped
    # unanswered. 0 = no limit. The accounts' proxies and registrars are not limited
    ("sip.rate_limit", "int", 20, "lo=0 hi=1000"),
    # reliable provisional responses (RFC 3262, ua/prack.py): off, supported, or required (our INVITEs require it
    # and our 180 goes reliably to every caller that supports it)
    ("sip.100rel", "str", "supported", "choices=off|supported|required"),
    # session timers (RFC 4028, ua/sessiontimer.py): the interval our INVITEs ask for (0: none asked; a far end
    # that asks still gets one), and the smallest the phone takes (Min-SE; less gets 422)
    ("sip.session_expires_s", "int", 0, "lo=0 hi=86400"),
    ("sip.min_se_s", "int", 90, "lo=90 hi=86400"),
    ("media", "object", None, ""),
    ("media.codecs", "list", ("PCMU", "PCMA"), "items=str choices=PCMU|PCMA|G722 min=1 max=3"),
    ("media.dtmf", "str", "rfc4733", "choices=rfc4733|info|inband"),
    ("media.ptime", "int", 20, "lo=10 hi=60 step=10"),
    ("media.rtp_port_min", "int", 20000, "lo=1024 hi=65534 even"),
    ("media.rtp_port_max", "int", 20100, "lo=1024 hi=65534 even"),
    ("media.rtp_timeout_s", "int", 30, "lo=0 hi=3600"),             # 0: a call never ends for lack of RTP
    ("media.jitter_min_ms", "int", 40, "lo=0 hi=500"),
    ("media.jitter_max_ms", "int", 200, "lo=20 hi=500"),             # each 20 ms is a 160-byte slot per call
    # SRTP (RFC 3711) with SDES keys (RFC 4568): off; optional (offer RTP/AVP with keys, take SRTP or plain RTP);
    # mandatory (offer RTP/SAVP; a call without SRTP is refused)
    ("media.srtp", "str", "off", "choices=off|optional|mandatory"),
    ("audio", "object", None, ""),
    ("audio.rate", "int", 8000, "lo=8000 hi=16000 choices=8000|16000"),
    ("audio.source", "str", "silence", "check=audio_io"),
    ("audio.sink", "str", "silence", "check=audio_io"),
    ("audio.volume_speaker", "int", 70, "lo=0 hi=100"),             # codec boards: the DAC (drivers/volume.py)
    ("audio.volume_mic", "int", 70, "lo=0 hi=100"),                 # 70: 0 dB, 0.5 dB a step (media/gain.py)
    # mic processing (uphone/media/aec.py). aec/agc/noise_gate absent: on where MicroPython runs their viper kernels
    # (the phone, the unix runtime), off where only the plain-Python twin does (the CPython simulator, ~3-4 ms of
    # CPU a frame); say true or false to choose
    ("audio.aec", "bool", None, ""),
    ("audio.aec_delay_ms", "int", -1, "lo=-1 hi=500"),      # -1: the audio device's estimate (ESP32 I2S: its DMA)
    ("audio.aec_tail_ms", "int", None, "lo=2 hi=16"),       # absent: 8 ms at 8 kHz, 4 ms at 16 kHz (the ESP32 budget)
    ("audio.agc", "bool", None, ""),
    ("audio.noise_gate", "bool", None, ""),
    ("features", "object", None, ""),
    ("features.auto_answer", "bool", False, ""),
    ("features.auto_answer_delay_ms", "int", 0, "lo=0 hi=60000"),
    ("features.call_waiting", "bool", True, ""),
    ("features.lines", "int", 2, "lo=1 hi=4"),                      # calls with media at once; more get 486
    ("features.dnd", "bool", False, ""),
    ("features.ring_timeout_s", "int", 60, "lo=5 hi=600"),
    ("features.tones_country", "str", "eu", "choices=us|eu|uk|de"),
    ("features.voicemail_uri", "str", "", "check=sip_uri"),
    ("wifi", "object", None, ""),
    ("wifi.ssid", "str", "", ""),
    ("wifi.password", "str", "", "secret"),
    ("wifi.hostname", "str", "uphone", "nonempty"),
    # the clock: an ESP32's RTC starts at 2000-01-01 at power-up, and TLS checks certificate dates against it
    ("time", "object", None, ""),
    ("time.ntp_host", "str", "pool.ntp.org", ""),                    # asked once Wi-Fi is up; "": never
    # auto-provisioning at boot: GET <url>/<mac>.json over HTTPS, the server verified against the CA file ca (PEM or
    # DER, a path on the phone). Plain http:// is refused: the config carries passwords (uphone/provision.py)
    ("provisioning", "object", None, ""),
    ("provisioning.url", "str", "", "check=https_url"),
    ("provisioning.ca", "str", "", ""),
)


def opt(row, key):
    """An option of a schema row: its value (choices as a tuple, ints for int keys), True for a flag, else None."""
    for w in row[3].split():
        k, eq, v = w.partition("=")
        if k == key:
            if not eq:
                return True
            if key == "choices":
                vs = v.split("|")
                return tuple([int(x) for x in vs]) if row[1] == "int" else tuple(vs)
            return v if key in ("check", "items") else int(v)
    return None


def fields(path):
    """The rows of an object's keys: path "" = the top level, "accounts" = an account's keys."""
    n = len(path) + 1 if path else 0
    return [r for r in SCHEMA if r[0][:n] == (path + "." if path else "") and "." not in r[0][n:]]


def _name(row):
    return row[0].rpartition(".")[2]


# -- validation ------------------------------------------------------------------------------------------------
def _show(v, row):
    if row is not None and opt(row, "secret"):
        return HIDDEN
    if isinstance(v, dict):
        return "an object"          # never echo a container: it may hold a password
    if isinstance(v, (list, tuple)):
        return "a list of %d" % len(v)
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _what(row, t=None):
    t = t or row[1]
    ch = opt(row, "choices")            # of a list row: its items' choices
    if ch and t != "list":
        return "one of " + ", ".join([str(c) for c in ch])
    if t == "str":
        return "a non-empty string" if opt(row, "nonempty") else "a string"
    if t == "int":
        s = "an %sinteger %d-%d" % ("even " if opt(row, "even") else "", opt(row, "lo"), opt(row, "hi"))
        return s + (", a multiple of %d" % opt(row, "step") if opt(row, "step") else "")
    if t == "bool":
        return "true or false"
    if t == "list":
        n = "%d-%d" % (opt(row, "min"), opt(row, "max"))
        if opt(row, "items") == "object":
            return "a list of %s objects" % n
        return "a list of %s items, each %s" % (n, _what(row, opt(row, "items")))
    return "an object"


def _check(kind, v):
    """Extra string checks; -> what was expected, or None when fine. Empty strings mean 'not set'."""
    if v == "":
        return None
    if kind == "sip_uri" and not (v.startswith("sip:") or v.startswith("sips:")):
        return "a SIP URI (sip:...)"
    if kind == "https_url" and not (v.startswith("https://") and len(v) > 8):
        return "an https:// URL (plain http:// is refused: the config carries passwords)"
    if kind == "ha1" and not (len(v) == 32 and not v.strip("0123456789abcdefABCDEF")):
        return "32 hex digits (the MD5 of user:realm:password)"
    if kind == "audio_io" and v.startswith("tone:"):
        try:
            hz = int(v[5:])
        except ValueError:
            hz = 0
        if not 1 <= hz <= 8000:
            return "tone:<hz> with hz 1-8000, silence, or a WAV path"
    return None


def _check_value(path, v, row, out, t=None):
    # t: the type checked (a list's items are checked against the list row with t = its item type)
    t = t or row[1]
    ok = True
    if t == "str":
        ok = isinstance(v, str) and not (opt(row, "nonempty") and not v)
    elif t == "int":
        ok = isinstance(v, int) and not isinstance(v, bool) and opt(row, "lo") <= v <= opt(row, "hi")
        if ok and opt(row, "step"):
            ok = v % opt(row, "step") == 0
        if ok and opt(row, "even"):
            ok = v % 2 == 0
    elif t == "bool":
        ok = isinstance(v, bool)
    elif t == "list":
        if not isinstance(v, list) or not opt(row, "min") <= len(v) <= opt(row, "max"):
            ok = False
        else:
            it = opt(row, "items")
            for i, item in enumerate(v):
                if it == "object":
                    if isinstance(item, dict):
                        _check_fields("%s[%d]." % (path, i), item, row[0], out)
                    else:
                        out.append("%s[%d]: expected an object, got %s" % (path, i, _show(item, None)))
                else:
                    _check_value("%s[%d]" % (path, i), item, row, out, it)
            if it == "str" and len(set(v)) != len(v):
                out.append("%s: expected no duplicates, got %s" % (path, _show(v, row)))
            return
    elif t == "object":
        if not isinstance(v, dict):
            ok = False
        else:
            _check_fields(path + ".", v, row[0], out)
            return
    ch = opt(row, "choices")
    if ok and ch:
        ok = v in ch
    if not ok:
        out.append("%s: expected %s, got %s" % (path, _what(row, t), _show(v, row)))
        return
    if t == "str" and opt(row, "check"):
        want = _check(opt(row, "check"), v)
        if want:
            out.append("%s: expected %s, got %s" % (path, want, _show(v, row)))


def _suggest(key, known):
    best, best_d = None, 3
    for k in known:
        d = _distance(key, k)
        if d < best_d or (k.startswith(key) or key.startswith(k)) and best is None:
            best, best_d = k, min(d, best_d)
    return best


def _distance(a, b):
    # Levenshtein distance, two rows: keys are short
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
        prev = cur
    return prev[-1]


def _check_fields(prefix, raw, path, out):
    rows = fields(path)
    names = [_name(r) for r in rows]
    for key in raw:
        if key not in names:
            hint = _suggest(key, names) if isinstance(key, str) else None
            out.append("%s%s: unknown key%s" % (prefix, key, " (did you mean %s?)" % hint if hint else ""))
    for r in rows:
        key = _name(r)
        if key in raw:
            _check_value(prefix + key, raw[key], r, out)
        elif opt(r, "required"):
            out.append("%s%s: expected %s, got nothing" % (prefix, key, _what(r)))


def validate(raw):
    """-> list of error strings ("key.path: expected <what>, got <value>"); [] when the config is good."""
    out = []  # type: list
    if not isinstance(raw, dict):
        return ["(top): expected an object, got %s" % _show(raw, None)]
    _check_fields("", raw, "", out)
    if out:
        return out
    m = raw.get("media", {})
    lo, hi = m.get("rtp_port_min", 20000), m.get("rtp_port_max", 20100)
    if lo >= hi:
        out.append("media.rtp_port_max: expected more than rtp_port_min (%d), got %d" % (lo, hi))
    jlo, jhi = m.get("jitter_min_ms", 40), m.get("jitter_max_ms", 200)
    if jlo > jhi:
        out.append("media.jitter_max_ms: expected at least jitter_min_ms (%d), got %d" % (jlo, jhi))
    sip = raw.get("sip", {})
    needs_ca = sip.get("transport") == "tls" or any(
        (a.get("registrar") or "").startswith("sips:") or (a.get("proxy") or "").startswith("sips:")
        for a in raw.get("accounts", []))
    if needs_ca and not sip.get("tls_ca"):
        out.append("sip.tls_ca: expected the path of the CA certificate (PEM or DER) that the SIP server's "
                   "certificate chains to (sip.transport tls or a sips: registrar/proxy), got nothing")
    if raw.get("sip", {}).get("accept_from") == "proxy" and not any(
            a.get("proxy") or a.get("registrar") for a in raw.get("accounts") or [] if isinstance(a, dict)):
        out.append("sip.accept_from: expected an account with a proxy or registrar to accept requests from, got "
                   "'proxy' without one (the phone would refuse every call)")
    p = raw.get("provisioning", {})
    if p.get("url") and not p.get("ca"):
        out.append("provisioning.ca: expected the path of the CA certificate (PEM or DER) that the server of "
                   "provisioning.url chains to, got nothing")
    return out


# -- defaults ----------------------------------------------------------------------------------------------------
def _copy(v):
    if isinstance(v, dict):
        return dict([(k, _copy(x)) for k, x in v.items()])
    if isinstance(v, (list, tuple)):
        return [_copy(x) for x in v]
    return v


def _fill(path, raw):
    """An object at path with its defaults filled in (lists of objects: each item filled)."""
    out = {}
    for r in fields(path):
        if r[2] is not None:
            out[_name(r)] = _copy(r[2])
    for k, v in (raw if isinstance(raw, dict) else {}).items():
        sub = path + "." + k if path else k
        r = None
        for x in SCHEMA:
            if x[0] == sub:
                r = x
        if r is not None and r[1] == "object":
            v = _fill(sub, v)
        elif r is not None and r[1] == "list" and opt(r, "items") == "object" and isinstance(v, list):
            v = [_fill(sub, x) for x in v]
        else:
            v = _copy(v)
        out[k] = v
    return out


def with_defaults(raw):
    """-> a full config (every section, every defaulted key) as a new dict; raw is not changed."""
    raw = raw if isinstance(raw, dict) else {}
    out = _fill("", raw)
    for r in fields(""):
        k = _name(r)
        if k not in out:
            out[k] = _fill(k, {}) if r[1] == "object" else []
    return out


# -- files: power-cut safe load and save -------------------------------------------------------------------------
def _read(path):
    """-> (raw, errors). Missing, truncated, oversized or invalid files give errors, never an exception."""
    try:
        with open(path) as f:
            text = f.read(MAX_BYTES + 1)
    except OSError:
        return None, ["%s: missing" % path]
    if len(text) > MAX_BYTES:
        return None, ["%s: larger than %d bytes" % (path, MAX_BYTES)]
    try:
        raw = json.loads(text)      # a cut-off JSON object never parses: its closing brace comes last
    except ValueError:
        return None, ["%s: not valid JSON (truncated or corrupt, %d bytes)" % (path, len(text))]
    errors = validate(raw)
    if errors:
        return None, ["%s: %s" % (path, e) for e in errors]
    return raw, []


def load(path, last_good_path=None):
    """-> (cfg with defaults, errors). A broken or missing file falls back to the complete temp file of an
    interrupted save, then to the last good copy: errors then say why the newer file was refused. (None, errors)
    only when nothing usable exists."""
    good_path = last_good_path or path + ".good"
    raw, errors = _read(path)
    if raw is not None:
        return with_defaults(raw), []
    # FAT's rename is unlink + rename: a cut between the two leaves only the complete temp file
    tmp, terr = _read(path + ".tmp")
    if tmp is not None:
        try:
            os.rename(path + ".tmp", path)
        except OSError:
            pass
        return with_defaults(tmp), []
    for p in (good_path, good_path + ".tmp"):
        raw, gerr = _read(p)
        if raw is not None:
            return with_defaults(raw), errors
        errors = errors + gerr
    return None, errors


def _sync():
    fn = getattr(os, "sync", None)
    if fn is not None:
        fn()


def _write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
        f.flush()
        if hasattr(os, "fsync"):            # CPython; MicroPython's os.sync() below covers the whole filesystem
            os.fsync(f.fileno())
    _sync()
    os.rename(tmp, path)                    # LittleFS and POSIX replace atomically
    _sync()


def save_atomic(path, raw, last_good_path=None):
    """Validate, then write path and the last good copy, each through a temp file and a rename."""
    errors = validate(raw)
    if errors:
        raise ValueError("config refused: " + "; ".join(errors))
    data = json.dumps(raw)
    _write_atomic(path, data)
    _write_atomic(last_good_path or path + ".good", data)
