# tandem — build, test and tooling. `make deps` once on a fresh Debian machine (as root).
CC      ?= cc
BUILD   ?= build
ARCH    := $(shell uname -m)
PKGS    := jansson libpcre2-8 libedit libmicrohttpd libcurl libcrypto yaml-0.1 sqlite3
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CSTD    := -std=c11 -D_GNU_SOURCE
INC     := -Iinclude -Isrc -Itests
OPT     ?= -O2 -g
ifeq ($(ARCH),x86_64)
# Baseline x86-64 for everything; only the *_avx2.c / *_avx512.c kernel files get wider ISAs,
# and they are called only after a cpuid check (src/base/cpu.c).
MARCH        := -march=x86-64 -mtune=generic
AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := $(AVX2_FLAGS) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16
else
MARCH        :=
CSTD         += -DTANDEM_NO_X86
endif
CFLAGS  ?=
CFLAGS  += $(CSTD) $(WARN) $(INC) $(OPT) $(MARCH) -pthread -MMD -MP
LDLIBS  := -lm -pthread $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -ljansson -lpcre2-8 -ledit -lmicrohttpd -lcurl -lcrypto -lyaml -lsqlite3)

ALL_SRC  := $(wildcard src/*/*.c src/*/*/*.c)
ifneq ($(ARCH),x86_64)
ALL_SRC  := $(filter-out %_avx2.c %_avx512.c,$(ALL_SRC))
endif
LIB_SRC  := $(filter-out src/cli/%,$(ALL_SRC))
CLI_SRC  := $(filter src/cli/%,$(ALL_SRC))
# Only the GGUF fuzz target is linked into the unit binary (a unit test replays it over crafted
# inputs); the others define the same libFuzzer entry point.
TEST_SRC := $(filter-out tests/fuzz/fuzz_tokenizer.c tests/fuzz/fuzz_chat_template.c tests/fuzz/fuzz_openai_request.c tests/fuzz/fuzz_json_schema.c tests/fuzz/fuzz_anthropic_request.c tests/fuzz/fuzz_config.c tests/fuzz/fuzz_pii.c,$(wildcard tests/*/*.c)) tests/test_main.c
FUZZ_SRC := $(wildcard tests/fuzz/*.c)

obj = $(patsubst %.c,$(1)/%.o,$(2))
LIB_OBJ  := $(call obj,$(BUILD),$(LIB_SRC))
CLI_OBJ  := $(call obj,$(BUILD),$(CLI_SRC))
TEST_OBJ := $(call obj,$(BUILD),$(TEST_SRC))
# CLI commands are testable too: everything in src/cli except main.c goes into the unit binary.
CLI_LIB_OBJ := $(filter-out $(BUILD)/src/cli/main.o,$(CLI_OBJ))

.PHONY: all test unit asan fuzz deps demo bench-tools clean format
all: $(BUILD)/tandem

$(BUILD)/tandem: $(CLI_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(LIB_OBJ) $(LDLIBS)

$(BUILD)/tests/unit: $(TEST_OBJ) $(CLI_LIB_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(CLI_LIB_OBJ) $(LIB_OBJ) $(LDLIBS)

$(BUILD)/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) -c -o $@ $<

$(BUILD)/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

unit: $(BUILD)/tests/unit

# Everything: unit tests (one process each), end-to-end scripts, source checks.
test: $(BUILD)/tandem $(BUILD)/tests/unit
	@BUILD=$(BUILD) bash tests/run.sh

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" build-asan/tests/unit
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build-asan/tests/unit

# libFuzzer targets (clang), each run for FUZZ_SECONDS over a corpus seeded from the fixtures.
FUZZ_SECONDS ?= 60
FUZZ_LIB_SRC := $(filter-out %_avx2.c %_avx512.c,$(LIB_SRC))
FUZZ_TARGETS ?= gguf tokenizer chat_template openai_request json_schema anthropic_request config pii
fuzz:
	@mkdir -p build-fuzz build-fuzz/corpus-gguf build-fuzz/corpus-tokenizer build-fuzz/corpus-chat_template
	for t in $(FUZZ_TARGETS); do \
		clang $(CSTD) $(INC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -pthread \
			-o build-fuzz/fuzz_$$t tests/fuzz/fuzz_$$t.c $(FUZZ_LIB_SRC) $(LDLIBS) || exit 1; \
	done
	bash tests/fuzz/seed.sh build-fuzz/corpus-gguf
	cp ../shared/fixtures/vocab/*.inp build-fuzz/corpus-tokenizer/ 2>/dev/null || true
	cp docs/chat-templates.md build-fuzz/corpus-chat_template/ 2>/dev/null || true
	bash tests/fuzz/seed_openai.sh build-fuzz/corpus-openai_request build-fuzz/corpus-json_schema
	bash tests/fuzz/seed_gateway.sh build-fuzz/corpus-anthropic_request build-fuzz/corpus-config build-fuzz/corpus-pii
	for t in $(FUZZ_TARGETS); do \
		build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
			-artifact_prefix=build-fuzz/ -timeout=10 build-fuzz/corpus-$$t || exit 1; \
	done

# Debian packages the build and tests need (run as root; installs only what is missing).
DEB_PKGS := build-essential pkg-config clang libclang-rt-14-dev libjansson-dev libpcre2-dev libedit-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libyaml-dev libsqlite3-dev prometheus python3 python3-numpy curl
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install:$$missing" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: all present"; fi
	@command -v npm >/dev/null 2>&1 || { \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install nodejs and npm" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	@# The official client libraries the end-to-end tests use (versions pinned by package-lock.json).
	@if [ ! -d tests/e2e/node/node_modules/openai ] || [ ! -d tests/e2e/node/node_modules/@anthropic-ai/sdk ]; then \
		cd tests/e2e/node && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "deps: npm packages present"; fi

DEMO_MODEL ?= ../shared/models/stories260K.gguf
DEMO_PORT  ?= 8080
# Sets everything up, then serves the demo model until Ctrl-C.
demo: deps all
	@if [ ! -f $(DEMO_MODEL) ]; then \
		echo "demo model $(DEMO_MODEL) not found."; \
		echo "Get a GGUF model, e.g.:  $(BUILD)/tandem pull hf://ggml-org/models/tinyllamas/stories260K.gguf"; \
		echo "then:                    make demo DEMO_MODEL=~/.cache/tandem/models/stories260K.gguf"; \
		exit 1; fi
	@echo "Serving $(DEMO_MODEL) at http://127.0.0.1:$(DEMO_PORT)  (Ctrl-C stops it). Try, in another terminal:"
	@echo "  curl http://127.0.0.1:$(DEMO_PORT)/v1/chat/completions -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"model\": \"$(basename $(notdir $(DEMO_MODEL)))\", \"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}], \"max_tokens\": 64}'"
	@exec $(BUILD)/tandem serve -m $(DEMO_MODEL) --port $(DEMO_PORT)

format:
	clang-format -i $(ALL_SRC) $(wildcard src/*/*.h src/*/*/*.h include/*.h tests/*/*.c tests/*.h tests/*.c)

clean:
	rm -rf build build-asan build-fuzz

-include $(wildcard $(BUILD)/src/*/*.d $(BUILD)/src/*/*/*.d $(BUILD)/tests/*.d $(BUILD)/tests/*/*.d)

# Benchmark helpers (not part of the product).
$(BUILD)/bench/membw: bench/membw.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -march=native -pthread -o $@ $<
bench-tools: $(BUILD)/bench/membw
