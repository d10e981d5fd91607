# cfdtunnel build. `make test` on a fresh Debian 12 machine installs, builds and runs everything.
#
#   make deps      Debian packages + wolfSSL 5.5.4 with AES-NI under build/wolfssl (idempotent)
#   make           build/cfdtunnel
#   make test      deps, build, unit + integration tests; ends with `tests: N passed, M failed`
#   make asan      the whole suite under ASan + UBSan (objects in build/asan)
#   make bench     tools/bench programs, printing ratios against real peers
#   make fuzz      libFuzzer targets (clang), see tools/fuzz.mk; fuzz-regress replays the seeds
#   make demo      the main job on loopback: two edge locations, a tunnel, a connector, an nginx
#                  origin; prints the curl command and `tunnel info demo`; Ctrl-C stops it all
#   make install   PREFIX=/usr/local DESTDIR= : binary and man pages
#   make unit-MOD  one module's unit tests only (MOD = core config tls http1 http2 rpc store reactor uring)

BUILD   := build
VARIANT ?= release
# OUT may be overridden (OUT=build/x) so that several people can build side by side.
ifeq ($(VARIANT),asan)
OUT     ?= $(BUILD)/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1 -g
else
OUT     ?= $(BUILD)
SANFLAGS :=
OPT     := -O2 -g
endif

JOBS    ?= $(shell nproc)
PREFIX  ?= /usr/local
DESTDIR ?=

CXX     := g++
CC      := gcc
-include $(BUILD)/wolfssl.mk
WOLFSSL_LIBS ?= -lwolfssl

LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

WARN      := -Wall -Wextra -Werror -Wshadow
CPPFLAGS  := -Iinclude -Isrc -I$(OUT)/gen -isystem $(LLHTTP_INC) $(WOLFSSL_CFLAGS) -MMD -MP
CXXFLAGS  := -std=c++20 $(OPT) $(WARN) -fno-exceptions -pthread $(SANFLAGS)
# Cap'n Proto's generated code and kj use exceptions internally; they get their own flags.
GENFLAGS  := -std=c++20 $(OPT) -w -pthread $(SANFLAGS)
CFLAGS    := $(OPT) -w $(SANFLAGS)
LDLIBS    := $(WOLFSSL_LIBS) -luring -lnghttp2 -lcapnp-rpc -lcapnp -lkj-async -lkj -linih -lsqlite3 -lpthread -lm
LDFLAGS   := -pthread $(SANFLAGS)

MODULES := core config reactor net tls http1 ws http2 rpc store connector edge control
LIB_SRCS := $(sort $(foreach m,$(MODULES),$(wildcard src/$(m)/*.cc)))
CLI_SRCS := $(wildcard src/cli/*.cc)
CAPNP_SRCS := $(wildcard src/rpc/*.capnp)
CAPNP_GEN_CC := $(patsubst src/rpc/%.capnp,$(OUT)/gen/rpc/%.capnp.c++,$(CAPNP_SRCS))
CAPNP_GEN_H  := $(CAPNP_GEN_CC:.c++=.h)
LLHTTP_OBJS := $(OUT)/obj/llhttp/api.o $(OUT)/obj/llhttp/http.o $(OUT)/obj/llhttp/llhttp.o

obj_of = $(patsubst %.cc,$(OUT)/obj/%.o,$(1))
LIB_OBJS := $(call obj_of,$(LIB_SRCS)) $(patsubst %.c++,%.o,$(CAPNP_GEN_CC)) $(LLHTTP_OBJS)
CLI_OBJS := $(call obj_of,$(CLI_SRCS))
# The commands without main(): unit tests link them too.
CMD_OBJS := $(filter-out %/cli/main.o,$(CLI_OBJS))

UNIT_MAIN := tests/unit/main.cc
UNIT_SRCS := $(sort $(wildcard tests/unit/*/*.cc) $(wildcard tests/uring/*.cc))
UNIT_OBJS := $(call obj_of,$(UNIT_MAIN) $(UNIT_SRCS))

BIN := $(OUT)/cfdtunnel
UNIT_BIN := $(OUT)/unit_tests

.PHONY: all deps test asan bench demo install clean format fuzz unit-%
.DEFAULT_GOAL := all

all: $(BIN)

deps:
	@BUILD=$(BUILD) bash tools/deps.sh

$(BUILD)/wolfssl.mk:
	@BUILD=$(BUILD) bash tools/deps.sh

$(BIN): $(CLI_OBJS) $(LIB_OBJS)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_BIN): $(UNIT_OBJS) $(CMD_OBJS) $(LIB_OBJS)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# One module's tests linked against that module and the modules below it only, so that a
# half-written file elsewhere does not stop work on this layer. `make unit-tls ARGS=-s`.
DEPS_core    :=
DEPS_config  := core
DEPS_tls     := core
DEPS_http1   := core
DEPS_ws      := core http1
DEPS_http2   := core
DEPS_rpc     := core
DEPS_reactor := core
DEPS_net     := core reactor
DEPS_uring   := core reactor net tls
DEPS_store   := core
DEPS_connector := core config reactor net tls http1 ws http2 rpc
DEPS_edge    := core config reactor net tls http1 http2 rpc store
DEPS_control := core config reactor net tls http1 http2 rpc store edge
DEPS_cli     := $(filter-out cli,$(MODULES))
unit_tests_of = $(wildcard tests/unit/$(1)/*.cc) $(if $(filter uring,$(1)),$(wildcard tests/uring/*.cc))
unit_objs_of = $(filter-out %/cli/main.o,$(call obj_of,$(UNIT_MAIN) $(call unit_tests_of,$(1)) \
    $(foreach m,$(DEPS_$(1)) $(1),$(wildcard src/$(m)/*.cc)))) \
    $(if $(filter http1,$(1) $(DEPS_$(1))),$(LLHTTP_OBJS)) \
    $(if $(filter rpc,$(1) $(DEPS_$(1))),$(patsubst %.c++,%.o,$(CAPNP_GEN_CC)))

# Generated Cap'n Proto sources are intermediate files to make: keep them, or every build
# regenerates them and recompiles what includes them.
.SECONDARY: $(CAPNP_GEN_CC) $(CAPNP_GEN_H)

.SECONDEXPANSION:
unit-%: $$(call unit_objs_of,$$*)
	$(CXX) $(LDFLAGS) -o $(OUT)/unit_$* $^ $(LDLIBS)
	$(OUT)/unit_$* $(ARGS)

# Tests use doctest's REQUIRE, which throws; project code is built without exceptions, except
# src/rpc: Cap'n Proto's readers throw kj::Exception on malformed input, caught at that boundary.
$(OUT)/obj/tests/%.o: CXXFLAGS += -fexceptions
$(OUT)/obj/src/rpc/%.o: CXXFLAGS += -fexceptions

# wolfssl.mk names the wolfSSL headers (system or ours): a switch rebuilds everything.
$(OUT)/obj/%.o: %.cc $(BUILD)/wolfssl.mk | $(CAPNP_GEN_H)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

$(OUT)/gen/rpc/%.capnp.c++ $(OUT)/gen/rpc/%.capnp.h: src/rpc/%.capnp
	@mkdir -p $(OUT)/gen/rpc
	capnp compile -oc++:$(OUT)/gen/rpc --src-prefix=src/rpc $<

$(OUT)/gen/rpc/%.capnp.o: $(OUT)/gen/rpc/%.capnp.c++
	$(CXX) $(CPPFLAGS) $(GENFLAGS) -c -o $@ $<

# Strict mode: no lenient parsing anywhere (the codec checks again on its own).
$(OUT)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) -isystem $(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1 $(CFLAGS) -c -o $@ $<

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) $(BIN) $(UNIT_BIN)
	@OUT=$(OUT) bash tools/run_tests.sh

asan: deps
	@$(MAKE) --no-print-directory -j$(JOBS) VARIANT=asan $(BUILD)/asan/cfdtunnel $(BUILD)/asan/unit_tests
	@OUT=$(BUILD)/asan CFD_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1 bash tools/run_tests.sh

bench: deps
	@$(MAKE) --no-print-directory -j$(JOBS) $(BIN) $(OUT)/bench_tls
	@OUT=$(OUT) bash tools/bench/run.sh

$(OUT)/bench_tls: $(call obj_of,tools/bench/tls_throughput.cc) $(LIB_OBJS)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

demo: deps
	@$(MAKE) --no-print-directory -j$(JOBS) $(BIN)
	@OUT=$(OUT) bash tools/demo.sh

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/cfdtunnel
	install -D -m 0644 man/cfdtunnel.1 $(DESTDIR)$(PREFIX)/share/man/man1/cfdtunnel.1
	install -D -m 0644 man/cfdtunnel.ini.5 $(DESTDIR)$(PREFIX)/share/man/man5/cfdtunnel.ini.5
	# systemd units (their ExecStart points at this PREFIX), sysctl and sysusers snippets, and
	# the sample configurations; systemd reads $(PREFIX)/lib/... for PREFIX=/usr/local too.
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	for u in cfdtunnel-edge.service cfdtunnel-connector@.service; do \
	  sed 's|/usr/local/bin/cfdtunnel|$(PREFIX)/bin/cfdtunnel|' etc/systemd/$$u \
	    >$(DESTDIR)$(PREFIX)/lib/systemd/system/$$u && \
	  chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$$u; done
	install -D -m 0644 etc/sysctl.d/60-cfdtunnel-edge.conf \
	  $(DESTDIR)$(PREFIX)/lib/sysctl.d/60-cfdtunnel-edge.conf
	install -D -m 0644 etc/systemd/sysusers.d/cfdtunnel.conf \
	  $(DESTDIR)$(PREFIX)/lib/sysusers.d/cfdtunnel.conf
	install -D -m 0644 etc/edge.ini $(DESTDIR)$(PREFIX)/share/doc/cfdtunnel/examples/edge.ini
	install -D -m 0644 etc/connector.ini \
	  $(DESTDIR)$(PREFIX)/share/doc/cfdtunnel/examples/connector.ini
	install -d $(DESTDIR)$(PREFIX)/share/doc/cfdtunnel/examples/kubernetes
	install -m 0644 etc/kubernetes/*.yaml $(DESTDIR)$(PREFIX)/share/doc/cfdtunnel/examples/kubernetes/

clean:
	rm -rf $(OUT)/obj $(OUT)/gen $(BIN) $(UNIT_BIN) $(OUT)/unit_* $(BUILD)/asan

# `make fuzz`: libFuzzer targets in tests/fuzz (clang), rules in tools/fuzz.mk.
-include tools/fuzz.mk

format:
	clang-format -i $$(find src include tests tools -name '*.cc' -o -name '*.h')

-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)
