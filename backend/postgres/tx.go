package postgres

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// maxAttempts is the retry budget of a writing operation (docs/spec.md
// §6): three attempts in all.
const maxAttempts = 3

// nowMsExpr is the backend clock in milliseconds since the Unix epoch:
// clock_timestamp() is the server's wall clock at evaluation (not the start
// of the transaction, as now() would be), truncated like time.UnixMilli.
// Every statement below evaluates it at most once per operation.
const nowMsExpr = `floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

// SQLSTATE codes the driver interprets.
const (
	sqlstateSerializationFailure = "40001"
	sqlstateDeadlockDetected     = "40P01"
	sqlstateUniqueViolation      = "23505"
)

// beginner starts transactions: the pool, or one connection of it.
type beginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// execXactLockSQL takes the advisory lock private to one execution_id,
// held until the transaction ends: the operations on one execution
// (suspend, deliver_signal, complete, create_waitpoint, extend, release,
// cancel) of every process run one at a time. The key is the one earlier
// versions took as a session lock (pg_advisory_lock), so processes of both
// versions on one database exclude one another during an upgrade.
const execXactLockSQL = `SELECT pg_advisory_xact_lock(hashtext('flowfabric.execution'), hashtext($1))`

// lockExecutionRowSQL locks the execution's row, if it exists, against
// claims (which lock candidates FOR UPDATE SKIP LOCKED, so they pass over
// it, or wait for it when they skipped everything), so that what the
// writer reads of the row next stays true until it commits. It runs after
// execXactLockSQL, as a statement of its own: at READ COMMITTED its
// snapshot then includes whatever the previous writer of the execution
// committed, a row it created included.
const lockExecutionRowSQL = `SELECT FROM ff_executions WHERE execution_id = $1 FOR NO KEY UPDATE`

// beginReadCommittedSQL opens a pipelined transaction.
const beginReadCommittedSQL = `BEGIN ISOLATION LEVEL READ COMMITTED`

// execOpening are the opening statements of an execution writer's
// transaction, sent with its first read: BEGIN at READ COMMITTED, the gate
// (ROW EXCLUSIVE on ff_claim_lock, which keystore writers lock SHARE, so
// keystore changes and execution writes are ordered: lockKeysSQL), the
// execution's lock, and the lock of its row. Each later statement takes
// its own snapshot, after the locks, so it reads what every earlier writer
// of the execution, claim and keystore writer committed; the locks keep it
// true until commit.
func execOpening(executionID string) *pgx.Batch {
	var b pgx.Batch
	b.Queue(beginReadCommittedSQL)
	b.Queue(execSettingsSQL)
	b.Queue(execGateSQL)
	queueExecLocks(&b, executionID)
	return &b
}

// queueExecLocks queues the locks of execution id on batch, each a
// statement of its own: its advisory lock, then its row's
// (lockExecutionRowSQL says why in that order). Writers alone
// (execOpening) and groups of writers take them alike.
func queueExecLocks(batch *pgx.Batch, id string) {
	batch.Queue(execXactLockSQL, id)
	batch.Queue(lockExecutionRowSQL, id)
}

// execSettingsSQL prices sequential scans out of an execution writer's
// transaction (SET LOCAL: no session state, so behind a transaction pooler
// too). Every statement of a writer reads one execution by key, so an
// index serves each; but a statement run five times on a connection may
// get a generic plan, cached for the connection's life and made again only
// when the tables' statistics change, and one made while the tables were
// nearly empty scans them whole: without a fresh ANALYZE (autovacuum
// behind, or off) it kept doing so as they grew (a sequential scan of
// 100,000 executions for each row lock, 119 ms). With sequential scans
// priced out, every plan, cached or not, reads the indexes. Planning each
// statement afresh instead (plan_cache_mode = force_custom_plan) cost a
// third of the writers' throughput.
const execSettingsSQL = `SELECT set_config('enable_seqscan', 'off', true)`

// inExecTx runs fn as one READ COMMITTED transaction of a writer of
// executionID (execOpening), pipelined (pipeTx): the opening statements
// travel with fn's first read, and fn's writes with COMMIT, so a writer
// that reads once costs two round trips. Correctness rests on the locks,
// not on the isolation level (docs/spec.md §6: the operation is atomic and
// sees every earlier operation on the execution): writers of one execution
// queue on its advisory lock, claims skip or wait for its locked row,
// keystore writers wait at the gate. Deadlocks (SQLSTATE 40P01) and the
// other failures isSerializationFailure names are retried as in inTx, up
// to maxAttempts in all. It works unchanged behind a transaction pooler:
// it keeps no session state (the lock is transaction-scoped).
func (b *Backend) inExecTx(ctx context.Context, executionID string, fn func(*pipeTx) error) error {
	return b.inPipeTx(ctx, func() *pgx.Batch { return execOpening(executionID) }, fn)
}

// claimOpening are the opening statements of a claim's transaction: BEGIN
// at READ COMMITTED and the claim's planner settings (claimSettingsSQL, as
// one statement: a pipeline holds no multi-statement string).
func claimOpening() *pgx.Batch {
	var b pgx.Batch
	b.Queue(beginReadCommittedSQL)
	b.Queue(claimSettingsPipeSQL)
	return &b
}

// claimSettingsSQL sets, for the claim transaction only (SET LOCAL: no
// session state, so behind a transaction pooler too), the planner
// settings under which claimSQL reads each branch's partial index in claim
// order, whatever the statistics: with sorts priced out, the only plan of a
// branch or gate without a sort is the walk of the one index in its ORDER
// BY, and the one sort left (of the three candidates) costs what it costs
// in every plan. On statistics of an empty table every plan looks like one
// row, and the planner otherwise picks among them by rounding: a sort of
// every timed-out execution, or the walk of every suspended one. The price
// of a priced-out sort would start JIT compilation (hundreds of ms), so
// JIT is off. Sequential scans are priced out too, so that a generic plan
// cached while the table was empty still updates the pick through its key
// (execSettingsSQL).
const claimSettingsSQL = `SET LOCAL enable_sort = off; SET LOCAL enable_incremental_sort = off; SET LOCAL jit = off; SET LOCAL enable_seqscan = off`

// claimSettingsPipeSQL is claimSettingsSQL as one statement.
const claimSettingsPipeSQL = `SELECT set_config('enable_sort', 'off', true), set_config('enable_incremental_sort', 'off', true), set_config('jit', 'off', true), set_config('enable_seqscan', 'off', true)`

// inPipeTx is the attempt loop of a pipelined transaction opened by
// opening (a fresh batch per attempt); retries as retryAt.
func (b *Backend) inPipeTx(ctx context.Context, opening func() *pgx.Batch, fn func(*pipeTx) error) error {
	if err := b.usable(); err != nil {
		return err
	}
	return b.attempts(ctx, func(int) error { return b.pipeAttempt(ctx, opening(), fn) })
}

// pipeAttempt is one try of inPipeTx on one connection of the pool. A
// connection whose transaction cannot be rolled back for sure (an error, a
// cancelled context) is closed, and the pool replaces it.
func (b *Backend) pipeAttempt(ctx context.Context, opening *pgx.Batch, fn func(*pipeTx) error) error {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	t := newPipeTx(conn.Conn(), opening)
	err = fn(t)
	if err == nil {
		err = t.commit(ctx)
	}
	if !t.finish(ctx) {
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
	}
	return err
}

// inTx runs fn in one SERIALIZABLE transaction and commits it; lockSQL,
// if not empty, is a LOCK TABLE statement sent with BEGIN (see beginSQL). A
// serialization failure or deadlock, from any statement or from COMMIT,
// rolls back and runs fn again on a fresh transaction, up to maxAttempts in
// all; then it fails with contention / serialization_retry_exhausted. fn
// must hold no state across attempts except what it sets from scratch. Any
// other error (a contract decision of fn included) rolls back and is
// returned, interpreted.
func (b *Backend) inTx(ctx context.Context, lockSQL string, fn func(pgx.Tx) error) error {
	if err := b.usable(); err != nil {
		return err
	}
	return b.retryAt(ctx, pgx.Serializable, lockSQL, fn)
}

// retryAt is the attempt loop of inTx: fn in a transaction
// of the pool at isolation level iso, opened with lockSQL (see beginSQL),
// retried as attempts says.
func (b *Backend) retryAt(ctx context.Context, iso pgx.TxIsoLevel, lockSQL string, fn func(pgx.Tx) error) error {
	return b.attempts(ctx, func(int) error { return b.attempt(ctx, b.pool, iso, lockSQL, fn) })
}

// attempts runs try (attempt 1, 2, 3) until it succeeds, fails other than
// by a serialization failure or deadlock, or failed maxAttempts times,
// backing off between attempts; then it fails with contention /
// serialization_retry_exhausted. It counts every outcome in b.stats.
func (b *Backend) attempts(ctx context.Context, try func(attempt int) error) error {
	for attempt := 1; ; attempt++ {
		err := try(attempt)
		if err == nil {
			b.stats.committed.Add(1)
			return nil
		}
		if !isSerializationFailure(err) {
			return interpretError(err)
		}
		if attempt == maxAttempts {
			b.stats.exhausted.Add(1)
			return contracts.ErrSerializationRetryExhausted.With(
				"the transaction failed to serialize %d times in a row; retry the call", maxAttempts).Wrapping(err)
		}
		b.stats.retries.Add(1)
		if err := backoff(ctx, attempt); err != nil {
			return interpretError(err)
		}
	}
}

// beginSQL starts a transaction at iso and, when lockSQL is not empty,
// runs it as the transaction's first statements, in the same round trip
// (one simple-protocol query): a table lock, or the settings of a claim
// (claimSettingsSQL). Neither takes a snapshot: the snapshot is taken by
// the first statement after them, so a transaction that waited for the
// lock reads what its predecessor committed.
func beginSQL(iso pgx.TxIsoLevel, lockSQL string) string {
	if lockSQL == "" {
		return ""
	}
	return "BEGIN ISOLATION LEVEL " + string(iso) + "; " + lockSQL
}

// attempt is one try of inTx.
func (b *Backend) attempt(ctx context.Context, db beginner, iso pgx.TxIsoLevel, lockSQL string, fn func(pgx.Tx) error) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: iso, BeginQuery: beginSQL(iso, lockSQL)})
	if err != nil {
		return err
	}
	defer func() {
		// After Commit this is a no-op. With ctx done, pgx closes the
		// connection instead, which the pool then discards.
		_ = tx.Rollback(context.WithoutCancel(ctx))
	}()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// backoff sleeps a short random time before the next attempt, so that
// transactions that collided do not collide again in lockstep.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(attempt) * (time.Millisecond + rand.N(4*time.Millisecond))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// isSerializationFailure reports whether err is a serialization failure or
// a deadlock, the errors after which a SERIALIZABLE transaction is retried,
// or a violation of a constraint only a concurrent writer can violate.
func isSerializationFailure(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == sqlstateSerializationFailure || pe.Code == sqlstateDeadlockDetected ||
		pe.Code == sqlstateUniqueViolation && concurrentWriterConstraints[pe.ConstraintName]
}

// concurrentWriterConstraints are the unique constraints that only a
// concurrent writer of the same execution can violate: numbers a
// transaction allocates from a counter it read (a signal's seq and its
// ordinal in its suspension) and the execution's row, which suspend
// inserts after reading that it is absent. Under the execution's lock,
// taken before the reads' snapshots, the reads are current; a violation
// means a snapshot older than the lock (an application's REPEATABLE READ
// or SERIALIZABLE transaction, or a process of an earlier version), so it
// is a serialization failure in substance: retried like one, and answered
// as contention / serialization_retry_exhausted (retryable) when not.
var concurrentWriterConstraints = map[string]bool{
	"ff_signals_execution_id_seq_key": true,
	"ff_signals_suspension_ordinal":   true,
	"ff_executions_pkey":              true,
}

// uniqueViolations maps the unique constraints of the schema to the
// contract error a violation of each means. The operations read before they
// write, so under SERIALIZABLE a concurrent duplicate surfaces as 40001 and
// is retried; these apply when a violation gets through anyway.
var uniqueViolations = map[string]*contracts.Error{
	"ff_keys_pkey":        contracts.ErrRotationConflict.With("new_kid: the kid is already installed; kid names are never reused"),
	"ff_keys_one_current": contracts.ErrRotationConflict.With("new_kid: another kid became current concurrently; retry the call"),
}

// interpretError maps any error of this driver onto the contract's
// *contracts.Error, keeping the native error reachable through Unwrap.
// Contract errors pass unchanged. It is applied on every return path. A
// server error met while connecting (a *pgconn.PgError inside a
// *pgconn.ConnectError, e.g. an unknown role) is mapped as the server error.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	var ce *contracts.Error
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return contracts.ErrExecutionNotFound.With("execution_id: no such execution").Wrapping(err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return interpretPgError(pe, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return contracts.AsError(err)
	}
	if ce, ok := driver.TLSFailure("postgres", err); ok {
		return ce
	}
	if isNetworkError(err) {
		return contracts.ErrBackendUnreachable.With("postgres: the connection failed or was lost").Wrapping(err)
	}
	return contracts.ErrInternal.With("postgres: unexpected error").Wrapping(err)
}

// interpretPgError maps an error the server reported. Details name the
// SQLSTATE but quote the server's message only for classes whose messages
// name objects, never values (a unique violation's detail quotes the key).
func interpretPgError(pe *pgconn.PgError, err error) error {
	switch {
	case pe.Code == sqlstateSerializationFailure || pe.Code == sqlstateDeadlockDetected:
		return contracts.ErrSerializationRetryExhausted.With(
			"postgres: serialization failure (SQLSTATE %s); retry the call", pe.Code).Wrapping(err)
	case pe.Code == "28P01" || pe.Code == "28000" || pe.Code == "42501":
		// invalid_password, invalid_authorization_specification (an unknown
		// role, a pg_hba rejection), insufficient_privilege. The server's
		// message names the role or the object, never the password; the
		// URL is not echoed.
		return contracts.ErrAuthFailed.With(
			"postgres: the server refused the credentials or the permission: %s (SQLSTATE %s)", pe.Message, pe.Code).Wrapping(err)
	case pe.Code == "42P01" || pe.Code == "3F000":
		// undefined_table, invalid_schema_name: the backend checked the
		// schema at Open, so its tables were dropped since (docs/spec.md
		// §6.1). The message names the table, never a value.
		return contracts.ErrStoreReset.With(
			"postgres: the store's tables are gone since this backend opened it: %s (SQLSTATE %s); "+
				"nothing of it is left to serve: restore it, or migrate and seed it again, then restart", pe.Message, pe.Code).Wrapping(err)
	case pe.Code == sqlstateUniqueViolation && concurrentWriterConstraints[pe.ConstraintName]:
		return contracts.ErrSerializationRetryExhausted.With(
			"postgres: a concurrent writer of the execution (SQLSTATE %s); retry the call", pe.Code).Wrapping(err)
	case pe.Code == sqlstateUniqueViolation:
		if ce, ok := uniqueViolations[pe.ConstraintName]; ok {
			return ce.Wrapping(err)
		}
		return contracts.ErrInternal.With("postgres: unique constraint %s violated", pe.ConstraintName).Wrapping(err)
	}
	switch pe.Code[:2] {
	case "08", "57", "53": // connection exception, operator intervention, insufficient resources
		return contracts.ErrBackendUnreachable.With("postgres: %s (SQLSTATE %s)", pe.Message, pe.Code).Wrapping(err)
	case "28", "3D", "3F", "42": // authorization, unknown database or schema, undefined objects
		return contracts.ErrInternal.With("postgres: %s (SQLSTATE %s)", pe.Message, pe.Code).Wrapping(err)
	}
	return contracts.ErrInternal.With("postgres: error SQLSTATE %s", pe.Code).Wrapping(err)
}

// isNetworkError reports whether err means the server could not be reached
// or the connection broke.
func isNetworkError(err error) bool {
	var ne net.Error
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &ne), errors.As(err, &ce):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, pgconn.ErrConnClosed)
}
