package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Version 2 of the waitpoint lifecycle (docs/spec.md §8.1, §8.4–§8.6). Every
// writing operation here is one transaction under the execution's locks
// (inExecTx), like suspend and deliver_signal: operations on one execution
// run one at a time, and a claim skips (or waits for) the execution's row
// while one holds it, so a cancel racing a delivery, or an extend or
// release racing a re-claim, is decided by whichever comes first, and the
// other sees its effect.
var _ driver.Lifecycle = (*Backend)(nil)

// createRememberedSQL starts remembering an execution in state none (the empty state),
// without a suspension, or does nothing (no row) when it is remembered.
const createRememberedSQL = `INSERT INTO ff_executions (execution_id, state) VALUES ($1, '')
ON CONFLICT (execution_id) DO NOTHING
RETURNING true`

// createWaitpointStateSQL reads what create_waitpoint decides on for an
// existing execution at $2: its state and lease; in state none, the latest
// expiry of its pending waitpoints (driver.ForgetsExpiredPending); and the
// number of its live pending waitpoints (unused, not past expires_at_ms),
// one range of ff_waitpoints_pending.
const createWaitpointStateSQL = `SELECT e.state, e.lease_id,
       CASE WHEN e.state = '' THEN ` + lastPendingExpirySQL + ` END,
       (SELECT count(*) FROM ff_waitpoints p
        WHERE p.execution_id = e.execution_id AND p.expires_at_ms >= $2 AND p.suspension_id IS NULL)
FROM ff_executions e WHERE e.execution_id = $1`

// insertPendingSQL opens a pending waitpoint: no suspension, expiring at
// $5, with the fingerprint of its token ($6, never the token) and the
// tags of create_waitpoint ($7).
const insertPendingSQL = `INSERT INTO ff_waitpoints (waitpoint_id, waitpoint_key, execution_id, suspension_id, created_at_ms,
                           expires_at_ms, token_fingerprint, tags)
VALUES ($1, $2, $3, NULL, $4, $5, ff_fingerprint_in($6), nullif($7::text[], '{}'))`

// waitpointColumnsSQL are the columns of waitpoint w of execution e that
// waitpointRow scans (NULLs: no waitpoint), with whether its suspension is
// closed (it is not the open one of a suspended execution), read from e.
const waitpointColumnsSQL = `w.waitpoint_key, w.created_at_ms, w.suspension_id IS NULL, w.expires_at_ms,
       NOT coalesce(e.suspension_id = w.suspension_id AND e.state = 'suspended', false),
       w.timeout_at_ms, w.signal_count, ff_fingerprint_out(w.token_fingerprint), coalesce(w.tags, '{}')`

// getWaitpointSQL reads the clock and one waitpoint of execution $1 (NULLs:
// none) in one statement.
const getWaitpointSQL = `SELECT n.now_ms, ` + waitpointColumnsSQL + `
FROM (SELECT ` + nowMsExpr + ` AS now_ms) n
LEFT JOIN ff_waitpoints w ON w.waitpoint_id = ff_uuid($2) AND w.execution_id = $1
LEFT JOIN ff_executions e ON e.execution_id = w.execution_id`

// waitpointRow is what waitpointColumnsSQL reads of one waitpoint; key is
// nil when the row holds none (a LEFT JOIN without match).
type waitpointRow struct {
	key, fingerprint         *string
	createdAtMs, expiresAtMs *int64
	pending, closed          *bool
	timeoutAtMs              *int64
	signals                  *int
	tags                     []string
}

// dest returns the scan destinations of waitpointColumnsSQL, in its order.
func (r *waitpointRow) dest() []any {
	return []any{&r.key, &r.createdAtMs, &r.pending, &r.expiresAtMs, &r.closed, &r.timeoutAtMs, &r.signals, &r.fingerprint, &r.tags}
}

// record returns what get_waitpoint reads of waitpoint waitpointID of
// executionID, whose row r is (r.key not nil).
func (r *waitpointRow) record(executionID, waitpointID string) driver.WaitpointRecord {
	rec := driver.WaitpointRecord{
		WaitpointRef: driver.WaitpointRef{ExecutionID: executionID, WaitpointID: waitpointID, WaitpointKey: *r.key, CreatedAtMs: *r.createdAtMs},
		Pending:      *r.pending, SuspensionClosed: *r.closed, TimeoutAtMs: r.timeoutAtMs,
		Signals: *r.signals, TokenFingerprint: deref(r.fingerprint), Tags: r.tags,
	}
	if rec.Pending {
		rec.PendingExpiresAtMs = *r.expiresAtMs
	}
	return rec
}

// setLeaseSQL sets the lease of a claimed execution: extend_lease moves its
// expiry ($3), release_execution also replaces its id ($2) by one nobody
// holds (driver.ReleasedLease). The state and reason stay.
const setLeaseSQL = `UPDATE ff_executions SET lease_id = $2, lease_expires_at_ms = $3 WHERE execution_id = $1`

// cancelSQL resumes a suspended execution with reason cancelled, which
// closes its suspension's waitpoints (none is open once the state leaves
// suspended) and keeps its signals for the claim, and delists it from
// list_suspended by tag.
const cancelSQL = `WITH t AS (DELETE FROM ff_suspension_tags WHERE execution_id = $1)
UPDATE ff_executions SET state = 'resumed', reason = 'cancelled' WHERE execution_id = $1`

// leaseRow is what leaseSQL reads.
type leaseRow struct {
	id           string
	nowMs        int64
	exists       bool
	st           *string
	leaseID      *string
	reason       *string
	suspensionID *string
}

// readLease reads the clock and the execution's state, lease, reason and
// latest suspension (leaseSQL).
func readLease(ctx context.Context, tx dbtx, executionID string) (leaseRow, error) {
	l := leaseRow{id: executionID}
	err := tx.QueryRow(ctx, leaseSQL, executionID).Scan(&l.nowMs, &l.exists, &l.st, &l.leaseID, &l.reason, &l.suspensionID)
	return l, err
}

// state is what the kit's decisions read of l; nil when not remembered.
func (l leaseRow) state() *driver.ExecutionState {
	if !l.exists {
		return nil
	}
	e := &driver.ExecutionState{ID: l.id, State: deref(l.st)}
	e.LeaseID, e.Reason = deref(l.leaseID), deref(l.reason)
	return e
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// CreateWaitpoint opens a pending waitpoint (docs/spec.md §8.1) for an
// execution in state none, which it starts remembering, or claimed under
// args.LeaseID, and signs its token with the current kid; the row keeps
// the token's fingerprint, never the token. An execution in state none
// whose pending waitpoints all expired is forgotten first. Errors, in this
// order: hmac_secret_not_initialized, already_suspended, lease_mismatch,
// waitpoint_limit_exceeded (driver.CheckCreateWaitpoint). Not idempotent.
// One transaction under the execution's locks (inExecTx).
func (b *Backend) CreateWaitpoint(ctx context.Context, args contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	var out contracts.CreateWaitpointOutcome
	ring := b.keyring.Load()
	err := b.inExecTx(ctx, args.ExecutionID, func(tx *pipeTx) error {
		var err error
		out, err = createWaitpoint(ctx, tx, ring, args)
		return err
	})
	if err != nil {
		return contracts.CreateWaitpointOutcome{}, interpretError(err)
	}
	return out, nil
}

// createWaitpoint is one attempt of create_waitpoint in tx.
func createWaitpoint(ctx context.Context, tx dbtx, ring *kek.Keyring, args contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	nowMs, current, err := currentKey(ctx, tx, ring)
	if err != nil {
		return contracts.CreateWaitpointOutcome{}, err
	}
	e, live, err := rememberForWaitpoint(ctx, tx, args.ExecutionID, nowMs)
	if err != nil {
		return contracts.CreateWaitpointOutcome{}, err
	}
	if err := driver.CheckCreateWaitpoint(e, args, live); err != nil {
		return contracts.CreateWaitpointOutcome{}, err
	}
	out := driver.NewPendingWaitpoint(args, current, nowMs)
	_, err = tx.Exec(ctx, insertPendingSQL, out.WaitpointID, out.WaitpointKey, args.ExecutionID, out.CreatedAtMs,
		out.ExpiresAtMs, driver.TokenFingerprint(out.Token), tagsParam(out.Tags))
	return out, err
}

// rememberForWaitpoint makes sure the execution is remembered and returns
// what create_waitpoint decides on at nowMs: its state (nil: it was not
// remembered, or was forgotten because its pending waitpoints all expired,
// and is remembered afresh in state none) and its live pending waitpoints.
// A decision that refuses rolls the rows written here back.
func rememberForWaitpoint(ctx context.Context, tx dbtx, executionID string, nowMs int64) (*driver.ExecutionState, int, error) {
	created, err := createRemembered(ctx, tx, executionID)
	if err != nil || created {
		return nil, 0, err
	}
	e := &driver.ExecutionState{ID: executionID}
	var (
		lease *string
		last  *int64
		live  int
	)
	if err := tx.QueryRow(ctx, createWaitpointStateSQL, executionID, nowMs).Scan(&e.State, &lease, &last, &live); err != nil {
		return nil, 0, err
	}
	if last != nil && driver.ForgetsExpiredPending(e.State, *last, nowMs) {
		if _, err := tx.Exec(ctx, forgetExecutionSQL, executionID); err != nil {
			return nil, 0, err
		}
		_, err := createRemembered(ctx, tx, executionID)
		return nil, 0, err
	}
	e.LeaseID = deref(lease)
	return e, live, nil
}

// createRemembered runs createRememberedSQL and reports whether it made
// the row.
func createRemembered(ctx context.Context, tx dbtx, executionID string) (bool, error) {
	var created bool
	err := tx.QueryRow(ctx, createRememberedSQL, executionID).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return created, err
}

// GetWaitpoint describes one waitpoint of the execution, pending or of any
// of its remembered suspensions (driver.DescribeWaitpoint), with its
// token's fingerprint (null for waitpoints opened before migration 0005)
// and never the token; waitpoint_not_found when the execution has no such
// waitpoint. One statement; it writes nothing.
func (b *Backend) GetWaitpoint(ctx context.Context, args contracts.GetWaitpointArgs) (contracts.WaitpointInfo, error) {
	if err := b.usable(); err != nil {
		return contracts.WaitpointInfo{}, err
	}
	var (
		nowMs int64
		w     waitpointRow
	)
	err := b.pool.QueryRow(ctx, getWaitpointSQL, args.ExecutionID, args.WaitpointID).Scan(append([]any{&nowMs}, w.dest()...)...)
	if err != nil {
		return contracts.WaitpointInfo{}, interpretError(err)
	}
	if w.key == nil {
		return contracts.WaitpointInfo{}, driver.WaitpointNotFound(args.ExecutionID, args.WaitpointID)
	}
	return driver.DescribeWaitpoint(w.record(args.ExecutionID, args.WaitpointID), nowMs), nil
}

// ExtendLease sets the lease of a claimed execution to expire at now +
// args.LeaseMs (docs/spec.md §8.4). Lease rules as complete_execution
// (driver.CheckLeaseHolder): an expired lease nobody re-claimed still
// extends; once re-claimed, lease_mismatch. One transaction under the
// execution's locks (inExecTx).
func (b *Backend) ExtendLease(ctx context.Context, args contracts.ExtendLeaseArgs) (contracts.ExtendLeaseOutcome, error) {
	var expires int64
	err := b.inExecTx(ctx, args.ExecutionID, func(tx *pipeTx) error {
		l, err := readLease(ctx, tx, args.ExecutionID)
		if err != nil {
			return err
		}
		if err := driver.CheckLeaseHolder(l.state(), args.ExecutionID, args.LeaseID); err != nil {
			return err
		}
		expires = l.nowMs + args.LeaseMs
		_, err = tx.Exec(ctx, setLeaseSQL, args.ExecutionID, args.LeaseID, expires)
		return err
	})
	if err != nil {
		return contracts.ExtendLeaseOutcome{}, interpretError(err)
	}
	return contracts.ExtendLeaseOutcome{Outcome: contracts.OutcomeExtended, ExecutionID: args.ExecutionID, LeaseExpiresAtMs: expires}, nil
}

// ReleaseExecution gives a claimed execution back (docs/spec.md §8.4): it
// stores a fresh lease id nobody holds, expired since now-1
// (driver.ReleasedLease), so the execution is claimable at once with its
// claim reason and args.LeaseID holds nothing. Lease rules as
// complete_execution. One transaction under the execution's locks
// (inExecTx).
func (b *Backend) ReleaseExecution(ctx context.Context, args contracts.ReleaseArgs) (contracts.ReleaseOutcome, error) {
	err := b.inExecTx(ctx, args.ExecutionID, func(tx *pipeTx) error {
		l, err := readLease(ctx, tx, args.ExecutionID)
		if err != nil {
			return err
		}
		if err := driver.CheckLeaseHolder(l.state(), args.ExecutionID, args.LeaseID); err != nil {
			return err
		}
		leaseID, expires := driver.ReleasedLease(l.nowMs)
		if _, err = tx.Exec(ctx, setLeaseSQL, args.ExecutionID, leaseID, expires); err != nil {
			return err
		}
		return notifyClaimable(ctx, tx)
	})
	if err != nil {
		return contracts.ReleaseOutcome{}, interpretError(err)
	}
	return contracts.ReleaseOutcome{Outcome: contracts.OutcomeReleased, ExecutionID: args.ExecutionID}, nil
}

// CancelSuspension closes the waitpoints of a suspended execution (past its
// timeout included) and makes it claimable with reason cancelled, its
// signals staying for the claim (docs/spec.md §8.5). Errors
// (driver.CheckCancel): execution_not_found, not_suspended. One
// transaction under the execution's locks (inExecTx).
func (b *Backend) CancelSuspension(ctx context.Context, args contracts.CancelArgs) (contracts.CancelOutcome, error) {
	var suspensionID string
	err := b.inExecTx(ctx, args.ExecutionID, func(tx *pipeTx) error {
		l, err := readLease(ctx, tx, args.ExecutionID)
		if err != nil {
			return err
		}
		if err := driver.CheckCancel(l.state(), args.ExecutionID); err != nil {
			return err
		}
		suspensionID = deref(l.suspensionID)
		if _, err = tx.Exec(ctx, cancelSQL, args.ExecutionID); err != nil {
			return err
		}
		return notifyClaimable(ctx, tx)
	})
	if err != nil {
		return contracts.CancelOutcome{}, interpretError(err)
	}
	return contracts.CancelOutcome{Outcome: contracts.OutcomeCancelled, ExecutionID: args.ExecutionID, SuspensionID: suspensionID}, nil
}
