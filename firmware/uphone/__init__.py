# uPhone firmware package: runs unchanged on ESP32 (MicroPython 1.27) and on CPython 3.11.
