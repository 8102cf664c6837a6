// ESP32-LyraT V4.3 (ES8388 codec, ESP32-WROVER-E with PSRAM) running uPhone (frozen), full-duplex audio through the
// i2s_duplex C module. Bluetooth is off in sdkconfig.board. The console is UART0 (GPIO1/3) on the board's CP2102N:
// the ESP32 has no native USB, so the port's default UART REPL applies (ports/esp32/uart.h, v1.27.0).
#define MICROPY_HW_BOARD_NAME "uPhone ESP32-LyraT (ES8388)"
#define MICROPY_HW_MCU_NAME "ESP32"
#define MICROPY_PY_BLUETOOTH (0)
