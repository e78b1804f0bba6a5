package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Worker claims resumed executions from an Engine and runs them through a
// Handler: see the package documentation for its contract. Create it with
// New; it runs once, with Run.
type Worker struct {
	e       *engine.Engine
	h       Handler
	s       settings
	log     *slog.Logger
	m       *metrics
	started atomic.Bool
	closing atomic.Bool // the shutdown grace is over: handlers still running are abandoned
	// notify wakes the claim loop of the Run; set before any handler runs.
	notify func()
}

// New returns a worker over e running h. Invalid options answer
// validation / invalid_input naming the field; a backend without
// extend_lease and release_execution (a driver written before
// docs/spec.md §8) answers unavailable / unsupported, since the worker
// could neither heartbeat nor give work back.
func New(e *engine.Engine, h Handler, opts Options) (*Worker, error) {
	if e == nil {
		return nil, contracts.Invalid("engine", "must not be nil")
	}
	if h == nil {
		return nil, contracts.Invalid("handler", "must not be nil")
	}
	s, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, ok := e.Backend().(driver.Lifecycle); !ok {
		return nil, contracts.ErrUnsupported.With("worker: the backend does not implement extend_lease and release_execution (a driver written before docs/spec.md §8)")
	}
	return &Worker{e: e, h: h, s: s, log: s.Logger, m: newMetrics()}, nil
}

// ID returns the worker id its claims carry.
func (w *Worker) ID() string { return w.s.WorkerID }

// Run claims and runs executions until ctx ends, then shuts down: it stops
// claiming, lets running handlers finish within Options.ShutdownGrace
// (their contexts stay alive meanwhile), then cancels the others (cause
// ErrShutdown) and releases their executions at once, so that another
// worker claims them without waiting for the lease to expire. Run returns
// nil once every handler has returned and its result is recorded, or,
// for a handler that ignores its cancelled context, once its execution is
// released (its result is dropped when it returns). A Worker runs once: a
// second call answers ErrAlreadyRunning.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	workCtx, cancelWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelWork(ErrShutdown)
	r := &runner{
		w:       w,
		workCtx: workCtx,
		wake:    make(chan struct{}, 1),
		done:    make(chan *execution, w.s.Concurrency),
		active:  map[*execution]struct{}{},
	}
	w.notify = r.notify
	var watch sync.WaitGroup
	watching := make(chan struct{})
	watch.Go(func() {
		close(watching)
		// Returns when ctx ends; without push from other processes the
		// Engine still wakes it after its own deliveries, cancels and
		// releases.
		_ = w.e.WatchClaimable(ctx, r.notify)
	})
	// The watcher registers with the Engine as its goroutine starts: wait
	// for that start, so that a change made after the first claim wakes
	// the loop (WatchClaimable signals no registration; polling covers a
	// change that would slip in between).
	<-watching
	r.loop(ctx)
	r.shutdown()
	watch.Wait()
	return nil
}

// runner is the state of one Run. active, and the claim loop, belong to
// the goroutine of Run.
type runner struct {
	w       *Worker
	workCtx context.Context // handlers' parent: alive through the grace
	wake    chan struct{}   // one pending wake-up at most
	done    chan *execution // handlers that finished; never blocks (capacity Concurrency)
	active  map[*execution]struct{}
}

// notify records a wake-up without blocking.
func (r *runner) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// loop claims while slots are free and something may be claimable, until
// ctx ends.
func (r *runner) loop(ctx context.Context) {
	poll := time.NewTicker(r.w.s.PollInterval)
	defer poll.Stop()
	// pending: something may be claimable. It survives while every slot
	// is busy, so a slot that frees claims at once (there may be more).
	pending := true
	for ctx.Err() == nil {
		// Free every slot whose handler finished before claiming, so that
		// a claim asks for all of them at once: taking one finished
		// handler per claim would shrink the batches to one execution
		// each as soon as every slot had been busy.
		r.drainDone()
		if pending && len(r.active) < r.w.s.Concurrency {
			pending = r.claim(ctx)
			continue
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
			pending = true
		case <-poll.C:
			pending = true
		case x := <-r.done:
			r.finished(x)
		}
	}
}

// drainDone forgets, without blocking, every handler that finished.
func (r *runner) drainDone() {
	for {
		select {
		case x := <-r.done:
			r.finished(x)
		default:
			return
		}
	}
}

// claim makes one batch claim for the free slots and starts a handler per
// claim. It reports whether the batch came back full: more may be
// claimable at once.
func (r *runner) claim(ctx context.Context) bool {
	s := r.w.s
	n := min(s.Concurrency-len(r.active), s.batch)
	// Not ctx: a claim the store made must reach the worker, or its
	// executions would wait for their leases to expire.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.call)
	callStart := time.Now() // the store began each lease no earlier
	out, err := r.w.e.ClaimResumedExecutions(callCtx, contracts.ClaimBatchArgs{WorkerID: s.WorkerID, LeaseMs: s.LeaseMs, Max: n})
	cancel()
	// Without a driver.BatchClaimer, claims made before a failure come
	// back with the error: they are ours either way.
	if len(out.Claims) > 0 {
		r.w.m.claims.Add(uint64(len(out.Claims)), claimClaimed)
		ids := make([]string, len(out.Claims))
		for i, c := range out.Claims {
			ids[i] = c.ExecutionID
		}
		r.w.log.Debug("worker: claimed", "worker_id", s.WorkerID, "count", len(ids), "execution_ids", ids)
	}
	for _, c := range out.Claims {
		x := r.w.newExecution(c, callStart)
		if ctx.Err() != nil {
			// Shutting down: give it back unstarted.
			r.w.release(x, "worker shutting down before the handler started")
			continue
		}
		r.start(x)
	}
	if err != nil {
		ce := contracts.AsError(err)
		r.w.m.claims.Inc(ce.Code)
		r.w.logStoreError("worker: claim failed", ce, "worker_id", s.WorkerID)
		return false
	}
	if len(out.Claims) == 0 {
		r.w.m.claims.Inc(claimNone)
		return false
	}
	return len(out.Claims) == n
}

// start runs x's handler in a goroutine of its own.
func (r *runner) start(x *execution) {
	x.ctx, x.cancel = context.WithCancelCause(r.workCtx)
	r.active[x] = struct{}{}
	r.w.m.inFlight.Add(1)
	go func() {
		defer func() { r.done <- x }()
		defer x.cancel(context.Canceled) // frees the context; a cause set before stays
		r.w.execute(x)
	}()
}

// finished forgets a handler that returned and whose result was recorded.
func (r *runner) finished(x *execution) {
	if _, ok := r.active[x]; !ok {
		return // abandoned at the end of the grace: already accounted for
	}
	delete(r.active, x)
	r.w.m.inFlight.Add(-1)
}

// shutdown waits for running handlers through the grace, then cancels
// and releases the rest.
func (r *runner) shutdown() {
	grace := time.NewTimer(r.w.s.ShutdownGrace)
	defer grace.Stop()
wait:
	for len(r.active) > 0 {
		select {
		case x := <-r.done:
			r.finished(x)
		case <-grace.C:
			break wait
		}
	}
	if len(r.active) == 0 {
		return
	}
	// Take every execution whose handler still runs; those whose result
	// is being recorded finish on their own.
	r.w.closing.Store(true) // before the states are read: see execute
	var abandoned []*execution
	for x := range r.active {
		if x.state.CompareAndSwap(stateRunning, stateAbandoned) {
			abandoned = append(abandoned, x)
		}
	}
	r.w.log.Info("worker: shutdown grace over; cancelling and releasing unfinished executions",
		"worker_id", r.w.s.WorkerID, "count", len(abandoned), "grace", r.w.s.ShutdownGrace)
	var releases sync.WaitGroup
	for _, x := range abandoned {
		delete(r.active, x)
		r.w.m.inFlight.Add(-1)
		releases.Go(func() {
			x.stopHeartbeat() // an extend after the release would read as a lost lease
			x.cancel(ErrShutdown)
			r.w.release(x, "shutdown grace over")
		})
	}
	releases.Wait()
	for len(r.active) > 0 {
		r.finished(<-r.done)
	}
}

// logStoreError logs a failed store call: WARN when retrying may help,
// ERROR otherwise.
func (w *Worker) logStoreError(msg string, ce *contracts.Error, args ...any) {
	args = append(args, "error", ce.Error())
	if ce.Retryable || errors.Is(ce, contracts.ErrCanceled) {
		w.log.Warn(msg, args...)
		return
	}
	w.log.Error(msg, args...)
}
