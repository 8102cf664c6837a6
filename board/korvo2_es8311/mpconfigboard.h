// ESP32-S3-Korvo-2 V3 (ES8311 DAC + ES7210 ADC, octal PSRAM) running uPhone (frozen). Bluetooth is off in
// sdkconfig.board.
#define MICROPY_HW_BOARD_NAME "uPhone ESP32-S3-Korvo-2 (ES8311 + ES7210)"
#define MICROPY_HW_MCU_NAME "ESP32S3"
#define MICROPY_PY_BLUETOOTH (0)

// REPL and the uPhone console on UART0 (GPIO43/44), which the board's CP2102N USB-UART bridge carries: the port
// phonectl talks to. On the S3 the port defaults this off when native USB is on (ports/esp32/uart.h, v1.27.0);
// ESP32_GENERIC_S3's mpconfigboard.h turns it on the same way.
#define MICROPY_HW_ENABLE_UART_REPL (1)

// The board's I2C bus (ES8311 0x18, ES7210 0x40, TCA9554 0x38/0x20): esp-bsp bsp/esp32_s3_korvo_2 BSP_I2C_SDA/SCL.
#define MICROPY_HW_I2C0_SCL (18)
#define MICROPY_HW_I2C0_SDA (17)
