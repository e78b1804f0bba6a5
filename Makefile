# FlowFabric-Go. `make test` is the command CI runs (.ci/run, with CI=true).
# The environment, CI included, flows through to every recipe.

GO ?= go

.PHONY: test build demo bench bench-compare bench-scale fuzz reliability servers-start servers-stop console-screenshots

# Every module of the repository (each go.mod but bench/'s; go.work links
# them): gofmt over the tree; per module `go mod tidy -diff` (GOWORK=off)
# and go vet; then, against ephemeral PostgreSQL, Valkey 8 and Redis 7
# servers (standalone and 3-master clusters, started only for the FF_TEST_*
# URLs left unset, always stopped afterwards), per module
# `go test -race -count=1 ./...`; backend/valkey's tests once more on Redis 7;
# every fuzz target for 5 s. The output is condensed by
# internal/cmd/testsummary: a line per package, the output of what failed,
# each stage's seconds, and last "N passed, N failed, N skipped".
# FF_TEST_PKGS='./engine ./backend/valkey/...' limits the run to some
# packages; FF_TEST_FUZZTIME=0 skips fuzzing; FF_TEST_JOBS (default 3) test
# stages run at once. See scripts/test.sh.
test:
	bash scripts/test.sh

build:
	$(GO) build -o bin/ff ./cmd/ff

demo:
	$(GO) run ./cmd/ff demo

bench:
	$(GO) test -run '^$$' -bench . ./...

# FlowFabric-Go side by side with references on the same servers (module
# bench/, never part of go.work): our deliver_signal and cycle against raw
# SQLite, pgbench's simple-update, River, go-redis SET and PING; one
# markdown table of ratios. BENCH_DURATION (default 5s) per measurement.
# Servers from FF_TEST_POSTGRES_URL and FF_TEST_VALKEY_URL, else started
# and stopped by bench with scripts/test-servers.sh. See bench/README.md.
bench-compare:
	cd bench && GOWORK=off $(GO) run . compare

# p50 / p99 of every operation per backend at N suspended executions, and
# bytes per execution: BENCH_N (default 0,100000), BENCH_BACKENDS (default
# sqlite,postgres,valkey), BENCH_SAMPLES (default 1000), BENCH_WAITPOINTS
# (waitpoints per execution, default 2). See bench/README.md.
bench-scale:
	cd bench && GOWORK=off $(GO) run . scale

# Every fuzz target (go test -fuzz) of every module for 60 s each;
# FUZZTIME=10m make fuzz for longer. Failing inputs land in
# <pkg>/testdata/fuzz/<Target>/. See docs/reliability.md, "Fuzzing" and
# scripts/fuzz.sh. `make test` runs each for 5 s.
FUZZTIME ?= 60s
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

# Long reliability runs (FF_RELIABILITY=long): porcupine histories of
# several thousand operations per backend, connection kills, server
# restarts, proxy faults and a 60 s soak per backend; the bounded
# versions run in `make test`. Package internal/integration/reliability;
# log: reliability.log. See docs/reliability.md and scripts/reliability.sh.
reliability:
	bash scripts/reliability.sh

# Start servers for manual runs (PostgreSQL, Valkey 8 and Redis 7, each
# standalone and as a 3-master cluster, for every FF_TEST_* URL unset);
# prints the export lines of FF_TEST_POSTGRES_URL, FF_TEST_VALKEY_URL,
# FF_TEST_VALKEY_CLUSTER_URL, FF_TEST_REDIS_URL and FF_TEST_REDIS_CLUSTER_URL:
#   eval "$$(make -s servers-start)"   ...   make servers-stop
# See scripts/test-servers.sh.
servers-start:
	@bash scripts/test-servers.sh start

servers-stop:
	@bash scripts/test-servers.sh stop

# Regenerate the console's screenshots, docs/console-*.png, in headless
# Chromium (Debian's chromium package). See scripts/console-screenshots.sh.
console-screenshots:
	bash scripts/console-screenshots.sh
