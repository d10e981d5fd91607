# libFuzzer targets (tests/fuzz/*_fuzz.cc), built with clang into build/fuzz. Included by the
# Makefile; every name here is FUZZ_* / fuzz-* so that nothing clashes with the main build.
#
#   make fuzz                 build every target, fuzz each for FUZZ_SECONDS (default 60) on its
#                             corpus; fails if any target crashed, leaked, hung or ran out of memory
#   make fuzz-build           build only
#   make fuzz-regress         run each target once over its checked-in seeds (fast; for CI)
#   make fuzz-run-NAME        fuzz one target, e.g. `make fuzz-run-json_fuzz FUZZ_SECONDS=30`
#   make fuzz-seeds           rewrite the checked-in seeds (tests/fuzz/seeds/make_seeds.cc)
#   FUZZ_TARGETS="a_fuzz b_fuzz"   restrict fuzz / fuzz-build / fuzz-regress to some targets
#   FUZZ_ARGS="-jobs=2"            extra libFuzzer flags for fuzz and fuzz-run-NAME
#
# Seeds live in tests/fuzz/corpus/NAME/ (read-only to the fuzzer); what a run discovers goes to
# build/fuzz/corpus/NAME/, crash reproducers to build/fuzz/crashes/. Reproduce one with
# `build/fuzz/NAME build/fuzz/crashes/NAME-crash-...`.
#
# Each target links only the modules it names (FUZZ_MODS_*, keyed by the file name's first
# word), so that a half-written module elsewhere does not stop fuzzing of this one.

FUZZ_OUT     ?= $(BUILD)/fuzz
FUZZ_CXX     := clang++
FUZZ_CC      := clang
FUZZ_SECONDS ?= 60
FUZZ_ARGS    ?=

FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/*_fuzz.cc))
FUZZ_ALL     := $(patsubst tests/fuzz/%.cc,%,$(FUZZ_SRCS))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BINS    := $(addprefix $(FUZZ_OUT)/,$(FUZZ_ALL))

# Modules a target links, by the first word of its name (http1_request_fuzz -> http1).
FUZZ_MODS_http1 := core http1
FUZZ_MODS_http2 := core http2
FUZZ_MODS_rpc   := core rpc
FUZZ_MODS_json  := core
FUZZ_MODS_ini   := core config
FUZZ_MODS_tls   := core tls
FUZZ_MODS_ws    := core http1 ws
# The edge's public sessions (edge_public_fuzz); the module's own dependencies (DEPS_edge).
FUZZ_MODS_edge  := core config reactor net tls http1 http2 rpc store edge
fuzz_mods = $(or $(FUZZ_MODS_$(firstword $(subst _, ,$(1)))),core)

FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CPPFLAGS := -Iinclude -Isrc -I$(FUZZ_OUT)/gen -isystem $(LLHTTP_INC) $(WOLFSSL_CFLAGS) -MMD -MP
FUZZ_CXXFLAGS := -std=c++20 -O1 -g -pthread -Wall -Wextra -Wno-unused-parameter \
                 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -fno-exceptions
# Cap'n Proto throws inside src/rpc (caught at the module's boundary) and in its generated code.
FUZZ_GENFLAGS := -std=c++20 -O1 -g -pthread -w -fsanitize=fuzzer-no-link $(FUZZ_SAN) -fexceptions
FUZZ_CFLAGS   := -O1 -g -w -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_LDFLAGS  := -pthread -fsanitize=fuzzer $(FUZZ_SAN)
FUZZ_LDLIBS    = $(LDLIBS)

FUZZ_GEN_CC   := $(patsubst src/rpc/%.capnp,$(FUZZ_OUT)/gen/rpc/%.capnp.c++,$(wildcard src/rpc/*.capnp))
FUZZ_GEN_H    := $(FUZZ_GEN_CC:.c++=.h)
FUZZ_GEN_OBJS := $(FUZZ_GEN_CC:.c++=.o)
FUZZ_LLHTTP_OBJS := $(FUZZ_OUT)/obj/llhttp/api.o $(FUZZ_OUT)/obj/llhttp/http.o \
                    $(FUZZ_OUT)/obj/llhttp/llhttp.o

# clang 14 lacks C++20's parenthesized aggregate initialization (P0960, clang 16), which g++ 12
# accepts: project code initializes aggregates with braces. A source no fuzz target needs that
# clang 14 cannot compile can be left out by naming it in FUZZ_EXCLUDE_SRCS (none today).
FUZZ_EXCLUDE_SRCS ?=

fuzz_obj = $(patsubst %.cc,$(FUZZ_OUT)/obj/%.o,$(1))
# Objects of target $(1) besides its own: its modules' sources, llhttp, the generated schema.
fuzz_objs_of = $(call fuzz_obj,$(filter-out $(FUZZ_EXCLUDE_SRCS),\
        $(foreach m,$(call fuzz_mods,$(1)),$(wildcard src/$(m)/*.cc)))) \
    $(if $(filter http1,$(call fuzz_mods,$(1))),$(FUZZ_LLHTTP_OBJS)) \
    $(if $(filter rpc,$(call fuzz_mods,$(1))),$(FUZZ_GEN_OBJS))

# Keep the generated schema (an intermediate file) so that it is not rebuilt every time.
.SECONDARY: $(FUZZ_GEN_CC) $(FUZZ_GEN_H)
.PHONY: fuzz-build fuzz-regress fuzz-seeds

$(FUZZ_OUT)/obj/src/rpc/%.o: FUZZ_CXXFLAGS += -fexceptions

$(FUZZ_OUT)/obj/%.o: %.cc $(BUILD)/wolfssl.mk | $(FUZZ_GEN_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) -c -o $@ $<

$(FUZZ_OUT)/gen/rpc/%.capnp.c++ $(FUZZ_OUT)/gen/rpc/%.capnp.h: src/rpc/%.capnp
	@mkdir -p $(FUZZ_OUT)/gen/rpc
	capnp compile -oc++:$(FUZZ_OUT)/gen/rpc --src-prefix=src/rpc $<

$(FUZZ_OUT)/gen/rpc/%.capnp.o: $(FUZZ_OUT)/gen/rpc/%.capnp.c++
	$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_GENFLAGS) -c -o $@ $<

$(FUZZ_OUT)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -isystem $(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1 $(FUZZ_CFLAGS) -c -o $@ $<

# The Makefile turns on .SECONDEXPANSION before including this file.
$(FUZZ_BINS): $(FUZZ_OUT)/%: $(FUZZ_OUT)/obj/tests/fuzz/%.o $$(call fuzz_objs_of,$$*)
	$(FUZZ_CXX) $(FUZZ_LDFLAGS) -o $@ $^ $(FUZZ_LDLIBS)

fuzz-build: $(addprefix $(FUZZ_OUT)/,$(FUZZ_TARGETS))

# Regenerates the checked-in seeds from the project's own encoders (tests/fuzz/seeds/).
FUZZ_SEEDS_MODS := core rpc http2 tls
$(FUZZ_OUT)/make_seeds: $(FUZZ_OUT)/obj/tests/fuzz/seeds/make_seeds.o \
        $(call fuzz_obj,$(filter-out $(FUZZ_EXCLUDE_SRCS),\
            $(foreach m,$(FUZZ_SEEDS_MODS),$(wildcard src/$(m)/*.cc)))) $(FUZZ_GEN_OBJS)
	$(FUZZ_CXX) -pthread -fsanitize=fuzzer-no-link $(FUZZ_SAN) -o $@ $^ $(FUZZ_LDLIBS)

fuzz-seeds: $(FUZZ_OUT)/make_seeds
	mkdir -p $(addprefix tests/fuzz/corpus/,$(FUZZ_ALL))
	$(FUZZ_OUT)/make_seeds tests/fuzz/corpus

# libFuzzer flags shared by every run: a hang is an input that takes more than 10 s; stop at the
# first crash and leave its reproducer under build/fuzz/crashes.
FUZZ_RUN_FLAGS = -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=$(FUZZ_OUT)/crashes/$(1)-

# $(1): target. Fuzzes it for FUZZ_SECONDS on (new inputs dir, seeds dir).
fuzz_run_one = mkdir -p $(FUZZ_OUT)/corpus/$(1) $(FUZZ_OUT)/crashes tests/fuzz/corpus/$(1) && \
    $(FUZZ_OUT)/$(1) $(call FUZZ_RUN_FLAGS,$(1)) -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS) \
        $(FUZZ_OUT)/corpus/$(1) tests/fuzz/corpus/$(1)

# Every target runs even when one fails; the summary names those that failed.
fuzz: fuzz-build
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	    echo "== fuzz $$t: $(FUZZ_SECONDS)s"; \
	    if ! ( $(call fuzz_run_one,$$t) ) > $(FUZZ_OUT)/$$t.log 2>&1; then \
	        failed="$$failed $$t"; tail -n 60 $(FUZZ_OUT)/$$t.log; \
	    fi; \
	    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' $(FUZZ_OUT)/$$t.log | \
	        sed "s/^/   $$t /"; \
	done; \
	if [ -n "$$failed" ]; then \
	    echo "fuzz: FAILED:$$failed (logs: $(FUZZ_OUT)/NAME.log, inputs: $(FUZZ_OUT)/crashes/)"; \
	    exit 1; \
	fi; \
	echo "fuzz: $(words $(FUZZ_TARGETS)) targets, no crash"

fuzz-run-%: $(FUZZ_OUT)/%
	$(call fuzz_run_one,$*)

# Each target once over its checked-in seeds, no mutation: quick enough for every CI run.
fuzz-regress: fuzz-build
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	    n=$$(ls tests/fuzz/corpus/$$t 2>/dev/null | wc -l); \
	    if $(FUZZ_OUT)/$$t $(call FUZZ_RUN_FLAGS,$$t) -runs=0 tests/fuzz/corpus/$$t \
	            > $(FUZZ_OUT)/$$t.regress.log 2>&1; then \
	        echo "fuzz-regress: $$t ok ($$n inputs)"; \
	    else \
	        failed="$$failed $$t"; tail -n 60 $(FUZZ_OUT)/$$t.regress.log; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz-regress: FAILED:$$failed"; exit 1; fi; \
	echo "fuzz-regress: $(words $(FUZZ_TARGETS)) targets, no crash"

ifneq ($(filter fuzz%,$(MAKECMDGOALS)),)
-include $(shell find $(FUZZ_OUT)/obj -name '*.d' 2>/dev/null)
endif
