package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// The operations scale times, in the order of the output's columns.
const (
	opSuspend        = "suspend"
	opDeliver        = "deliver"
	opClaimIdle      = "claim (idle)"
	opClaimResumed   = "claim (resumed)"
	opClaimTimedOut  = "claim (timed out)"
	opComplete       = "complete"
	opListSuspended  = "list_suspended 100"
	opObserveSignals = "observe"
	// opUntimed names the slowlog entries of a pass's untimed steps (adding
	// and draining the timed-out executions).
	opUntimed = "untimed steps"
)

// scaleOps lists the timed operations in column order.
var scaleOps = []string{opSuspend, opDeliver, opClaimIdle, opClaimResumed, opClaimTimedOut, opComplete, opListSuspended, opObserveSignals}

// suiteWorker is the worker id of every claim scale makes.
const suiteWorker = "ff-bench-scale"

// suiteLeaseMs is the lease of scale's claims: longer than any pass.
const suiteLeaseMs = 600_000

// suite times every operation once at the store's current N. It leaves
// the store as it found it: the executions it suspends are resumed,
// claimed and completed, and the timed-out ones it adds are all claimed
// and completed.
type suite struct {
	e           *engine.Engine
	clients     int           // of the timed operations
	fillClients int           // of the untimed steps
	fill        filler        // of the timed-out executions
	shape       suspendShape  // of the executions suspend adds (no timeout)
	samples     int           // timed operations per operation
	readBudget  time.Duration // claim (idle), list_suspended and observe stop after it
	tag         string
	slowlog     *slowlog // nil but on Valkey
	stderr      io.Writer
	label       string // of the progress lines
}

// suiteResult is a pass's measurements, by operation.
type suiteResult struct {
	Latency map[string]result
	Slow    map[string]slowEntries // Valkey only
}

// lease is a claimed execution.
type lease struct{ execID, leaseID string }

// run times, in order: suspend (samples new executions), claim while
// nothing is claimable, list_suspended's first page, deliver (resuming
// each new execution), observe, claim (the resumed ones), complete them;
// then adds timedOut executions with a 1 ms timeout and times claims of
// them, and, when restore is set, claims and completes the rest untimed,
// so that the store is back at its N for the next one.
func (s *suite) run(ctx context.Context, timedOut int, restore bool) (suiteResult, error) {
	out := suiteResult{Latency: map[string]result{}, Slow: map[string]slowEntries{}}
	wps := make([]contracts.WaitpointOutcome, s.samples)
	probe := func(k int) string { return s.tag + "-probe-" + strconv.Itoa(k) }
	leases := make([]lease, s.samples)
	// Operations that change nothing (read) may stop early, with the
	// samples they have; the others must all run, for the next step.
	steps := []struct {
		name string
		read bool
		op   opFunc
	}{
		{opSuspend, false, func(ctx context.Context, _, k int) error {
			o, err := s.e.Suspend(ctx, s.shape.args(probe(k)))
			switch {
			case err != nil:
				return err
			case o.Outcome != contracts.OutcomeSuspended || len(o.Waitpoints) != len(s.shape.args("").Waitpoints):
				return fmt.Errorf("suspend answered %s with %d waitpoints", o.Outcome, len(o.Waitpoints))
			}
			wps[k] = o.Waitpoints[0]
			return nil
		}},
		{opClaimIdle, true, func(ctx context.Context, _, _ int) error {
			o, err := s.claim(ctx)
			if err == nil && o.Outcome != contracts.OutcomeNone {
				return fmt.Errorf("claim while nothing should be claimable took %s", o.ExecutionID)
			}
			return err
		}},
		{opListSuspended, true, func(ctx context.Context, _, _ int) error {
			_, err := s.e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 100})
			return err
		}},
		{opDeliver, false, func(ctx context.Context, _, k int) error {
			_, err := s.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: probe(k), WaitpointID: wps[k].WaitpointID,
				Token: wps[k].Token, Name: "bench", IdempotencyKey: "1"})
			return err
		}},
		{opObserveSignals, true, func(ctx context.Context, _, k int) error {
			_, err := s.e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: probe(k)})
			return err
		}},
		{opClaimResumed, false, s.claimInto(leases, "")},
		{opComplete, false, s.completeFrom(leases)},
	}
	for _, st := range steps {
		var budget time.Duration
		if st.read {
			budget = s.readBudget
		}
		if err := s.time(ctx, st.name, s.samples, budget, st.op, &out); err != nil {
			return out, err
		}
	}
	return out, s.timedOut(ctx, timedOut, restore, &out)
}

// timedOut adds n executions of the same shape with a 1 ms timeout,
// times claims of min(samples, n) of them (after their timeout), then,
// when restore is set, completes those and claims and completes the rest,
// untimed. On Valkey, the slowlog entries of the untimed steps go under
// opUntimed.
func (s *suite) timedOut(ctx context.Context, n int, restore bool, out *suiteResult) error {
	if n == 0 {
		return nil
	}
	slow := slowEntries{}
	fl := s.fill
	var tick func() // reads the slowlog at every progress line, so that a long step loses none of it
	if s.slowlog != nil {
		fl.slow = &slow
		tick = func() {
			if got, err := s.slowlog.since(ctx); err == nil {
				slow.add(got)
			}
		}
	}
	if err := s.untimed(ctx, &slow, func() error {
		return fl.fill(ctx, s.tag+"-timeout-", 0, n, suspendShape{waitpoints: s.shape.waitpoints, timeoutMs: 1})
	}); err != nil {
		return err
	}
	time.Sleep(5 * time.Millisecond) // past every timeout
	leases := make([]lease, min(s.samples, n))
	if err := s.time(ctx, opClaimTimedOut, len(leases), 0, s.claimInto(leases, contracts.ReasonTimeout), out); err != nil {
		return err
	}
	if !restore {
		if s.slowlog != nil {
			out.Slow[opUntimed] = slow
		}
		return nil
	}
	err := s.untimed(ctx, &slow, func() error {
		if r := runCount(ctx, s.fillClients, len(leases), s.completeFrom(leases)); r.FirstErr != nil {
			return fmt.Errorf("completing the timed-out executions: %w", r.FirstErr)
		}
		return s.drain(ctx, n-len(leases), tick)
	})
	if s.slowlog != nil {
		out.Slow[opUntimed] = slow
	}
	return err
}

// untimed runs step and, on Valkey, adds the slowlog entries it left to
// slow.
func (s *suite) untimed(ctx context.Context, slow *slowEntries, step func() error) error {
	if s.slowlog == nil {
		return step()
	}
	if err := s.slowlog.mark(ctx); err != nil {
		return err
	}
	err := step()
	got, serr := s.slowlog.since(ctx)
	slow.add(got)
	if err != nil {
		return err
	}
	return serr
}

// time runs op n times from s.clients, starting none after budget when
// it is positive, and records its latency (and, on Valkey, what the
// slowlog gained) under name.
func (s *suite) time(ctx context.Context, name string, n int, budget time.Duration, op opFunc, out *suiteResult) error {
	if s.slowlog != nil {
		if err := s.slowlog.mark(ctx); err != nil {
			return err
		}
	}
	var deadline time.Time
	if budget > 0 {
		deadline = time.Now().Add(budget)
	}
	r := runCountUntil(ctx, s.clients, n, deadline, op)
	out.Latency[name] = r
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.slowlog != nil {
		slow, err := s.slowlog.since(ctx)
		if err != nil {
			return err
		}
		out.Slow[name] = slow
	}
	return nil
}

func (s *suite) claim(ctx context.Context) (contracts.ClaimOutcome, error) {
	return s.e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: suiteWorker, LeaseMs: suiteLeaseMs})
}

// claimInto claims an execution into leases[k]; it fails when none is
// claimable, or when reason is not "" and the claim's differs.
func (s *suite) claimInto(leases []lease, reason string) opFunc {
	return func(ctx context.Context, _, k int) error {
		o, err := s.claim(ctx)
		switch {
		case err != nil:
			return err
		case o.Outcome != contracts.OutcomeClaimed:
			return fmt.Errorf("claim found nothing claimable")
		case reason != "" && o.Reason != reason:
			return fmt.Errorf("claim took %s, resumed by %s, not %s", o.ExecutionID, o.Reason, reason)
		}
		leases[k] = lease{execID: o.ExecutionID, leaseID: o.LeaseID}
		return nil
	}
}

// completeFrom completes the execution of leases[k].
func (s *suite) completeFrom(leases []lease) opFunc {
	return func(ctx context.Context, _, k int) error {
		l := leases[k]
		if l.leaseID == "" {
			return fmt.Errorf("no claimed execution to complete (its claim failed)")
		}
		_, err := s.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: l.execID, LeaseID: l.leaseID})
		return err
	}
}

// drain claims and completes executions until none is claimable; about
// expect of them, for the progress lines, after each of which it calls
// tick (when not nil).
func (s *suite) drain(ctx context.Context, expect int, tick func()) error {
	var firstErr atomic.Pointer[error]
	var done atomic.Int64
	stop := reportProgress(s.stderr, s.label, "claimed and completed", expect, &done, tick)
	defer stop()
	runClients(ctx, s.fillClients, func(ctx context.Context, _ int, _ *tally) {
		for ctx.Err() == nil {
			o, err := s.claim(ctx)
			if err == nil && o.Outcome == contracts.OutcomeClaimed {
				_, err = s.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: o.ExecutionID, LeaseID: o.LeaseID})
				done.Add(1)
			} else if err == nil {
				return
			}
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				return
			}
		}
	})
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("claiming and completing the rest of the timed-out executions: %w", *p)
	}
	return ctx.Err()
}
