package worker

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Handler runs claimed executions. Work is called once per claim, in a
// goroutine of its own, with a context that the worker cancels when the
// lease is lost (cause ErrLeaseLost) or at the end of the shutdown grace
// (cause ErrShutdown): read context.Cause(ctx). A Handler must be safe for
// concurrent use.
//
// What the worker does with the outcome:
//   - Complete(), nil: complete_execution; the store forgets the execution.
//   - Suspend(args), nil: suspend again under the job's lease.
//   - any Result, non-nil error, or a panic: release_execution, so that
//     the next claim (by this worker or another) runs it again at once.
//   - whatever it returns after its context was cancelled for ErrLeaseLost
//     or ErrShutdown is dropped: another worker owns (or will own) the
//     execution.
type Handler interface {
	Work(ctx context.Context, job *Job) (Result, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, job *Job) (Result, error)

// Work calls f(ctx, job).
func (f HandlerFunc) Work(ctx context.Context, job *Job) (Result, error) { return f(ctx, job) }

// Causes of a handler context's cancellation, for context.Cause and
// errors.Is.
var (
	// ErrLeaseLost: the execution's lease is gone: a heartbeat answered
	// lease_mismatch or execution_not_found (another worker re-claimed it,
	// somebody released or completed it), or the lease expired without a
	// successful heartbeat (the store unreachable meanwhile). The handler's
	// result is dropped; stop working and return.
	ErrLeaseLost = errors.New("worker: lease lost")
	// ErrShutdown: Run's context ended and the shutdown grace is over; the
	// execution was released for another worker. The handler's result is
	// dropped.
	ErrShutdown = errors.New("worker: shut down")
	// ErrAlreadyRunning: Run was called on a Worker that has run already.
	ErrAlreadyRunning = errors.New("worker: Run called twice; a Worker runs once")
)

// Job is one claimed execution, as claim_resumed_execution answered it
// (docs/spec.md §5.5). A handler may keep the pointer; its fields do not
// change.
type Job struct {
	// ExecutionID is the claimed execution.
	ExecutionID string
	// SuspensionID is the suspension that resumed (or, after a Suspend
	// result answered already_satisfied, the one that was satisfied at once).
	SuspensionID string
	// Reason is why it became claimable: contracts.ReasonSignal,
	// ReasonTimeout or ReasonCancelled. A re-claim after a release or an
	// expired lease keeps the reason.
	Reason string
	// Signals are the suspension's signals in delivery order (possibly
	// none after a timeout).
	Signals []contracts.Signal
	// LeaseID is the lease the worker holds and extends while the handler
	// runs; pass it to Engine.CreateWaitpoint to open pending waitpoints
	// before suspending. The worker completes, suspends or releases with
	// it: a handler never needs to.
	LeaseID string
	// WorkerID is the worker that claimed it.
	WorkerID string

	lease *leaseClock
}

// LeaseExpiresAt is when the lease expires by the store's clock, as of the
// claim or the latest successful heartbeat.
func (j *Job) LeaseExpiresAt() time.Time { return time.UnixMilli(j.lease.expiresAtMs.Load()) }

// leaseClock is the lease expiry a job shows, moved by heartbeats.
type leaseClock struct {
	expiresAtMs atomic.Int64
}

// resultKind is what a Result asks for.
type resultKind int

const (
	noResult resultKind = iota
	completeResult
	suspendResult
)

// Result is what a handler asks the worker to do with its execution:
// Complete() or Suspend(args). The zero Result is no result: the worker
// treats it as a handler error and releases the execution.
type Result struct {
	kind    resultKind
	suspend contracts.SuspendArgs
}

// Complete asks the worker to complete the execution (complete_execution,
// docs/spec.md §5.6): the store forgets it and everything recorded for it.
func Complete() Result { return Result{kind: completeResult} }

// Suspend asks the worker to suspend the execution again under the job's
// lease (docs/spec.md §5.1): the worker sets args.ExecutionID and
// args.LeaseID to the job's, whatever they hold.
//
// The tokens of the new waitpoints are in suspend's outcome, which the
// worker does not hand back: to give tokens out, open pending waitpoints
// first (Engine.CreateWaitpoint with the job's LeaseID, docs/spec.md §8.1),
// hand their tokens out, and name them in args.Waitpoints as
// {Pending: waitpoint_id}. When the signals already delivered to them
// satisfy the condition (outcome already_satisfied), the execution does
// not wait: the worker calls the handler again at once with a Job of that
// suspension and its signals, under the same lease.
//
// Arguments the store refuses (validation, pending_waitpoint_unavailable,
// idempotency_mismatch) count as a handler error: the execution is
// released.
func Suspend(args contracts.SuspendArgs) Result { return Result{kind: suspendResult, suspend: args} }
