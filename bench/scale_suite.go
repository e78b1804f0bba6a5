package main

import (
	"context"
	"fmt"
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
	samples     int           // timed operations per operation
	readBudget  time.Duration // claim (idle), list_suspended and observe stop after it
	tag         string
	slowlog     *slowlog // nil but on Valkey
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
// them, and claims and completes the rest untimed.
func (s *suite) run(ctx context.Context, timedOut int) (suiteResult, error) {
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
			o, err := s.e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: probe(k), Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
			if err == nil {
				wps[k] = o.Waitpoints[0]
			}
			return err
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
	return out, s.timedOut(ctx, timedOut, &out)
}

// timedOut adds n executions with a 1 ms timeout, times claims of
// min(samples, n) of them (after their timeout), then completes those and
// claims and completes the rest, untimed.
func (s *suite) timedOut(ctx context.Context, n int, out *suiteResult) error {
	if n == 0 {
		return nil
	}
	if err := suspendMany(ctx, s.e, s.tag+"-timeout-", 0, n, s.fillClients, 1); err != nil {
		return err
	}
	time.Sleep(5 * time.Millisecond) // past every timeout
	leases := make([]lease, min(s.samples, n))
	if err := s.time(ctx, opClaimTimedOut, len(leases), 0, s.claimInto(leases, contracts.ReasonTimeout), out); err != nil {
		return err
	}
	if r := runCount(ctx, s.fillClients, len(leases), s.completeFrom(leases)); r.FirstErr != nil {
		return fmt.Errorf("completing the timed-out executions: %w", r.FirstErr)
	}
	return s.drain(ctx)
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

// drain claims and completes executions until none is claimable.
func (s *suite) drain(ctx context.Context) error {
	var firstErr atomic.Pointer[error]
	runClients(ctx, s.fillClients, func(ctx context.Context, _ int, _ *tally) {
		for ctx.Err() == nil {
			o, err := s.claim(ctx)
			if err == nil && o.Outcome == contracts.OutcomeClaimed {
				_, err = s.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: o.ExecutionID, LeaseID: o.LeaseID})
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

// suspendMany suspends executions prefix+k for k in [from, to) from
// clients goroutines, each on one waitpoint, with a timeout of timeoutMs
// (0: none). It fails on the first failure.
func suspendMany(ctx context.Context, e *engine.Engine, prefix string, from, to, clients int, timeoutMs int64) error {
	args := func(k int) contracts.SuspendArgs {
		a := contracts.SuspendArgs{ExecutionID: prefix + strconv.Itoa(k), Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}}
		if timeoutMs > 0 {
			a.TimeoutMs = &timeoutMs
		}
		return a
	}
	r := runCount(ctx, clients, to-from, func(ctx context.Context, _, seq int) error {
		_, err := e.Suspend(ctx, args(from+seq))
		return err
	})
	if r.FirstErr != nil {
		return fmt.Errorf("suspending %d executions (%d failed): %w", to-from, r.Errors, r.FirstErr)
	}
	return ctx.Err()
}
