#!/usr/bin/env bash
# Run every fuzz target of every module for a bounded time each.
#
#   bash scripts/fuzz.sh            # 60s per target (`make fuzz`)
#   bash scripts/fuzz.sh 5s         # the short run of `make test`
#   bash scripts/fuzz.sh 60s ./httpapi ./backend/valkey/...
#                                   # only the targets of some packages
#   bash scripts/fuzz.sh -json 5s   # go test -json events on stdout, for
#                                   # internal/cmd/testsummary (scripts/test.sh)
#
# Modules are found as scripts/modules.sh does (every go.mod but bench/'s);
# package patterns are relative to the root and run in the module that holds
# them. Targets are the `func FuzzXxx(f *testing.F)` of the packages' test
# files (listed by `go list`, read with grep: nothing is built to find them),
# so a new Fuzz function is picked up without editing this file. Each runs
# alone (`go test -fuzz` takes one target of one package at a time) with
# -run '^$', so the package's other tests do not run again. Inputs that fail are written by Go
# under the package's testdata/fuzz/<Target>/ and reproduce with a plain
# `go test`. The exit code is non-zero when any target fails, or a package
# does not build; every target still runs.
#
# A bare "context deadline exceeded" with no failing input is Go's fuzzing
# coordinator racing its own -fuzztime deadline on a loaded machine
# (go.dev/issue/75804, fixed in Go 1.27), not a finding: it is reported in
# the summary but does not fail the run (with -json, the target's events are
# replaced by a pass that says so).
#
# With -json, stdout carries only `go test -json` events (one stream per
# target, one after the other) and no summary table; the rest goes to stderr.
#
# FF_FUZZ_PARALLEL sets the fuzzing workers per target (default: GOMAXPROCS).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/modules.sh
source scripts/modules.sh

json=0
if [[ "${1:-}" == -json ]]; then
	json=1
	shift
fi
fuzztime="${1:-60s}"
shift || true
parallel=()
if [[ -n "${FF_FUZZ_PARALLEL:-}" ]]; then
	parallel=(-parallel "$FF_FUZZ_PARALLEL")
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
# to find them: a package that does not build fails when its target runs.
listing_failed=0
targets=() # "MODULE-DIR PACKAGE TARGET"
fuzzfunc='^func (Fuzz[A-Za-z0-9_]*)\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)'
for mod in "${mods[@]}"; do
	read -r -a pats <<<"${patterns[$mod]}"
	listing="$(cd "$mod" && go list -f '{{.ImportPath}}{{range .TestGoFiles}} {{$.Dir}}/{{.}}{{end}}{{range .XTestGoFiles}} {{$.Dir}}/{{.}}{{end}}' "${pats[@]}" 2>&1)" || {
		listing_failed=1
		echo "$listing" >&2
		echo "fuzz: go list failed for some packages of module $mod (above)" >&2
		continue
	}
	while read -r pkg files; do
		[[ -n "$files" ]] || continue
		read -r -a files <<<"$files"
		while IFS= read -r name; do
			targets+=("$mod $pkg $name")
		done < <(grep -hE "$fuzzfunc" "${files[@]}" | sed -E "s/$fuzzfunc.*/\1/")
	done <<<"$listing"
done

if [[ ${#targets[@]} -eq 0 ]]; then
	echo "fuzz: no targets found" >&2
	exit 1
fi

echo "fuzz: ${#targets[@]} targets in ${#mods[@]} module(s), $fuzztime each" >&2
jsonflag=()
if ((json)); then jsonflag=(-json); fi
failed=()
summary=()
for t in "${targets[@]}"; do
	read -r mod pkg name <<<"$t"
	((json)) || echo "==> $pkg $name" >&2
	start=$SECONDS
	out="$(cd "$mod" && go test "${jsonflag[@]}" -count=1 -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "${parallel[@]}" "$pkg" 2>&1)"
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
