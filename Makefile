# Drover. `make demo` runs the system (on SQLite: no database server); `make test` runs the whole
# test suite (PostgreSQL and SQLite). Both install the Debian packages they need (as root, or through
# sudo); the tests bring their own throwaway PostgreSQL (set DROVER_TEST_DATABASE_URL to use a server
# of your own instead).

SWIFT ?= swift
# Seconds the test run may take before scripts/test-watchdog calls it stuck, says which tests had
# not ended (and every thread's stack), and ends it: about 6 minutes is usual on 2 cores.
TEST_TIME_LIMIT ?= 1500
BIN_PATH = $(shell $(SWIFT) build --show-bin-path)

.PHONY: all deps build test chaos soak-store demo demo-postgresql bench man deb systemd-test clean

all: build

deps:
	@scripts/install-deps

# The drover binary only (the example apps and the postgres-nio product are built by make test).
build: deps
	$(SWIFT) build --product drover

# Model-checks the lease protocol (scripts/model-check: spin on Sources/DroverRuntime/Lease/lease.pml,
# and its mutants), builds the tests, the drover binary they run and the example apps
# (Examples/Posts, a target of this package, with the tests; Examples/Signup, a package of its own),
# runs every test against PostgreSQL and SQLite, then the packaging checks (the
# .deb and lintian, the unit, the man pages) and the .deb under a real systemd in a container
# (scripts/systemd-test).
test: deps
	@scripts/install-deps packaging web
	scripts/model-check
	$(SWIFT) build --build-tests
	# SwiftPM can miss files added to Drover when it rebuilds the example: start it afresh then.
	$(SWIFT) build --package-path Examples/Signup || (rm -rf Examples/Signup/.build && $(SWIFT) build --package-path Examples/Signup)
	DROVER_BIN=$(BIN_PATH)/drover scripts/with-postgres scripts/test-watchdog $(TEST_TIME_LIMIT) $(SWIFT) test --skip-build --skip DroverChaosTests
	SWIFT=$(SWIFT) scripts/check-packaging
	@scripts/install-deps container
	scripts/systemd-test

# Fault injection (Tests/DroverChaosTests): a real drover start and PostgreSQL, 20,000 audited jobs
# per scenario (DROVER_CHAOS_JOBS), workers and the supervisor killed, PostgreSQL restarted, stopped
# and its backends ended, rows locked, a worker frozen, reloads; then (issue 16) a worker frozen under
# a supervisor alone (PostgreSQL and SQLite), hosts in network namespaces cut off from PostgreSQL
# (a partition, a silently dropped LISTEN connection), a host's clock moved (libfaketime), and SQLite
# (worker kills, its write lock held). Each scenario ends with an audit and a table, and fails on any
# lost, duplicated, overlapping (two attempts of a job at once) or stuck job. Needs root (namespaces,
# iptables). Takes several minutes; not part of make test. One suite: CHAOS_FILTER=PartitionTests.
chaos: deps
	@scripts/install-deps chaos
	$(SWIFT) build --build-tests
	DROVER_BIN=$(BIN_PATH)/drover scripts/with-postgres $(SWIFT) test --skip-build --filter $(or $(CHAOS_FILTER),DroverChaosTests)

# Drover's main job: start it with no database server (./drover.sqlite3 in a fresh directory),
# enqueue jobs, watch them run, kill a worker, stop. `make demo-postgresql` does the same on a
# throwaway PostgreSQL.
demo: build
	DROVER_BIN=$(BIN_PATH)/drover scripts/demo

demo-postgresql: build
	DROVER_BIN=$(BIN_PATH)/drover scripts/with-postgres sh -c 'DROVER_DATABASE_URL=$$DROVER_TEST_DATABASE_URL scripts/demo'

# Every benchmark (scripts/bench), release builds linked as the Debian package's binary is (the
# Swift libraries static), so that memory figures are the shipped program's: the queue layer,
# drover bench (burn-down of 100,000 no-op jobs with the default 2 workers x 5 threads and with 2 x
# 100, of 1,000,000, of 100,000 with 1,000,000 waiting, enqueue→start latency, memory) and command
# jobs, the dashboard's pages and /metrics with 1,000,000 jobs in the table (scripts/bench-web) on a
# throwaway PostgreSQL with default durability, then the queue layer and drover bench on
# SQLite. Prints a summary and writes JSON to bench-results/. BENCH_RUNS (3) and BENCH_LARGE_RUNS
# (3, of the million) set the runs; QUEUE_ARGS, BURN_ARGS and COMMAND_ARGS pass options through.
BENCH_BUILD = $(SWIFT) build -c release --static-swift-stdlib --build-path .build/bench
bench: deps
	$(BENCH_BUILD) --product drover-bench
	$(BENCH_BUILD) --product drover
	DROVER_PG_DURABLE=1 scripts/with-postgres scripts/bench "$$($(BENCH_BUILD) --show-bin-path)"

# Regenerates man/drover.1 from the argument parser (commit the result; a test checks it against the
# command line) and lints both pages.
man:
	$(SWIFT) package plugin --allow-writing-to-package-directory generate-manual --configuration debug --date 2026-11-27
	scripts/generate-man .build/plugins/GenerateManual/outputs/drover/drover.1 man/drover.1
	mandoc -Tlint -W warning man/drover.1 man/drover.yml.5

# The Debian package: dist/drover_<version>-<revision>_<arch>.deb (and its -dbgsym), checked by lintian.
deb:
	@scripts/install-deps packaging
	SWIFT=$(SWIFT) scripts/build-deb

# The .deb under a real systemd in a Debian 12 container (systemd-nspawn): see scripts/systemd-test.
systemd-test: deb
	@scripts/install-deps container
	scripts/systemd-test

clean:
	rm -rf .build

# The differential store test alone, as long as asked: N random sequences of store operations on
# PostgreSQL, SQLite and the reference model (SEED: a seed the test printed, or random). make test
# runs a fixed seed with 200 sequences.
soak-store: deps
	$(SWIFT) build --build-tests
	DROVER_STORE_SEED=$(or $(SEED),random) DROVER_STORE_SEQUENCES=$(or $(N),1000) scripts/with-postgres \
		$(SWIFT) test --skip-build --filter DifferentialTests
