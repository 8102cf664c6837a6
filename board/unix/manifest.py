# Freeze manifest for the unix port: the desktop runtime of the phone-level tests and the virtual board. Same form as
# the ESP32 boards' manifests: the port's own manifest first (a FROZEN_MANIFEST replaces it; the unix standard
# variant's gives asyncio, ssl and mip), then what uPhone uses from micropython-lib, then the uPhone package.
include("$(PORT_DIR)/variants/standard/manifest.py")
require("hmac")
package("uphone", base_path="../../firmware")
