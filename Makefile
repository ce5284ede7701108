# Drover. `make demo` runs the system; `make test` runs the whole test suite.
# Both install the Debian packages they need (as root, or through sudo) and bring their own
# throwaway PostgreSQL; set DROVER_TEST_DATABASE_URL to use a server of your own instead.

SWIFT ?= swift
BIN_PATH = $(shell $(SWIFT) build --show-bin-path)

.PHONY: all deps build test demo bench clean

all: build

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

# Builds the tests and the drover binary they run, then runs every test against PostgreSQL.
test: deps
	$(SWIFT) build --build-tests
	DROVER_BIN=$(BIN_PATH)/drover scripts/with-postgres $(SWIFT) test --skip-build

# Drover's main job, for now: create its tables in a throwaway PostgreSQL, enqueue jobs, show them.
demo: build
	DROVER_BIN=$(BIN_PATH)/drover scripts/with-postgres scripts/demo

# Queue-level throughput, release build, against a throwaway PostgreSQL with its default durability.
# BENCH_ARGS passes options through, e.g. make bench BENCH_ARGS="--jobs 20000 --runs 3".
bench: deps
	$(SWIFT) build -c release --product drover-queue-bench
	DROVER_PG_DURABLE=1 scripts/with-postgres $(shell $(SWIFT) build -c release --show-bin-path)/drover-queue-bench $(BENCH_ARGS)

clean:
	rm -rf .build
