#!/usr/bin/env bash
# `make test`: format check, vet, then the tests against real servers.
#
# Servers whose FF_TEST_* URL is unset are started by scripts/test-servers.sh
# in a private state directory and stopped on exit, whether the tests pass,
# fail or are interrupted. The exit code is the tests' (or the first failing
# check's). CI=true, when set, flows through to the tests: there a missing
# server fails instead of skipping.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

step() { echo "==> $*" >&2; }

step "gofmt"
unformatted="$(gofmt -l .)"
if [[ -n "$unformatted" ]]; then
	echo "These files are not gofmt-formatted (run gofmt -w on them):" >&2
	echo "$unformatted" >&2
	exit 1
fi

step "go vet ./..."
go vet ./...

step "starting test servers"
FF_TEST_STATE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ff-test-state.XXXXXX")"
export FF_TEST_STATE_DIR
stop_servers() {
	step "stopping test servers"
	bash "$ROOT/scripts/test-servers.sh" stop || echo "warning: stopping the test servers failed" >&2
	rmdir "$FF_TEST_STATE_DIR" 2>/dev/null || true
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash scripts/test-servers.sh start >/dev/null
# The env file holds `export FF_TEST_...=...` lines for the servers started.
# shellcheck source=/dev/null
source "$FF_TEST_STATE_DIR/env"

rc=0
step "go test -race -count=1 ./..."
go test -race -count=1 ./... || rc=$?

step "fuzz: every target for 5s"
bash scripts/fuzz.sh 5s || rc=$?

if [[ -d examples/boltstore ]]; then
	step "examples/boltstore: go test -race ./..."
	(cd examples/boltstore && go test -race ./...) || rc=$?
fi

exit "$rc"
