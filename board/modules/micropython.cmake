# All of uPhone's C modules, for a hand-made ESP32 build (USER_C_MODULES=<this file>). `phonectl runtime build
# --board B` writes its own file with only the modules board/B/board.json lists. Pattern: MicroPython v1.27.0
# docs/develop/cmodules.rst.
include(${CMAKE_CURRENT_LIST_DIR}/i2s_duplex/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/dgram/micropython.cmake)
