# uPhone: shims so one source runs on MicroPython and CPython.
# Only tiny things live here; anything bigger gets its own module.
import sys

# mypy reads TYPE_CHECKING as true (mypy/reachability.py); at run time it is False, so `if TYPE_CHECKING: from typing
# import Any` gives type comments their names without importing typing, which MicroPython does not have
TYPE_CHECKING = False

# True where viper/native code runs: MicroPython puts the native architecture in sys.implementation._mpy's bits 10+
# (the ESP32 ports and the unix build have one; the wasm VM has 0). CPython runs only plain-Python twins.
NATIVE = sys.implementation.name == "micropython" and (getattr(sys.implementation, "_mpy", 0) >> 10) != 0
try:
    from micropython import const  # noqa: F401
except ImportError:
    def const(x):  # type: ignore[misc]  # CPython twin of micropython.const
        return x

try:
    from time import ticks_ms, ticks_diff, ticks_add  # MicroPython
except ImportError:
    import time as _t

    def ticks_ms():
        return int(_t.monotonic() * 1000)  # type: ignore[attr-defined]  # CPython's time (the stubs are MicroPython's)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):  # type: ignore[misc]  # CPython ints never wrap
        return a + b


def text(b):
    """bytes -> str for showing or scanning what a peer sent: UTF-8, or with every non-ASCII byte as "?" when it is
    not valid UTF-8. MicroPython's decode takes no errors= argument (decode("utf-8", "replace") raises UnicodeError
    there, as str(b, "latin-1") does: it knows only UTF-8)."""
    try:
        return b.decode("utf-8")
    except UnicodeError:
        return bytes(c if c < 128 else 63 for c in b).decode()


def one_line(b, limit=200):
    """A peer's text as one console line: at most limit characters, control characters (a newline would forge a
    console answer such as "ok 0 sessions") as "?"."""
    t = text(bytes(b[:limit * 4]))[:limit]
    for c in t:
        if c < " " or c == "\x7f":
            return "".join("?" if (ch < " " or ch == "\x7f") else ch for ch in t)
    return t
