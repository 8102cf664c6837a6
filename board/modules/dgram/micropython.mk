# dgram for the unix port's make (USER_C_MODULES=board/modules; docs/develop/cmodules.rst)
DGRAM_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(DGRAM_DIR)/dgram.c
CFLAGS_USERMOD += -I$(DGRAM_DIR)
