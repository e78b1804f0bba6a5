package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Long-poll claims: the claim routes take wait_ms, how long to wait for a
// claimable execution when none is claimable yet.

// MaxClaimWaitMs is the largest wait_ms of the claim routes: 30 s.
const MaxClaimWaitMs = 30_000

// claimPollInterval is how often a waiting claim tries again without a
// wake-up: wake-ups may be lost (docs/spec.md §8.8), and an execution that
// becomes claimable with time (a timeout, an expired lease) wakes nobody.
const claimPollInterval = time.Second

// claim is POST /v1/admin/claim {worker_id, lease_ms, wait_ms}: one claim,
// or outcome none; with wait_ms, none only once wait_ms passed with
// nothing claimable.
func (h *Handler) claim(r *http.Request) (any, error) {
	var b struct {
		WorkerID string `json:"worker_id"`
		LeaseMs  int64  `json:"lease_ms"` // 0 or absent: the Engine's default
		WaitMs   int64  `json:"wait_ms"`  // 0 or absent: no wait
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	a := contracts.ClaimArgs{WorkerID: b.WorkerID, LeaseMs: b.LeaseMs}
	if err := withDefaultLease(a).Validate(); err != nil {
		return nil, err
	}
	wait, err := waitArg(b.WaitMs)
	if err != nil {
		return nil, err
	}
	out := contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}
	err = h.untilClaimed(r, wait, func(ctx context.Context) (bool, error) {
		c, err := h.e.ClaimResumedExecution(ctx, a)
		if err != nil {
			return false, err
		}
		out = c
		return c.Outcome == contracts.OutcomeClaimed, nil
	})
	return out, err
}

// claimBatch is POST /v1/admin/claims {worker_id, lease_ms, max, wait_ms}:
// claim_resumed_executions (docs/spec.md §8.8), waiting like claim until
// at least one execution is claimed. When the Engine fails after some
// claims, those claims are answered (their leases are the caller's) and
// the failure is logged: the next call meets it again if it lasts.
func (h *Handler) claimBatch(r *http.Request) (any, error) {
	var b struct {
		WorkerID string `json:"worker_id"`
		LeaseMs  int64  `json:"lease_ms"`
		Max      int    `json:"max"`
		WaitMs   int64  `json:"wait_ms"`
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	a := contracts.ClaimBatchArgs{WorkerID: b.WorkerID, LeaseMs: b.LeaseMs, Max: b.Max}
	v := a
	v.LeaseMs = withDefaultLease(a.Claim()).LeaseMs
	if err := v.Validate(); err != nil {
		return nil, err
	}
	wait, err := waitArg(b.WaitMs)
	if err != nil {
		return nil, err
	}
	var out contracts.ClaimBatchOutcome
	err = h.untilClaimed(r, wait, func(ctx context.Context) (bool, error) {
		c, err := h.e.ClaimResumedExecutions(ctx, a)
		if err != nil && len(c.Claims) > 0 {
			ce := contracts.AsError(err)
			h.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "claims: answering the claims made before a failure",
				slog.Int("claims", len(c.Claims)), slog.String("code", ce.Code), slog.String("error", ce.Detail))
			err = nil
		}
		if err != nil {
			return false, err
		}
		out = c
		return len(c.Claims) > 0, nil
	})
	return out, err
}

// withDefaultLease is a with the Engine's default lease when it has none,
// for validating before the wait.
func withDefaultLease(a contracts.ClaimArgs) contracts.ClaimArgs {
	if a.LeaseMs == 0 {
		a.LeaseMs = contracts.DefaultLeaseMs
	}
	return a
}

// waitArg checks wait_ms.
func waitArg(ms int64) (time.Duration, error) {
	if err := contracts.ValidateRange("wait_ms", ms, 0, MaxClaimWaitMs); err != nil {
		return 0, err
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// untilClaimed calls try until it claims something, fails, or wait has
// passed: at once, after every wake-up of the handler's claimable watcher,
// and every poll interval; once more at the deadline. A caller that went
// away, and a handler being closed, end the wait with what the last try
// answered (nothing claimed): an error would only add a line to the log
// for an answer nobody reads.
func (h *Handler) untilClaimed(r *http.Request, wait time.Duration, try func(context.Context) (bool, error)) error {
	ctx := r.Context()
	if wait <= 0 {
		_, err := try(ctx)
		return err
	}
	if lp, ok := ctx.Value(longPollKey{}).(*longPollConn); ok {
		lp.extend(wait)
	}
	wake, done := h.claims.subscribe()
	defer h.claims.unsubscribe(wake)
	deadline := time.Now().Add(wait)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		got, err := try(ctx)
		if ctx.Err() != nil && errors.Is(err, contracts.ErrCanceled) {
			return nil
		}
		if err != nil || got {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		timer.Reset(min(left, h.claims.poll))
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		}
	}
}

// longPollKey carries the request's *longPollConn in its context.
type longPollKey struct{}

// longPollConn lets a long poll move its connection's read and write
// deadlines past its wait (a server's ReadTimeout would otherwise cancel
// the request, and its WriteTimeout drop the answer), and serve clear them
// once the answer is written.
type longPollConn struct {
	w        http.ResponseWriter
	extended bool
}

// longPollSlack is the time a long poll keeps, after its wait, to claim and
// answer.
const longPollSlack = WriteTimeout

func (c *longPollConn) extend(wait time.Duration) {
	rc := http.NewResponseController(c.w)
	d := time.Now().Add(wait + longPollSlack)
	errR, errW := rc.SetReadDeadline(d), rc.SetWriteDeadline(d)
	c.extended = errR == nil || errW == nil
}

// restore clears the deadlines a long poll set, once its answer is
// written: the server sets its own again for the connection's next request
// (a server without timeouts sets none).
func (c *longPollConn) restore() {
	if !c.extended {
		return
	}
	rc := http.NewResponseController(c.w)
	_ = rc.Flush()
	_ = rc.SetWriteDeadline(time.Time{})
}

// claimWatchLinger is how long the shared watcher keeps running after the
// last waiting claim ended: a worker's next long poll usually comes within
// it, and finds the watcher (a PostgreSQL LISTEN) already listening.
const claimWatchLinger = 30 * time.Second

// claimWatch is a Handler's one claimable watcher (Engine.WatchClaimable),
// shared by every waiting claim: it runs while at least one waits, and
// claimWatchLinger longer, and fans each wake-up out to all of them (each
// then tries a claim; one wins an execution, the others wait on).
type claimWatch struct {
	e      *engine.Engine
	poll   time.Duration
	linger time.Duration

	mu     sync.Mutex
	subs   map[chan struct{}]struct{}
	stop   context.CancelFunc // the running watcher's, nil when none runs
	idle   *time.Timer        // stops the watcher once it lingered, nil while one waits
	closed bool
	done   chan struct{} // closed by close
	wg     sync.WaitGroup
}

func newClaimWatch(e *engine.Engine, poll time.Duration) *claimWatch {
	return &claimWatch{e: e, poll: poll, linger: claimWatchLinger, subs: map[chan struct{}]struct{}{}, done: make(chan struct{})}
}

// subscribe registers a waiter, starting the watcher for the first: wake
// receives the wake-ups (at most one pending), done closes when the
// handler is closed.
func (w *claimWatch) subscribe() (wake chan struct{}, done <-chan struct{}) {
	wake = make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return wake, w.done
	}
	w.subs[wake] = struct{}{}
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
	if w.stop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		w.stop = cancel
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			_ = w.e.WatchClaimable(ctx, w.wake) // returns nil when ctx ends
		}()
	}
	return wake, w.done
}

// unsubscribe removes a waiter; after the last, the watcher stops once it
// lingered.
func (w *claimWatch) unsubscribe(wake chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs, wake)
	if len(w.subs) > 0 || w.stop == nil || w.idle != nil {
		return
	}
	if w.linger <= 0 {
		w.stopLocked()
		return
	}
	w.idle = time.AfterFunc(w.linger, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.subs) == 0 {
			w.stopLocked()
		}
	})
}

// stopLocked stops the watcher; w.mu is held.
func (w *claimWatch) stopLocked() {
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
}

// wake tells every waiter, without blocking.
func (w *claimWatch) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// close ends every wait, stops the watcher and waits until it has stopped.
func (w *claimWatch) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.done)
		w.stopLocked()
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// Close ends the long polls in flight, which answer at once with what they
// have (outcome none, or no claims), and stops the handler's claimable
// watcher, waiting until it has stopped. Claims after Close do not wait.
// It neither closes the Engine nor stops serving: call it before closing
// the Engine. A server made by NewServer calls it when it shuts down, so
// that Shutdown need not wait out the long polls. It always returns nil.
func (h *Handler) Close() error {
	h.claims.close()
	return nil
}
