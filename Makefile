# ferry: one Makefile for the EFI image, the host-built codec, its tests,
# fuzzers, benchmarks and tools. `make V=1` shows full commands.

.DEFAULT_GOAL := all
SHELL := /bin/bash

V ?= 0
ifeq ($(V),1)
Q :=
else
Q := @
endif

BUILD := build
HOST := $(BUILD)/host

# ---------------------------------------------------------------------------
# Host side: codec/ compiled natively for unit tests, fuzzers, benchmarks and
# the host tools. The same sources go into the kernel (see below).

HOST_CC ?= gcc
HOST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Iinclude -MMD -MP
HOST_LDLIBS :=

# Portable sources shared by kernel and host (explicit list).
CODEC_SRCS := codec/xbzrle.c codec/xbzrle_simd.c codec/pcache.c
CODEC_SRCS += codec/crc32c.c codec/digest.c codec/stream_names.c codec/stream_writer.c \
	codec/stream_reader.c codec/stream_check.c codec/stream_apply.c

# Host unit tests: tests/unit/NAME.c -> $(HOST)/tests/NAME, linked with the codec.
UNIT_TESTS := test_xbzrle test_uleb128 test_xbzrle_paths test_pcache
UNIT_TESTS += test_crc32c test_stream_rt test_stream_reader test_stream_apply

# Benchmarks: tests/bench/NAME.c -> $(HOST)/bench/NAME (-O2 -march=native).
BENCHES := bench_xbzrle bench_pcache
BENCHES += bench_stream

# libFuzzer targets: tests/fuzz/NAME.c -> $(HOST)/fuzz/NAME (clang, ASan, UBSan).
FUZZERS := fuzz_xbzrle_decode fuzz_xbzrle_roundtrip
FUZZERS += fuzz_stream_reader

# Host tools: tools/NAME.c -> $(HOST)/tools/NAME.
TOOLS :=
TOOLS += ferry-stream

# Integration tests (pytest), run by `make check` after the unit tests.
PYTEST := /usr/bin/python3 -m pytest

HOST_CODEC_OBJS = $(CODEC_SRCS:%.c=$(HOST)/%.o)

$(HOST)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOSTCC  $<")
	$(Q)$(HOST_CC) $(HOST_CFLAGS) -c $< -o $@

$(HOST)/tests/%: $(HOST)/tests/unit/%.o $(HOST_CODEC_OBJS)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -o $@ $^ -lcmocka $(HOST_LDLIBS)

BENCH_CFLAGS := $(filter-out -O2,$(HOST_CFLAGS)) -O2 -march=native
$(HOST)/bench/%: tests/bench/%.c $(CODEC_SRCS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BENCH   $@")
	$(Q)$(HOST_CC) $(BENCH_CFLAGS) -o $@ $^ $(HOST_LDLIBS)

FUZZ_CC := clang
FUZZ_CFLAGS := -std=gnu11 -g -O1 -Iinclude -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined
$(HOST)/fuzz/%: tests/fuzz/%.c $(CODEC_SRCS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $^

$(HOST)/tools/%: $(HOST)/tools/%.o $(HOST_CODEC_OBJS)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOST_CC) -o $@ $^ $(HOST_LDLIBS)

UNIT_BINS := $(UNIT_TESTS:%=$(HOST)/tests/%)
BENCH_BINS := $(BENCHES:%=$(HOST)/bench/%)
FUZZ_BINS := $(FUZZERS:%=$(HOST)/fuzz/%)
TOOL_BINS := $(TOOLS:%=$(HOST)/tools/%)

# Seconds each fuzzer runs in `make check`; `make fuzz FUZZ_SECONDS=3600`.
FUZZ_CHECK_SECONDS ?= 20
FUZZ_SECONDS ?= 600

.PHONY: all host unit check fuzz-check fuzz bench deps clean
all: host
host: $(UNIT_BINS) $(TOOL_BINS)

deps:
	$(Q)bash tools/deps.sh

unit: $(UNIT_BINS)
	$(Q)set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

fuzz-check: $(FUZZ_BINS)
	$(Q)set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(HOST)/corpus/$$n; \
	  echo "== $$n ($(FUZZ_CHECK_SECONDS) s)"; \
	  $$f -max_total_time=$(FUZZ_CHECK_SECONDS) -print_final_stats=1 $(HOST)/corpus/$$n $$(test -d tests/fuzz/seeds/$$n && echo tests/fuzz/seeds/$$n) 2>&1 \
	    | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' ; test $${PIPESTATUS[0]} -eq 0; done

fuzz: $(FUZZ_BINS)
	$(Q)set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(HOST)/corpus/$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(HOST)/corpus/$$n $$(test -d tests/fuzz/seeds/$$n && echo tests/fuzz/seeds/$$n); done

bench: $(BENCH_BINS)
	$(Q)set -e; for b in $(BENCH_BINS); do echo "== $$b"; $$b; done

check: deps
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory fuzz-check
	$(Q)$(MAKE) --no-print-directory $(TOOL_BINS)
	$(Q)$(PYTEST) -q tests/integration/test_stream_tools.py

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
