package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// States of an execution in the worker. running → finishing when its
// handler returns; running → abandoned when the shutdown grace ends
// first. Whoever moves it out of running decides what becomes of it.
const (
	stateRunning int32 = iota
	stateFinishing
	stateAbandoned
)

// execution is one claimed execution while the worker holds it.
type execution struct {
	job     *Job
	leaseID string
	lease   *leaseClock
	// deadline is the local time after which the lease has surely
	// expired: the start of the call that set it, plus the lease. Only
	// the heartbeat goroutine moves it while the handler runs.
	deadline time.Time
	ctx      context.Context // the handler's; cancelled with ErrLeaseLost or ErrShutdown
	cancel   context.CancelCauseFunc
	state    atomic.Int32

	mu sync.Mutex
	hb *heartbeat // the current handler call's
}

func (w *Worker) newExecution(c contracts.ClaimOutcome, callStart time.Time) *execution {
	lc := &leaseClock{}
	lc.expiresAtMs.Store(c.LeaseExpiresAtMs)
	x := &execution{leaseID: c.LeaseID, lease: lc, deadline: callStart.Add(w.s.lease)}
	x.job = &Job{ExecutionID: c.ExecutionID, SuspensionID: c.SuspensionID, Reason: c.Reason, Signals: c.Signals,
		LeaseID: c.LeaseID, WorkerID: w.s.WorkerID, lease: lc}
	// Until start gives it the handler's context (and for an execution
	// released unstarted).
	x.ctx, x.cancel = context.WithCancelCause(context.Background())
	return x
}

// execute runs the handler on x and records its result: complete,
// suspend or release. A Suspend that answers already_satisfied runs the
// handler again under the same lease.
func (w *Worker) execute(x *execution) {
	job := x.job
	for first := true; ; first = false {
		x.startHeartbeat(w)
		if !first {
			x.state.Store(stateRunning)
			// The shutdown passes over executions whose result is being
			// recorded: one that goes back to running after it began
			// abandoning must abandon itself.
			if w.closing.Load() {
				if x.state.CompareAndSwap(stateRunning, stateAbandoned) {
					x.stopHeartbeat()
					x.cancel(ErrShutdown)
					w.release(x, "shutdown grace over")
				}
				return
			}
		}
		start := time.Now()
		res, err, stack := w.call(x, job)
		x.stopHeartbeat()
		elapsed := time.Since(start).Seconds()
		if !x.state.CompareAndSwap(stateRunning, stateFinishing) {
			// The shutdown grace ended first: the execution was released.
			w.m.duration.Observe(elapsed, resultShutdown)
			return
		}
		if errors.Is(context.Cause(x.ctx), ErrLeaseLost) {
			w.m.duration.Observe(elapsed, resultLeaseLost)
			return
		}
		result, next := w.record(x, job, res, err, stack)
		w.m.duration.Observe(elapsed, result)
		if next == nil {
			return
		}
		job = next
	}
}

// call runs the handler, turning a panic into an error and its stack.
func (w *Worker) call(x *execution, job *Job) (res Result, err error, stack []byte) {
	defer func() {
		if p := recover(); p != nil {
			res, err, stack = Result{}, fmt.Errorf("panic: %v", p), debug.Stack()
		}
	}()
	res, err = w.h.Work(x.ctx, job)
	return res, err, nil
}

// record does what the handler's outcome asks and returns the result
// label, and the next job when a Suspend was already satisfied.
func (w *Worker) record(x *execution, job *Job, res Result, err error, stack []byte) (string, *Job) {
	switch {
	case stack != nil:
		w.log.Error("worker: handler panicked; execution released",
			"worker_id", w.s.WorkerID, "execution_id", job.ExecutionID, "error", err.Error(), "stack", string(stack))
		w.release(x, "handler panicked")
		return resultPanic, nil
	case err != nil:
		w.log.Warn("worker: handler failed; execution released",
			"worker_id", w.s.WorkerID, "execution_id", job.ExecutionID, "error", err.Error())
		w.release(x, "handler error")
		return resultError, nil
	}
	switch res.kind {
	case completeResult:
		return w.complete(x), nil
	case suspendResult:
		return w.suspend(x, res.suspend)
	}
	w.log.Warn("worker: handler returned no result (the zero Result); execution released",
		"worker_id", w.s.WorkerID, "execution_id", job.ExecutionID)
	w.release(x, "no result")
	return resultError, nil
}

// complete completes x under its lease.
func (w *Worker) complete(x *execution) string {
	err := w.storeCall(w.s.call, func(ctx context.Context) error {
		_, err := w.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: x.job.ExecutionID, LeaseID: x.leaseID})
		return err
	}, func(err error) bool {
		// After an attempt whose answer was lost: it completed.
		return errors.Is(err, contracts.ErrExecutionNotFound)
	})
	switch {
	case err == nil:
		return resultComplete
	case lostLease(err):
		w.loseLease(x, "complete", err)
		return resultLeaseLost
	}
	w.logStoreError("worker: complete failed; execution released", contracts.AsError(err),
		"worker_id", w.s.WorkerID, "execution_id", x.job.ExecutionID)
	w.release(x, "complete failed")
	return resultError
}

// suspend suspends x again under its lease. When the outcome is
// already_satisfied the execution is still ours: it returns the job to
// run next.
func (w *Worker) suspend(x *execution, args contracts.SuspendArgs) (string, *Job) {
	args.ExecutionID = x.job.ExecutionID
	lease := x.leaseID
	args.LeaseID = &lease
	var out contracts.SuspendOutcome
	err := w.storeCall(w.s.call, func(ctx context.Context) error {
		var err error
		out, err = w.e.Suspend(ctx, args)
		return err
	}, func(err error) bool {
		// After an attempt whose answer was lost: it suspended.
		return errors.Is(err, contracts.ErrAlreadySuspended)
	})
	switch {
	case err == nil && out.Outcome == contracts.OutcomeAlreadySatisfied:
		w.log.Debug("worker: suspend already satisfied; running the handler again",
			"worker_id", w.s.WorkerID, "execution_id", x.job.ExecutionID)
		return resultSuspend, &Job{ExecutionID: x.job.ExecutionID, SuspensionID: out.SuspensionID, Reason: contracts.ReasonSignal,
			Signals: out.Signals, LeaseID: x.leaseID, WorkerID: w.s.WorkerID, lease: x.lease}
	case err == nil:
		return resultSuspend, nil
	case lostLease(err):
		w.loseLease(x, "suspend", err)
		return resultLeaseLost, nil
	}
	ce := contracts.AsError(err)
	switch ce.Kind {
	case contracts.KindValidation, contracts.KindConflict, contracts.KindState:
		// The handler's arguments: a bug or a stale pending waitpoint.
		w.log.Warn("worker: suspend refused; execution released",
			"worker_id", w.s.WorkerID, "execution_id", x.job.ExecutionID, "error", ce.Error())
	default:
		w.logStoreError("worker: suspend failed; execution released", ce,
			"worker_id", w.s.WorkerID, "execution_id", x.job.ExecutionID)
	}
	w.release(x, "suspend failed")
	return resultError, nil
}

// release gives x back so that the next claim takes it at once, on a
// context of its own bounded by releaseTimeout.
func (w *Worker) release(x *execution, why string) {
	err := w.storeCall(releaseTimeout, func(ctx context.Context) error {
		_, err := w.e.ReleaseExecution(ctx, contracts.ReleaseArgs{ExecutionID: x.job.ExecutionID, LeaseID: x.leaseID})
		return err
	}, lostLease) // after an attempt whose answer was lost: released
	switch {
	case err == nil:
		w.log.Debug("worker: released", "worker_id", w.s.WorkerID, "execution_id", x.job.ExecutionID, "why", why)
		// Claimable again at once: this worker may take it itself, without
		// relying on the Engine's wake-up.
		w.notify()
	case lostLease(err):
		w.loseLease(x, "release", err)
	default:
		w.logStoreError("worker: release failed; the execution is claimable again once its lease expires",
			contracts.AsError(err), "worker_id", w.s.WorkerID, "execution_id", x.job.ExecutionID, "why", why)
	}
}

// storeCall runs op, each attempt on a context of its own bounded by
// timeout, and retries retryable failures up to finishAttempts in all.
// After a retryable failure, an answer for which doneAfterRetry holds
// means the failed attempt took effect.
func (w *Worker) storeCall(timeout time.Duration, op func(context.Context) error, doneAfterRetry func(error) bool) error {
	var err error
	for attempt := range finishAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err = op(ctx)
		cancel()
		switch {
		case err == nil:
			return nil
		case attempt > 0 && doneAfterRetry(err):
			return nil
		case !contracts.AsError(err).Retryable:
			return err
		}
	}
	return err
}

// lostLease reports whether a store answer means the lease is gone:
// lease_mismatch (re-claimed, released or completed with another lease)
// or execution_not_found (completed).
func lostLease(err error) bool {
	return errors.Is(err, contracts.ErrLeaseMismatch) || errors.Is(err, contracts.ErrExecutionNotFound)
}

// loseLease counts and logs a lost lease and cancels the handler's
// context with ErrLeaseLost.
func (w *Worker) loseLease(x *execution, during string, err error) {
	w.m.leaseLosses.Inc()
	w.log.Warn("worker: lease lost; the handler's result is dropped",
		"worker_id", w.s.WorkerID, "execution_id", x.job.ExecutionID, "during", during, "error", err.Error())
	x.cancel(fmt.Errorf("%w (%s: %v)", ErrLeaseLost, during, err))
}

// heartbeat is the lease extension of one handler call.
type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startHeartbeat extends x's lease every Options heartbeat period until
// stopHeartbeat.
func (x *execution) startHeartbeat(w *Worker) {
	ctx, cancel := context.WithCancel(context.Background())
	hb := &heartbeat{cancel: cancel, done: make(chan struct{})}
	x.mu.Lock()
	x.hb = hb
	x.mu.Unlock()
	go func() {
		defer close(hb.done)
		w.heartbeat(ctx, x)
	}()
}

// stopHeartbeat stops the current heartbeat and waits until it returned.
// Safe to call more than once, and concurrently.
func (x *execution) stopHeartbeat() {
	x.mu.Lock()
	hb := x.hb
	x.mu.Unlock()
	if hb != nil {
		hb.cancel()
		<-hb.done
	}
}

// heartbeat extends the lease every period while ctx lives. A
// lease_mismatch or execution_not_found, or a lease that expires without
// a successful extend, loses the lease; other failures are retried sooner
// than the period, until the lease expires.
func (w *Worker) heartbeat(ctx context.Context, x *execution) {
	t := time.NewTimer(w.s.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !time.Now().Before(x.deadline) {
			w.loseLease(x, "heartbeat", errors.New("the lease expired without a successful extend"))
			return
		}
		callCtx, cancel := context.WithDeadline(ctx, x.deadline)
		start := time.Now()
		out, err := w.e.ExtendLease(callCtx, contracts.ExtendLeaseArgs{ExecutionID: x.job.ExecutionID, LeaseID: x.leaseID, LeaseMs: w.s.LeaseMs})
		cancel()
		if err == nil {
			x.deadline = start.Add(w.s.lease)
			x.lease.expiresAtMs.Store(out.LeaseExpiresAtMs)
			t.Reset(w.s.heartbeat)
			continue
		}
		if ctx.Err() != nil {
			return // stopped during the call: the handler returned
		}
		if lostLease(err) {
			w.loseLease(x, "heartbeat", err)
			return
		}
		w.logStoreError("worker: heartbeat failed; retrying until the lease expires", contracts.AsError(err),
			"worker_id", w.s.WorkerID, "execution_id", x.job.ExecutionID)
		t.Reset(max(min(w.s.heartbeat/4, time.Until(x.deadline)), 0))
	}
}
