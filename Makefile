# uPhone: one entry point for the desktop simulator, the tests, the benchmarks and the real phone.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
PORT    ?= /dev/ttyUSB0
CONFIG  ?= config.json
FIRMWARE_BIN ?=
BOARD   ?= generic_max98357
# MicroPython v1.27.0 source tree or release tarball (see README); empty = ../shared/micropython's tarball
MICROPY_SRC ?=
export MICROPY_SRC

.PHONY: venv demo test bench fuzz table verify vectors draw sim flash deploy provision console typecheck clean \
	micropython firmware

$(VENV)/.stamp: requirements-dev.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements-dev.txt
	$(VPY) -m pip install -q -e . --no-deps
	touch $@

venv: $(VENV)/.stamp

demo: venv
	$(VPY) -m host_tools demo $(if $(DEMO_OUT),--out $(DEMO_OUT),)

# the unix port with the firmware frozen in: the runtime of every phone-level test (incremental, cached in build/)
micropython: venv
	$(VPY) -m host_tools runtime build --board unix

# an ESP32 image with the firmware frozen in, through ESP-IDF (needs IDF_PATH): make firmware BOARD=generic_max98357
firmware: venv
	$(VPY) -m host_tools runtime build --board $(BOARD)

# 4 workers on 2 cores: the session-timer, transfer and conference tests spend their minutes waiting on RFC timers
# (RFC 4028's 90 s minimum interval), so one after another they would take the suite past 15 minutes
TEST_WORKERS ?= 4
test: venv micropython
	$(VPY) -m host_tools table verify
	$(VPY) -m host_tools typecheck
	rm -f build/coverage/running-phones.txt
	$(VPY) -m pytest -q -n $(TEST_WORKERS) tests
	$(VPY) -m host_tools table coverage --quiet

bench: venv micropython
	$(VPY) -m bench

# a million mutated SIP datagrams (and junk RTP/RTCP) at a phone on the frozen MicroPython in a 96 KB heap (about
# half an hour; FUZZ_RUNTIME=cpython takes five minutes); FUZZ_TARGET=host:port fuzzes a phone already running
FUZZ_COUNT   ?= 1000000
FUZZ_RUNTIME ?= micropython
fuzz: venv micropython
	$(VPY) -m host_tools fuzz --count $(FUZZ_COUNT) --runtime $(FUZZ_RUNTIME) $(if $(FUZZ_TARGET),--target $(FUZZ_TARGET),)

table: venv
	$(VPY) -m host_tools table compile

verify: venv
	$(VPY) -m host_tools table verify

vectors: venv
	$(VPY) -m host_tools vectors run --target cpython
	$(VPY) -m host_tools vectors run --target micropython

draw: venv
	$(VPY) -m host_tools table draw -o table.svg

sim: venv
	$(VPY) -m host_tools sim --config $(CONFIG)

typecheck: venv
	$(VPY) -m host_tools typecheck

flash: venv
	$(VPY) -m host_tools flash --port $(PORT) $(if $(FIRMWARE_BIN),--firmware $(FIRMWARE_BIN),)

deploy: venv
	$(VPY) -m host_tools deploy --port $(PORT) --board $(BOARD)

provision: venv
	$(VPY) -m host_tools provision --port $(PORT) --config $(CONFIG)

console: venv
	$(VPY) -m host_tools console --port $(PORT)

clean:
	rm -rf $(VENV) build .pytest_cache
