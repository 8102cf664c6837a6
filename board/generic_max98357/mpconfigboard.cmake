# ESP32 (classic) with MAX98357A amp + INMP441 mic; the stock ESP32_GENERIC config, trimmed (no BLE), uPhone frozen.
set(IDF_TARGET esp32)
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
