# Config: validation messages with key paths, defaults, JSON Schema export, last-good fallback, atomic save, and a
# power cut at every byte of a save (both rename flavours) always leaving a loadable old-or-new config.
import json
import os

import pytest

from uphone import config as C

GOOD = {"accounts": [{"user": "alice", "domain": "127.0.0.1", "password": "hunter2",
                      "registrar": "sip:127.0.0.1:5060"}],
        "sip": {"local_ip": "127.0.0.1", "local_port": 5062},
        "media": {"rtp_port_min": 21000, "rtp_port_max": 21020}}


def with_(section, key, value, base=GOOD):
    raw = json.loads(json.dumps(base))
    if section == "accounts":
        raw["accounts"][0][key] = value
    else:
        raw.setdefault(section, {})[key] = value
    return raw


def test_good_configs_validate():
    assert C.validate(GOOD) == []
    assert C.validate({"accounts": [{"user": "bob"}]}) == []
    full = C.with_defaults(GOOD)
    assert C.validate(full) == []


@pytest.mark.parametrize("section,key,value,message", [
    ("accounts", "user", 5, "accounts[0].user: expected a non-empty string, got 5"),
    ("accounts", "user", "", "accounts[0].user: expected a non-empty string, got ''"),
    ("accounts", "expires", 30, "accounts[0].expires: expected an integer 60-86400, got 30"),
    ("accounts", "register", "yes", "accounts[0].register: expected true or false, got 'yes'"),
    ("accounts", "registrar", "127.0.0.1", "accounts[0].registrar: expected a SIP URI (sip:...), got '127.0.0.1'"),
    ("sip", "local_port", 70000, "sip.local_port: expected an integer 0-65535, got 70000"),
    ("sip", "local_port", True, "sip.local_port: expected an integer 0-65535, got True"),
    ("sip", "transport", "sctp", "sip.transport: expected one of udp, tcp, tls, got 'sctp'"),
    ("sip", "transport", "tls", "sip.tls_ca: expected the path of the CA certificate (PEM or DER) that the SIP "
     "server's certificate chains to (sip.transport tls or a sips: registrar/proxy), got nothing"),
    ("media", "srtp", "on", "media.srtp: expected one of off, optional, mandatory, got 'on'"),
    ("sip", "keepalive", "on", "sip.keepalive: expected one of off, crlf, options, got 'on'"),
    ("sip", "t1_ms", "500", "sip.t1_ms: expected an integer 100-10000, got '500'"),
    ("media", "codecs", [], "media.codecs: expected a list of 1-3 items, each one of PCMU, PCMA, G722, got a list of 0"),
    ("media", "codecs", ["PCMU", "G729"], "media.codecs[1]: expected one of PCMU, PCMA, G722, got 'G729'"),
    ("media", "codecs", ["PCMU", "PCMU"], "media.codecs: expected no duplicates, got a list of 2"),
    ("media", "dtmf", "sip", "media.dtmf: expected one of rfc4733, info, inband, got 'sip'"),
    ("media", "ptime", 25, "media.ptime: expected an integer 10-60, a multiple of 10, got 25"),
    ("media", "ptime", 70, "media.ptime: expected an integer 10-60, a multiple of 10, got 70"),
    ("media", "rtp_port_min", 21001, "media.rtp_port_min: expected an even integer 1024-65534, got 21001"),
    ("media", "rtp_port_max", 20000, "media.rtp_port_max: expected more than rtp_port_min (21000), got 20000"),
    ("audio", "rate", 44100, "audio.rate: expected one of 8000, 16000, got 44100"),
    ("audio", "volume_mic", 101, "audio.volume_mic: expected an integer 0-100, got 101"),
    ("audio", "source", "tone:abc", "audio.source: expected tone:<hz> with hz 1-8000, silence, or a WAV path, "
                                    "got 'tone:abc'"),
    ("features", "auto_answer", 1, "features.auto_answer: expected true or false, got 1"),
    ("features", "tones_country", "fr", "features.tones_country: expected one of us, eu, uk, de, got 'fr'"),
    ("features", "voicemail_uri", "*97", "features.voicemail_uri: expected a SIP URI (sip:...), got '*97'"),
    ("wifi", "hostname", "", "wifi.hostname: expected a non-empty string, got ''"),
    ("accounts", "ha1", "12345", "accounts[0].ha1: expected 32 hex digits (the MD5 of user:realm:password), "
                                 "got <hidden>"),
    ("provisioning", "url", "http://x/", "provisioning.url: expected an https:// URL (plain http:// is refused: "
                                         "the config carries passwords), got 'http://x/'"),
    ("time", "ntp_host", 5, "time.ntp_host: expected a string, got 5"),
])
def test_error_messages_name_the_key_path(section, key, value, message):
    assert C.validate(with_(section, key, value)) == [message]


def test_provisioning_url_needs_its_ca():
    assert C.validate(with_("provisioning", "url", "https://prov.example.com/p")) == [
        "provisioning.ca: expected the path of the CA certificate (PEM or DER) that the server of provisioning.url "
        "chains to, got nothing"]
    raw = with_("provisioning", "url", "https://prov.example.com/p")
    raw["provisioning"]["ca"] = "prov-ca.pem"
    assert C.validate(raw) == []
    assert C.validate(with_("provisioning", "ca", "prov-ca.pem")) == []       # a CA alone: nothing is fetched


def test_structure_errors():
    assert C.validate([]) == ["(top): expected an object, got a list of 0"]
    assert C.validate({}) == ["accounts: expected a list of 1-4 objects, got nothing"]
    assert C.validate({"accounts": [{"user": "a"}] * 5}) == ["accounts: expected a list of 1-4 objects, got a list of 5"]
    assert C.validate({"accounts": [{}]}) == ["accounts[0].user: expected a non-empty string, got nothing"]
    assert C.validate({"accounts": ["alice"]}) == ["accounts[0]: expected an object, got 'alice'"]
    assert C.validate({"accounts": [{"user": "a"}], "sip": 5}) == [
        "sip: expected an object, got 5"]


def test_unknown_keys_with_suggestions():
    errs = C.validate({"accounts": [{"user": "a", "pasword": "x"}], "media": {"codec": ["PCMU"]}, "sipp": {},
                       "zzz": 1})
    assert "accounts[0].pasword: unknown key (did you mean password?)" in errs
    assert "media.codec: unknown key (did you mean codecs?)" in errs
    assert "sipp: unknown key (did you mean sip?)" in errs
    assert "zzz: unknown key" in errs


def test_password_never_in_errors():
    secret = "hunter2-SECRET"
    raws = [with_("accounts", "password", 12345),
            with_("wifi", "password", ["hunter2-SECRET"]),
            {"accounts": [{"user": "", "password": secret}], "wifi": {"password": secret, "hostname": 5}},
            {"accounts": [["user", secret]]},
            {"accounts": {"password": secret}}]
    for raw in raws:
        errs = C.validate(raw)
        assert errs
        text = " ".join(errs)
        assert secret not in text and "12345" not in text
    assert C.validate(with_("accounts", "password", 12345)) == [
        "accounts[0].password: expected a string, got <hidden>"]


def test_with_defaults_fills_every_section_without_mutating():
    raw = {"accounts": [{"user": "a"}], "features": {"auto_answer": True}}
    before = json.dumps(raw, sort_keys=True)
    full = C.with_defaults(raw)
    assert json.dumps(raw, sort_keys=True) == before
    for section in ("accounts", "sip", "media", "audio", "features", "wifi", "time", "provisioning"):
        assert section in full
    # the defaults the callers assume when a key is missing
    assert full["sip"]["t1_ms"] == 500 and full["sip"]["t2_ms"] == 4000 and full["sip"]["t4_ms"] == 5000
    assert full["sip"]["local_port"] == 5060 and full["sip"]["user_agent"] == "uPhone/0.1"
    # local_ip "": the interface the phone has (the Wi-Fi address on a board, 127.0.0.1 on the desktop)
    assert full["sip"]["local_ip"] == "" and full["sip"]["register_retry_s"] == 30
    assert full["media"]["codecs"] == ["PCMU", "PCMA"] and full["media"]["dtmf"] == "rfc4733"
    assert full["media"]["ptime"] == 20 and full["media"]["rtp_port_min"] == 20000
    assert full["media"]["rtp_port_max"] == 20100 and full["media"]["rtp_timeout_s"] == 30
    assert full["audio"]["rate"] == 8000
    assert full["features"] == {"auto_answer": True, "auto_answer_delay_ms": 0, "call_waiting": True, "lines": 2, "dnd": False,
                                "ring_timeout_s": 60, "tones_country": "eu", "voicemail_uri": ""}
    acct = full["accounts"][0]
    assert acct["expires"] == 600 and acct["register"] is True
    assert "domain" not in acct and "proxy" not in acct    # callers fall back (local_ip, the request URI)
    full["media"]["codecs"].append("G722")
    assert C.with_defaults(raw)["media"]["codecs"] == ["PCMU", "PCMA"]     # defaults are copied, not shared


def test_json_schema_from_schema():
    from host_tools.config_cmd import json_schema
    js = json_schema(C)
    assert js["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert js["required"] == ["accounts"] and js["additionalProperties"] is False
    assert set(js["properties"]) == set(r[0] for r in C.SCHEMA if "." not in r[0])
    port = js["properties"]["sip"]["properties"]["local_port"]
    assert port["minimum"] == 0 and port["maximum"] == 65535 and port["default"] == 5060
    assert js["properties"]["accounts"]["items"]["properties"]["password"]["writeOnly"] is True
    assert js["properties"]["media"]["properties"]["codecs"]["items"]["enum"] == ["PCMU", "PCMA", "G722"]
    json.dumps(js)
    import jsonschema     # requirements-dev.txt: a missing validator fails here, it does not skip
    jsonschema.Draft202012Validator.check_schema(js)
    jsonschema.validate(GOOD, js)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(with_("sip", "local_port", 70000), js)


# -- files -------------------------------------------------------------------------------------------------------
def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_load_good_and_fallback(tmp_path):
    p = str(tmp_path / "config.json")
    C.save_atomic(p, GOOD)
    cfg, errs = C.load(p, p + ".good")
    assert errs == [] and cfg == C.with_defaults(GOOD)
    write(p, json.dumps(with_("sip", "local_port", 70000)))
    cfg, errs = C.load(p, p + ".good")
    assert cfg == C.with_defaults(GOOD)
    assert errs == [p + ": sip.local_port: expected an integer 0-65535, got 70000"]
    write(p, '{"accounts": [{"user"')
    cfg, errs = C.load(p, p + ".good")
    assert cfg == C.with_defaults(GOOD) and "not valid JSON" in errs[0]
    os.remove(p)
    cfg, errs = C.load(p, p + ".good")
    assert cfg == C.with_defaults(GOOD) and errs == [p + ": missing"]
    os.remove(p + ".good")
    cfg, errs = C.load(p, p + ".good")
    assert cfg is None and errs == [p + ": missing", p + ".good: missing", p + ".good.tmp: missing"]


def test_load_refuses_oversized(tmp_path):
    p = str(tmp_path / "config.json")
    write(p, " " * (C.MAX_BYTES + 1))
    cfg, errs = C.load(p)
    assert cfg is None and "larger than" in errs[0]


def test_save_atomic_validates_and_keeps_last_good(tmp_path):
    p = str(tmp_path / "config.json")
    with pytest.raises(ValueError) as e:
        C.save_atomic(p, with_("accounts", "password", 7))
    assert "accounts[0].password" in str(e.value) and "7" not in str(e.value).split("got")[-1]
    assert not os.path.exists(p)
    C.save_atomic(p, GOOD)
    assert json.load(open(p)) == GOOD and json.load(open(p + ".good")) == GOOD
    assert not os.path.exists(p + ".tmp") and not os.path.exists(p + ".good.tmp")


def test_truncated_main_file_at_every_length_falls_back(tmp_path):
    p = str(tmp_path / "config.json")
    old = with_("sip", "local_port", 5070)
    C.save_atomic(p, old)
    new_text = json.dumps(GOOD)
    for n in range(len(new_text)):
        write(p, new_text[:n])
        cfg, errs = C.load(p, p + ".good")
        assert cfg == C.with_defaults(old), n
        assert errs


class PowerCut(Exception):
    pass


class Budget:
    """Counts bytes written and metadata operations; the power goes off when the budget is spent."""

    def __init__(self, n, fat):
        self.left, self.fat = n, fat

    def spend(self):
        if self.left <= 0:
            raise PowerCut()
        self.left -= 1


class CutFile:
    def __init__(self, f, budget):
        self.f, self.b = f, budget

    def write(self, data):
        for ch in data:                 # byte by byte: whatever was written before the cut stays on disk
            self.b.spend()
            self.f.write(ch)
            self.f.flush()
        return len(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.f.close()


class CutOs:
    def __init__(self, budget):
        self.b = budget
        self.fsync = os.fsync
        self.sync = os.sync

    def rename(self, a, b):
        if self.b.fat and os.path.exists(b):   # FAT: rename over an existing file is unlink + rename
            self.b.spend()
            os.remove(b)
        self.b.spend()
        os.rename(a, b)

    def remove(self, p):
        self.b.spend()
        os.remove(p)


@pytest.mark.parametrize("fat", [False, True])
def test_power_cut_at_every_byte_of_a_save(tmp_path, monkeypatch, fat):
    p = str(tmp_path / "config.json")
    old = with_("sip", "local_port", 5070)
    new = with_("accounts", "display_name", "Alice Liddell")
    steps = 0
    n = 0
    while True:
        for name in os.listdir(str(tmp_path)):
            os.remove(str(tmp_path / name))
        C.save_atomic(p, old)
        budget = Budget(n, fat)
        monkeypatch.setattr(C, "open", lambda path, mode="r": CutFile(open(path, mode), budget)
                            if "w" in mode else open(path, mode), raising=False)
        monkeypatch.setattr(C, "os", CutOs(budget))
        try:
            C.save_atomic(p, new)
            done = True
        except PowerCut:
            done = False
        monkeypatch.undo()
        cfg, errs = C.load(p, p + ".good")          # what the phone reads after the power comes back
        assert cfg in (C.with_defaults(old), C.with_defaults(new)), (n, errs)
        assert C.load(p, p + ".good")[0] == cfg     # and it stays so on the next boot
        steps += 1
        if done:
            assert cfg == C.with_defaults(new)
            break
        n += 1
    assert steps > 2 * len(json.dumps(new))         # every byte of both files was a cut point


def test_validate_in_micropython(mp):
    code = (
        "from uphone import config\n"
        "print(config.validate({'accounts': [{'user': 'alice'}]}))\n"
        "for e in config.validate({'accounts': [{'user': 5, 'password': 9}], 'sip': {'local_port': 70000},"
        " 'media': {'codec': ['PCMU']}}):\n"
        "    print(e)\n"
        "print(config.with_defaults({'accounts': [{'user': 'a'}]})['sip']['local_ip'] == '')\n"
    )
    out = mp(code)
    lines = out.strip().splitlines()
    assert lines[0] == "[]"
    assert lines[1:-1] == ["accounts[0].user: expected a non-empty string, got 5",
                           "accounts[0].password: expected a string, got <hidden>",
                           "sip.local_port: expected an integer 0-65535, got 70000",
                           "media.codec: unknown key (did you mean codecs?)"]
    assert lines[-1] == "True"          # on the phone an unset local_ip means: the Wi-Fi address
