package valkey

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// fillSuspended writes n suspended executions <name>-<i>, each on two new
// waitpoints (condition any, no tags, a timeout when timeoutMs > 0), with
// write, a suspend_write script (this version's or testdata/layout1's):
// the ARGV suspend would send for a new execution (suspendPlan.write), in
// pipelines of 1,000 calls, without suspend_read's round trip. It is what
// n suspends leave in the store, written fast enough to fill a million.
func fillSuspended(tb testing.TB, b *Backend, write *redis.Script, name string, n int, timeoutMs int64) {
	tb.Helper()
	require.NoError(tb, b.loadEverywhere(bg, write))
	current := driver.KidRecord{Kid: "kid-a", Secret: secret(1)}
	const batch = 1000
	for start := 0; start < n; start += batch {
		pipe := b.client.Pipeline()
		now := time.Now().UnixMilli()
		var cmds []*redis.Cmd
		for i := start; i < min(start+batch, n); i++ {
			args := contracts.SuspendArgs{ExecutionID: fmt.Sprintf("%s-%07d", name, i), Condition: contracts.ConditionAny,
				Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}, {Key: "reject"}}}
			if timeoutMs > 0 {
				args.TimeoutMs = &timeoutMs
			}
			pl := suspendPlan{args: args, now: now, ver: "-", found: map[string]*driver.PendingWaitpoint{}}
			_, argv, err := pl.write(current)
			require.NoError(tb, err)
			p := driver.PartitionOf(args.ExecutionID, b.parts)
			cmds = append(cmds, write.EvalSha(bg, pipe, b.scriptKeys(p), b.scriptArgs(p, argv)...))
		}
		_, _ = pipe.Exec(bg)
		for _, c := range cmds {
			v, err := c.Slice()
			require.NoError(tb, err)
			require.Equal(tb, "ok", str(v, 0))
		}
	}
}

// keysMemory sums MEMORY USAGE … SAMPLES 0 (a key, its value and its
// entry in the server's key table) over the keys of b's prefix: what this
// test stored, whatever other tests, of this package or of others sharing
// the server, store meanwhile. bench/'s bytes figure is measured alike.
func keysMemory(tb testing.TB, b *Backend) int64 {
	tb.Helper()
	var total int64
	iter := b.client.Scan(bg, 0, b.prefix+"*", 1000).Iterator()
	pipe := b.client.Pipeline()
	var cmds []*redis.IntCmd
	for iter.Next(bg) {
		cmds = append(cmds, pipe.MemoryUsage(bg, iter.Val(), 0))
	}
	require.NoError(tb, iter.Err())
	if len(cmds) > 0 {
		_, err := pipe.Exec(bg)
		require.NoError(tb, err)
	}
	for _, c := range cmds {
		total += c.Val()
	}
	return total
}

// Bytes per suspended execution with two waitpoints and no signal: the
// memory of the test's keys (keysMemory) grown by filling 20,000 of them,
// divided by 20,000 (keys, values and index entries; 16 partitions, so that each index holds
// 1,250 members and is a skip list, as in a large store). The execution's
// hash, which holds its waitpoints (layout 2), stays listpack-encoded
// under the servers' default thresholds, which the test never changes.
// The previous version's layout is measured alongside, for the record.
// Standalone server only.
func TestBytesPerSuspendedExecution(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 60,000 executions")
	}
	const n = 20_000
	measure := func(write *redis.Script, timeoutMs int64) int64 {
		b := openURL(t, backendURL(t, servers[0].url(t), 16, testenv.KeyPrefix(t)), nil)
		mustSeed(t, b, "kid-a", secret(1))
		before := keysMemory(t, b)
		fillSuspended(t, b, write, "bytes", n, timeoutMs)
		return (keysMemory(t, b) - before) / n
	}
	compact := measure(scriptSuspendWrite, 0)
	compactTimeout := measure(scriptSuspendWrite, hourMs)
	previous := measure(layout1Script(t, "suspend_write"), 0)
	t.Logf("bytes per suspended execution, 2 waitpoints: %d (%d with a timeout); layout 1: %d",
		compact, compactTimeout, previous)
	require.LessOrEqual(t, compact, int64(1000), "bytes per suspended execution with two waitpoints")
	require.LessOrEqual(t, compactTimeout, int64(1200), "bytes per suspended execution with two waitpoints and a timeout")
}

// BenchmarkListSuspended measures list_suspended (the first page and a
// page from a cursor in the middle, at limit 100 and 1,000) over a store of
// N suspended executions on two waitpoints, filled through the scripts
// (fillSuspended), with the default 256 partitions: N from
// FF_BENCH_LIST_N (a comma-separated list, e.g. 100000,1000000); skipped
// without it. It reports the median (p50-ms) besides the mean, and the
// longest script call the server's SLOWLOG recorded during the run
// (slowlog-max-us; SLOWLOG keeps only calls slower than the server's
// slowlog-log-slower-than, 10 ms by default: 0 means none was). Standalone
// server; FF_BENCH_LIST_CLUSTER=1 adds the cluster.
//
//	FF_BENCH_LIST_N=100000 go test ./backend/valkey -run '^$' -bench ListSuspended -benchtime 200x
func BenchmarkListSuspended(b *testing.B) {
	env := os.Getenv("FF_BENCH_LIST_N")
	if env == "" {
		b.Skip("set FF_BENCH_LIST_N (e.g. 100000) to fill a store of that size")
	}
	targets := servers[:1]
	if os.Getenv("FF_BENCH_LIST_CLUSTER") == "1" {
		targets = servers
	}
	for _, s := range targets {
		for _, field := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(field))
			require.NoError(b, err, "FF_BENCH_LIST_N")
			b.Run(fmt.Sprintf("%s/N=%d", s.name, n), func(b *testing.B) {
				be := openURL(b, backendURL(b, s.url(b), DefaultPartitions, testenv.KeyPrefix(b)), nil)
				mustSeed(b, be, "kid-a", secret(1))
				fillSuspended(b, be, scriptSuspendWrite, "list", n, 0)
				mid, err := be.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: n / 2})
				if n/2 > contracts.MaxListLimit {
					mid, err = pageAt(be, n/2)
				}
				require.NoError(b, err)
				for _, limit := range []int{100, 1000} {
					for _, page := range []struct {
						name   string
						cursor string
					}{{"first", ""}, {"middle", *mid.NextCursor}} {
						b.Run(fmt.Sprintf("limit=%d/%s", limit, page.name), func(b *testing.B) {
							since := slowlogLast(b, be)
							took := make([]time.Duration, 0, b.N)
							b.ResetTimer()
							for range b.N {
								start := time.Now()
								l, err := be.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: limit, Cursor: page.cursor})
								took = append(took, time.Since(start))
								if err != nil || len(l.Executions) != min(limit, n) {
									b.Fatalf("list: %d rows, %v", len(l.Executions), err)
								}
							}
							b.StopTimer()
							slices.Sort(took)
							b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
							b.ReportMetric(float64(slowlogMax(b, be, since)), "slowlog-max-us")
						})
					}
				}
			})
		}
	}
}

// pageAt returns the page of list_suspended whose next_cursor follows the
// first n executions, paging at the largest limit.
func pageAt(b *Backend, n int) (contracts.ListSuspendedResult, error) {
	var l contracts.ListSuspendedResult
	cursor := ""
	for seen := 0; seen < n; seen += contracts.MaxListLimit {
		var err error
		if l, err = b.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: contracts.MaxListLimit, Cursor: cursor}); err != nil {
			return l, err
		}
		cursor = *l.NextCursor
	}
	return l, nil
}

// slowlogLast is the id of the latest SLOWLOG entry of every master (-1:
// none), so that slowlogMax reads only the entries that follow.
func slowlogLast(tb testing.TB, b *Backend) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	forEachNode(tb, b, func(addr string, c *redis.Client) {
		out[addr] = -1
		if logs, err := c.SlowLogGet(bg, 1).Result(); err == nil && len(logs) > 0 {
			out[addr] = logs[0].ID
		}
	})
	return out
}

// slowlogMax is the longest duration, in microseconds, of the SLOWLOG
// entries of every master after since (0: none).
func slowlogMax(tb testing.TB, b *Backend, since map[string]int64) int64 {
	tb.Helper()
	var longest int64
	forEachNode(tb, b, func(addr string, c *redis.Client) {
		logs, err := c.SlowLogGet(bg, 128).Result()
		require.NoError(tb, err)
		for _, l := range logs {
			if l.ID > since[addr] {
				longest = max(longest, l.Duration.Microseconds())
			}
		}
	})
	return longest
}

// forEachNode calls f with a client of each master, one after the other.
func forEachNode(tb testing.TB, b *Backend, f func(addr string, c *redis.Client)) {
	tb.Helper()
	switch c := b.client.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex // ForEachMaster calls concurrently
		var nodes []*redis.Client
		require.NoError(tb, c.ForEachMaster(bg, func(_ context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			nodes = append(nodes, n)
			return nil
		}))
		for _, n := range nodes {
			f(n.Options().Addr, n)
		}
	case *redis.Client:
		f(c.Options().Addr, c)
	}
}
