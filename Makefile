# Drover. `make demo` runs the system; `make test` runs the whole test suite.
# Both install the Debian packages they need (as root, or through sudo) and bring their own
# throwaway PostgreSQL; set DROVER_TEST_DATABASE_URL to use a server of your own instead.

SWIFT ?= swift
BIN_PATH = $(shell $(SWIFT) build --show-bin-path)

.PHONY: all deps build test demo clean

all: build

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

# Builds the tests and the drover binary they run, then runs every test against PostgreSQL.
test: deps
	$(SWIFT) build --build-tests
	DROVER_BIN=$(BIN_PATH)/drover scripts/with-postgres $(SWIFT) test --skip-build

# Drover's main job, for now: create its tables in a throwaway PostgreSQL and show them.
demo: build
	DROVER_BIN=$(BIN_PATH)/drover scripts/with-postgres scripts/demo

clean:
	rm -rf .build
