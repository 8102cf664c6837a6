# Freeze manifest for this board: stock MicroPython modules, then the uPhone package and boot script (frozen code
# runs from flash, so the table bytes and the SIP/media code cost no heap).
include("$(PORT_DIR)/boards/manifest.py")
package("uphone", base_path="../../firmware")
module("main.py", base_path="../../firmware")
