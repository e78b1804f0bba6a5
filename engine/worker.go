package engine

import (
	"context"
	"sync"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// ClaimResumedExecutions leases up to a.Max claimable executions to a
// worker in one call, oldest first (docs/spec.md §8.8): in one driver call
// when the backend is a driver.BatchClaimer, else by successive claims,
// stopping at the first that finds nothing. If a successive claim fails
// after others succeeded, the claims made so far are returned with the
// error; their leases are the caller's.
func (e *Engine) ClaimResumedExecutions(ctx context.Context, a contracts.ClaimBatchArgs) (contracts.ClaimBatchOutcome, error) {
	if a.LeaseMs == 0 {
		a.LeaseMs = contracts.DefaultLeaseMs
	}
	if bc, ok := e.b.(driver.BatchClaimer); ok {
		return call(ctx, a.Validate, bc.ClaimResumedExecutions, a)
	}
	if err := a.Validate(); err != nil {
		return contracts.ClaimBatchOutcome{}, err
	}
	var out contracts.ClaimBatchOutcome
	for len(out.Claims) < a.Max {
		c, err := e.ClaimResumedExecution(ctx, a.Claim())
		if err != nil {
			return out, err
		}
		if c.Outcome != contracts.OutcomeClaimed {
			break
		}
		out.Claims = append(out.Claims, c)
	}
	return out, nil
}

// wakers are the Engine's claimable watchers (WatchClaimable), woken after
// the Engine's own calls that made an execution claimable.
type wakers struct {
	mu   sync.Mutex
	next int
	fns  map[int]chan struct{}
}

// add registers a watcher; the channel holds at most one pending wake-up.
func (w *wakers) add() (int, chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[int]chan struct{}{}
	}
	w.next++
	ch := make(chan struct{}, 1)
	w.fns[w.next] = ch
	return w.next, ch
}

func (w *wakers) remove(id int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.fns, id)
}

// wake signals every watcher without blocking.
func (w *wakers) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.fns {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// WatchClaimable calls wake (never concurrently) whenever an execution may
// have become claimable at once (docs/spec.md §8.8), until ctx ends: after
// this Engine's own resuming deliveries, cancels and releases, and, when the
// backend is a driver.ClaimableWatcher, after those of every process sharing
// the store. It also wakes once as soon as it is registered, so that a
// change made while the caller was setting it up is not missed. Wake-ups
// may be spurious or, across processes, lost: poll as well. It returns nil
// when ctx ends.
func (e *Engine) WatchClaimable(ctx context.Context, wake func()) error {
	id, ch := e.wake.add()
	defer e.wake.remove(id)
	ch <- struct{}{} // the first wake-up: registered from here on
	if cw, ok := e.b.(driver.ClaimableWatcher); ok {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			// An error means no push from other processes: the Engine's own
			// wake-ups and the caller's polling remain.
			_ = cw.WatchClaimable(ctx, e.wake.wake)
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
			wake()
		}
	}
}
