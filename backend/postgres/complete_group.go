package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Group commit of complete_execution. A complete is one statement; most of
// its cost is its transaction (BEGIN, the gate, the locks, COMMIT and its
// WAL flush). The completes that wait while a group runs therefore share
// the next one's transaction, as SQLite's writes do (docs/decisions.md
// #28):
//
//   - a complete that finds fewer than maxCompleteGroups groups running
//     starts one at once, alone if nothing else waits; the others queue,
//     and a group takes everything queued when it begins (at most
//     maxCompleteGroup), never waiting for more;
//   - a group is one transaction, one round trip: BEGIN, the gate, then for
//     each execution in execution_id order (so that two groups, or a group
//     and a writer of one execution, take their locks in one order and
//     cannot deadlock on them) its advisory lock, its row lock and
//     completeSQL, then COMMIT. completeSQL decides without failing (a
//     rejected complete deletes nothing and says why), so a rejection
//     changes nothing of the others; each decision is exactly the one the
//     complete would have made alone, after the completes before it in
//     the group (two completes of one execution: the second finds it gone);
//   - every answer is given after COMMIT. When the server failed a
//     statement or the COMMIT (the group rolled back: a lock that waited
//     longer than groupLockTimeout, a deadlock, a storage error), each
//     complete runs again alone, in a transaction of its own, as before
//     groups. When the connection failed before COMMIT's answer came, the
//     outcome is unknown and every complete of the group answers the
//     error, as a complete alone would;
//   - a complete whose context ends while it waits in the queue is
//     withdrawn and answers the context's error; once its group began, it
//     answers what the group's commit made of it.

// maxCompleteGroup caps the completes of one group.
const maxCompleteGroup = 128

// maxCompleteGroups caps the groups running at once, each on a connection
// of the pool.
const maxCompleteGroups = 2

// groupLockTimeout bounds each lock wait of a group (lock_timeout): a
// group waiting for an execution held by a long transaction (an
// application's SuspendTx) would hold up every complete of the group, so
// past it the group rolls back and its completes run alone.
const groupLockTimeout = "1s"

// groupTimeout bounds a group's round trip, as a caller's context would.
const groupTimeout = 30 * time.Second

// completeReq states: it leaves reqQueued once, to reqTaken when a group
// takes it, or to reqWithdrawn when its caller stops waiting first.
const (
	reqQueued int32 = iota
	reqTaken
	reqWithdrawn
)

// completeReq is one complete waiting for, or in, a group.
type completeReq struct {
	ctx   context.Context
	args  contracts.CompleteArgs
	state atomic.Int32
	done  chan error // buffered, written once
}

// completer runs a Backend's completes in groups.
type completer struct {
	b       *Backend
	mu      sync.Mutex
	queue   []*completeReq
	running int          // groups running
	groups  atomic.Int64 // groups of several completes that ran (tests)
}

// complete runs args as a member of a group (see the top of the file).
func (g *completer) complete(ctx context.Context, args contracts.CompleteArgs) error {
	r := &completeReq{ctx: ctx, args: args, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	start := g.running < maxCompleteGroups
	if start {
		g.running++
	}
	g.mu.Unlock()
	if start {
		go g.loop()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqWithdrawn) {
			return ctx.Err()
		}
		return <-r.done
	}
}

// loop runs groups while completes wait.
func (g *completer) loop() {
	for {
		reqs := g.take()
		if len(reqs) == 0 {
			return
		}
		g.run(reqs)
	}
}

// take returns the queued completes that were not withdrawn, at most
// maxCompleteGroup; none ends the loop (and counts it out).
func (g *completer) take() []*completeReq {
	g.mu.Lock()
	defer g.mu.Unlock()
	var reqs []*completeReq
	i := 0
	for ; i < len(g.queue) && len(reqs) < maxCompleteGroup; i++ {
		if r := g.queue[i]; r.state.CompareAndSwap(reqQueued, reqTaken) {
			reqs = append(reqs, r)
		}
	}
	g.queue = g.queue[i:]
	if len(g.queue) == 0 {
		g.queue = nil
	}
	if len(reqs) == 0 {
		g.running--
	}
	return reqs
}

// run answers every complete of reqs: alone when it is the only one,
// else as one group.
func (g *completer) run(reqs []*completeReq) {
	if len(reqs) == 1 {
		reqs[0].done <- g.b.completeAlone(reqs[0].ctx, reqs[0].args)
		return
	}
	g.groups.Add(1)
	slices.SortStableFunc(reqs, func(a, b *completeReq) int { return strings.Compare(a.args.ExecutionID, b.args.ExecutionID) })
	errs, err := g.b.completeGroup(reqs)
	switch {
	case err == nil:
		g.b.stats.committed.Add(1)
		for i, r := range reqs {
			r.done <- errs[i]
		}
	case rolledBack(err):
		// Nothing of the group took effect: each complete alone.
		var wg sync.WaitGroup
		for _, r := range reqs {
			wg.Go(func() { r.done <- g.b.completeAlone(r.ctx, r.args) })
		}
		wg.Wait()
	default:
		err = interpretError(err)
		for _, r := range reqs {
			r.done <- err
		}
	}
}

// errGroupRolledBack marks a group the server rolled back.
var errGroupRolledBack = errors.New("postgres: the group of completes rolled back")

// rolledBack reports whether err says the group's transaction did not
// commit, for sure.
func rolledBack(err error) bool { return errors.Is(err, errGroupRolledBack) }

// completeGroup runs the completes of reqs, sorted by execution_id, in one
// pipelined transaction and returns each one's decision (nil: completed).
// Its error wraps errGroupRolledBack when the server answered an error
// before COMMIT succeeded (nothing took effect); any other error leaves
// the outcome unknown.
func (b *Backend) completeGroup(reqs []*completeReq) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqs[0].ctx), groupTimeout)
	defer cancel()
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return nil, errors.Join(errGroupRolledBack, err) // nothing was sent
	}
	defer conn.Release()
	var batch pgx.Batch
	batch.Queue(beginReadCommittedSQL)
	batch.Queue(groupSettingsSQL)
	batch.Queue(execGateSQL)
	errs := make([]error, len(reqs))
	for i, r := range reqs {
		id := r.args.ExecutionID
		batch.Queue(execXactLockSQL, id)
		batch.Queue(lockExecutionRowSQL, id)
		batch.Queue(completeSQL, id, r.args.LeaseID).QueryRow(func(row pgx.Row) error {
			var deleted, exists bool
			if err := row.Scan(&deleted, &exists); err != nil {
				return err
			}
			switch {
			case deleted:
			case exists: // remembered, but not claimed under this lease
				errs[i] = driver.CompleteLeaseMismatch(id)
			default:
				errs[i] = driver.ExecutionNotFound(id)
			}
			return nil
		})
	}
	committed := false
	batch.Queue(commitSQL).Exec(func(ct pgconn.CommandTag) error {
		if ct.String() != "COMMIT" {
			return errRolledBack
		}
		committed = true
		return nil
	})
	err = conn.Conn().SendBatch(ctx, &batch).Close()
	if conn.Conn().PgConn().TxStatus() != 'I' {
		if _, rerr := conn.Conn().Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}
	var pe *pgconn.PgError
	switch {
	case committed:
		return errs, nil
	case errors.Is(err, errRolledBack) || errors.As(err, &pe):
		// The server failed a statement, and skipped the rest up to the
		// pipeline's end, COMMIT included; or COMMIT answered ROLLBACK.
		return nil, errors.Join(errGroupRolledBack, err)
	case err == nil:
		return nil, errors.Join(errGroupRolledBack, errRolledBack)
	}
	return nil, err
}

// groupSettingsSQL are a group's settings: those of every execution
// writer (execSettingsSQL) and its lock timeout (groupLockTimeout).
const groupSettingsSQL = `SELECT set_config('enable_seqscan', 'off', true), set_config('lock_timeout', '` + groupLockTimeout + `', true)`

// completeAlone is complete_execution in a transaction of its own under
// the execution's locks (inExecTx), one round trip: completeSQL decides and
// deletes, and COMMIT follows it; when it deleted nothing, what it read of
// the execution answers as driver.CheckComplete would.
func (b *Backend) completeAlone(ctx context.Context, args contracts.CompleteArgs) error {
	return b.inExecTx(ctx, args.ExecutionID, func(tx *pipeTx) error {
		var deleted, exists bool
		tx.commitWithNext()
		if err := tx.QueryRow(ctx, completeSQL, args.ExecutionID, args.LeaseID).Scan(&deleted, &exists); err != nil {
			return err
		}
		switch {
		case deleted:
			return nil
		case exists: // remembered, but not claimed under this lease
			return driver.CompleteLeaseMismatch(args.ExecutionID)
		}
		return driver.ExecutionNotFound(args.ExecutionID)
	})
}
