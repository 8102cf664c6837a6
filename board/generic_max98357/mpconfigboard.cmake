# ESP32-WROVER-E (or WROOM-32E) with MAX98357A amp + INMP441 mic; uPhone frozen, Bluetooth off.
# Fragments: MicroPython v1.27.0 ESP32_GENERIC with its SPIRAM variant (boards/ESP32_GENERIC/mpconfigboard.cmake and
# mpconfigvariant_SPIRAM.cmake) less sdkconfig.ble; sdkconfig.spiram sets CONFIG_SPIRAM_IGNORE_NOTFOUND, so the same
# image also boots on a module without PSRAM.
set(IDF_TARGET esp32)
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.spiram
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
