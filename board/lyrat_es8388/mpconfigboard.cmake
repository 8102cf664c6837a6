# ESP32-LyraT V4.3 (ESP32-WROVER-E, ES8388 codec); uPhone frozen, Bluetooth off, i2s_duplex C module (board.json
# user_c_modules; host_tools/runtime.py passes USER_C_MODULES). Fragments: MicroPython v1.27.0 ESP32_GENERIC with its
# SPIRAM variant (boards/ESP32_GENERIC/mpconfigboard.cmake and mpconfigvariant_SPIRAM.cmake) less sdkconfig.ble.
set(IDF_TARGET esp32)
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.spiram
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
