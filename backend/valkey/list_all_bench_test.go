package valkey

import (
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

// fillTagged writes n suspended executions <name>-<i> as fillSuspended
// does (two waitpoints, condition any, no timeout), every tagEvery-th one
// with the tag "sparse" (0: none), twenty in each millisecond before now
// (fillSuspended gives the thousand of a pipeline one millisecond; one
// server suspends far fewer in a millisecond).
func fillTagged(tb testing.TB, b *Backend, name string, n, tagEvery int) {
	tb.Helper()
	require.NoError(tb, b.loadEverywhere(bg, scriptSuspendWrite))
	current := driver.KidRecord{Kid: "kid-a", Secret: secret(1)}
	const batch = 1000
	first := time.Now().UnixMilli() - int64(n/20) - 1
	for start := 0; start < n; start += batch {
		pipe := b.client.Pipeline()
		var cmds []*redis.Cmd
		for i := start; i < min(start+batch, n); i++ {
			now := first + int64(i/20)
			args := contracts.SuspendArgs{ExecutionID: fmt.Sprintf("%s-%07d", name, i), Condition: contracts.ConditionAny,
				Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}, {Key: "reject"}}}
			if tagEvery > 0 && i%tagEvery == 0 {
				args.Tags = []string{"sparse"}
			}
			pl := suspendPlan{args: args, now: now, ver: "-", found: map[string]*driver.PendingWaitpoint{}}
			_, argv, err := pl.write(current)
			require.NoError(tb, err)
			p := driver.PartitionOf(args.ExecutionID, b.parts)
			cmds = append(cmds, scriptSuspendWrite.EvalSha(bg, pipe, b.scriptKeys(p), b.scriptArgs(p, argv)...))
		}
		_, _ = pipe.Exec(bg)
		for _, c := range cmds {
			v, err := c.Slice()
			require.NoError(tb, err)
			require.Equal(tb, "ok", str(v, 0))
		}
	}
}

// BenchmarkListAll compares, on one standalone store of N suspended
// executions (FF_BENCH_LIST_ALL_N, e.g. 1000000; skipped without it; 256
// partitions, every tenth execution tagged "sparse"), list_suspended from
// the global list indexes (path=index, what a standalone server runs), in
// one list_all call over every partition (path=all, what it runs until a
// store written before those indexes is backfilled) and in the
// per-partition steps a cluster runs (path=partitions), at limit 100 and
// 1,000, on the first page and from a cursor in the middle, without and
// with the tag, from 1 and 8 clients at once, the paths one after the
// other for each case; and the backfill of the global list indexes
// (backfill: fill-ms). It reports the median (p50-ms) and, for path=index
// and path=all, the server's own time of each script call from SLOWLOG, with
// slowlog-log-slower-than set to 0 for the run (script-p50-us,
// script-max-us): a private server only (FF_TEST_VALKEY_URL of
// scripts/test-servers.sh).
//
//	FF_BENCH_LIST_ALL_N=1000000 go test ./backend/valkey -run '^$' -bench ListAll -benchtime 100x
func BenchmarkListAll(b *testing.B) {
	env := os.Getenv("FF_BENCH_LIST_ALL_N")
	if env == "" {
		b.Skip("set FF_BENCH_LIST_ALL_N (e.g. 1000000) to fill a store of that size")
	}
	n, err := strconv.Atoi(env)
	require.NoError(b, err, "FF_BENCH_LIST_ALL_N")
	be := openURL(b, backendURL(b, servers[0].url(b), DefaultPartitions, testenv.KeyPrefix(b)), nil)
	require.NotEmpty(b, be.hint, "a standalone server")
	mustSeed(b, be, "kid-a", secret(1))
	start := time.Now()
	fillTagged(b, be, "list", n, 10)
	b.Logf("filled %d in %v", n, time.Since(start))
	c := be.client.(*redis.Client)
	mid, err := pageAt(be, n/2)
	require.NoError(b, err)
	midSparse := ""
	for seen, cursor := 0, ""; seen < n/20; seen += contracts.MaxListLimit {
		l, err := be.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: contracts.MaxListLimit, Cursor: cursor, Tag: "sparse"})
		require.NoError(b, err)
		cursor = *l.NextCursor
		midSparse = cursor
	}
	paths := []struct {
		name   string
		script string // the script whose calls SLOWLOG times ("": none)
		list   func(contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error)
	}{
		{"index", scriptListIndex.Hash(), func(a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
			return be.ListSuspended(bg, a)
		}},
		{"all", scriptListAll.Hash(), func(a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
			after := ""
			if a.Cursor != "" {
				cur, err := contracts.DecodeCursor(a.Cursor)
				if err != nil {
					return contracts.ListSuspendedResult{}, err
				}
				after = member(cur.SuspendedAtMs, cur.ExecutionID)
			}
			return be.listAll(bg, after, a.Limit, a.Tag, listAllChunk)
		}},
		{"partitions", "", func(a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
			after := ""
			if a.Cursor != "" {
				cur, err := contracts.DecodeCursor(a.Cursor)
				if err != nil {
					return contracts.ListSuspendedResult{}, err
				}
				after = member(cur.SuspendedAtMs, cur.ExecutionID)
			}
			return be.listPartitions(bg, after, a)
		}},
	}
	b.Run("backfill", func(b *testing.B) {
		// The global list indexes rebuilt from the partitions' (a store
		// written before them), once per iteration.
		slowlogAll(b, c)
		var took time.Duration
		for range b.N {
			keys := []string{be.prefix + "ff:list-complete", be.prefix + "ff:list", be.prefix + "ff:list:tag:sparse"}
			require.NoError(b, c.Del(bg, keys...).Err())
			start := time.Now()
			require.NoError(b, be.fillLists(bg, listFillChunk))
			took += time.Since(start)
		}
		calls := slowlogScript(b, c, scriptListFill.Hash())
		b.ReportMetric(float64(took.Milliseconds())/float64(b.N), "fill-ms")
		b.ReportMetric(float64(calls[len(calls)/2]), "script-p50-us")
		b.ReportMetric(float64(calls[len(calls)-1]), "script-max-us")
	})
	for _, clients := range []int{1, 8} {
		for _, tag := range []string{"", "sparse"} {
			for _, limit := range []int{100, 1000} {
				for _, page := range []string{"first", "middle"} {
					a := contracts.ListSuspendedArgs{Limit: limit, Tag: tag}
					if page == "middle" {
						a.Cursor = *mid.NextCursor
						if tag != "" {
							a.Cursor = midSparse
						}
					}
					for _, path := range paths {
						name := fmt.Sprintf("clients=%d/tag=%s/limit=%d/%s/path=%s", clients, tag, limit, page, path.name)
						b.Run(name, func(b *testing.B) {
							if path.script != "" {
								slowlogAll(b, c)
							}
							cpu := serverCPU(b, c)
							took := listTimed(b, clients, b.N, func() error {
								l, err := path.list(a)
								if err == nil && len(l.Executions) != limit {
									err = fmt.Errorf("%d rows, want %d", len(l.Executions), limit)
								}
								return err
							})
							b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
							b.ReportMetric(float64((serverCPU(b, c)-cpu).Microseconds())/float64(b.N), "server-cpu-us/op")
							if path.script != "" {
								calls := slowlogScript(b, c, path.script)
								b.ReportMetric(float64(calls[len(calls)/2]), "script-p50-us")
								b.ReportMetric(float64(calls[len(calls)-1]), "script-max-us")
							}
						})
					}
				}
			}
		}
	}
}

// listTimed runs list total times from clients goroutines at once and
// returns each call's duration, sorted.
func listTimed(b *testing.B, clients, total int, list func() error) []time.Duration {
	var mu sync.Mutex
	var wg sync.WaitGroup
	took := make([]time.Duration, 0, total)
	next := make(chan struct{}, total)
	for range total {
		next <- struct{}{}
	}
	close(next)
	b.ResetTimer()
	for range clients {
		wg.Go(func() {
			for range next {
				start := time.Now()
				err := list()
				d := time.Since(start)
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				took = append(took, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	require.NotEmpty(b, took)
	slices.Sort(took)
	return took
}

// slowlogAll makes the server log every command in SLOWLOG (and keep 4,096
// of them) until the benchmark ends, starting from an empty log.
func slowlogAll(b *testing.B, c *redis.Client) {
	cfg, err := c.ConfigGet(bg, "slowlog-*").Result()
	require.NoError(b, err)
	require.NoError(b, c.ConfigSet(bg, "slowlog-log-slower-than", "0").Err())
	require.NoError(b, c.ConfigSet(bg, "slowlog-max-len", "4096").Err())
	require.NoError(b, c.Do(bg, "SLOWLOG", "RESET").Err())
	b.Cleanup(func() {
		for k, v := range cfg {
			_ = c.ConfigSet(bg, k, v).Err()
		}
	})
}

// slowlogScript returns the durations in microseconds of the SLOWLOG
// entries of EVALSHA sha, sorted.
func slowlogScript(b *testing.B, c *redis.Client, sha string) []int64 {
	logs, err := c.SlowLogGet(bg, 4096).Result()
	require.NoError(b, err)
	var out []int64
	for _, l := range logs {
		if len(l.Args) > 1 && strings.EqualFold(l.Args[0], "evalsha") && l.Args[1] == sha {
			out = append(out, l.Duration.Microseconds())
		}
	}
	require.NotEmpty(b, out, "SLOWLOG entries of the script")
	slices.Sort(out)
	return out
}

// serverCPU is the CPU time the server's main thread used so far (INFO
// cpu: used_cpu_sys_main_thread + used_cpu_user_main_thread), which a
// loaded machine does not inflate as it does wall-clock times.
func serverCPU(b *testing.B, c *redis.Client) time.Duration {
	info, err := c.Info(bg, "cpu").Result()
	require.NoError(b, err)
	var total float64
	for _, line := range strings.Split(info, "\n") {
		for _, f := range []string{"used_cpu_sys_main_thread:", "used_cpu_user_main_thread:"} {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), f); ok {
				x, err := strconv.ParseFloat(v, 64)
				require.NoError(b, err)
				total += x
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}
