# errq: the two commands.  `make run` and `make test` install what is missing, build and go.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-asan test-long test-tsan fuzz fuzz-long bench bench-callgrind bench-fleet docs install image clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DERRQ_WERROR=ON $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# Start errqd in the foreground on 127.0.0.1:4770 with its database under ./var/.
run: build
	@mkdir -p var
	exec $(BUILD)/bin/errqd --listen 127.0.0.1:4770 --db var/errq.db

test: build
	cd $(BUILD) && ctest --output-on-failure -j2
	@cat $(FUZZ_DIR)/results/*.txt 2>/dev/null || true

$(ASAN_BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DERRQ_WERROR=ON -DERRQ_ASAN=ON $(CMAKE_FLAGS)

test-asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j2

# libFuzzer on each target of tests/fuzz (TARGETS) for FUZZ_SECONDS each (fuzz) or FUZZ_RUNS
# executions each (fuzz-long, in test-long), in the clang build FUZZ_DIR; each prints its
# executions and coverage (cov:, ft:).  A crash leaves its input in FUZZ_DIR/artifacts/TARGET/
# (tests/fuzz/README.md says what to do with it).
FUZZ_DIR     ?= $(BUILD)/fuzz-clang
FUZZ_SECONDS ?= 600
FUZZ_RUNS    ?= 1000000
fuzz fuzz-long: deps
	tests/fuzz/build.sh $(CURDIR) $(FUZZ_DIR)
	@rc=0; for t in $$(cat tests/fuzz/TARGETS); do \
	  tests/fuzz/run.sh $(FUZZ_DIR) $$t $(if $(filter fuzz-long,$@),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS)) || rc=1; \
	done; echo "== $@:"; for t in $$(cat tests/fuzz/TARGETS); do cat $(FUZZ_DIR)/results/$$t.txt; done; exit $$rc

# The threaded tests under ThreadSanitizer (TSAN_BUILD; tests/tsan.supp: gRPC's internals only).
TSAN_BUILD ?= build-tsan
$(TSAN_BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DERRQ_WERROR=ON -DERRQ_TSAN=ON $(CMAKE_FLAGS)

test-tsan: deps $(TSAN_BUILD)/CMakeCache.txt
	cmake --build $(TSAN_BUILD) -j$(JOBS)
	cd $(TSAN_BUILD) && ctest --output-on-failure -j2 -L tsan

# Longer runs, in this order: the soak first (SOAK_SECONDS at half the measured maximum,
# tests/soak/soak.py: it measures a rate, so it runs while nothing else of test-long does);
# valgrind over the integration tests (both backends; 2 at a time); the container image built
# and run (tests/deploy/image_test.sh: as root; about 3.5 min the first time, 1-2 min with the
# cache); then the whole suite REPEAT_RUNS times in a row with every core kept busy by other
# load, plainly and under ASan+UBSan: every run must pass (scripts/test-repeat; the suite takes
# about 4 min on 2 cores, so 5 runs each are about 20 + 25 minutes); every fuzz target for
# FUZZ_RUNS executions and the threaded tests under TSan (fuzz-long, test-tsan); errqd
# SIGKILLed CRASH_ROUNDS times under load (tests/integration/test_crash_repeated.c, about 1 s a
# round); the three collectors of tests/integration/test_fleet.c FLEET_RUNS times in a row.
# About 2.5 hours on 2 cores.
REPEAT_RUNS ?= 5
FLEET_RUNS ?= 5
CRASH_ROUNDS ?= 50
SOAK_SECONDS ?= 1800
test-long: build $(ASAN_BUILD)/CMakeCache.txt
	@scripts/install-deps --long
	SOAK_SECONDS=$(SOAK_SECONDS) tests/soak/soak.py $(BUILD)
	cd $(BUILD) && ERRQ_VALGRIND=1 ctest --output-on-failure -j2 -L integration
	tests/deploy/image_test.sh $(CURDIR) $(abspath $(BUILD))
	scripts/test-repeat --runs $(REPEAT_RUNS) $(BUILD)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  scripts/test-repeat --runs $(REPEAT_RUNS) $(ASAN_BUILD)
	$(MAKE) fuzz-long test-tsan
	cd $(BUILD) && ERRQ_CRASH_ROUNDS=$(CRASH_ROUNDS) ctest -V -R integration_crash_repeated
	cd $(BUILD) && ctest --output-on-failure --repeat until-fail:$(FLEET_RUNS) -R '^integration_fleet$$'

# The benchmark matrix of issues 3 and 16 (about 40-50 minutes); writes docs/benchmarks.md.
# BENCH_DURATION, BENCH_WARMUP, BENCH_PREFILL, BENCH_RUNS, BENCH_STORM_EVENTS, BENCH_CALLGRIND
# (environment or make arguments; scripts/bench-matrix's header) shorten it, e.g.
#   make bench BENCH_DURATION=3s BENCH_WARMUP=1s BENCH_PREFILL=200000 BENCH_STORM_EVENTS=30000
bench: build
	scripts/bench-matrix $(BUILD)

# Instructions per event under callgrind (issue 16), the figure for A/B comparisons on a busy
# machine: 50 groups uniform, 50 000 uniform, 50 000 Zipf (about 5 minutes; CG_* knobs in the
# script's header).  `make bench` runs it too when valgrind is installed.
bench-callgrind: build
	scripts/bench-callgrind $(BUILD)

# Issue 17: ingest with 1, 2 and 3 errqd replicas on one PostgreSQL database next to SQLite,
# CPU per event of each errqd and of PostgreSQL, and the rule engine's leader failover time
# (bench/fleet.py; about 7 minutes with the defaults; docs/benchmarks.md says how to read it).
# FLEET_ARGS adds options (bench/fleet.py --help), e.g.
#   make bench-fleet FLEET_ARGS="--runs 5 --json build/fleet.json"
#   make bench-fleet FLEET_ARGS="--duration 2s --warmup 1s --runs 1 --loads u50 --failover-runs 2"
FLEET_ARGS ?=
bench-fleet: build
	bench/fleet.py --build $(BUILD) $(FLEET_ARGS)

# The files generated from the settings table in server/settings.c (tests check they are current).
docs: build
	$(BUILD)/bin/errqd --print-config-docs > docs/configuration.md.tmp && mv docs/configuration.md.tmp docs/configuration.md
	$(BUILD)/bin/errqd --print-sample-config > deploy/errqd.yaml.tmp && mv deploy/errqd.yaml.tmp deploy/errqd.yaml
# errqd, errq, liberrq (.so with its SOVERSION links, .a), errq.h, errq.pc, the CMake package,
# the systemd unit (naming PREFIX), the sample config (share/errq; etc/errq unless present) and
# errq(1).  DESTDIR=DIR stages it for a package.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The container image (deploy/Containerfile) built here with buildah, as root, and saved as a
# docker-archive, build/errq-image.tar (`docker load -i` / `podman load -i`).  See deploy/README.md.
image: deps
	@scripts/install-deps --long
	scripts/build-image $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
