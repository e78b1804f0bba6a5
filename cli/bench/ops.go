package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// messageBytes is the size of the message sign and verify use, about a
// waitpoint message's.
const messageBytes = 80

var message = []byte(strings.Repeat("m", messageBytes))

// opFunc performs one operation of worker w; i counts the worker's
// operations from 0.
type opFunc func(ctx context.Context, w, i int) error

// runner is one run's state.
type runner struct {
	cfg    Config
	e      *engine.Engine
	id     string // unique per run: kids and execution ids carry it
	seeded bool

	foreign atomic.Int64 // cycle and cleanup: claims that returned another user's execution
	created ledger       // the executions suspended and not yet completed, for the cleanup
	stepsMu sync.Mutex
	steps   []histogram // cycle: the latency of each of stepNames, all workers
	// stepNames name steps: cycleSteps, or cycleWorkerSteps.
	stepNames []string
}

// prepare returns the operation to measure and what to do afterwards.
func (r *runner) prepare(ctx context.Context) (opFunc, func(), error) {
	noop := func() {}
	switch r.cfg.Op {
	case OpSign:
		return r.signOp(), noop, nil
	case OpVerify:
		op, err := r.verifyOp(ctx)
		return op, noop, err
	case OpRotate:
		return r.rotateOp(), noop, nil
	case OpSuspend:
		return r.suspendOp(), noop, nil
	case OpDeliver:
		op, err := r.deliverOp(ctx)
		return op, noop, err
	default:
		return r.cycleOp()
	}
}

// scope is worker w's scope: workers spread over the partitions.
func (r *runner) scope(w int) string { return "bench-" + r.id + "-" + strconv.Itoa(w) }

func (r *runner) signOp() opFunc {
	return func(ctx context.Context, w, _ int) error {
		_, err := r.e.Sign(ctx, contracts.SignArgs{Scope: r.scope(w), Message: message})
		return err
	}
}

// verifyOp verifies a token signed once per worker.
func (r *runner) verifyOp(ctx context.Context) (opFunc, error) {
	tokens := make([]string, r.cfg.Concurrency)
	for w := range tokens {
		s, err := r.e.Sign(ctx, contracts.SignArgs{Scope: r.scope(w), Message: message})
		if err != nil {
			return nil, err
		}
		tokens[w] = s.Token
	}
	return func(ctx context.Context, w, _ int) error {
		_, err := r.e.Verify(ctx, contracts.VerifyArgs{Scope: r.scope(w), Message: message, Token: tokens[w]})
		return err
	}, nil
}

// rotateOp rotates every partition to a new kid.
func (r *runner) rotateOp() opFunc {
	secret := newSecret()
	return func(ctx context.Context, w, i int) error {
		kid := fmt.Sprintf("%s%s-%d-%d", kidPrefix, r.id, w, i)
		res, err := r.e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secret, GraceMs: r.cfg.Grace.Milliseconds()})
		if err == nil && res.Failed() {
			for _, entry := range res.Entries {
				if entry.Error != nil {
					return entry.Error
				}
			}
		}
		return err
	}
}

// execID is a unique execution id of this run.
func (r *runner) execID(w, i int) string {
	return "bench-" + r.id + "-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
}

// suspendOp suspends a new execution on one waitpoint, without timeout, so
// that it never becomes claimable during the run; the cleanup resumes,
// claims and completes it afterwards.
func (r *runner) suspendOp() opFunc {
	return func(ctx context.Context, w, i int) error {
		_, err := r.suspend(ctx, r.execID(w, i), contracts.ConditionAny, "a")
		return err
	}
}

// suspend suspends execID on the waitpoints keys and records it for the
// cleanup.
func (r *runner) suspend(ctx context.Context, execID, condition string, keys ...string) (contracts.SuspendOutcome, error) {
	wps := make([]contracts.WaitpointSpec, len(keys))
	for i, k := range keys {
		wps[i] = contracts.WaitpointSpec{Key: k}
	}
	out, err := r.e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: execID, Waitpoints: wps, Condition: condition})
	if err == nil {
		r.created.add(execID, out.Waitpoints)
	}
	return out, err
}

// deliverTarget is a waitpoint a worker delivers to: the first of an "all"
// suspension whose second waitpoint never receives a signal, so every
// delivery is accepted and the execution never resumes (nor is claimable).
type deliverTarget struct {
	execID string
	wp     contracts.WaitpointOutcome
	count  int
}

// deliverBudget is how many signals a worker delivers to one waitpoint
// before it moves to a fresh suspension: one less than the default budgets
// of a waitpoint and of a suspension (docs/spec.md §8.3), so that every
// delivery is accepted.
var deliverBudget = min(contracts.DefaultSignalLimits().PerWaitpoint, contracts.DefaultSignalLimits().PerSuspension) - 1

// deliverOp delivers accepted signals, each with its own idempotency key,
// moving a worker to a fresh suspension before the signal budget. A
// delivery refused with signal_limit_exceeded (an Engine with lower
// budgets) moves the worker too, and is retried there once.
func (r *runner) deliverOp(ctx context.Context) (opFunc, error) {
	targets := make([]deliverTarget, r.cfg.Concurrency)
	for w := range targets {
		if err := r.newTarget(ctx, &targets[w], w, 0); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, w, i int) error {
		t := &targets[w]
		for attempt := 0; ; attempt++ {
			if t.count >= deliverBudget || attempt > 0 {
				if err := r.newTarget(ctx, t, w, i); err != nil {
					return err
				}
			}
			t.count++
			_, err := r.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{
				ExecutionID: t.execID, WaitpointID: t.wp.WaitpointID, Token: t.wp.Token,
				Name: "bench", IdempotencyKey: strconv.Itoa(i),
			})
			if attempt == 0 && t.count > 1 && errors.Is(err, contracts.ErrSignalLimitExceeded) {
				continue
			}
			return err
		}
	}, nil
}

func (r *runner) newTarget(ctx context.Context, t *deliverTarget, w, i int) error {
	execID := r.execID(w, i) + "-d"
	out, err := r.suspend(ctx, execID, contracts.ConditionAll, "a", "never")
	if err != nil {
		return err
	}
	*t = deliverTarget{execID: execID, wp: out.Waitpoints[0]}
	return nil
}
