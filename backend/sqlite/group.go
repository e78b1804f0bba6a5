package sqlite

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Group commit. A process writes through one connection, so its writes
// run one after the other; most of a write's time is the cost of its
// transaction (BEGIN's lock, the log frames, the fsync of COMMIT), not of
// its statements. The writer goroutine therefore runs the writes that are
// waiting when it is free in one transaction:
//
//   - it takes whatever is queued, at most maxGroup writes, and never
//     waits for more: a write that finds the writer idle runs at once,
//     alone;
//   - each write of a group of several runs in its own savepoint: one that
//     fails with a decision (a *contracts.Error: a rejected call) is rolled
//     back to it, so it changes nothing, and the others go on; any other
//     failure of a statement may have rolled the whole transaction back,
//     so the group is rolled back and its writes are run again one by one,
//     each in its own transaction, as every write ran before groups;
//   - every write's answer, a rejection included (it read what earlier
//     writes of the group wrote), is given only once the group committed;
//     when COMMIT fails, each write of the group answers its error (a
//     COMMIT that found the lock busy is attempted again, as BEGIN is);
//   - a write whose context ends while it waits its turn is dropped and
//     answers the context's error; once its turn came it runs to its end
//     (its statements are not interrupted, since an interrupted write
//     statement rolls back the whole transaction), and its caller gets
//     what the group's commit made of it, even if the context ended
//     meanwhile: the operation's outcome when it committed, the error
//     otherwise;
//   - each write reads the clock when its turn comes, after the write lock
//     is held, and the keyring when it starts, as it did in a transaction
//     of its own; it sees what the writes before it in the group wrote,
//     and readers see the whole group at its commit.
//
// Writes are linearizable in group order: each takes effect at its group's
// commit, after it was called and before it answers.

// maxGroup caps the writes of one group: a group's transaction holds the
// write lock, and its writes wait for its COMMIT, for as long as they all
// run.
const maxGroup = 32

// Savepoint statements of a write in a group (prepared on the writer
// handle: statements()). groupSavepoint differs from the savepoint of
// calls inside an application's transaction (apptx.go), which never runs
// in a group.
const (
	groupSavepoint = "SAVEPOINT ff_write"
	groupRelease   = "RELEASE ff_write"
	groupRollback  = "ROLLBACK TO ff_write"
)

// States of a writeReq. A request leaves reqQueued exactly once: to
// reqRunning when the writer starts it (or answers it), to reqAbandoned
// when its caller stops waiting first.
const (
	reqQueued int32 = iota
	reqRunning
	reqAbandoned
)

// writeReq is one write waiting for, or in, a group.
type writeReq struct {
	ctx   context.Context
	fn    func(q txn, nowMs int64) error
	state atomic.Int32
	batch *batch     // the group that took it; under writer.mu
	err   error      // fn's result, answered at the group's commit (writer only)
	done  chan error // the answer; buffered, written once
}

// batch is what the requests of one group share: the context of its
// BEGIN, cancelled once every request of the group was abandoned, so
// that the writer stops waiting for the write lock (or for the connection,
// held by an application's transaction) on behalf of nobody.
type batch struct {
	ctx    context.Context
	cancel context.CancelFunc
	live   int // requests not abandoned; under writer.mu
}

// writer runs the backend's writes in groups, on one goroutine.
type writer struct {
	b      *Backend
	mu     sync.Mutex
	queue  []*writeReq
	closed bool
	wake   chan struct{} // capacity 1: "the queue may hold requests"
}

func newWriter(b *Backend) *writer {
	w := &writer{b: b, wake: make(chan struct{}, 1)}
	go w.loop()
	return w
}

// do runs fn as one write and returns its result once it is committed (or
// rolled back): see the comment at the top of the file. A closed backend
// answers backend_closed.
func (w *writer) do(ctx context.Context, fn func(q txn, nowMs int64) error) error {
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errClosed()
	}
	w.queue = append(w.queue, r)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	w.mu.Unlock()
	select {
	case err := <-r.done:
		return repanic(err)
	case <-ctx.Done():
		if w.abandon(r) {
			return ctx.Err()
		}
		return repanic(<-r.done) // its turn came: it answers what the group made of it
	}
}

// fnPanic carries a panic of a write's fn from the writer goroutine, where
// it would end the process, to the caller's, where it panicked before
// writes were grouped (and where an HTTP server's recovery can catch it).
type fnPanic struct{ value any }

func (p *fnPanic) Error() string { return "sqlite: a write panicked" }

// repanic panics with the value of a panic carried by err.
func repanic(err error) error {
	if p, ok := err.(*fnPanic); ok {
		panic(p.value)
	}
	return err
}

// call runs r's write, turning a panic into a *fnPanic error (which rolls
// its group back like any storage failure).
func call(r *writeReq, q txn, nowMs int64) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &fnPanic{value: v}
		}
	}()
	return r.fn(q, nowMs)
}

// abandon withdraws r, unless the writer started it already.
func (w *writer) abandon(r *writeReq) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !r.state.CompareAndSwap(reqQueued, reqAbandoned) {
		return false
	}
	if bt := r.batch; bt != nil {
		if bt.live--; bt.live == 0 {
			bt.cancel()
		}
	}
	return true
}

// close refuses new writes and answers the queued ones backend_closed; a
// group already running finishes.
func (w *writer) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	for _, r := range w.queue {
		answer(r, errClosed())
	}
	w.queue = nil
	close(w.wake)
}

func (w *writer) loop() {
	for range w.wake {
		for {
			bt, reqs := w.take()
			if len(reqs) == 0 {
				break
			}
			w.run(bt, reqs)
			bt.cancel()
		}
	}
}

// take removes up to maxGroup waiting requests from the queue, skipping
// abandoned ones, as one group.
func (w *writer) take() (*batch, []*writeReq) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var reqs []*writeReq
	i := 0
	for ; i < len(w.queue) && len(reqs) < maxGroup; i++ {
		if r := w.queue[i]; r.state.Load() == reqQueued {
			reqs = append(reqs, r)
		}
	}
	n := copy(w.queue, w.queue[i:])
	clear(w.queue[n:])
	w.queue = w.queue[:n]
	if len(reqs) == 0 {
		return nil, nil
	}
	bt := &batch{live: len(reqs)}
	bt.ctx, bt.cancel = context.WithCancel(context.Background())
	for _, r := range reqs {
		r.batch = bt
	}
	return bt, reqs
}

// run runs reqs as one group; a group that could not take the write lock
// within the busy timeout (or whose write found it busy) is attempted
// again, writeAttempts in all, before its writes answer retryable
// contention.
func (w *writer) run(bt *batch, reqs []*writeReq) {
	var err error
	for range writeAttempts {
		if reqs, err = w.attempt(bt, reqs); len(reqs) == 0 {
			return
		}
	}
	for _, r := range reqs {
		answer(r, err)
	}
}

// attempt runs reqs in one transaction and answers them, except those it
// returns, with the busy error, to attempt again.
func (w *writer) attempt(bt *batch, reqs []*writeReq) ([]*writeReq, error) {
	tx, err := w.b.db.BeginTx(bt.ctx, nil)
	if err != nil {
		if isBusy(err) && bt.ctx.Err() == nil {
			return reqs, err
		}
		for _, r := range reqs {
			answer(r, err)
		}
		return nil, nil
	}
	live := 0
	for _, r := range reqs {
		if r.state.Load() != reqAbandoned {
			live++
		}
	}
	var ran []*writeReq
	for i, r := range reqs {
		if !start(r) {
			continue
		}
		// The keyring is read once per write, so that a concurrent
		// SetKeyring never mixes two keyrings in one operation.
		q := txn{ctx: context.WithoutCancel(r.ctx), tx: tx, stmts: w.b.wstmts, ring: w.b.ring.Load()}
		if live == 1 {
			if r.err = call(r, q, w.b.nowMs()); r.err != nil {
				_ = tx.Rollback()
				if isBusy(r.err) {
					return []*writeReq{r}, r.err
				}
				answer(r, r.err)
				return nil, nil
			}
			ran = append(ran, r)
			continue
		}
		if !inSavepoint(q, r, w.b.nowMs()) {
			// The transaction may be gone with the failure: every write
			// of the group runs again, each in a transaction of its own.
			_ = tx.Rollback()
			for _, r := range append(ran, reqs[i:]...) {
				w.run(bt, []*writeReq{r})
			}
			return nil, nil
		}
		ran = append(ran, r)
	}
	if len(ran) == 0 {
		_ = tx.Rollback()
		return nil, nil
	}
	if err := tx.Commit(); err != nil {
		if isBusy(err) {
			return ran, err
		}
		for _, r := range ran {
			r.err = err
		}
	}
	for _, r := range ran {
		r.done <- r.err
	}
	return nil, nil
}

// inSavepoint runs r's write in a savepoint at nowMs, keeping its result
// in r.err, and rolls it back to the savepoint when it is a decision (a
// rejected call changes nothing). It reports false when the write failed
// otherwise, or a savepoint statement did: the transaction may have been
// rolled back.
func inSavepoint(q txn, r *writeReq, nowMs int64) bool {
	if _, err := q.exec(groupSavepoint); err != nil {
		return false
	}
	r.err = call(r, q, nowMs)
	var ce *contracts.Error
	switch {
	case r.err == nil:
	case errors.As(r.err, &ce):
		if _, err := q.exec(groupRollback); err != nil {
			return false
		}
	default:
		return false
	}
	_, err := q.exec(groupRelease)
	return err == nil
}

// start takes r for running: false when its caller abandoned it, or when
// its context ended before its turn (then it answers the context's error).
// A request already running (run again alone after its group failed) is
// taken as it is.
func start(r *writeReq) bool {
	if r.state.Load() == reqRunning {
		return true
	}
	if !r.state.CompareAndSwap(reqQueued, reqRunning) {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.done <- err
		return false
	}
	return true
}

// answer gives r its answer err without running it, unless its caller
// abandoned it.
func answer(r *writeReq, err error) {
	if r.state.Load() != reqRunning && !r.state.CompareAndSwap(reqQueued, reqRunning) {
		return
	}
	r.done <- err
}

// queued is how many requests wait in the queue, abandoned ones included
// (for tests).
func (w *writer) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}
