# Virtual board: what ports/esp32/main.c does after every reset, for the unix binary that the supervisor
# (host_tools/virtual_board.py) starts as `micropython -i -c "import _vboot"` with the board's folder as its cwd.
#   1. the hardware modules load first (after step 2 only the board's own files are visible), i2s_duplex too on a
#      board whose image builds it in
#   2. frozen _boot.py's job: the board's filesystem becomes "/" (VfsPosix on the board folder)
#   3. sys.path = ['', '.frozen', '/lib'] as on the ESP32 (mp_init + the /lib append in main.c)
#   4. pyexec_file_if_exists("boot.py"), then, only when the REPL is in friendly mode, "main.py"; both run in the
#      REPL's globals (__main__), a traceback goes to the console and the board carries on to the REPL
#   5. the unix port's REPL (-i) is the board's REPL: raw REPL, raw-paste and Ctrl-D are MicroPython's own
# A SystemExit from boot.py/main.py is a soft reset on the ESP32 (PYEXEC_FORCED_EXIT): here the supervisor restarts
# the process. No module of this build is frozen as boot.py or main.py (board/unix/manifest.py), so the frozen-first
# lookup of pyexec_file_if_exists has nothing to find and is not repeated here.
import os
import sys

import _vbhw
import machine  # noqa: F401  (loaded before the remount, like a built-in)
import network  # noqa: F401

try:
    import i2s_duplex  # noqa: F401  (a codec board's image has it built in; others raise ImportError)
except ImportError:
    pass

_root = os.getenv("UPHONE_VB_ROOT")
if _root:
    os.umount("/")
    os.mount(os.VfsPosix(_root), "/")
    # rename() with two absolute paths is broken on v1.27's VfsPosix (both are built in one shared buffer,
    # extmod/vfs_posix.c vfs_posix_get_path_str), relative ones reach the OS as they are: the process cwd is the
    # board folder, so "config.json" is the same file as "/config.json", as on the ESP32 whose cwd is "/"
sys.path[:] = ["", ".frozen", "/lib"]


def _run(name):
    try:
        os.stat(name)
    except OSError:
        return
    import __main__
    g = __main__.__dict__
    g["__file__"] = name
    try:
        with open(name) as f:
            code = compile(f.read(), name, "exec")
        exec(code, g)
    except SystemExit:
        if _vbhw.attached():
            _vbhw.send("soft")          # the supervisor ends this process and reports a soft reboot
            while True:
                machine.idle()
    except BaseException as e:          # KeyboardInterrupt included: the board goes on to the REPL
        sys.print_exception(e)


_run("boot.py")
if os.getenv("UPHONE_VB_MODE") != "raw":
    _run("main.py")
