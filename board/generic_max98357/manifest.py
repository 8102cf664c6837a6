# Freeze manifest for this board: stock MicroPython modules, then the uPhone package (frozen code runs from flash, so
# the table bytes and the SIP/media code cost no heap). No main.py is frozen: a frozen main.py would run instead of
# the filesystem's (shared/runtime/pyexec.c pyexec_file_if_exists looks in the frozen modules first), so a user
# could neither replace nor stop the phone. The boot code is uphone/boot.py; the /main.py that calls it is written
# by `phonectl deploy` / `provision` when the phone has none.
include("$(PORT_DIR)/boards/manifest.py")
package("uphone", base_path="../../firmware")
