# nomade: a plain Makefile. Every target first runs scripts/install-deps,
# which installs missing Debian packages and is silent when all are there.
#   make          build build/nomade
#   make test     C unit tests + Lua tests inside the real host
#   make test-clock  the time-sensitive suites under faketime at a day's,
#                 a month's and a leap day's edges
#   make run      the default strategy live on a replay of the bundled candles
#   make bench    indicator figures beside a plain C loop (and TA-Lib's C),
#                 then backtest, reload and candle-close-to-order timings
#                 of today's commit (BENCH_BASE) and this tree, side by side
#   make asan     the whole test suite under ASan + UBSan
#   make soak     200 kill -9s during live trading, a 30 s silent stream
#   make fuzz     short libFuzzer runs of every parser target (FUZZ_SECONDS)
#   make lint     luacheck + cppcheck, and scripts/layers and scripts/funclen
#                 (requires point down the layers; no Lua function over 80 lines)

PKG_CONFIG ?= pkg-config
CC = gcc
PKGS = lua5.4 lua5.4-cjson libcurl libcrypto libssl sqlite3 zlib libedit libmicrohttpd
BUILD = build
FUZZ_SECONDS = 20

# Lua's own warning set, on top of -Wall -Wextra
WARN = -Wall -Wextra -Werror -Wshadow -Wundef -Wwrite-strings \
       -Wredundant-decls -Wdisabled-optimization -Wdouble-promotion \
       -Wmissing-declarations -Wdeclaration-after-statement \
       -Wmissing-prototypes -Wnested-externs -Wstrict-prototypes \
       -Wc++-compat -Wold-style-definition
OPT = -O2 -g
SAN =

# expanded on first use only, after install-deps has run
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell $(PKG_CONFIG) --cflags $(PKGS)))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $$(shell $(PKG_CONFIG) --libs $(PKGS)))$(PKG_LIBS)

CFLAGS_ALL = -std=c11 -D_POSIX_C_SOURCE=200809L $(OPT) $(SAN) $(WARN) \
             -Iruntime -I$(BUILD) $(PKG_CFLAGS) $(CFLAGS)
LIBS = $(PKG_LIBS) -lev -lwslay -lm

TA_SRC = $(wildcard runtime/ta/*.c)
CORE_SRC = runtime/host.c runtime/lib_sched.c runtime/series.c runtime/csv.c \
           runtime/lib_host.c runtime/lib_ta.c runtime/lib_candles.c \
           runtime/lib_crypto.c runtime/lib_paper.c runtime/lib_loop.c runtime/lib_term.c \
           runtime/lib_store.c runtime/lib_http.c runtime/lib_bybit.c \
           runtime/shield.c runtime/lib_shield.c runtime/verdict.c runtime/lib_gemini.c \
           runtime/ws.c runtime/lib_ws.c runtime/lib_httpd.c \
                     $(TA_SRC)
LUA_SRC = $(shell find lua/nomade -name '*.lua' | LC_ALL=C sort) lua/strategy.lua
CORE_OBJ = $(CORE_SRC:%.c=$(BUILD)/%.o) $(BUILD)/embed_lua.o
HEADERS = $(wildcard runtime/*.h runtime/ta/*.h)
NOMADE = $(BUILD)/nomade
C_TESTS = $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(wildcard tests/c/test_*.c))

.PHONY: all deps test test-clock check run bench asan fuzz lint clean soak


all: $(NOMADE)

# the dashboard's assets (lightweight-charts from vendor/web) and web-test
include web/web.mk
$(WEB_ASSETS): | deps

deps:
	@scripts/install-deps

$(BUILD)/%.o: %.c $(HEADERS) | deps
	@mkdir -p $(@D)
	@echo "CC $<"
	@$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/embed_lua.c: scripts/embed-lua $(LUA_SRC)
	@mkdir -p $(@D)
	scripts/embed-lua $@ $(LUA_SRC)

$(BUILD)/embed_lua.o: $(BUILD)/embed_lua.c runtime/host.h | deps
	@echo "CC $<"
	@$(CC) $(CFLAGS_ALL) -c $< -o $@

$(NOMADE): $(CORE_OBJ) $(BUILD)/runtime/main.o
	$(CC) $(OPT) $(SAN) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/c/%.c tests/c/unit.h $(CORE_OBJ) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Itests/c -o $@ $< $(CORE_OBJ) $(LIBS)

# the tests themselves, for whichever BUILD this make was given
check: $(NOMADE) $(C_TESTS) $(WEB_ASSETS)
	@tests/run $(NOMADE) $(C_TESTS)

test: deps
	@$(MAKE) --no-print-directory check

# no test may depend on the wall clock: the suites that use clocks, run at
# instants where a dependence would show (tests/clock)
test-clock: deps
	@$(MAKE) --no-print-directory $(NOMADE) $(WEB_ASSETS)
	@tests/clock $(NOMADE)

# long runs: SOAK_CRASHES kill -9s during live trading, and a stream
# silent for the real 30 s deadline
SOAK_CRASHES = 200
soak: $(NOMADE)
	@NOMADE_CRASHES=$(SOAK_CRASHES) NOMADE_SEED=$${NOMADE_SEED:-$$(date +%s)} LUA_TESTS="tests/lua/crash.test.lua tests/soak/silent.test.lua" \
		tests/run $(NOMADE)

asan: deps
	@$(MAKE) --no-print-directory check BUILD=build/asan OPT="-O1 -g" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

# the default strategy, live on a replay of the bundled candles (10 a
# second), with a copy of the strategy to edit, a fresh journal and the
# dashboard on http://127.0.0.1:8080/
run: $(NOMADE) $(WEB_ASSETS)
	@mkdir -p build/run
	@[ -f build/run/strategy.lua ] || cp lua/strategy.lua build/run/strategy.lua
	$(NOMADE) run build/run/strategy.lua --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv \
		--speed 36000 --journal "$$(mktemp -d)/nomade.journal"

$(BUILD)/bench_ta: tests/bench/bench_ta.c tests/bench/walk.h $(TA_SRC:%.c=$(BUILD)/%.o) | deps
	$(CC) $(CFLAGS_ALL) -o $@ $(filter %.c %.o,$^) -lm

$(BUILD)/bench_shield: tests/bench/bench_shield.c $(BUILD)/runtime/shield.o | deps
	$(CC) $(CFLAGS_ALL) -o $@ $^ -lm

# TA-Lib's own C, built from the npm package in vendor/ (needs the npm
# registry the first time); the bench still runs without it. Then the
# issue's figures (order latency against the Bybit stand-in, backtest,
# reload) for BENCH_BASE (today's commit, built in a scratch worktree
# under build/) beside this tree's, interleaved in one run (a few minutes).
BENCH_BASE = ae1703f
bench: $(NOMADE) $(BUILD)/bench_ta $(BUILD)/bench_shield
	@$(BUILD)/bench_ta
	@$(BUILD)/bench_shield
	@if tests/bench/talib/build.sh $(BUILD)/bench_talib >$(BUILD)/bench_talib.log 2>&1; \
	then echo "TA-Lib 0.6 C, same data and method:"; $(BUILD)/bench_talib; \
	else echo "talib: not built (see $(BUILD)/bench_talib.log)"; fi
	@$(NOMADE) script tests/bench/bench_ta.lua
	@base=$$(tests/bench/base.sh $(BENCH_BASE) build/bench-base); \
	/usr/bin/python3 tests/bench/compare.py $(NOMADE) "$$base" $(BENCH_BASE)

FUZZ_TARGETS = $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -Iruntime \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

$(BUILD)/fuzz/fuzz_csv: tests/fuzz/fuzz_csv.c runtime/csv.c runtime/csv.h | deps
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_csv.c runtime/csv.c

$(BUILD)/fuzz/fuzz_ta: tests/fuzz/fuzz_ta.c $(TA_SRC) $(HEADERS) | deps
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_ta.c $(TA_SRC) -lm

$(BUILD)/fuzz/fuzz_verdict: tests/fuzz/fuzz_verdict.c runtime/verdict.c runtime/verdict.h | deps
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_verdict.c runtime/verdict.c

$(BUILD)/fuzz/fuzz_ws: tests/fuzz/fuzz_ws.c runtime/ws.c runtime/ws.h | deps
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_ws.c runtime/ws.c -lwslay -lcrypto

# the Lua parsers run in the real host: every runtime file, built for fuzzing
LUA_FUZZ = $(BUILD)/fuzz/fuzz_bybit $(BUILD)/fuzz/fuzz_gemini $(BUILD)/fuzz/fuzz_exchange \
           $(BUILD)/fuzz/fuzz_dashboard $(BUILD)/fuzz/fuzz_sse
$(LUA_FUZZ): $(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/lua_fuzz.h $(CORE_SRC) $(BUILD)/embed_lua.c $(HEADERS) | deps
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -I$(BUILD) $(PKG_CFLAGS) -o $@ $< $(CORE_SRC) $(BUILD)/embed_lua.c $(LIBS)

fuzz: $(FUZZ_TARGETS)
	@tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

lint: deps
	luacheck -q lua tests scripts/demo.lua
	scripts/layers
	scripts/funclen
	cppcheck -q --error-exitcode=1 --enable=warning,portability --std=c11 \
		--suppress=missingIncludeSystem -Iruntime runtime tests/c tests/fuzz

clean:
	rm -rf build
