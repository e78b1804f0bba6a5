package worker

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/internal/testenv"
	"github.com/flowfabric/flowfabric-go/worker"
)

// Given a worker on one Engine of a Valkey store (standalone or cluster)
// that polls only once an hour, each execution resumed through another
// Engine (as by another process) while the worker is idle starts its
// handler: only the store's claimable push can have woken it. Then a burst
// resumed at once is claimed in batches, each execution exactly once.
func TestValkeyPushWakesAnIdleWorker(t *testing.T) {
	for _, s := range []struct {
		name string
		url  func(testing.TB) string
	}{{"standalone", testenv.ValkeyURL}, {"cluster", testenv.ValkeyClusterURL}} {
		t.Run(s.name, func(t *testing.T) {
			raw := withParams(t, s.url(t), "prefix", testenv.KeyPrefix(t), "partitions", "64")
			ew, ed := open(t, raw), open(t, raw)
			started := make(chan string, 64)
			h := worker.HandlerFunc(func(_ context.Context, job *worker.Job) (worker.Result, error) {
				started <- job.ExecutionID
				return worker.Complete(), nil
			})
			w, err := worker.New(ew, h, worker.Options{Concurrency: 8, BatchSize: 8, PollInterval: time.Hour,
				Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				require.NoError(t, <-done)
			})

			for i := range 5 {
				id := fmt.Sprintf("idle-%d", i)
				time.Sleep(100 * time.Millisecond) // the worker is idle again
				resume(t, ed, id)
				select {
				case got := <-started:
					require.Equal(t, id, got)
				case <-time.After(waitFor):
					t.Fatalf("the handler of %s did not start: no wake-up reached the worker", id)
				}
			}

			seen := map[string]int{}
			for i := range 30 {
				resume(t, ed, fmt.Sprintf("burst-%d", i))
			}
			for len(seen) < 30 {
				select {
				case id := <-started:
					seen[id]++
					require.Equal(t, 1, seen[id], "%s ran twice", id)
				case <-time.After(waitFor):
					t.Fatalf("%d of 30 handlers started", len(seen))
				}
			}
		})
	}
}
