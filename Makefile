# The two commands of the README: `make run` and `make test`.
# Both install what is missing (Debian 12), configure and build first.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
RELEASE_BUILD ?= build-release
ARGS       ?=
FUZZ_SECONDS ?= 30
FUZZ_SANITIZE ?= address,undefined

.PHONY: all deps bench-deps build run test test-normal test-asan test-release fuzz-smoke fuzz stress clean

all: build

deps:
	@./.ci/install-deps

# What only the benchmarks use besides (Janus for tests/bench/janus_compare.js,
# rtpengine for tests/bench/e2ae_compare.py).
bench-deps:
	@./.ci/install-deps bench

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

run: build
	exec ./$(BUILD)/dcmf/dcmfd $(ARGS)

test: deps
	$(MAKE) test-release
	$(MAKE) test-normal
	$(MAKE) test-asan
	$(MAKE) fuzz-smoke

test-normal: $(BUILD)/build.ninja
	meson compile -C $(BUILD)
	meson test -C $(BUILD) --print-errorlogs

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false

test-asan: $(ASAN_BUILD)/build.ninja
	meson compile -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	meson test -C $(ASAN_BUILD) --print-errorlogs

# A packager's build: -O3 with Debian's hardening flags (dpkg-buildflags:
# _FORTIFY_SOURCE, stack protector, relro/now) and every warning an
# error, so a warning that only the optimiser finds fails the suite. Its
# unit and fuzz-corpus tests run; the integration suites run on the
# normal and sanitizer builds.
HARDENING = DEB_BUILD_MAINT_OPTIONS=hardening=+all
$(RELEASE_BUILD)/build.ninja:
	CFLAGS="$$($(HARDENING) dpkg-buildflags --get CFLAGS) $$($(HARDENING) dpkg-buildflags --get CPPFLAGS)" \
	LDFLAGS="$$($(HARDENING) dpkg-buildflags --get LDFLAGS)" \
	meson setup $(RELEASE_BUILD) --buildtype=release -Dwerror=true

test-release: $(RELEASE_BUILD)/build.ninja
	meson compile -C $(RELEASE_BUILD)
	meson test -C $(RELEASE_BUILD) --suite unit --suite fuzz --print-errorlogs

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzzers=enabled -Dtests=enabled -Dfuzz_sanitize=$(FUZZ_SANITIZE)

# Builds the libFuzzer targets with clang and runs each briefly, so a
# target that stops compiling or crashes at once fails the suite.
fuzz-smoke: $(FUZZ_BUILD)/build.ninja
	meson compile -C $(FUZZ_BUILD)
	./tests/fuzz/run-fuzzers $(FUZZ_BUILD) 5

# Longer fuzzing session for developers: make fuzz FUZZ_SECONDS=600
# A long campaign without ASan (several times faster for the DTLS
# targets; replay the corpus under ASan after it):
#   make fuzz FUZZ_BUILD=build-fuzz-ubsan FUZZ_SANITIZE=undefined
fuzz: deps $(FUZZ_BUILD)/build.ninja
	meson compile -C $(FUZZ_BUILD)
	./tests/fuzz/run-fuzzers $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The reliability suite at the issue's sizes (docs/reliability.md): 20
# phones, 200 sessions, a one-hour churn soak. Any STRESS_* knob can be
# given: make stress STRESS_SOAK_SECONDS=600 STRESS_TESTS="soak faults"
STRESS_PHONES       ?= 20
STRESS_SESSIONS     ?= 200
STRESS_MEM_SESSIONS ?= 500
STRESS_SOAK_SECONDS ?= 3600
STRESS_FLOOD_REPEAT ?= 1000
STRESS_FLOOD_ROUNDS ?= 10
STRESS_TESTS        ?= concurrency flood faults soak

stress: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)
	STRESS_PHONES=$(STRESS_PHONES) STRESS_SESSIONS=$(STRESS_SESSIONS) \
	STRESS_MEM_SESSIONS=$(STRESS_MEM_SESSIONS) \
	STRESS_SOAK_SECONDS=$(STRESS_SOAK_SECONDS) STRESS_FLOOD_REPEAT=$(STRESS_FLOOD_REPEAT) \
	STRESS_FLOOD_ROUNDS=$(STRESS_FLOOD_ROUNDS) ./tests/stress/run $(BUILD) $(STRESS_TESTS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(RELEASE_BUILD)
