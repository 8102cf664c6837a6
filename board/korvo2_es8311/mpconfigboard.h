// ESP32-S3-Korvo-2 (ES8311 codec, octal PSRAM) running uPhone (frozen). Bluetooth is off in sdkconfig.board.
#define MICROPY_HW_BOARD_NAME "uPhone ESP32-S3-Korvo-2 (ES8311)"
#define MICROPY_HW_MCU_NAME "ESP32S3"
#define MICROPY_PY_BLUETOOTH (0)
