#!/usr/bin/env bash
# Regenerates the console's screenshots (docs/console-*.png) with headless
# Chromium: TestConsoleScreenshots in internal/integration/console starts a
# server (gateway and console over SQLite), fills it and saves a PNG of each
# page. Needs Debian's chromium (apt-get install chromium; FF_CHROMIUM names
# another binary). Run from anywhere: `make console-screenshots`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$PWD/docs"
if ! command -v "${FF_CHROMIUM:-chromium}" >/dev/null 2>&1; then
	echo "console-screenshots: chromium is not installed (apt-get install chromium, or set FF_CHROMIUM)" >&2
	exit 1
fi
(cd internal/integration && FF_CONSOLE_SCREENSHOTS="$out" go test -count=1 -run '^TestConsoleScreenshots$' -v ./console) |
	grep -E '^(--- |ok|FAIL|.*wrote )' || true
ls -l "$out"/console-*.png
