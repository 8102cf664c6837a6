// ESP32-LyraT (ES8388 codec, PSRAM) running uPhone (frozen): signalling and console; audio needs MCLK (see README).
#define MICROPY_HW_BOARD_NAME "uPhone ESP32-LyraT (ES8388)"
#define MICROPY_HW_MCU_NAME "ESP32"
#define MICROPY_PY_BLUETOOTH (0)
