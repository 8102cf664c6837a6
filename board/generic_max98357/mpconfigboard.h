// ESP32 + MAX98357A + INMP441 running uPhone (frozen). Bluetooth is off in sdkconfig.board.
#define MICROPY_HW_BOARD_NAME "uPhone generic ESP32 (MAX98357A)"
#define MICROPY_HW_MCU_NAME "ESP32"
#define MICROPY_PY_BLUETOOTH (0)
