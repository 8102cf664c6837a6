# Freeze manifest for this board: stock MicroPython modules, then the uPhone package (frozen code runs from flash, so
# the table bytes and the SIP/media code cost no heap). No main.py is frozen: a frozen main.py would run instead of
# the filesystem's (shared/runtime/pyexec.c pyexec_file_if_exists looks in the frozen modules first), so a user
# could neither replace nor stop the phone. The boot code is uphone/boot.py; the /main.py that calls it is written
# by `phonectl deploy` / `provision` when the phone has none.
include("$(PORT_DIR)/boards/manifest.py")
# What uPhone uses from micropython-lib (the port's manifest above already freezes bundle-networking: mip, ntptime,
# requests, ssl, webrepl). The same list is package.json's deps (host_tools/mip_index.py MPLIB_DEPS; a test keeps
# them equal). hmac: SRTP's HMAC-SHA1 with the built-in hashlib.sha1. ntptime: the clock is set at boot, before
# TLS checks certificate dates (uphone.boot.set_clock).
require("hmac")
require("ntptime")
package("uphone", base_path="../../firmware")
