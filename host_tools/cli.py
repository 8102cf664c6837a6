# phonectl: the host CLI (CPython only). Each verb lives in its own module exposing
# register(subparsers) -> adds its parser and sets `func` (called with the parsed args, returns an exit code).
import argparse
import importlib
import sys

# verb modules, in help order; a module that fails to import is a bug, not a missing feature
VERBS = ("table_cmd", "vectors", "sim", "demo", "runtime", "flash", "deploy", "provision", "console_cmd", "typecheck",
         "config_cmd", "fuzz", "mip_cmd")


def build_parser():
    p = argparse.ArgumentParser(prog="phonectl", description="uPhone host tools: table, vectors, simulator, "
                                "flash/deploy/provision/console for ESP32 handsets.")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name in VERBS:
        try:
            mod = importlib.import_module("host_tools." + name)
        except ModuleNotFoundError as e:
            if e.name == "host_tools." + name:
                continue  # verb not built yet in this checkout
            raise
        mod.register(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        rc = 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
