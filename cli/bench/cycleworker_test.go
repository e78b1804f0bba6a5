package bench

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	ffworker "github.com/flowfabric/flowfabric-go/worker"
)

// runWorker is the WorkerFunc module bench gives: one worker.Worker
// whose handler completes every execution handle accepts.
func runWorker(ctx context.Context, e *engine.Engine, slots int, handle func(context.Context, string) error) error {
	w, err := ffworker.New(e, ffworker.HandlerFunc(func(ctx context.Context, j *ffworker.Job) (ffworker.Result, error) {
		if err := handle(ctx, j.ExecutionID); err != nil {
			return ffworker.Result{}, err
		}
		return ffworker.Complete(), nil
	}), ffworker.Options{Concurrency: slots, PollInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

func cycleWorkerConfig(t *testing.T, e *engine.Engine) Config {
	h := httpapi.New(e, httpapi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { _ = h.Close() })
	return Config{Op: OpCycleWorker, Concurrency: 3, Duration: 200 * time.Millisecond, Handler: h, Worker: runWorker, WorkerSlots: 10, InFlight: 20}
}

// Given producers and one worker on the memory backend, when cycle-worker
// runs, then cycles complete without errors, each step is timed, and no
// execution is left behind.
func TestCycleWorker(t *testing.T) {
	e := newEngine(t)
	cfg := cycleWorkerConfig(t, e)
	rep, err := Run(context.Background(), e, cfg)
	require.NoError(t, err)
	l := rep.LatencyUs
	require.Equal(t, OpCycleWorker, rep.Op)
	require.Positive(t, rep.Ops, "cycles handled")
	require.Zero(t, rep.Errors, "errors: %v", rep.ErrorCodes)
	require.InDelta(t, float64(rep.Ops)/(float64(rep.DurationMs)/1000), rep.OpsPerSec, rep.OpsPerSec*0.05+1)
	require.GreaterOrEqual(t, rep.DurationMs, cfg.Duration.Milliseconds())
	require.True(t, 0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max, "percentiles %+v", l)
	keys := make([]string, 0, len(rep.StepsUs))
	for k := range rep.StepsUs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	require.Equal(t, []string{"deliver_http", "suspend", "to_handler"}, keys)
	require.Positive(t, rep.StepsUs["suspend"].Max)
	require.Zero(t, rep.LeftBehind)
	wantNoExecutions(t, e, "after cycle-worker")
}

// Given cycle-worker without its worker or its HTTP handler, Run refuses
// it as invalid input before any I/O; ff bench does not offer it.
func TestCycleWorkerNeedsItsWorker(t *testing.T) {
	e := newEngine(t)
	cfg := cycleWorkerConfig(t, e)
	cfg.Worker = nil
	_, err := Run(context.Background(), e, cfg)
	require.ErrorContains(t, err, "Config.Worker")
	cfg = cycleWorkerConfig(t, e)
	cfg.Handler = nil
	_, err = Run(context.Background(), e, cfg)
	require.ErrorContains(t, err, "Config.Handler")
	require.NotContains(t, Ops(), OpCycleWorker)
}

// Given a cancelled context, cycle-worker stops early and answers a report
// without errors, having removed what it suspended.
func TestCycleWorkerCancelled(t *testing.T) {
	e := newEngine(t)
	cfg := cycleWorkerConfig(t, e)
	cfg.Duration = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, e, cfg)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 30*time.Second)
	require.Zero(t, rep.Errors, "errors: %v", rep.ErrorCodes)
	require.Zero(t, rep.LeftBehind)
	wantNoExecutions(t, e, "after a cancelled cycle-worker")
}
