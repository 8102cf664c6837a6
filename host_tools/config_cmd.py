# phonectl config check FILE | schema | example: the firmware's own config validator (uphone.config) on the host.
import json
import sys

from host_tools import provision

# the keys a user must fill in; every other key gets its default (shown by `config example`)
EXAMPLE = {"accounts": [{"user": "alice", "domain": "pbx.example.com", "password": "secret",
                         "registrar": "sip:pbx.example.com:5060"}],
           "sip": {"local_port": 5060},
           "media": {"rtp_port_min": 16384, "rtp_port_max": 16482}}


def register(sub):
    p = sub.add_parser("config", help="check a config file, print the config schema or an example",
                       description="Phone config files, checked with the firmware's own validator "
                                   "(firmware/uphone/config.py).")
    cs = p.add_subparsers(dest="config_verb", metavar="ACTION")
    cs.required = True
    c = cs.add_parser("check", help="validate FILE and print every error with its key path")
    c.add_argument("file")
    c.set_defaults(func=_check)
    s = cs.add_parser("schema", help="print the JSON schema of the config (from uphone.config.SCHEMA)")
    s.set_defaults(func=_schema)
    e = cs.add_parser("example", help="print a documented example config")
    e.set_defaults(func=_example)


def _check(args):
    try:
        _, _, errors = provision.load_and_validate(args.file)
    except provision.DeployError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    for e in errors:
        print("error: config %s" % e)
    print("%s: %s" % (args.file, "%d error(s)" % len(errors) if errors else "ok"))
    return 1 if errors else 0


def _schema(args):
    try:
        mod = provision.config_module()
    except provision.DeployError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    print(json.dumps(json_schema(mod), indent=2, sort_keys=True))
    return 0


def _example(args):
    """A valid config: the keys to edit plus every default, as the phone will see it after loading."""
    try:
        mod = provision.config_module()
    except provision.DeployError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    errs = mod.validate(EXAMPLE)
    if errs:        # the firmware's schema moved on: say so rather than print a config that would be refused
        print("error: the example no longer validates: %s" % "; ".join(errs), file=sys.stderr)
        return 1
    print("# edit accounts[0] (user, domain, password, registrar); the rest are defaults. Every key and what it "
          "expects: phonectl config schema", file=sys.stderr)
    print(json.dumps(mod.with_defaults(EXAMPLE), indent=2, sort_keys=True))
    return 0


# -- JSON Schema export (for editors): the firmware's SCHEMA table as draft 2020-12. Host-side on purpose: the phone
# never needs it, so it takes no room there.
def _js(mod, row, t=None):
    t = t or row[1]
    opt = mod.opt
    if t == "object":
        path = row[0]
        rows = mod.fields(path)
        d = {"type": "object", "properties": dict([(r[0].rpartition(".")[2], _js(mod, r)) for r in rows]),
             "additionalProperties": False}
        req = [r[0].rpartition(".")[2] for r in rows if opt(r, "required")]
        if req:
            d["required"] = req
        if not path:
            return d
    elif t == "list":
        it = opt(row, "items")
        d = {"type": "array", "items": _js(mod, row, it) if it != "object" else _js(mod, (row[0], "object", None, "")),
             "minItems": opt(row, "min"), "maxItems": opt(row, "max")}
        if it == "str":
            d["uniqueItems"] = True
    elif t == "int":
        d = {"type": "integer", "minimum": opt(row, "lo"), "maximum": opt(row, "hi")}
        if opt(row, "step") or opt(row, "even"):
            d["multipleOf"] = opt(row, "step") or 2
    elif t == "bool":
        d = {"type": "boolean"}
    else:
        d = {"type": "string"}
        if opt(row, "nonempty"):
            d["minLength"] = 1
        if opt(row, "check") == "sip_uri":
            d["pattern"] = "^(sips?:.*)?$"
        elif opt(row, "check") == "https_url":
            d["pattern"] = "^(https://.+)?$"
    if opt(row, "choices") and t != "list":
        d["enum"] = list(opt(row, "choices"))
    if opt(row, "secret"):
        d["writeOnly"] = True
    if row[2] is not None and t == row[1]:
        d["default"] = list(row[2]) if isinstance(row[2], tuple) else row[2]
    d["description"] = "expected " + mod._what(row, t)
    return d


def json_schema(mod):
    """-> a JSON Schema (draft 2020-12) dict generated from the firmware's config SCHEMA (mod: uphone.config)."""
    d = _js(mod, ("", "object", None, ""))
    d["description"] = "expected an object"
    d["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    d["title"] = "uPhone config"
    return d
