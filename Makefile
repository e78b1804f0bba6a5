# FlowFabric-Go. `make test` is the command CI runs (.ci/run, with CI=true).
# The environment, CI included, flows through to every recipe.

GO ?= go

.PHONY: test build demo bench fuzz reliability servers-start servers-stop

# Format check, go vet, then every test with -race against ephemeral
# PostgreSQL / Valkey servers (started only for FF_TEST_* URLs left unset,
# always stopped afterwards). See scripts/test.sh.
test:
	bash scripts/test.sh

build:
	$(GO) build -o bin/ff ./cmd/ff

demo:
	$(GO) run ./cmd/ff demo

bench:
	$(GO) test -run '^$$' -bench . ./...

# Every fuzz target (go test -fuzz) for 60 s each; FUZZTIME=10m make fuzz
# for longer. Failing inputs land in <pkg>/testdata/fuzz/<Target>/.
# See RELIABILITY.md, "Fuzzing". `make test` runs each for 5 s.
FUZZTIME ?= 60s
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

# Long reliability runs (FF_RELIABILITY=long): porcupine histories of
# several thousand operations per backend, connection kills, server
# restarts, proxy faults and a 60 s soak per backend; the bounded
# versions run in `make test`. Log: reliability.log. See RELIABILITY.md.
reliability:
	bash scripts/reliability.sh

# Start servers for manual runs; prints export lines to eval:
#   eval "$$(make -s servers-start)"   ...   make servers-stop
servers-start:
	@bash scripts/test-servers.sh start

servers-stop:
	@bash scripts/test-servers.sh stop
