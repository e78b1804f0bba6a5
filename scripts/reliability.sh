#!/usr/bin/env bash
# `make reliability`: the long versions of the reliability tests (package
# ./internal/integration/reliability, run from the module that holds it)
# against real servers: linearizability histories of several
# thousand operations per backend, connection kills, server restarts and
# proxy faults with more rounds, and a 60 s soak per backend.
#
# Servers whose FF_TEST_* URL is unset are started by scripts/test-servers.sh
# (and stopped on exit), as for `make test`. The restart tests start their
# own private PostgreSQL and redis-server as well.
#
#   FF_RELIABILITY=long  is set here; the same tests run bounded in `make test`.
#   FF_RELIABILITY_RUN   optional -run pattern (default: every test).
#   FF_RELIABILITY_LOG   where the verbose log goes (default: reliability.log).
#
# The figures the tests log (t.Logf) are what RELIABILITY.md reports.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
LOG="${FF_RELIABILITY_LOG:-$ROOT/reliability.log}"

step() { echo "==> $*" >&2; }

FF_TEST_STATE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ff-rel-state.XXXXXX")"
export FF_TEST_STATE_DIR
stop_servers() {
	step "stopping test servers"
	bash "$ROOT/scripts/test-servers.sh" stop || echo "warning: stopping the test servers failed" >&2
	rmdir "$FF_TEST_STATE_DIR" 2>/dev/null || true
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting test servers"
bash scripts/test-servers.sh start >/dev/null
# shellcheck source=/dev/null
source "$FF_TEST_STATE_DIR/env"

export FF_RELIABILITY=long
# shellcheck source=scripts/modules.sh
source scripts/modules.sh
read -r mod pkg <<<"$(ff_split_pattern ./internal/integration/reliability)"
step "go test -count=1 -timeout 90m -v $pkg in module $mod (FF_RELIABILITY=long; log: $LOG)"
rc=0
(cd "$mod" && go test -count=1 -timeout 90m -v -run "${FF_RELIABILITY_RUN:-.}" "$pkg") >"$LOG" 2>&1 || rc=$?

step "figures"
grep -E '^\s+(---|[a-z_]+_test\.go:[0-9]+: )' "$LOG" | grep -v 'KNOWN ISSUE:' || true
step "result: $(tail -n 1 "$LOG")"
exit "$rc"
