package main

import (
	"io"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestParseExports(t *testing.T) {
	out := "export FF_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5/postgres?sslmode=disable'\n" +
		"test-servers: noise\n" +
		"export FF_TEST_VALKEY_URL='redis://127.0.0.1:6/0'\n"
	require.Equal(t, map[string]string{
		"FF_TEST_POSTGRES_URL": "postgres://postgres@127.0.0.1:5/postgres?sslmode=disable",
		"FF_TEST_VALKEY_URL":   "redis://127.0.0.1:6/0",
	}, parseExports(out))
}

func TestParseServerURLHidesThePassword(t *testing.T) {
	_, err := parseServerURL(envPostgres, "postgres://u:secret@/db")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret")
	_, err = parseServerURL(envPostgres, "")
	require.ErrorContains(t, err, envPostgres)
}

func TestParseCounts(t *testing.T) {
	got, err := parseCounts("100000, 0,100000")
	require.NoError(t, err)
	require.Equal(t, []int{0, 100000}, got)
	_, err = parseCounts("1e6")
	require.Error(t, err)
}

func TestParseBackends(t *testing.T) {
	got, err := parseBackends("valkey,sqlite")
	require.NoError(t, err)
	require.Equal(t, []string{"valkey", "sqlite"}, got)
	_, err = parseBackends("mysql")
	require.Error(t, err)
}

func TestParseLoadavg(t *testing.T) {
	require.Equal(t, "0.52 0.40 0.31", parseLoadavg("0.52 0.40 0.31 1/123 4567\n"))
	require.Equal(t, "unavailable", parseLoadavg(""))
}

func TestParseServerVersion(t *testing.T) {
	require.Equal(t, "Valkey 8.0.1", parseServerVersion("# Server\r\nredis_version:7.2.4\r\nvalkey_version:8.0.1\r\n"))
	require.Equal(t, "Redis 7.0.15", parseServerVersion("# Server\r\nredis_version:7.0.15\r\n"))
}

func TestParseScaleFlags(t *testing.T) {
	t.Setenv("BENCH_N", "")
	t.Setenv("BENCH_WAITPOINTS", "")
	cfg, err := parseScaleFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 2, cfg.Waitpoints, "two waitpoints: the shape of the bytes target")
	require.Equal(t, []int{0, 100_000}, cfg.Counts)
	require.Equal(t, 0, cfg.FillClients, "the backend's default")
	require.Equal(t, 100, cfg.FillBatch)
	require.Zero(t, cfg.FillTimeout)

	cfg, err = parseScaleFlags([]string{"-waitpoints", "5", "-fill-clients", "3", "-fill-batch", "1", "-fill-timeout", "168h"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 5, cfg.Waitpoints)
	require.Equal(t, 3, cfg.FillClients)
	require.Equal(t, 1, cfg.FillBatch)
	require.Equal(t, 168*time.Hour, cfg.FillTimeout)

	t.Setenv("BENCH_WAITPOINTS", "1")
	cfg, err = parseScaleFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 1, cfg.Waitpoints)

	for _, args := range [][]string{{"-waitpoints", "0"}, {"-waitpoints", "17"}, {"-fill-batch", "0"}, {"-fill-clients", "-1"}, {"-fill-timeout", "1s"}} {
		_, err := parseScaleFlags(args, io.Discard)
		require.Error(t, err, "%v", args)
	}
	t.Setenv("BENCH_WAITPOINTS", "two")
	_, err = parseScaleFlags(nil, io.Discard)
	require.ErrorContains(t, err, "BENCH_WAITPOINTS")
}

func TestCountSlowPartial(t *testing.T) {
	entries := []redis.SlowLog{{ID: 30, Duration: 9 * time.Millisecond, Args: []string{"ffbench-1:x"}}, {ID: 20, Duration: 9 * time.Millisecond, Args: []string{"ffbench-1:x"}}}
	require.Equal(t, slowEntries{Count: 2, Longest: 9 * time.Millisecond, Partial: true}, countSlow(entries, 10, "ffbench-1:"), "entries 11 to 19 were lost")
	require.False(t, countSlow(entries, 19, "ffbench-1:").Partial)
	require.False(t, countSlow(entries, -1, "ffbench-1:").Partial, "an empty log at the mark: ids may start anywhere")
	require.Equal(t, "≥2 (longest 9.00 ms)", countSlow(entries, 10, "ffbench-1:").String())
	var sum slowEntries
	sum.add(slowEntries{Count: 1, Longest: 7 * time.Millisecond})
	sum.add(slowEntries{Count: 2, Longest: 6 * time.Millisecond, Partial: true})
	require.Equal(t, slowEntries{Count: 3, Longest: 7 * time.Millisecond, Partial: true}, sum)
}

func TestCountSlow(t *testing.T) {
	entries := []redis.SlowLog{ // newest first
		{ID: 12, Duration: 9 * time.Millisecond, Args: []string{"EVALSHA", "abc", "1", "ffbench-1:ff:{p:3}:x"}},
		{ID: 11, Duration: 20 * time.Millisecond, Args: []string{"KEYS", "other:*"}},
		{ID: 10, Duration: 3 * time.Millisecond, Args: []string{"EVALSHA", "abc", "1", "ffbench-1:ff:{p:1}:x"}},
		{ID: 9, Duration: 30 * time.Millisecond, Args: []string{"EVALSHA", "abc", "1", "ffbench-1:ff:{p:2}:x"}},
	}
	got := countSlow(entries, 9, "ffbench-1:")
	require.Equal(t, slowEntries{Count: 1, Longest: 9 * time.Millisecond}, got, "only new entries over 5 ms naming the prefix")
	require.Equal(t, "1 (longest 9.00 ms)", got.String())
	require.Equal(t, "0", slowEntries{}.String())
}
