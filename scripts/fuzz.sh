#!/usr/bin/env bash
# Run every fuzz target of every module for a bounded time each.
#
#   bash scripts/fuzz.sh            # 60s per target (`make fuzz`)
#   bash scripts/fuzz.sh 5s         # the short run of `make test`
#   bash scripts/fuzz.sh 60s ./httpapi ./backend/valkey/...
#                                   # only the targets of some packages
#   bash scripts/fuzz.sh -json 5s   # go test -json events on stdout, for
#                                   # internal/cmd/testsummary (scripts/test.sh)
#   bash scripts/fuzz.sh -build [./httpapi ...]
#                                   # only build the instrumented test
#                                   # binaries, to fill the build cache for a
#                                   # later run (scripts/test.sh does this
#                                   # while its tests run); no fuzzing
#
# Modules are found as scripts/modules.sh does (every go.mod but bench/'s);
# package patterns are relative to the root and run in the module that holds
# them. Targets are the `func FuzzXxx(f *testing.F)` of the packages' test
# files (listed by `go list`, read with grep: nothing is built to find them),
# so a new Fuzz function is picked up without editing this file.
#
# Each package with targets is built once, `go test -c -fuzz .` (the
# fuzzing-instrumented test binary; the next package's builds, niced, while
# this one fuzzes), and that binary then fuzzes each of its targets in
# turn, one target at a time, from the package directory, with the
# flags `go test -fuzz` would give it: -test.run '^$' (the package's other
# tests do not run again), -test.fuzz '^Target$', -test.fuzztime, and
# -test.fuzzcachedir $(go env GOCACHE)/fuzz/<import path>, the corpus that
# `go test -fuzz` keeps (replayed at the start of each target, within its
# -test.fuzztime). Inputs that fail are written under the package's
# testdata/fuzz/<Target>/ and reproduce with a plain `go test`. A package
# whose binary does not build has its targets run by `go test -fuzz`
# instead, one at a time, which reports the build failure. The exit code is
# non-zero when any target fails, or a package does not build; every target
# still runs.
#
# A bare "context deadline exceeded" with no failing input is Go's fuzzing
# coordinator racing its own -fuzztime deadline on a loaded machine
# (go.dev/issue/75804, fixed in Go 1.27), not a finding: it is reported in
# the summary but does not fail the run (with -json, the target's events are
# replaced by a pass that says so).
#
# With -json, stdout carries only `go test -json` events (one stream per
# target, one after the other: the binary runs under cmd/test2json, built
# once per run, as under go test -json) and no summary table; the rest goes
# to stderr. With -build, the exit code is non-zero when a package does not
# build.
#
# FF_FUZZ_PARALLEL sets the fuzzing workers per target (default: GOMAXPROCS).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/modules.sh
source scripts/modules.sh

json=0 build_only=0
case "${1:-}" in
-json) json=1 && shift ;;
-build) build_only=1 && shift ;;
esac
fuzztime=60s
if ((!build_only)); then
	fuzztime="${1:-60s}"
	shift || true
fi
parallel=() testparallel=()
if [[ -n "${FF_FUZZ_PARALLEL:-}" ]]; then
	parallel=(-parallel "$FF_FUZZ_PARALLEL")
	testparallel=(-test.parallel="$FF_FUZZ_PARALLEL")
fi

# groups: "MODULE-DIR PATTERN..." per module to search.
declare -A patterns=()
mods=()
if (($#)); then
	for p in "$@"; do
		read -r mod rel <<<"$(ff_split_pattern "$p")"
		[[ -n "${patterns[$mod]+x}" ]] || mods+=("$mod")
		patterns[$mod]+=" $rel"
	done
else
	while IFS= read -r mod; do
		mods+=("$mod")
		patterns[$mod]=" ./..."
	done < <(ff_modules)
fi

# Targets: the `func FuzzXxx(f *testing.F)` of each package's _test.go files,
# as `go list` selects them (build constraints apply). Nothing is compiled
# to find them: a package that does not build fails when its binary is built.
listing_failed=0
pkgs=()    # "MODULE-DIR PACKAGE PACKAGE-DIR", one per package with targets
targets=() # the package's targets, space-separated, by index in pkgs
ntargets=0
fuzzfunc='^func (Fuzz[A-Za-z0-9_]*)\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)'
for mod in "${mods[@]}"; do
	read -r -a pats <<<"${patterns[$mod]}"
	listing="$(cd "$mod" && go list -f '{{.ImportPath}} {{.Dir}}{{range .TestGoFiles}} {{$.Dir}}/{{.}}{{end}}{{range .XTestGoFiles}} {{$.Dir}}/{{.}}{{end}}' "${pats[@]}" 2>&1)" || {
		listing_failed=1
		echo "$listing" >&2
		echo "fuzz: go list failed for some packages of module $mod (above)" >&2
		continue
	}
	while read -r pkg dir files; do
		[[ -n "$files" ]] || continue
		read -r -a files <<<"$files"
		names="$(grep -hE "$fuzzfunc" "${files[@]}" | sed -E "s/$fuzzfunc.*/\1/" | tr '\n' ' ')"
		[[ -n "$names" ]] || continue
		pkgs+=("$mod $pkg $dir")
		targets+=("$names")
		read -r -a names <<<"$names"
		ntargets=$((ntargets + ${#names[@]}))
	done <<<"$listing"
done

if ((ntargets == 0)); then
	echo "fuzz: no targets found" >&2
	exit 1
fi

bindir="$(mktemp -d "${TMPDIR:-/tmp}/ff-fuzz.XXXXXX")"
trap 'rm -rf "$bindir"' EXIT

# build I [nice]: builds the test binary of pkgs[I] as $bindir/I.test, at
# a lower priority with "nice"; its output (a build failure) goes to
# $bindir/I.build.
build() {
	local mod pkg dir prio=()
	read -r mod pkg dir <<<"${pkgs[$1]}"
	[[ "${2:-}" == nice ]] && prio=(nice -n 10)
	(cd "$mod" && "${prio[@]}" go test -c -fuzz . -o "$bindir/$1.test" "$pkg") >"$bindir/$1.build" 2>&1
}

if ((build_only)); then
	echo "fuzz: building the test binaries of ${#pkgs[@]} package(s) (${ntargets} targets)" >&2
	rc=0
	for i in "${!pkgs[@]}"; do
		if ! build "$i"; then
			cat "$bindir/$i.build" >&2
			rc=1
		fi
		rm -f "$bindir/$i.test"
	done
	exit "$rc"
fi

gocache="$(go env GOCACHE)"
if ((json)); then
	# test2json turns the binary's -test.v=test2json output into the events
	# `go test -json` prints (it is what go test runs).
	if ! go build -o "$bindir/test2json" cmd/test2json; then
		echo "fuzz: go build cmd/test2json failed" >&2
		exit 1
	fi
fi

echo "fuzz: $ntargets targets in ${#pkgs[@]} package(s) of ${#mods[@]} module(s), $fuzztime each" >&2
failed=()
summary=()
build 0
built=$?
for i in "${!pkgs[@]}"; do
	read -r mod pkg dir <<<"${pkgs[$i]}"
	read -r -a names <<<"${targets[$i]}"
	bin=""
	if ((built == 0)); then
		bin="$bindir/$i.test"
	else
		echo "fuzz: $pkg: go test -c failed; its targets run with go test -fuzz, which reports why" >&2
	fi
	# The next package builds while this one fuzzes, niced so that it takes
	# what the fuzzing workers leave (from a warm build cache, a few seconds
	# of linking).
	next=""
	if ((i + 1 < ${#pkgs[@]})); then
		build "$((i + 1))" nice &
		next=$!
	fi
	for name in "${names[@]}"; do
		((json)) || echo "==> $pkg $name" >&2
		start=$SECONDS
		if [[ -n "$bin" ]]; then
			args=(-test.paniconexit0 -test.fuzzcachedir="$gocache/fuzz/$pkg" -test.timeout=10m0s -test.count=1
				-test.run='^$' -test.fuzz="^${name}\$" -test.fuzztime="$fuzztime" "${testparallel[@]}")
			if ((json)); then
				out="$(cd "$dir" && "$bindir/test2json" -t -p "$pkg" "$bin" -test.v=test2json "${args[@]}" 2>&1)"
			else
				out="$(cd "$dir" && "$bin" "${args[@]}" 2>&1)"
			fi
		else
			jsonflag=()
			((json)) && jsonflag=(-json)
			out="$(cd "$mod" && go test "${jsonflag[@]}" -count=1 -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "${parallel[@]}" "$pkg" 2>&1)"
		fi
		rc=$?
		execs="$(grep -o 'execs: [0-9]*' <<<"$out" | tail -1 | awk '{print $2}')"
		if [[ $rc -ne 0 ]] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
			# go.dev/issue/75804 (Go < 1.27): the coordinator reports its own
			# -fuzztime deadline as a failure when a starved worker has not
			# answered yet. No input failed; count it as a pass, visibly.
			note="fuzztime deadline race, go.dev/issue/75804"
			summary+=("ok   $pkg $name execs=${execs:-?} ($note)")
			if ((json)); then
				printf '{"Action":"start","Package":"%s"}\n' "$pkg"
				printf '{"Action":"run","Package":"%s","Test":"%s"}\n' "$pkg" "$name"
				printf '{"Action":"output","Package":"%s","Test":"%s","Output":"fuzz.sh: %s; counted as passed\\n"}\n' "$pkg" "$name" "$note"
				printf '{"Action":"pass","Package":"%s","Test":"%s"}\n' "$pkg" "$name"
				printf '{"Action":"pass","Package":"%s","Elapsed":%d}\n' "$pkg" $((SECONDS - start))
			fi
		elif [[ $rc -ne 0 ]]; then
			if ((json)); then echo "$out"; else echo "$out" >&2; fi
			failed+=("$pkg $name")
			summary+=("FAIL $pkg $name execs=${execs:-?}")
		else
			((json)) && echo "$out"
			summary+=("ok   $pkg $name execs=${execs:-?}")
		fi
	done
	rm -f "$bindir/$i.test"
	if [[ -n "$next" ]]; then
		wait "$next"
		built=$?
	fi
done

# With -json, testsummary prints a line per target instead.
((json)) || printf '%s\n' "${summary[@]}"
if [[ $listing_failed -ne 0 ]]; then
	failed+=("(listing: go list failed for a module)")
fi
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "fuzz: ${#failed[@]} target(s) failed:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
