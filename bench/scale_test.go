package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWriteFillTable(t *testing.T) {
	rows := []fillRow{
		{Backend: "sqlite", N: 0},
		{Backend: "sqlite", N: 100_000, Added: 100_000, Took: 50 * time.Second, Bytes: 41_200_000},
		{Backend: "sqlite", N: 1_000_000, Err: fmt.Errorf("%w: above -sqlite-max-n 100000", errSkipped)},
	}
	var b strings.Builder
	writeFillTable(&b, rows)
	require.Equal(t, "| backend | N | added | fill time | fill rate | bytes per suspended execution |\n|---|---|---|---|---|---|\n"+
		"| sqlite | 0 | 0 | 0s | — | — |\n"+
		"| sqlite | 100,000 | 100,000 | 50s | 2,000 /s | 412 |\n"+
		"| sqlite | 1,000,000 | skipped: above -sqlite-max-n 100000 | | | |\n", b.String())
}

func TestWriteLatencyTable(t *testing.T) {
	lat := map[string]result{}
	for _, op := range scaleOps {
		lat[op] = result{Ops: 10, P50: time.Millisecond, P99: 2 * time.Millisecond}
	}
	lat[opListSuspended] = result{Ops: 3, P50: time.Second, P99: time.Second}
	lat[opDeliver] = result{Ops: 9, Errors: 1, FirstErr: errors.New("refused"), P50: time.Millisecond, P99: time.Millisecond}
	rows := []latencyRow{{Backend: "valkey", N: 100, Pass: "—", Result: suiteResult{Latency: lat,
		Slow: map[string]slowEntries{opListSuspended: {Count: 2, Longest: 7 * time.Millisecond}}}}}
	var b strings.Builder
	writeLatencyTable(&b, rows, 10)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, "| backend | N | pass | suspend | deliver | claim (idle) | claim (resumed) | claim (timed out) | complete | list_suspended 100 | observe | slowlog > 5 ms |", lines[0])
	require.Equal(t, "| valkey | 100 | — | 1.00 ms / 2.00 ms | 1.00 ms / 1.00 ms (errors: 1, first: refused) | 1.00 ms / 2.00 ms | 1.00 ms / 2.00 ms | "+
		"1.00 ms / 2.00 ms | 1.00 ms / 2.00 ms | 1.00 s / 1.00 s (n=3) | 1.00 ms / 2.00 ms | list_suspended 100: 2 (longest 7.00 ms) |", lines[2])
}
