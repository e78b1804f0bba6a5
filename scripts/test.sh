#!/usr/bin/env bash
# `make test` (and CI, through .ci/run): every check and test of every module.
#
# Modules: every go.mod of the repository (tracked or not yet added), except
# under bench/ and testdata/ — see scripts/modules.sh. A go.work at the root,
# when present, applies as usual. Stages, each timed:
#   1. build internal/cmd/testsummary (the summarizer below);
#   2. gofmt -l over the whole tree; `redocly lint` (npm @redocly/cli,
#      pinned, installed once into .cache/) of httpapi/openapi.json with
#      httpapi/redocly.yaml: skipped with a message when npm is missing,
#      a failure under CI=true;
#   3. per module: `go mod tidy -diff` (with GOWORK=off: each module must be
#      tidy on its own) and `go vet ./...`, bench/ included (vet only, in a
#      full run); a failure stops the run here,
#      before any server starts (FF_TEST_KEEP_GOING=1 goes on to the tests);
#   4. scripts/test-servers.sh starts throw-away servers for the FF_TEST_*
#      URLs left unset: PostgreSQL, PgBouncer in transaction mode in front
#      of it, Valkey 8 standalone and 3-master cluster,
#      Redis 7 standalone and 3-master cluster (installed with apt-get when
#      missing and root); they are stopped on exit, whether the tests pass,
#      fail or are interrupted;
#   5. per module: go test -race -count=1 -json ./...; the tests of
#      backend/postgres named TestPgBouncer* (the driver through PgBouncer in
#      transaction mode, FF_TEST_POSTGRES_POOLER_URL) run as a stage of
#      their own, package names shown as pgbouncer:...;
#   6. the packages of backend/valkey again with FF_TEST_VALKEY_URL and
#      FF_TEST_VALKEY_CLUSTER_URL pointing at the Redis 7 servers (package
#      names shown as redis7:...), so that the driver is tested on both;
#      stages 5 and 6 run up to FF_TEST_JOBS (default 3) at a time, each
#      into its own file, summarized in order once all have finished;
#   7. scripts/fuzz.sh -json: every fuzz target of every module for 5 s.
#      Its fuzzing-instrumented test binaries are built beforehand
#      (scripts/fuzz.sh -build, niced, in the background from stage 4 on,
#      alongside the servers and tests, which leave CPU idle while they
#      wait), so that the stage finds them in the build cache and spends
#      its time fuzzing; it waits for that build if it is still running.
# Every `go test -json` stream goes through internal/cmd/testsummary, which
# prints a line per package, the full output of whatever failed, and, as the
# very last line of the run (after the servers are stopped and the stage
# timings are printed), "N passed, N failed, N skipped" over all streams
# (tests and subtests; each fuzz target is one test), preceded by the list
# of failures. The exit code is non-zero when anything failed: a check, a
# test, a package that does not build or dies outside a test, a fuzz target.
# CI=true, when set, flows through to the tests: there a missing server
# fails instead of skipping.
#
# Environment, all optional:
#   FF_TEST_PKGS        package patterns relative to the root (e.g.
#                       "./engine ./backend/valkey/..."): only their modules
#                       are checked and only these packages tested and fuzzed
#                       (each pattern runs in the module that holds it);
#   FF_TEST_REDIS_PKGS  patterns rerun against Redis 7 (default
#                       ./backend/valkey/..., or none when FF_TEST_PKGS is
#                       set); empty: no rerun;
#   FF_TEST_FUZZTIME    time per fuzz target (default 5s); 0: no fuzzing;
#   FF_TEST_TIMEOUT     go test -timeout per package run (default 20m);
#   FF_TEST_JOBS        test stages run at once (default 3; 1: one by one);
#   FF_TEST_KEEP_GOING  1: run the tests even when gofmt, tidy or vet failed;
#   FF_TEST_*_URL       servers to use instead of starting them
#                       (see scripts/test-servers.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
# shellcheck source=scripts/modules.sh
source scripts/modules.sh

step() { echo "==> $*" >&2; }

# ----------------------------------------------------------- bookkeeping --

T0=$SECONDS
TIMINGS=()
STAGE_OPEN=0
stage() { STAGE="$1" STAGE_T0=$SECONDS STAGE_OPEN=1; step "$1"; }
stage_done() {
	local d=$((SECONDS - STAGE_T0))
	TIMINGS+=("$(printf '%6ds  %s%s' "$d" "$STAGE" "${1:-}")")
	STAGE_OPEN=0
	step "$STAGE: ${d}s${1:-}"
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ff-test.XXXXXX")"
TS="$WORK/testsummary"
STATE="$WORK/summary"
RC=0
FAILURES=0

# fail MESSAGE: records a failure that no test stream reports.
fail() {
	echo "FAIL: $1" >&2
	RC=1 FAILURES=$((FAILURES + 1))
	[[ -x "$TS" ]] && "$TS" -state "$STATE" -fail "$1"
	return 0
}

# stream DESCRIPTION DIR [SUMMARIZER-FLAGS...] -- CMD...: runs CMD (a
# `go test -json`) in DIR, through the summarizer.
stream() {
	local desc="$1" dir="$2" flags=() st
	shift 2
	while [[ "$1" != -- ]]; do flags+=("$1"); shift; done
	shift
	set +e
	(cd "$dir" && "$@" 2>&1) | "$TS" -state "$STATE" "${flags[@]}"
	st=("${PIPESTATUS[@]}")
	set -e
	if ((st[1] == 1)); then
		RC=1 FAILURES=$((FAILURES + 1))
	elif ((st[1] != 0)); then
		fail "$desc: the summarizer failed (exit ${st[1]})"
	elif ((st[0] != 0)); then
		fail "$desc: exited ${st[0]} with no failing test or package (see the output above)"
	fi
}

SERVERS=0
SIGNAL=""
FUZZ_BUILD_PID=""
finish() {
	local rc=$? t
	trap - EXIT INT TERM
	if ((STAGE_OPEN)); then stage_done " (cut short)"; fi
	if [[ -n "$SIGNAL" ]]; then
		fail "interrupted by SIG$SIGNAL"
	elif ((rc != 0 && FAILURES == 0)); then
		fail "scripts/test.sh stopped (exit $rc) before the end: see the output above"
	fi
	if [[ -n "$FUZZ_BUILD_PID" ]]; then kill -- "-$FUZZ_BUILD_PID" 2>/dev/null || true; fi
	if ((SERVERS)); then
		stage "stopping test servers"
		bash "$ROOT/scripts/test-servers.sh" stop || echo "warning: stopping the test servers failed" >&2
		rmdir "$FF_TEST_STATE_DIR" 2>/dev/null || true
		stage_done
	fi
	{
		echo "==> stage timings (total $((SECONDS - T0))s):"
		for t in "${TIMINGS[@]}"; do echo "$t"; done
	} >&2
	if [[ -x "$TS" ]]; then
		"$TS" -state "$STATE" -final || { ((rc != 0)) || rc=1; }
	else
		echo "internal/cmd/testsummary did not build: no totals"
		rc=1
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap finish EXIT
trap 'SIGNAL=INT; exit 130' INT
trap 'SIGNAL=TERM; exit 143' TERM

# ------------------------------------------------------------ what to run --

# MODS: module directories; PKGS[mod]: the patterns to test in each.
declare -A PKGS=()
MODS=()
if [[ -n "${FF_TEST_PKGS:-}" ]]; then
	read -r -a patterns <<<"$FF_TEST_PKGS"
	for p in "${patterns[@]}"; do
		read -r mod rel <<<"$(ff_split_pattern "$p")"
		[[ -n "${PKGS[$mod]+x}" ]] || MODS+=("$mod")
		PKGS[$mod]+=" $rel"
	done
	REDIS_PATTERNS="${FF_TEST_REDIS_PKGS-}"
else
	while IFS= read -r mod; do
		MODS+=("$mod")
		PKGS[$mod]=" ./..."
	done < <(ff_modules)
	REDIS_PATTERNS="${FF_TEST_REDIS_PKGS-./backend/valkey/...}"
fi
FUZZTIME="${FF_TEST_FUZZTIME:-5s}"

# --------------------------------------------------------------- stages --

stage "build internal/cmd/testsummary"
go build -o "$TS" ./internal/cmd/testsummary
stage_done
step "modules: ${MODS[*]}${FF_TEST_PKGS:+ (FF_TEST_PKGS=$FF_TEST_PKGS)}"

stage "gofmt"
unformatted="$(gofmt -l .)"
if [[ -n "$unformatted" ]]; then
	echo "These files are not gofmt-formatted (run gofmt -w on them):" >&2
	echo "$unformatted" >&2
	fail "gofmt: $(wc -l <<<"$unformatted") file(s) not formatted"
fi
stage_done

REDOCLY_VERSION=2.77.0
stage "openapi lint: redocly $REDOCLY_VERSION on httpapi/openapi.json"
if command -v npm >/dev/null 2>&1; then
	rdir="$ROOT/.cache/redocly-cli-$REDOCLY_VERSION"
	if [[ ! -x "$rdir/node_modules/.bin/redocly" ]] &&
		! npm install --prefix "$rdir" --no-audit --no-fund --loglevel=error "@redocly/cli@$REDOCLY_VERSION" >&2; then
		fail "openapi lint: npm install @redocly/cli@$REDOCLY_VERSION into $rdir failed"
	elif ! (cd httpapi && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		"$rdir/node_modules/.bin/redocly" lint --config redocly.yaml openapi.json >&2); then
		fail "openapi lint: httpapi/openapi.json has problems (see above)"
	fi
elif [[ "${CI:-}" == true ]]; then
	fail "openapi lint: npm is not installed (CI=true: install Node.js 20+ and npm)"
else
	step "openapi lint: skipped, npm is not installed (install Node.js 20+ and npm to lint httpapi/openapi.json)"
fi
stage_done

stage "go mod tidy -diff (GOWORK=off) and go vet, per module"
for mod in "${MODS[@]}"; do
	read -r -a pats <<<"${PKGS[$mod]}"
	step "module $mod"
	if ! out="$(cd "$mod" && GOWORK=off go mod tidy -diff 2>&1)"; then
		head -n 60 <<<"$out" >&2
		echo "module $mod is not tidy: run (cd $mod && GOWORK=off go mod tidy)" >&2
		fail "go mod tidy -diff: module $mod is not tidy (cd $mod && GOWORK=off go mod tidy)"
	fi
	(cd "$mod" && go vet "${pats[@]}") || fail "go vet: module $mod"
done
# bench/ is no module of the tests (its own go.mod, outside go.work), but it
# builds against the working tree: vet it so that an API change cannot leave
# `make bench-compare` broken.
if [[ -z "${FF_TEST_PKGS:-}" ]]; then
	step "module bench (vet only)"
	if ! out="$(cd bench && GOWORK=off go mod tidy -diff 2>&1)"; then
		head -n 60 <<<"$out" >&2
		fail "go mod tidy -diff: module bench is not tidy (cd bench && GOWORK=off go mod tidy)"
	fi
	(cd bench && GOWORK=off go vet ./...) || fail "go vet: module bench"
fi
stage_done

if ((RC != 0)) && [[ "${FF_TEST_KEEP_GOING:-}" != 1 ]]; then
	step "checks failed: no tests run (FF_TEST_KEEP_GOING=1 runs them anyway)"
	exit "$RC"
fi

# The fuzz stage's test binaries build while the servers start and the
# tests run, at a lower priority (nice), in a session of their own (setsid:
# finish kills the whole build if the run stops early), disowned so that the
# test stages' job count and `wait` ignore it. Only the build cache is
# kept: the fuzz stage builds again, from it. A build failure is reported
# by the fuzz stage itself, not here.
if [[ "$FUZZTIME" != 0 ]]; then
	fuzzpkgs=()
	if [[ -n "${FF_TEST_PKGS:-}" ]]; then read -r -a fuzzpkgs <<<"$FF_TEST_PKGS"; fi
	step "started: scripts/fuzz.sh -build (niced, alongside the servers and tests)"
	setsid bash -c 't0=$SECONDS; nice -n 10 bash scripts/fuzz.sh -build "${@:2}" >"$1.out" 2>&1; echo "$? $((SECONDS - t0))" >"$1.rc"' \
		_ "$WORK/fuzzbuild" "${fuzzpkgs[@]}" &
	FUZZ_BUILD_PID=$!
	disown "$FUZZ_BUILD_PID"
fi

stage "starting test servers"
FF_TEST_STATE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ff-test-state.XXXXXX")"
export FF_TEST_STATE_DIR
SERVERS=1
bash scripts/test-servers.sh start >/dev/null
# The env file holds `export FF_TEST_...=...` lines for the servers started.
# shellcheck source=/dev/null
source "$FF_TEST_STATE_DIR/env"
stage_done

# The test stages run up to FF_TEST_JOBS at a time (default 3): they are
# isolated (a database per package, a key prefix per test) and spend much
# of their time waiting on servers, fsync and real-time deadlines. Each
# writes its -json stream to a file; the streams then go through the
# summarizer one after another, in stage order.
JOBS="${FF_TEST_JOBS:-3}"
# A package's tests get 20 minutes (go test's default is 10): on a machine
# other work loads, the conformance suites' real-time scenarios stretch.
TEST_TIMEOUT="${FF_TEST_TIMEOUT:-20m}"
BG_DESC=() BG_DIR=() BG_FLAGS=()
# background desc dir [summarizer flags...] -- command...: starts one stage.
background() {
	local i=${#BG_DESC[@]} desc="$1" dir="$2" flags=()
	shift 2
	while [[ "$1" != -- ]]; do flags+=("$1"); shift; done
	shift
	while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
	BG_DESC+=("$desc") BG_DIR+=("$dir") BG_FLAGS+=("${flags[*]}")
	step "started: $desc"
	(
		t0=$SECONDS
		cd "$dir"
		set +e
		"$@" >"$WORK/bg.$i.out" 2>&1
		echo "$? $((SECONDS - t0))" >"$WORK/bg.$i.rc"
	) &
}
# collect waits for every stage and summarizes each stream in order.
collect() {
	local i st secs
	wait || true
	for i in "${!BG_DESC[@]}"; do
		read -r st secs <"$WORK/bg.$i.rc" || { st=1 secs=0; }
		STAGE="${BG_DESC[$i]}" STAGE_T0=$((SECONDS - secs)) STAGE_OPEN=1
		read -r -a flags <<<"${BG_FLAGS[$i]}"
		stream "${BG_DESC[$i]}" . "${flags[@]}" -- bash -c 'cat "$1"; exit "$2"' _ "$WORK/bg.$i.out" "$st"
		stage_done " (ran alongside others)"
	done
	BG_DESC=() BG_DIR=() BG_FLAGS=()
}

# The PostgreSQL driver's tests through PgBouncer (TestPgBouncer*) run as
# a stage of their own, shown as pgbouncer:..., and not in the module's run.
for mod in "${MODS[@]}"; do
	read -r -a pats <<<"${PKGS[$mod]}"
	background "go test -race -count=1 ${pats[*]} (module $mod)" "$mod" -- go test -race -count=1 -timeout "$TEST_TIMEOUT" -skip '^TestPgBouncer' -json "${pats[@]}"
	if [[ "$mod" == backend/postgres ]]; then
		background "PgBouncer: go test -race -count=1 -run '^TestPgBouncer' ${pats[*]} (module $mod, through PgBouncer in transaction mode)" "$mod" -prefix pgbouncer: -- \
			go test -race -count=1 -timeout "$TEST_TIMEOUT" -run '^TestPgBouncer' -json "${pats[@]}"
	fi
done

if [[ -n "$REDIS_PATTERNS" ]]; then
	read -r -a patterns <<<"$REDIS_PATTERNS"
	declare -A RPKGS=()
	RMODS=()
	for p in "${patterns[@]}"; do
		d="${p#./}" d="${d%/...}"
		if [[ ! -d "$d" ]]; then
			step "Redis 7 rerun: $p not found, skipped"
			continue
		fi
		read -r mod rel <<<"$(ff_split_pattern "$p")"
		[[ -n "${RPKGS[$mod]+x}" ]] || RMODS+=("$mod")
		RPKGS[$mod]+=" $rel"
	done
	for mod in "${RMODS[@]}"; do
		read -r -a pats <<<"${RPKGS[$mod]}"
		background "Redis 7: go test -race -count=1 ${pats[*]} (module $mod, FF_TEST_VALKEY_*=FF_TEST_REDIS_*)" "$mod" -prefix redis7: -- \
			env FF_TEST_VALKEY_URL="${FF_TEST_REDIS_URL:-}" FF_TEST_VALKEY_CLUSTER_URL="${FF_TEST_REDIS_CLUSTER_URL:-}" \
			go test -race -count=1 -timeout "$TEST_TIMEOUT" -json "${pats[@]}"
	done
fi
collect

if [[ "$FUZZTIME" != 0 ]]; then
	stage "fuzz: every target for $FUZZTIME"
	while kill -0 "$FUZZ_BUILD_PID" 2>/dev/null; do sleep 1; done
	if read -r st secs <"$WORK/fuzzbuild.rc" 2>/dev/null; then
		step "fuzz: test binaries built alongside the tests in ${secs}s (exit $st)"
	fi
	FUZZ_BUILD_PID=""
	stream "scripts/fuzz.sh" . -prefix fuzz: -show-tests -- bash scripts/fuzz.sh -json "$FUZZTIME" "${fuzzpkgs[@]}"
	stage_done
fi

exit "$RC"
