package bench

import (
	"context"
	"sync"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// worker is one worker's tally.
type worker struct {
	hist   histogram
	errors map[string]int64 // by error code
}

// run calls op from Concurrency workers until the duration has passed; an
// operation in flight at the deadline completes and counts. One interrupted by
// ctx's cancellation counts neither as an operation nor as an error.
func (r *runner) run(ctx context.Context, op opFunc) Report {
	workers := make([]worker, r.cfg.Concurrency)
	start := time.Now()
	deadline := start.Add(r.cfg.Duration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, op, w, &workers[w], deadline)
		}()
	}
	wg.Wait()
	return r.report(workers, time.Since(start))
}

func (r *runner) work(ctx context.Context, op opFunc, w int, wk *worker, deadline time.Time) {
	wk.errors = map[string]int64{}
	for i := 0; ctx.Err() == nil; i++ {
		t0 := time.Now()
		if !t0.Before(deadline) {
			return
		}
		err := op(ctx, w, i)
		if err != nil && ctx.Err() != nil {
			// Cut short by the caller's cancellation: neither an
			// operation nor a failure of the store, so it is not counted.
			return
		}
		wk.hist.add(time.Since(t0))
		if err != nil {
			ce := contracts.AsError(err)
			wk.errors[ce.Code]++
		}
	}
}

// report merges the workers' tallies into the run's report.
func (r *runner) report(workers []worker, elapsed time.Duration) Report {
	var all histogram
	rep := Report{
		Op: r.cfg.Op, Concurrency: r.cfg.Concurrency, DurationMs: elapsed.Milliseconds(),
		SeededByBench: r.seeded, ErrorCodes: map[string]int64{}, ForeignClaims: r.foreign.Load(),
	}
	for i := range workers {
		all.merge(&workers[i].hist)
		for code, n := range workers[i].errors {
			rep.ErrorCodes[code] += n
			rep.Errors += n
		}
	}
	rep.Ops = int64(all.n)
	rep.OpsPerSec = float64(all.n) / elapsed.Seconds()
	rep.LatencyUs = all.latency()
	if r.steps != nil {
		rep.StepsUs = map[string]Latency{}
		for k, name := range r.stepNames {
			rep.StepsUs[name] = r.steps[k].latency()
		}
	}
	return rep
}
