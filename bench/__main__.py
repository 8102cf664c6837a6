# make bench: runs every bench module and prints one table (measured value beside the target).
# A bench module exposes rows() yielding (name, value, unit, target) with target a short string or "".
import importlib
import sys
import time

MODULES = ("table", "sip_parse", "sip_call", "codecs", "codecs_mp", "media_frame", "phone_mp", "echo",
           "srtp_mp", "flood")


def main(argv):
    only = set(argv[1:])
    rows = []
    for name in MODULES:
        if only and name not in only:
            continue
        try:
            mod = importlib.import_module("bench." + name)
        except ModuleNotFoundError as e:
            if e.name == "bench." + name:
                continue
            raise
        t0 = time.time()
        for row in mod.rows():
            rows.append((name,) + tuple(row))
        print("[%s done in %.1f s]" % (name, time.time() - t0), file=sys.stderr)
    w = [max(len(str(r[i])) for r in rows + [("group", "metric", "value", "unit", "target")]) for i in range(5)]
    head = ("group", "metric", "value", "unit", "target")
    print("  ".join(str(h).ljust(w[i]) for i, h in enumerate(head)))
    print("  ".join("-" * w[i] for i in range(5)))
    for r in rows:
        print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
