package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// progressEvery is how often a long step (a fill, a drain) reports its
// progress on stderr.
const progressEvery = 10 * time.Second

// suspendShape is what every execution scale suspends looks like: on
// waitpoints waitpoints (keys w0, w1, …, condition any, so that one
// signal resumes it), with a timeout of timeoutMs (0: none).
type suspendShape struct {
	waitpoints int
	timeoutMs  int64
}

// args returns the SuspendArgs of execution id.
func (s suspendShape) args(id string) contracts.SuspendArgs {
	a := contracts.SuspendArgs{ExecutionID: id, Condition: contracts.ConditionAny, Waitpoints: make([]contracts.WaitpointSpec, max(s.waitpoints, 1))}
	for i := range a.Waitpoints {
		a.Waitpoints[i] = contracts.WaitpointSpec{Key: "w" + strconv.Itoa(i)}
	}
	if s.timeoutMs > 0 {
		t := s.timeoutMs
		a.TimeoutMs = &t
	}
	return a
}

// filler suspends many executions into a store, as fast as the public
// Engine API allows: from clients goroutines, and where the store has
// transactions of the application (Postgres, SQLite), batch executions a
// transaction through Engine.SuspendTx, so that a batch costs one commit;
// elsewhere (Valkey), or with batch ≤ 1, one Engine.Suspend each.
type filler struct {
	st      *scaleStore
	clients int
	batch   int
	stderr  io.Writer
	label   string // of the progress lines
	// slow, when set (Valkey), gets the slowlog entries of the fill, read
	// at every progress line and at the end, so that a long fill loses
	// none to the log's length; the slowlog must have been marked.
	slow *slowEntries
}

// fill suspends executions prefix+k for k in [from, to) with shape and
// fails on the first failure. It reports its progress every progressEvery.
func (f filler) fill(ctx context.Context, prefix string, from, to int, shape suspendShape) error {
	n := to - from
	if n <= 0 {
		return nil
	}
	var done atomic.Int64
	var readSlow func()
	var slowErr error
	if f.slow != nil && f.st.slowlog != nil {
		readSlow = func() {
			got, err := f.st.slowlog.since(ctx)
			f.slow.add(got)
			if slowErr == nil {
				slowErr = err
			}
		}
	}
	stop := reportProgress(f.stderr, f.label, "suspended", n, &done, readSlow)
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	var r result
	if f.st.beginTx == nil || f.batch <= 1 {
		r = runCount(ctx, f.clients, n, func(ctx context.Context, _, seq int) error {
			o, err := f.st.e.Suspend(ctx, shape.args(prefix+strconv.Itoa(from+seq)))
			if err == nil && o.Outcome != contracts.OutcomeSuspended {
				err = fmt.Errorf("suspend answered %s, not %s", o.Outcome, contracts.OutcomeSuspended)
			}
			if err == nil {
				done.Add(1)
			}
			return err
		})
	} else {
		batches := (n + f.batch - 1) / f.batch
		r = runCount(ctx, f.clients, batches, func(ctx context.Context, _, b int) error {
			lo, hi := from+b*f.batch, min(from+(b+1)*f.batch, to)
			if err := f.suspendBatch(ctx, prefix, lo, hi, shape); err != nil {
				return err
			}
			done.Add(int64(hi - lo))
			return nil
		})
	}
	stop()
	stop = nil
	if readSlow != nil {
		readSlow()
	}
	if r.FirstErr != nil {
		return fmt.Errorf("suspending %d executions (%d calls failed): %w", n, r.Errors, r.FirstErr)
	}
	if slowErr != nil {
		return slowErr
	}
	return ctx.Err()
}

// suspendBatch suspends executions prefix+k for k in [lo, hi) in one
// transaction of the application, each through Engine.SuspendTx.
func (f filler) suspendBatch(ctx context.Context, prefix string, lo, hi int, shape suspendShape) error {
	tx, err := f.st.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	for k := lo; k < hi; k++ {
		o, err := f.st.e.SuspendTx(ctx, tx.tx, shape.args(prefix+strconv.Itoa(k)))
		if err == nil && o.Outcome != contracts.OutcomeSuspended {
			err = fmt.Errorf("suspend answered %s, not %s", o.Outcome, contracts.OutcomeSuspended)
		}
		if err != nil {
			tx.rollback(ctx)
			return err
		}
	}
	if err := tx.commit(ctx); err != nil {
		tx.rollback(ctx)
		return fmt.Errorf("committing %d suspensions: %w", hi-lo, err)
	}
	return nil
}

// reportProgress prints, every progressEvery until stop is called, how
// many of total done has reached, the rate over the last interval and
// overall, and the time left at the overall rate; and calls tick, when not
// nil, after each line (on the same goroutine, never after stop returns).
func reportProgress(stderr io.Writer, label, verb string, total int, done *atomic.Int64, tick func()) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				d := done.Load()
				progress(stderr, "%s", progressLine(label, verb, d, total, d-last, now.Sub(lastAt), now.Sub(start)))
				last, lastAt = d, now
				if tick != nil {
					tick()
				}
			}
		}
	}()
	return func() { close(quit); <-finished }
}

// progressLine renders "postgres: suspended 120,000 of 1,000,000 (12.0 %),
// 4,500 /s now, 4,000 /s overall, 3m40s left".
func progressLine(label, verb string, done int64, total int, recent int64, recentTook, took time.Duration) string {
	s := fmt.Sprintf("%s: %s %s of %s (%.1f %%)", label, verb, formatCount(int(done)), formatCount(total), 100*float64(done)/float64(max(total, 1)))
	if recentTook > 0 {
		s += fmt.Sprintf(", %s /s now", formatRate(float64(recent)/recentTook.Seconds()))
	}
	if done > 0 && took > 0 {
		rate := float64(done) / took.Seconds()
		s += fmt.Sprintf(", %s /s overall, %s left", formatRate(rate), time.Duration(float64(int64(total)-done)/rate*float64(time.Second)).Round(time.Second))
	}
	return s
}
