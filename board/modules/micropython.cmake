# uPhone's C modules for the ESP32 boards (USER_C_MODULES=<this file>; host_tools/runtime.py build_esp32 passes it
# for boards whose board.json lists them). Pattern: MicroPython v1.27.0 docs/develop/cmodules.rst.
include(${CMAKE_CURRENT_LIST_DIR}/i2s_duplex/micropython.cmake)
