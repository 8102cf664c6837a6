// ESP32-WROVER-E (or WROOM-32E) + MAX98357A + INMP441 running uPhone (frozen). Bluetooth is off in sdkconfig.board.
// Console: UART0 (GPIO1/3) through the module's USB-UART bridge; the port's default on the ESP32 (ports/esp32/uart.h).
#define MICROPY_HW_BOARD_NAME "uPhone generic ESP32 (MAX98357A + INMP441)"
#define MICROPY_HW_MCU_NAME "ESP32"
#define MICROPY_PY_BLUETOOTH (0)
