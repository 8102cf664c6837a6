# ESP32-S3-Korvo-2 V3 (ES8311 + ES7210, octal PSRAM) running uPhone (frozen), Bluetooth off.
# The fragments are those of MicroPython v1.27.0's own ESP32_GENERIC_S3 board with its SPIRAM_OCT variant
# (ports/esp32/boards/ESP32_GENERIC_S3/mpconfigboard.cmake and mpconfigvariant_SPIRAM_OCT.cmake, tag v1.27.0 =
# 78ff170de9e32c79db6e64d3e33d2bd60002bdcd), less boards/sdkconfig.ble; v1.27.0 has no boards/sdkconfig.usb.
set(IDF_TARGET esp32s3)
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.spiram_sx
    boards/sdkconfig.240mhz
    boards/sdkconfig.spiram_oct
    boards/ESP32_GENERIC_S3/sdkconfig.board
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
