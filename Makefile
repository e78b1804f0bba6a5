# FlowFabric-Go. `make test` is the command CI runs (.ci/run, with CI=true).
# The environment, CI included, flows through to every recipe.

GO ?= go

.PHONY: test build demo bench servers-start servers-stop

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

# Start servers for manual runs; prints export lines to eval:
#   eval "$$(make -s servers-start)"   ...   make servers-stop
servers-start:
	@bash scripts/test-servers.sh start

servers-stop:
	@bash scripts/test-servers.sh stop
