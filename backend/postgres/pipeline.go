package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// dbtx is what the operations' statements need of a transaction: the
// pipelined transaction of an execution writer or a claim (pipeTx), or a
// pgx.Tx (keystore writers, batch claims, an application's savepoint).
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// pipeTx is one READ COMMITTED transaction on one connection that sends
// its statements in as few round trips as the operation's reads allow
// (pgx batches: one pipeline, one Sync). Its opening statements (BEGIN and
// the locks) go with its first read; writes (Exec, SendBatch) are held
// back and go with the next read or with COMMIT, so an operation that
// reads once and then writes costs two round trips: the load, and the
// writes with COMMIT. An error of a held-back write surfaces at that next
// round trip, and rolls the whole transaction back like any other error.
// Within one pipeline the server runs the statements in order and, after
// an error, skips the rest (COMMIT included) up to the Sync.
//
// It is not safe for concurrent use, and holds no state across attempts:
// each attempt of an operation gets a fresh one.
type pipeTx struct {
	conn *pgx.Conn
	// queued are the statements not sent yet: the opening ones until the
	// first round trip, then the held-back writes.
	queued []*pgx.QueuedQuery
	// commitNext makes the next QueryRow send COMMIT after its query, in
	// the same round trip (commitWithNext).
	commitNext bool
	// notify sends the claimable notification after COMMIT (notifyClaimable).
	notify bool
	// committed: COMMIT succeeded.
	committed bool
}

// commitSQL ends a pipelined transaction.
const commitSQL = `COMMIT`

// notifyTxSQL are the statements of the transaction that sends the
// claimable notification after the operation's COMMIT, in the same round
// trip. NOTIFY serializes the commits of every notifying transaction of the
// database (a global lock from pre-commit to the end of commit): in the
// operation's own transaction it would hold that lock across the
// operation's WAL flush, so resuming deliveries of all executions would
// commit one at a time. In a transaction of its own, with no durable write
// to wait for (synchronous_commit off), the lock is held for microseconds.
// The notification follows the change it announces (docs/spec.md §8.8: a
// wake-up after the commit; a crash between the two loses one, which a
// worker's polling absorbs, as the spec allows).
var notifyTxSQL = []string{
	`BEGIN`,
	`SELECT set_config('synchronous_commit', 'off', true), pg_notify('` + claimableChannel + `', current_schema())`,
	commitSQL,
}

// errRolledBack is COMMIT answering ROLLBACK: the transaction had failed.
var errRolledBack = errors.New("postgres: COMMIT rolled the transaction back")

// newPipeTx returns the transaction that opening (BEGIN and its locks)
// starts on conn with its first round trip.
func newPipeTx(conn *pgx.Conn, opening *pgx.Batch) *pipeTx {
	return &pipeTx{conn: conn, queued: append([]*pgx.QueuedQuery(nil), opening.QueuedQueries...)}
}

// Exec holds the statement back until the next round trip; its command
// tag is not known and returned empty.
func (t *pipeTx) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	t.queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// SendBatch holds b's statements back until the next round trip; the
// results only Close, which reports nil.
func (t *pipeTx) SendBatch(_ context.Context, b *pgx.Batch) pgx.BatchResults {
	for _, q := range b.QueuedQueries {
		t.queue(q.SQL, q.Arguments...)
	}
	return heldBack{}
}

func (t *pipeTx) queue(sql string, args ...any) {
	t.queued = append(t.queued, &pgx.QueuedQuery{SQL: sql, Arguments: args})
}

// take returns the statements not sent yet as a batch, and forgets them.
func (t *pipeTx) take() *pgx.Batch {
	b := &pgx.Batch{QueuedQueries: t.queued}
	t.queued = nil
	return b
}

// flush sends the statements held back, if any, in one round trip.
func (t *pipeTx) flush(ctx context.Context) error {
	if len(t.queued) == 0 {
		return nil
	}
	return t.conn.SendBatch(ctx, t.take()).Close()
}

// Query sends the statements held back, then the query: two round trips
// when some were held back. For reads of several rows off the hot paths.
func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.conn.Query(ctx, sql, args...)
}

// QueryRow returns a row whose Scan sends the statements held back and
// the query in one round trip, followed by COMMIT (and the notification)
// after commitWithNext.
func (t *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return &pipeRow{t: t, ctx: ctx, sql: sql, args: args}
}

// QueryRows sends the statements held back and the query in one round
// trip, followed by COMMIT (and the notification) after commitWithNext,
// and calls fn with the query's rows: for a read of several rows whose
// transaction ends with it (a batch claim). fn's error, else the first of
// the pipeline (unless COMMIT succeeded), is returned.
func (t *pipeTx) QueryRows(ctx context.Context, fn func(pgx.Rows) error, sql string, args ...any) error {
	b := t.take()
	var fnErr error
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		fnErr = fn(rows)
		return fnErr
	})
	if t.commitNext {
		t.commitNext = false
		t.queueCommit(b)
	}
	err := t.conn.SendBatch(ctx, b).Close()
	if fnErr != nil {
		return fnErr
	}
	if err != nil && !t.committed {
		return err
	}
	return nil
}

// commitWithNext makes the next QueryRow (or QueryRows) commit the transaction in its
// round trip: for an operation whose last statement is a read of what it
// wrote. After it, the transaction is over whatever Scan answers; a
// statement error or a failed COMMIT leaves it to be rolled back.
func (t *pipeTx) commitWithNext() { t.commitNext = true }

// reopen starts another transaction on the connection, after one that
// committed with its last QueryRow: opening goes with the next QueryRow,
// which commits it too.
func (t *pipeTx) reopen(opening *pgx.Batch) {
	t.queued = append(t.queued, opening.QueuedQueries...)
	t.committed, t.notify = false, false
	t.commitWithNext()
}

// pipeRow is the row of a pipelined QueryRow, sent at Scan.
type pipeRow struct {
	t    *pipeTx
	ctx  context.Context
	sql  string
	args []any
}

// Scan sends the round trip and scans the query's row: pgx.ErrNoRows when
// it returned none, the first error of the pipeline otherwise.
func (r *pipeRow) Scan(dest ...any) error {
	t := r.t
	b := t.take()
	var scanErr error
	b.Queue(r.sql, r.args...).QueryRow(func(row pgx.Row) error {
		scanErr = row.Scan(dest...)
		if errors.Is(scanErr, pgx.ErrNoRows) {
			return nil // the rest of the pipeline, COMMIT included, still runs
		}
		return scanErr
	})
	if t.commitNext {
		t.commitNext = false
		t.queueCommit(b)
	}
	err := t.conn.SendBatch(r.ctx, b).Close()
	if scanErr != nil && !errors.Is(scanErr, pgx.ErrNoRows) {
		return scanErr
	}
	if err != nil && !t.committed {
		return err
	}
	// An error after COMMIT (of the notification's transaction) changes
	// nothing of the operation, which committed; finish cleans up.
	return scanErr
}

// queueCommit queues COMMIT, and after it the notification's transaction
// when one is due.
func (t *pipeTx) queueCommit(b *pgx.Batch) { queueCommit(b, t.notify, &t.committed) }

// queueCommit queues COMMIT on b, which sets *committed when the server
// answers it (COMMIT of a failed transaction answers ROLLBACK:
// errRolledBack), and after it, when notify, the claimable notification's
// transaction.
func queueCommit(b *pgx.Batch, notify bool, committed *bool) {
	b.Queue(commitSQL).Exec(func(ct pgconn.CommandTag) error {
		if ct.String() != "COMMIT" {
			return errRolledBack
		}
		*committed = true
		return nil
	})
	if notify {
		for _, s := range notifyTxSQL {
			b.Queue(s)
		}
	}
}

// commit sends the statements held back and COMMIT in one round trip,
// unless a QueryRow committed already.
func (t *pipeTx) commit(ctx context.Context) error {
	if t.committed {
		return nil
	}
	b := t.take()
	t.queueCommit(b)
	err := t.conn.SendBatch(ctx, b).Close()
	if t.committed {
		return nil
	}
	if err == nil {
		err = errRolledBack
	}
	return err
}

// finish ends the transaction after fn and commit: it rolls back what did
// not commit (or the notification's transaction that failed after the
// COMMIT). It reports whether the connection is clean; when the rollback
// fails (a broken connection, a cancelled context) the caller closes it.
func (t *pipeTx) finish(ctx context.Context) bool {
	if t.conn.PgConn().TxStatus() == 'I' { // nothing sent, or all of it ended
		return true
	}
	_, err := t.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	return err == nil
}

// heldBack is the result of a held-back SendBatch.
type heldBack struct{}

var errHeldBack = errors.New("postgres: the results of a held-back batch are not known")

func (heldBack) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, errHeldBack }
func (heldBack) Query() (pgx.Rows, error)         { return nil, errHeldBack }
func (heldBack) QueryRow() pgx.Row                { return errRow{errHeldBack} }
func (heldBack) Close() error                     { return nil }
func (heldBack) Tx() pgx.Tx                       { return nil }

// errRow is a row that fails with err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
