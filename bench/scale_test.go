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
		{Backend: "sqlite", Pass: "—", N: 0},
		{Backend: "sqlite", Pass: "—", N: 100_000, Added: 100_000, Took: 50 * time.Second, Bytes: 41_200_000},
		{Backend: "sqlite", Pass: "—", N: 1_000_000, Err: fmt.Errorf("%w: above -sqlite-max-n 100000", errSkipped)},
		{Backend: "valkey", Pass: "—", N: 1_000_000, Added: 900_000, Took: 100 * time.Second, Bytes: 450_000_000, Slow: &slowEntries{Count: 2, Longest: 6 * time.Millisecond}, Load: "1.50 → 2.00"},
	}
	var b strings.Builder
	writeFillTable(&b, rows)
	require.Equal(t, "| backend | pass | N | added | fill time | fill rate | bytes per suspended execution | slowlog > 5 ms (fill) | load |\n|---|---|---|---|---|---|---|---|---|\n"+
		"| sqlite | — | 0 | 0 | 0s | — | — | — | — |\n"+
		"| sqlite | — | 100,000 | 100,000 | 50s | 2,000 /s | 412 | — | — |\n"+
		"| sqlite | — | 1,000,000 | skipped: above -sqlite-max-n 100000 | | | | | |\n"+
		"| valkey | — | 1,000,000 | 900,000 | 1m40s | 9,000 /s | 500 | 2 (longest 6.00 ms) | 1.50 → 2.00 |\n", b.String(), "bytes per execution are the growth over the executions added")
}

func TestScaleMethodNamesTheShape(t *testing.T) {
	cfg := scaleConfig{Waitpoints: 2, FillBatch: 100, Samples: 1000, TimedOutShare: 0.05, ReadBudget: 30 * time.Second}
	s := scaleMethod(cfg)
	require.Contains(t, s, "on 2 waitpoints (condition any) with no timeout, 100 executions a transaction through Engine.SuspendTx")
	require.Contains(t, s, "SQLite 1, Postgres 8, Valkey 32 clients")
	cfg.Waitpoints, cfg.FillBatch, cfg.FillClients, cfg.FillTimeout = 1, 1, 4, 168*time.Hour
	s = scaleMethod(cfg)
	require.Contains(t, s, "on 1 waitpoint (condition any) with a timeout of 168h0m0s, one Engine.Suspend each, from 4 clients")
}

func TestTimedOutCount(t *testing.T) {
	cfg := scaleConfig{TimedOutShare: 0.05, Samples: 1000}
	require.Equal(t, 1000, timedOutCount(cfg, 0), "at least the samples")
	require.Equal(t, 5000, timedOutCount(cfg, 100_000))
	require.Equal(t, 50_000, timedOutCount(cfg, 1_000_000), "the target's 50k among 1M")
}

func TestSuspendShape(t *testing.T) {
	a := suspendShape{waitpoints: 2}.args("e1")
	require.Equal(t, "e1", a.ExecutionID)
	require.Len(t, a.Waitpoints, 2)
	require.Equal(t, "w0", a.Waitpoints[0].Key)
	require.Equal(t, "w1", a.Waitpoints[1].Key)
	require.Nil(t, a.TimeoutMs)
	require.NoError(t, a.Validate())
	a = suspendShape{waitpoints: 16, timeoutMs: 1}.args("e2")
	require.Len(t, a.Waitpoints, 16)
	require.Equal(t, int64(1), *a.TimeoutMs)
	require.NoError(t, a.Validate())
}

func TestProgressLine(t *testing.T) {
	require.Equal(t, "postgres: suspended 120,000 of 1,000,000 (12.0 %), 5,000 /s now, 4,000 /s overall, 3m40s left",
		progressLine("postgres", "suspended", 120_000, 1_000_000, 50_000, 10*time.Second, 30*time.Second))
	require.Equal(t, "valkey: suspended 0 of 10 (0.0 %), 0.0 /s now", progressLine("valkey", "suspended", 0, 10, 0, 10*time.Second, 10*time.Second))
}

func TestWriteLatencyTable(t *testing.T) {
	lat := map[string]result{}
	for _, op := range scaleOps {
		lat[op] = result{Ops: 10, P50: time.Millisecond, P99: 2 * time.Millisecond}
	}
	lat[opListSuspended] = result{Ops: 3, P50: time.Second, P99: time.Second}
	lat[opDeliver] = result{Ops: 9, Errors: 1, FirstErr: errors.New("refused"), P50: time.Millisecond, P99: time.Millisecond}
	rows := []latencyRow{{Backend: "valkey", N: 100, Pass: "—", Result: suiteResult{Latency: lat,
		Slow: map[string]slowEntries{opListSuspended: {Count: 2, Longest: 7 * time.Millisecond}, opUntimed: {Count: 1, Longest: 6 * time.Millisecond}}}, Load: "0.50 → 0.70"}}
	var b strings.Builder
	writeLatencyTable(&b, rows, 10)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, "| backend | N | pass | suspend | deliver | claim (idle) | claim (resumed) | claim (timed out) | complete | list_suspended 100 | observe | slowlog > 5 ms | load |", lines[0])
	require.Equal(t, "| valkey | 100 | — | 1.00 ms / 2.00 ms | 1.00 ms / 1.00 ms (errors: 1, first: refused) | 1.00 ms / 2.00 ms | 1.00 ms / 2.00 ms | "+
		"1.00 ms / 2.00 ms | 1.00 ms / 2.00 ms | 1.00 s / 1.00 s (n=3) | 1.00 ms / 2.00 ms | list_suspended 100: 2 (longest 7.00 ms); untimed steps: 1 (longest 6.00 ms) | 0.50 → 0.70 |", lines[2])
}

func TestLaterN(t *testing.T) {
	cfg := scaleConfig{Counts: []int{0, 100_000, 1_000_000}, SQLiteMaxN: 100_000}
	require.True(t, laterN(cfg, backendValkey, 1))
	require.False(t, laterN(cfg, backendValkey, 2))
	require.False(t, laterN(cfg, backendSQLite, 1), "SQLite skips 1M")
	require.True(t, laterN(cfg, backendSQLite, 0))
}
