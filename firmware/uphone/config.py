# The phone's config: one SCHEMA dict drives validation (errors name the key path), defaults and the JSON Schema
# export; load/save are power-cut safe (temp file + rename, last good copy kept, truncated files refused).
import json
import os
import sys

from uphone.compat import NATIVE

_MP = sys.implementation.name == "micropython"
MAX_BYTES = 16384           # a config is a few hundred bytes; refuse anything that could exhaust the heap
HIDDEN = "<hidden>"


def _f(t, default=None, **kw):
    kw["t"] = t
    if default is not None:
        kw["default"] = default
    return kw


def _int(default, lo, hi, **kw):
    return _f("int", default, lo=lo, hi=hi, **kw)


# Field keys: t (str|int|bool|list|object), default (absent: with_defaults leaves the key out, callers fall back),
# lo/hi (int range), choices, nonempty, secret (never echoed), check (sip_uri|http_url|audio_io), step/even,
# items (list item spec), fields (object), min_items/max_items, required.
_ACCOUNT = _f("object", fields={
    "user": _f("str", nonempty=True, required=True),
    "domain": _f("str", nonempty=True),
    "display_name": _f("str"),
    "auth_user": _f("str", nonempty=True),
    "password": _f("str", secret=True),
    "registrar": _f("str", check="sip_uri"),
    "proxy": _f("str", check="sip_uri"),
    "expires": _int(600, 60, 86400),
    "register": _f("bool", True),
})

SCHEMA = {
    "accounts": _f("list", items=_ACCOUNT, min_items=1, max_items=4, required=True),
    "sip": _f("object", fields={
        "local_ip": _f("str", "" if _MP else "127.0.0.1"),     # "" = the Wi-Fi address (phone)
        "local_port": _int(5060, 0, 65535),
        "transport": _f("str", "udp", choices=("udp", "tcp")),
        "t1_ms": _int(500, 100, 10000),
        "t2_ms": _int(4000, 1000, 60000),
        "t4_ms": _int(5000, 1000, 60000),
        "register_retry_s": _int(30, 1, 3600),
        "keepalive": _f("str", "off", choices=("off", "crlf", "options")),
        "keepalive_s": _int(30, 5, 3600),
        "user_agent": _f("str", "uPhone/0.1", nonempty=True),
    }),
    "media": _f("object", fields={
        "codecs": _f("list", ["PCMU", "PCMA"], items=_f("str", choices=("PCMU", "PCMA", "G722")), min_items=1,
                     max_items=3),
        "dtmf": _f("str", "rfc4733", choices=("rfc4733", "info", "inband")),
        "ptime": _int(20, 10, 60, step=10),
        "rtp_port_min": _int(20000, 1024, 65534, even=True),
        "rtp_port_max": _int(20100, 1024, 65534, even=True),
        "rtp_timeout_s": _int(30, 0, 3600),
        "jitter_min_ms": _int(40, 0, 1000),
        "jitter_max_ms": _int(200, 20, 2000),
    }),
    "audio": _f("object", fields={
        "board": _f("str", ""),
        "rate": _int(8000, 8000, 16000, choices=(8000, 16000)),
        "source": _f("str", "silence", check="audio_io"),
        "sink": _f("str", "silence", check="audio_io"),
        "volume_speaker": _int(70, 0, 100),
        "volume_mic": _int(70, 0, 100),
        # mic processing (uphone/media/aec.py): on where the viper kernels run (the phone), off by default where
        # only the plain-Python twin does (the CPython simulator: ~3-4 ms of CPU per frame)
        "aec": _f("bool", NATIVE),
        "aec_delay_ms": _int(-1, -1, 500),      # -1: the audio device's estimate (ESP32 I2S: from its DMA buffers)
        "aec_tail_ms": _f("int", lo=2, hi=16),  # absent: 8 ms at 8 kHz, 4 ms at 16 kHz (the ESP32's budget)
        "agc": _f("bool", NATIVE),
        "noise_gate": _f("bool", NATIVE),
    }),
    "features": _f("object", fields={
        "auto_answer": _f("bool", False),
        "auto_answer_delay_ms": _int(0, 0, 60000),
        "call_waiting": _f("bool", True),
        "dnd": _f("bool", False),
        "ring_timeout_s": _int(60, 5, 600),
        "tones_country": _f("str", "eu", choices=("us", "eu", "uk", "de")),
        "voicemail_uri": _f("str", "", check="sip_uri"),
    }),
    "wifi": _f("object", fields={
        "ssid": _f("str", ""),
        "password": _f("str", "", secret=True),
        "hostname": _f("str", "uphone", nonempty=True),
        "retries": _int(10, 1, 100),
    }),
    "provisioning": _f("object", fields={
        "url": _f("str", "", check="http_url"),
    }),
}


# -- validation ------------------------------------------------------------------------------------------------
def _show(v, spec):
    if spec is not None and spec.get("secret"):
        return HIDDEN
    if isinstance(v, dict):
        return "an object"          # never echo a container: it may hold a password
    if isinstance(v, (list, tuple)):
        return "a list of %d" % len(v)
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _what(spec):
    t = spec["t"]
    if "choices" in spec:
        return "one of " + ", ".join([str(c) for c in spec["choices"]])
    if t == "str":
        return "a non-empty string" if spec.get("nonempty") else "a string"
    if t == "int":
        s = "an %sinteger %d-%d" % ("even " if spec.get("even") else "", spec["lo"], spec["hi"])
        return s + (", a multiple of %d" % spec["step"] if spec.get("step") else "")
    if t == "bool":
        return "true or false"
    if t == "list":
        n = "%d-%d" % (spec["min_items"], spec["max_items"])
        if spec["items"]["t"] == "object":
            return "a list of %s objects" % n
        return "a list of %s items, each %s" % (n, _what(spec["items"]))
    return "an object"


def _check(kind, v):
    """Extra string checks; -> what was expected, or None when fine. Empty strings mean 'not set'."""
    if v == "":
        return None
    if kind == "sip_uri" and not (v.startswith("sip:") or v.startswith("sips:")):
        return "a SIP URI (sip:...)"
    if kind == "http_url" and not (v.startswith("http://") and len(v) > 7):
        return "an http:// URL (https is not supported)"
    if kind == "audio_io" and v.startswith("tone:"):
        try:
            hz = int(v[5:])
        except ValueError:
            hz = 0
        if not 1 <= hz <= 8000:
            return "tone:<hz> with hz 1-8000, silence, or a WAV path"
    return None


def _check_value(path, v, spec, out):
    t = spec["t"]
    ok = True
    if t == "str":
        ok = isinstance(v, str) and not (spec.get("nonempty") and not v)
    elif t == "int":
        ok = isinstance(v, int) and not isinstance(v, bool) and spec["lo"] <= v <= spec["hi"]
        if ok and spec.get("step"):
            ok = v % spec["step"] == 0
        if ok and spec.get("even"):
            ok = v % 2 == 0
    elif t == "bool":
        ok = isinstance(v, bool)
    elif t == "list":
        if not isinstance(v, list) or not spec["min_items"] <= len(v) <= spec["max_items"]:
            ok = False
        else:
            for i, item in enumerate(v):
                _check_value("%s[%d]" % (path, i), item, spec["items"], out)
            if spec["items"]["t"] == "str" and len(set(v)) != len(v):
                out.append("%s: expected no duplicates, got %s" % (path, _show(v, spec)))
            return
    elif t == "object":
        if not isinstance(v, dict):
            ok = False
        else:
            _check_fields(path + ".", v, spec["fields"], out)
            return
    if ok and "choices" in spec:
        ok = v in spec["choices"]
    if not ok:
        out.append("%s: expected %s, got %s" % (path, _what(spec), _show(v, spec)))
        return
    if t == "str" and "check" in spec:
        want = _check(spec["check"], v)
        if want:
            out.append("%s: expected %s, got %s" % (path, want, _show(v, spec)))


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


def _check_fields(prefix, raw, fields, out):
    for key in raw:
        if key not in fields:
            hint = _suggest(key, fields) if isinstance(key, str) else None
            out.append("%s%s: unknown key%s" % (prefix, key, " (did you mean %s?)" % hint if hint else ""))
    for key in fields:
        spec = fields[key]
        if key in raw:
            _check_value(prefix + key, raw[key], spec, out)
        elif spec.get("required"):
            out.append("%s%s: expected %s, got nothing" % (prefix, key, _what(spec)))


def validate(raw):
    """-> list of error strings ("key.path: expected <what>, got <value>"); [] when the config is good."""
    out = []
    if not isinstance(raw, dict):
        return ["(top): expected an object, got %s" % _show(raw, None)]
    _check_fields("", raw, SCHEMA, out)
    if out:
        return out
    m = raw.get("media", {})
    lo, hi = m.get("rtp_port_min", 20000), m.get("rtp_port_max", 20100)
    if lo >= hi:
        out.append("media.rtp_port_max: expected more than rtp_port_min (%d), got %d" % (lo, hi))
    jlo, jhi = m.get("jitter_min_ms", 40), m.get("jitter_max_ms", 200)
    if jlo > jhi:
        out.append("media.jitter_max_ms: expected at least jitter_min_ms (%d), got %d" % (jlo, jhi))
    return out


# -- defaults ----------------------------------------------------------------------------------------------------
def _copy(v):
    if isinstance(v, dict):
        return dict([(k, _copy(x)) for k, x in v.items()])
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _fill(spec, raw):
    if spec["t"] == "object":
        out = {}
        for k, f in spec["fields"].items():
            if "default" in f:
                out[k] = _copy(f["default"])
        for k, v in (raw if isinstance(raw, dict) else {}).items():
            f = spec["fields"].get(k)
            out[k] = _fill(f, v) if f is not None and f["t"] in ("object", "list") else _copy(v)
        return out
    if spec["t"] == "list" and spec["items"]["t"] == "object" and isinstance(raw, list):
        return [_fill(spec["items"], x) for x in raw]
    return _copy(raw)


def with_defaults(raw):
    """-> a full config (every section, every defaulted key) as a new dict; raw is not changed."""
    raw = raw if isinstance(raw, dict) else {}
    out = {}
    for k, spec in SCHEMA.items():
        if k in raw:
            out[k] = _fill(spec, raw[k])
        elif spec["t"] == "object":
            out[k] = _fill(spec, {})
        else:
            out[k] = _copy(spec.get("default", []))
    for k, v in raw.items():
        if k not in out:
            out[k] = _copy(v)
    return out


# -- JSON Schema export (for editors and the host tools) ---------------------------------------------------------
def _js(spec):
    t = spec["t"]
    if t == "object":
        props = dict([(k, _js(f)) for k, f in spec["fields"].items()])
        d = {"type": "object", "properties": props, "additionalProperties": False}
        req = [k for k, f in spec["fields"].items() if f.get("required")]
        if req:
            d["required"] = req
    elif t == "list":
        d = {"type": "array", "items": _js(spec["items"]), "minItems": spec["min_items"],
             "maxItems": spec["max_items"]}
        if spec["items"]["t"] == "str":
            d["uniqueItems"] = True
    elif t == "int":
        d = {"type": "integer", "minimum": spec["lo"], "maximum": spec["hi"]}
        if spec.get("step") or spec.get("even"):
            d["multipleOf"] = spec.get("step") or 2
    elif t == "bool":
        d = {"type": "boolean"}
    else:
        d = {"type": "string"}
        if spec.get("nonempty"):
            d["minLength"] = 1
        if spec.get("check") == "sip_uri":
            d["pattern"] = "^(sips?:.*)?$"
        elif spec.get("check") == "http_url":
            d["pattern"] = "^(http://.+)?$"
    if "choices" in spec:
        d["enum"] = list(spec["choices"])
    if spec.get("secret"):
        d["writeOnly"] = True
    if "default" in spec:
        d["default"] = _copy(spec["default"])
    d["description"] = "expected " + _what(spec)
    return d


def json_schema():
    """-> a JSON Schema (draft 2020-12) dict generated from SCHEMA."""
    d = _js({"t": "object", "fields": SCHEMA})
    d["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    d["title"] = "uPhone config"
    return d


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
