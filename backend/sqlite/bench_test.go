package sqlite

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// benchFixture is a seeded file-backed Engine for benchmarks.
func benchFixture(b *testing.B) (*Backend, context.Context) {
	be, _ := openFile(b)
	ctx := context.Background()
	if _, err := eng(be).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')}); err != nil {
		b.Fatal(err)
	}
	return be, ctx
}

// BenchmarkSuspendDeliverClaimComplete is one whole cycle: four write
// transactions (each a WAL commit with fsync).
func BenchmarkSuspendDeliverClaimComplete(b *testing.B) {
	be, ctx := benchFixture(b)
	e := eng(be)
	for i := 0; b.Loop(); i++ {
		s, err := e.Suspend(ctx, drivertest.SuspendArgs("e"+strconv.Itoa(i), "a"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.DeliverSignal(ctx, drivertest.DeliverArgs(s, 0, "d")); err != nil {
			b.Fatal(err)
		}
		c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
		if err != nil || c.Outcome != contracts.OutcomeClaimed {
			b.Fatal(c, err)
		}
		if _, err := e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel is a read transaction per call on the reader pool.
func BenchmarkVerifyParallel(b *testing.B) {
	be, ctx := benchFixture(b)
	msg := []byte("m")
	signed, err := be.Sign(ctx, contracts.SignArgs{Message: msg})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := be.Verify(ctx, contracts.VerifyArgs{Message: msg, Token: signed.Token}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// sizedExecutions is how many executions BenchmarkBytesPerSuspendedExecution
// suspends: enough that the pages' fill and the indexes' depth are those
// of a store in use.
const sizedExecutions = 20_000

// BenchmarkBytesPerSuspendedExecution reports the bytes a suspended
// execution takes in the file (suspended on 1 or 2 waitpoints, no timeout,
// no tags, no signal; ids as bench scale's, "fill-<k>"): the growth of the
// database file and its log, each measured after wal_checkpoint(TRUNCATE),
// over sizedExecutions suspends from 8 clients. It measures a size, not a
// time: run it once, go test -run '^$' -bench BytesPerSuspended
// -benchtime 1x ./backend/sqlite.
func BenchmarkBytesPerSuspendedExecution(b *testing.B) {
	for _, waitpoints := range []int{1, 2} {
		b.Run(fmt.Sprintf("waitpoints=%d", waitpoints), func(b *testing.B) {
			var perExecution float64
			for b.Loop() {
				perExecution = bytesPerSuspended(b, waitpoints, sizedExecutions)
			}
			b.ReportMetric(perExecution, "bytes/execution")
		})
	}
}

// bytesPerSuspended suspends n executions on waitpoints waitpoints each in
// a fresh seeded file and returns the file's growth over n.
func bytesPerSuspended(b *testing.B, waitpoints, n int) float64 {
	be, ctx := benchFixture(b)
	e := eng(be)
	size := func() int64 {
		var busy, frames, done int
		if err := be.db.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil || busy != 0 {
			b.Fatalf("checkpoint: busy %d, %v", busy, err)
		}
		var total int64
		for _, p := range []string{be.path, be.path + "-wal"} {
			if fi, err := os.Stat(p); err == nil {
				total += fi.Size()
			}
		}
		return total
	}
	keys := make([]string, waitpoints)
	for i := range keys {
		keys[i] = "w" + strconv.Itoa(i)
	}
	before := size()
	const clients = 8
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for k := c; k < n; k += clients {
				if _, err := e.Suspend(ctx, drivertest.SuspendArgs("fill-"+strconv.Itoa(k), keys...)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(size()-before) / float64(n)
}
