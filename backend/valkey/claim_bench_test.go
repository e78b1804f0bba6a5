package valkey

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// BenchmarkClaimBacklog claims from a backlog on the standalone test
// server with P = 256 partitions and 8 parallel claimers: 100,000
// suspended executions of which 10,000 are claimable, either resumed
// (cancelled, resumed) or past their timeout (timedout). It reports the
// median and 99th percentile of one claim's latency and the script calls
// the server ran per claim (INFO commandstats: EVALSHA and EVAL).
//
//	go test ./backend/valkey -run '^$' -bench ClaimBacklog -benchtime 2000x
//
// The backlog must outlast b.N claims: keep -benchtime at 9,000x or less.
func BenchmarkClaimBacklog(b *testing.B) {
	const total, claimable, parts = 100_000, 10_000, 256
	for _, kind := range []string{"resumed", "timedout"} {
		b.Run(kind, func(b *testing.B) {
			if b.N > claimable-1000 {
				b.Skipf("b.N = %d outruns the backlog of %d", b.N, claimable)
			}
			be := openURL(b, backendURL(b, testenv.ValkeyURL(b), parts, testenv.KeyPrefix(b)), nil)
			mustSeed(b, be, "kid-a", secret(1))
			switch kind {
			case "resumed":
				fillSuspended(b, be, scriptSuspendWrite, "bl", total, 0)
				cancelBacklog(b, be, "bl", claimable, total/claimable)
			case "timedout":
				fillSuspended(b, be, scriptSuspendWrite, "tw", claimable, 1)
				fillSuspended(b, be, scriptSuspendWrite, "bl", total-claimable, 0)
				time.Sleep(5 * time.Millisecond)
			}
			// One claim first, so that the claim hint is complete (the
			// first claim of a store asks every partition).
			_, err := be.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 600_000})
			require.NoError(b, err)
			before := scriptCalls(b, be)
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0))) // 8 claimers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					t0 := time.Now()
					c, err := be.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 600_000})
					mine = append(mine, time.Since(t0))
					if err != nil || c.Outcome != contracts.OutcomeClaimed {
						b.Errorf("claim: %+v, %v", c, err)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			scripts := scriptCalls(b, be) - before
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(scripts)/float64(len(lat)), "scripts/claim")
			}
		})
	}
}

// cancelBacklog resumes every step-th of the executions <name>-<i> that
// fillSuspended wrote, n of them, with cancel_suspension (reason
// cancelled), in pipelines of 1,000 calls.
func cancelBacklog(tb testing.TB, b *Backend, name string, n, step int) {
	tb.Helper()
	require.NoError(tb, b.loadEverywhere(bg, scriptCancel))
	for start := 0; start < n; start += 1000 {
		pipe := b.client.Pipeline()
		for i := start; i < min(start+1000, n); i++ {
			id := fmt.Sprintf("%s-%07d", name, i*step)
			p := driver.PartitionOf(id, b.parts)
			scriptCancel.EvalSha(bg, pipe, b.scriptKeys(p), b.scriptArgs(p, []any{id, driver.NewID()})...)
		}
		cmds, err := pipe.Exec(bg)
		require.NoError(tb, err)
		for _, c := range cmds {
			require.NoError(tb, c.Err())
		}
	}
}

// scriptCalls is how many script calls (EVALSHA and EVAL) the standalone
// server ran so far (INFO commandstats).
func scriptCalls(tb testing.TB, b *Backend) int64 {
	tb.Helper()
	info, err := b.client.Info(bg, "commandstats").Result()
	require.NoError(tb, err)
	var n int64
	for _, line := range strings.Split(info, "\n") {
		for _, cmd := range []string{"cmdstat_evalsha:", "cmdstat_eval:"} {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), cmd); ok {
				calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
				v, err := strconv.ParseInt(calls, 10, 64)
				require.NoError(tb, err)
				n += v
			}
		}
	}
	return n
}
