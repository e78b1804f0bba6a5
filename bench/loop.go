package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// opFunc performs one operation of client w. seq numbers the operations:
// per client from 0 under runFor, across all clients from 0 to n-1 under
// runCount, so that a caller may index a slice with it.
type opFunc func(ctx context.Context, w, seq int) error

// result is one measurement of an operation: the operations that
// succeeded, those that failed, the time the loop took and the latency
// percentiles of the successful ones.
type result struct {
	Ops      int64
	Errors   int64
	Elapsed  time.Duration
	P50, P99 time.Duration
	FirstErr error // the first failure, for the message; nil when Errors is 0
}

// opsPerSec is the rate of successful operations, 0 for an empty result.
func (r result) opsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// tally is what one client records.
type tally struct {
	samples  []time.Duration
	errors   int64
	firstErr error
}

func (t *tally) record(d time.Duration, err error) {
	if err != nil {
		if t.errors == 0 {
			t.firstErr = err
		}
		t.errors++
		return
	}
	t.samples = append(t.samples, d)
}

// runFor calls op from clients goroutines, each in a closed loop (the next
// call starts when the previous one returned), until d has passed; a call
// in flight at the deadline completes and counts. Cancelling ctx stops the
// loop early; a call that failed because ctx ended is not counted.
func runFor(ctx context.Context, clients int, d time.Duration, op opFunc) result {
	deadline := time.Now().Add(d)
	return runClients(ctx, clients, func(ctx context.Context, w int, t *tally) {
		for i := 0; ctx.Err() == nil; i++ {
			t0 := time.Now()
			if !t0.Before(deadline) {
				return
			}
			err := op(ctx, w, i)
			if err != nil && ctx.Err() != nil {
				return
			}
			t.record(time.Since(t0), err)
		}
	})
}

// runCount calls op n times in all, from clients goroutines in closed
// loops, each call with its own seq from 0 to n-1. Cancelling ctx stops it
// early; a call that failed because ctx ended is not counted.
func runCount(ctx context.Context, clients, n int, op opFunc) result {
	return runCountUntil(ctx, clients, n, time.Time{}, op)
}

// runCountUntil is runCount that also starts no call after deadline (the
// zero time: none), for operations whose latency may grow so much that n
// calls would take too long.
func runCountUntil(ctx context.Context, clients, n int, deadline time.Time, op opFunc) result {
	var next atomic.Int64
	return runClients(ctx, clients, func(ctx context.Context, w int, t *tally) {
		for ctx.Err() == nil {
			seq := int(next.Add(1) - 1)
			if seq >= n {
				return
			}
			t0 := time.Now()
			if !deadline.IsZero() && !t0.Before(deadline) {
				return
			}
			err := op(ctx, w, seq)
			if err != nil && ctx.Err() != nil {
				return
			}
			t.record(time.Since(t0), err)
		}
	})
}

// runClients runs loop on clients goroutines and merges their tallies.
func runClients(ctx context.Context, clients int, loop func(ctx context.Context, w int, t *tally)) result {
	clients = max(clients, 1)
	tallies := make([]tally, clients)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range tallies {
		wg.Go(func() { loop(ctx, w, &tallies[w]) })
	}
	wg.Wait()
	return merge(tallies, time.Since(start))
}

// merge combines the clients' tallies into one result.
func merge(tallies []tally, elapsed time.Duration) result {
	r := result{Elapsed: elapsed}
	var all []time.Duration
	for _, t := range tallies {
		all = append(all, t.samples...)
		if t.errors > 0 && r.FirstErr == nil {
			r.FirstErr = t.firstErr
		}
		r.Errors += t.errors
	}
	slices.Sort(all)
	r.Ops = int64(len(all))
	r.P50 = percentile(all, 0.50)
	r.P99 = percentile(all, 0.99)
	return r
}

// percentile returns the q-quantile (0 < q ≤ 1) of sorted samples by the
// nearest-rank method: the smallest sample with at least q of the samples
// at or below it. It returns 0 for no samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
