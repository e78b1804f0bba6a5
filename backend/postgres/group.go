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
	"github.com/jackc/pgx/v5/pgxpool"
)

// Group commit of execution writers. Most of the cost of a short writer
// (a complete, a delivery) is its transaction: BEGIN, the settings, the
// gate, COMMIT and its WAL flush, and the server's work per round trip.
// The calls of one kind that wait while a group runs therefore share the
// next one's transaction, as SQLite's writes do (docs/decisions.md #28,
// #29). A grouper runs them:
//
//   - a call that finds fewer than maxGroups groups of its kind running
//     starts one at once, alone if nothing else waits; the others queue,
//     and a group takes everything queued when it begins (at most
//     maxGroup calls), never waiting for more. A grouper whose calls must
//     each see the previous writes of their execution (distinct) takes at
//     most one call per execution; the others stay queued, in order, for
//     the next group;
//   - a group is one transaction whose statements lock the executions in
//     execution_id order (so that two groups, or a group and a writer of
//     one execution, take their locks in one order and cannot deadlock on
//     them), and each call decides exactly as it would alone, after the
//     calls before it in the group. A call's rejection changes nothing of
//     the others;
//   - every answer is given after COMMIT. When the server failed a
//     statement or the COMMIT (the group rolled back: a lock that waited
//     longer than groupLockTimeout, a deadlock, a storage error), each
//     call runs again alone, in a transaction of its own, as before groups.
//     When the connection failed before COMMIT's answer came, the outcome
//     is unknown and every call of the group answers the error, as a call
//     alone would;
//   - a call whose context ends while it waits in the queue is withdrawn
//     and answers the context's error; once its group began, it answers
//     what the group's commit made of it.

// maxGroup caps the calls of one group.
const maxGroup = 128

// maxGroups caps the groups of one kind running at once, each on a
// connection of the pool.
const maxGroups = 2

// groupLockTimeout bounds each lock wait of a group (lock_timeout): a
// group waiting for an execution held by a long transaction (an
// application's SuspendTx) would hold up every call of the group, so past
// it the group rolls back and its calls run alone.
const groupLockTimeout = "1s"

// groupTimeout bounds a group's round trips, as a caller's context would.
const groupTimeout = 30 * time.Second

// groupCall states: it leaves callQueued once, to callTaken when a group
// takes it, or to callWithdrawn when its caller stops waiting first.
const (
	callQueued int32 = iota
	callTaken
	callWithdrawn
)

// groupCall is one call waiting for, or in, a group.
type groupCall[A, O any] struct {
	ctx   context.Context
	args  A
	state atomic.Int32
	done  chan groupAnswer[O] // buffered, written once
}

// groupAnswer is a call's answer.
type groupAnswer[O any] struct {
	out O
	err error
}

// grouper runs a Backend's calls of one kind (arguments A, outcome O) in
// groups (see the top of the file).
type grouper[A, O any] struct {
	b *Backend
	// executionID names the execution a call writes.
	executionID func(A) string
	// distinct keeps two calls of one execution out of one group.
	distinct bool
	// alone runs one call in a transaction of its own; its error is
	// interpreted.
	alone func(context.Context, A) (O, error)
	// group runs calls, sorted by execution id, in one transaction and
	// answers each; its error wraps errGroupRolledBack when nothing of
	// the group took effect, and otherwise leaves the outcome unknown.
	group func([]*groupCall[A, O]) ([]groupAnswer[O], error)

	mu      sync.Mutex
	queue   []*groupCall[A, O]
	running int          // groups running
	groups  atomic.Int64 // groups of several calls that ran (tests)
}

// call runs args as a member of a group.
func (g *grouper[A, O]) call(ctx context.Context, args A) (O, error) {
	c := &groupCall[A, O]{ctx: ctx, args: args, done: make(chan groupAnswer[O], 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	start := g.running < maxGroups
	if start {
		g.running++
	}
	g.mu.Unlock()
	if start {
		go g.loop()
	}
	var a groupAnswer[O]
	select {
	case a = <-c.done:
	case <-ctx.Done():
		if c.state.CompareAndSwap(callQueued, callWithdrawn) {
			var zero O
			return zero, ctx.Err()
		}
		a = <-c.done
	}
	return a.out, a.err
}

// loop runs groups while calls wait.
func (g *grouper[A, O]) loop() {
	for {
		calls := g.take()
		if len(calls) == 0 {
			return
		}
		g.run(calls)
	}
}

// take returns the queued calls that were not withdrawn, at most
// maxGroup, and when distinct at most one per execution; none ends the
// loop (and counts it out).
func (g *grouper[A, O]) take() []*groupCall[A, O] {
	g.mu.Lock()
	defer g.mu.Unlock()
	var (
		calls []*groupCall[A, O]
		later []*groupCall[A, O] // of an execution already taken
		taken map[string]bool
	)
	if g.distinct {
		taken = map[string]bool{}
	}
	i := 0
	for ; i < len(g.queue) && len(calls) < maxGroup; i++ {
		c := g.queue[i]
		if g.distinct && c.state.Load() == callQueued && taken[g.executionID(c.args)] {
			later = append(later, c)
			continue
		}
		if c.state.CompareAndSwap(callQueued, callTaken) {
			calls = append(calls, c)
			if g.distinct {
				taken[g.executionID(c.args)] = true
			}
		}
	}
	g.queue = append(later, g.queue[i:]...)
	if len(g.queue) == 0 {
		g.queue = nil
	}
	if len(calls) == 0 {
		g.running--
	}
	return calls
}

// run answers every call of calls: alone when it is the only one, else
// as one group.
func (g *grouper[A, O]) run(calls []*groupCall[A, O]) {
	if len(calls) == 1 {
		c := calls[0]
		out, err := g.alone(c.ctx, c.args)
		c.done <- groupAnswer[O]{out, err}
		return
	}
	g.groups.Add(1)
	slices.SortStableFunc(calls, func(a, b *groupCall[A, O]) int {
		return strings.Compare(g.executionID(a.args), g.executionID(b.args))
	})
	answers, err := g.group(calls)
	switch {
	case err == nil:
		g.b.stats.committed.Add(1)
		for i, c := range calls {
			if errors.Is(answers[i].err, errAlone) {
				go func() {
					out, err := g.alone(c.ctx, c.args)
					c.done <- groupAnswer[O]{out, err}
				}()
				continue
			}
			c.done <- answers[i]
		}
	case rolledBack(err):
		// Nothing of the group took effect: each call alone.
		var wg sync.WaitGroup
		for _, c := range calls {
			wg.Go(func() {
				out, err := g.alone(c.ctx, c.args)
				c.done <- groupAnswer[O]{out, err}
			})
		}
		wg.Wait()
	default:
		err = interpretError(err)
		for _, c := range calls {
			c.done <- groupAnswer[O]{err: err}
		}
	}
}

// lockAndLoad begins the group of calls (sorted by execution id) on a
// connection and sends its first round trip: the opening (groupOpening),
// then for each call in turn its execution's locks (queueExecLocks) and
// what load queues for the i-th call. Its error wraps errGroupRolledBack:
// COMMIT was not sent, and the connection is released.
func (g *grouper[A, O]) lockAndLoad(calls []*groupCall[A, O], load func(i int, batch *pgx.Batch)) (*groupTx, error) {
	tx, err := g.b.beginGroup(calls[0].ctx)
	if err != nil {
		return nil, err
	}
	var batch pgx.Batch
	groupOpening(&batch)
	for i, c := range calls {
		queueExecLocks(&batch, g.executionID(c.args))
		load(i, &batch)
	}
	if err := tx.send(&batch); err != nil {
		tx.finish()
		return nil, errors.Join(errGroupRolledBack, err)
	}
	return tx, nil
}

// errAlone answers, in a group, a call the group cannot decide (a suspend
// that reads more than its load, a claim left over while another
// transaction holds what is claimable): run answers it by running it
// alone once the group committed, without holding the group's slot, since
// the call may wait for a lock for as long as another transaction holds
// it.
var errAlone = errors.New("postgres: the call runs alone after its group")

// errGroupRolledBack marks a group the server rolled back.
var errGroupRolledBack = errors.New("postgres: the group rolled back")

// rolledBack reports whether err says the group's transaction did not
// commit, for sure.
func rolledBack(err error) bool { return errors.Is(err, errGroupRolledBack) }

// groupSettingsSQL are a group's settings: those of every execution
// writer (execSettingsSQL) and its lock timeout (groupLockTimeout).
const groupSettingsSQL = `SELECT set_config('enable_seqscan', 'off', true), set_config('lock_timeout', '` + groupLockTimeout + `', true)`

// groupOpening queues a group's opening statements on batch: BEGIN, the
// settings and the gate; each execution's locks follow (queueExecLocks).
func groupOpening(batch *pgx.Batch) {
	batch.Queue(beginReadCommittedSQL)
	batch.Queue(groupSettingsSQL)
	batch.Queue(execGateSQL)
}

// groupTx is a group's transaction on one connection of the pool.
type groupTx struct {
	conn *pgxpool.Conn
	ctx  context.Context
	end  context.CancelFunc
}

// beginGroup acquires a connection for the group whose first call's
// context is ctx, bounded by groupTimeout whatever the callers'
// contexts. Its error wraps errGroupRolledBack: nothing was sent.
func (b *Backend) beginGroup(ctx context.Context) (*groupTx, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupTimeout)
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		cancel()
		return nil, errors.Join(errGroupRolledBack, err)
	}
	return &groupTx{conn: conn, ctx: ctx, end: cancel}, nil
}

// send sends batch in one round trip: its first error.
func (t *groupTx) send(batch *pgx.Batch) error {
	return t.conn.Conn().SendBatch(t.ctx, batch).Close()
}

// commit queues COMMIT on batch, then the claimable notification's
// transaction when notify, sends it, and reports the outcome: nil when
// COMMIT succeeded; an error wrapping errGroupRolledBack when the server
// failed a statement before it (skipping the rest, COMMIT included) or
// COMMIT answered ROLLBACK; any other error leaves the outcome unknown.
func (t *groupTx) commit(batch *pgx.Batch, notify bool) error {
	committed := false
	queueCommit(batch, notify, &committed)
	err := t.send(batch)
	var pe *pgconn.PgError
	switch {
	case committed:
		return nil // an error after COMMIT is the notification's; finish cleans up
	case errors.Is(err, errRolledBack) || errors.As(err, &pe):
		return errors.Join(errGroupRolledBack, err)
	case err == nil:
		return errors.Join(errGroupRolledBack, errRolledBack)
	}
	return err
}

// finish rolls back what did not end, closing the connection when that
// fails, and releases it.
func (t *groupTx) finish() {
	c := t.conn.Conn()
	if c.PgConn().TxStatus() != 'I' {
		if _, err := c.Exec(context.WithoutCancel(t.ctx), "ROLLBACK"); err != nil {
			_ = c.Close(context.WithoutCancel(t.ctx))
		}
	}
	t.conn.Release()
	t.end()
}
