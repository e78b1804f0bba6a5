package bench

import (
	"context"
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

	foreign atomic.Int64 // cycle: claims that returned another user's execution
	stepsMu sync.Mutex
	steps   []histogram // cycle: the latency of each of cycleSteps, all workers
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
// that it never becomes claimable: it stays suspended after the run.
func (r *runner) suspendOp() opFunc {
	return func(ctx context.Context, w, i int) error {
		_, err := r.suspend(ctx, r.execID(w, i), contracts.ConditionAny, "a")
		return err
	}
}

func (r *runner) suspend(ctx context.Context, execID, condition string, keys ...string) (contracts.SuspendOutcome, error) {
	wps := make([]contracts.WaitpointSpec, len(keys))
	for i, k := range keys {
		wps[i] = contracts.WaitpointSpec{Key: k}
	}
	return r.e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: execID, Waitpoints: wps, Condition: condition})
}

// deliverTarget is a waitpoint a worker delivers to: the first of an "all"
// suspension whose second waitpoint never receives a signal, so every
// delivery is accepted and the execution never resumes (nor is claimable).
type deliverTarget struct {
	execID string
	wp     contracts.WaitpointOutcome
	count  int
}

// deliverOp delivers accepted signals, each with its own idempotency key,
// moving a worker to a fresh suspension before the signal limit.
func (r *runner) deliverOp(ctx context.Context) (opFunc, error) {
	targets := make([]deliverTarget, r.cfg.Concurrency)
	for w := range targets {
		if err := r.newTarget(ctx, &targets[w], w, 0); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, w, i int) error {
		t := &targets[w]
		if t.count == contracts.SignalLimit-1 {
			if err := r.newTarget(ctx, t, w, i); err != nil {
				return err
			}
		}
		t.count++
		_, err := r.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{
			ExecutionID: t.execID, WaitpointID: t.wp.WaitpointID, Token: t.wp.Token,
			Name: "bench", IdempotencyKey: strconv.Itoa(i),
		})
		return err
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
