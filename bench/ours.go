package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/flowfabric/flowfabric-go/cli/bench"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/flowfabric/flowfabric-go/worker"

	// The drivers the comparisons open, registering their URL schemes.
	_ "github.com/flowfabric/flowfabric-go/backend/postgres"
	_ "github.com/flowfabric/flowfabric-go/backend/sqlite"
	_ "github.com/flowfabric/flowfabric-go/backend/valkey"
)

// openEngine opens an Engine on rawURL as ff does (engine.Open) and adds
// a step closing it to cl. Errors name the URL redacted.
func openEngine(ctx context.Context, rawURL string, cl *cleanups, opts ...engine.Option) (*engine.Engine, error) {
	e, err := engine.Open(ctx, rawURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", engine.RedactURL(rawURL), err)
	}
	cl.add("closing the engine on "+engine.RedactURL(rawURL), func(context.Context) error { return e.Close() })
	return e, nil
}

// measureOurs runs one operation of ff bench (package cli/bench) on e with
// clients workers for d: the same runner, workload and cleanup as `ff bench
// --op op`. OpCycle and OpCycleWorker deliver their signals over HTTP
// through a loopback httpapi handler, as ff bench does; OpCycleWorker's
// worker is runWorker. The rate counts only the operations
// that succeeded.
func measureOurs(ctx context.Context, e *engine.Engine, op string, clients int, d time.Duration) measure {
	cfg := bench.Config{Op: op, Concurrency: clients, Duration: d}
	if op == bench.OpCycleWorker {
		cfg.Worker, cfg.WorkerSlots, cfg.InFlight = runWorker, workerSlots, workerInFlight
	}
	if op == bench.OpCycle || op == bench.OpCycleWorker {
		h := httpapi.New(e, httpapi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		defer h.Close()
		cfg.Handler = h
	}
	rep, err := bench.Run(ctx, e, cfg)
	if err != nil {
		return measure{Err: fmt.Errorf("ff bench --op %s: %w", op, err)}
	}
	if err := ctx.Err(); err != nil {
		return measure{Err: err}
	}
	elapsed := time.Duration(rep.DurationMs) * time.Millisecond
	m := measure{
		P50:    time.Duration(rep.LatencyUs.P50 * float64(time.Microsecond)),
		P99:    time.Duration(rep.LatencyUs.P99 * float64(time.Microsecond)),
		Errors: rep.Errors,
	}
	if elapsed > 0 {
		m.OpsPerSec = float64(rep.Ops-rep.Errors) / elapsed.Seconds()
	}
	if rep.LeftBehind > 0 {
		m.Note = fmt.Sprintf("%d executions left behind", rep.LeftBehind)
	}
	return m
}

// workerSlots and workerInFlight are the cycle-worker row's worker slots
// and outstanding executions: those of the River reference (100 workers, at
// most 1,000 jobs inserted and not completed).
const (
	workerSlots    = 100
	workerInFlight = 1000
)

// runWorker is the cycle-worker row's worker (bench.WorkerFunc): one
// worker.Worker with slots handler slots, default options otherwise (batch
// claims of up to the free slots, woken by Engine.WatchClaimable, 1 s
// polling), whose handler returns worker.Complete() for every execution
// handle accepts.
func runWorker(ctx context.Context, e *engine.Engine, slots int, handle func(context.Context, string) error) error {
	w, err := worker.New(e, worker.HandlerFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
		if err := handle(ctx, j.ExecutionID); err != nil {
			return worker.Result{}, err
		}
		return worker.Complete(), nil
	}), worker.Options{Concurrency: slots, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// seedKeystore seeds e's keystore with a fresh kid when it has no current
// one, as ff bench does before it writes.
func seedKeystore(ctx context.Context, e *engine.Engine) error {
	kids, err := e.ListKids(ctx)
	if err != nil {
		return fmt.Errorf("listing kids: %w", err)
	}
	for _, p := range kids.Partitions {
		if p.CurrentKid != nil {
			return nil
		}
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "ff-bench-scale-" + runID(), Secret: secret}); err != nil {
		return fmt.Errorf("seeding the keystore: %w", err)
	}
	return nil
}
