#!/usr/bin/env bash
# The repository's Go modules, for scripts/test.sh and scripts/fuzz.sh
# (sourced; run from the repository root).
#
#   bash scripts/modules.sh                     # prints the module directories
#   bash scripts/modules.sh ./backend/valkey/... ./engine
#                                               # prints "MODULE-DIR PATTERN" per pattern
#
# A module is a directory with a go.mod: those git tracks (`git ls-files`)
# and those not yet added (`find`), except under testdata/ (not modules of
# the build) and bench/ (its own benchmarks, run by `make bench`, not tests).
# Directories are relative to the root, "." (the root module) first. A
# package pattern belongs to the module of the nearest go.mod above its
# directory; ff_split_pattern rewrites it relative to that module.

# ff_modules: prints the module directories, one a line.
ff_modules() {
	{
		git ls-files -- '*go.mod' 2>/dev/null || true
		find . -name go.mod -not -path './.git/*' -not -path './.cache/*' -not -path '*/node_modules/*' -not -path '*/testdata/*' 2>/dev/null
	} | while IFS= read -r f; do
		f="${f#./}"
		[[ "$f" == go.mod || "$f" == */go.mod ]] || continue
		[[ "$f" == testdata/* || "$f" == */testdata/* ]] && continue
		[[ -f "$f" ]] || continue # tracked but deleted in the working tree
		local d
		d="$(dirname "$f")"
		[[ "$d" == bench || "$d" == bench/* ]] && continue
		echo "$d"
	done | LC_ALL=C sort -u
}

# ff_module_of DIR: prints the directory of the module that holds DIR.
ff_module_of() {
	local d="${1#./}"
	d="${d%/}"
	[[ -n "$d" ]] || d=.
	while [[ "$d" != . && ! -f "$d/go.mod" ]]; do
		d="$(dirname "$d")"
	done
	echo "$d"
}

# ff_split_pattern PATTERN: prints "MODULE-DIR PATTERN-IN-MODULE" for a
# package pattern relative to the root (./x, ./x/..., x/...).
ff_split_pattern() {
	local p="${1#./}" suffix="" mod rel
	if [[ "$p" == ... ]]; then
		p=. suffix=/...
	elif [[ "$p" == */... ]]; then
		p="${p%/...}" suffix=/...
	fi
	p="${p%/}"
	[[ -n "$p" ]] || p=.
	mod="$(ff_module_of "$p")"
	if [[ "$p" == "$mod" ]]; then
		rel=.
	elif [[ "$mod" == . ]]; then
		rel="./$p"
	else
		rel="./${p#"$mod"/}"
	fi
	echo "$mod $rel$suffix"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	set -euo pipefail
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
	if (($#)); then
		for p in "$@"; do ff_split_pattern "$p"; done
	else
		ff_modules
	fi
fi
