package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Version 2 of the waitpoint lifecycle (docs/spec.md §8.1, §8.4–§8.6). Each
// operation is one transaction (a write, or a read snapshot for
// get_waitpoint) at one reading of the clock; the kit decides
// (driver/lifecycle.go) and these functions only read and write rows.

var _ driver.Lifecycle = (*Backend)(nil)

// --- create_waitpoint ------------------------------------------------------

// rememberPending remembers an execution for a new pending waitpoint: an
// unknown one in state none, a remembered one as it is; either way
// pending_expires_at_ms becomes the latest expiry of its pending
// waitpoints.
const rememberPending = `INSERT INTO executions (execution_id, state, pending_expires_at_ms) VALUES (?, 'none', ?)
ON CONFLICT (execution_id) DO UPDATE SET pending_expires_at_ms =
    max(coalesce(pending_expires_at_ms, excluded.pending_expires_at_ms), excluded.pending_expires_at_ms)`

// insertPendingWaitpoint stores a pending waitpoint: no suspension yet, its
// expiry, the fingerprint of its token (never the token) and its tags.
const insertPendingWaitpoint = `INSERT INTO waitpoints (waitpoint_id, execution_id, waitpoint_key, created_at_ms,
    expires_at_ms, token_fingerprint, tags) VALUES (?, ?, ?, ?, ?, ?, ?)`

// CreateWaitpoint opens a pending waitpoint for an execution in state none
// or claimed under args.LeaseID, and signs its token with the current kid,
// in one write transaction (docs/spec.md §8.1). An execution in state none
// whose pending waitpoints all expired is forgotten first. Errors:
// hmac_secret_not_initialized, already_suspended, lease_mismatch,
// waitpoint_limit_exceeded.
func (b *Backend) CreateWaitpoint(ctx context.Context, args contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	return writing(ctx, b, func(q txn, nowMs int64) (contracts.CreateWaitpointOutcome, error) {
		return createWaitpoint(q, args, nowMs)
	})
}

func createWaitpoint(q txn, args contracts.CreateWaitpointArgs, nowMs int64) (contracts.CreateWaitpointOutcome, error) {
	var out contracts.CreateWaitpointOutcome
	k, err := loadKeys(q)
	if err != nil {
		return out, err
	}
	if k.Current == nil {
		return out, driver.NotInitialized()
	}
	e, err := loadLiveExec(q, args.ExecutionID, nowMs)
	if err != nil {
		return out, err
	}
	live := 0
	if e != nil {
		var signals, payloadBytes int64
		if err := q.queryRow(selectPendingPool, e.id, nowMs).Scan(&live, &signals, &payloadBytes); err != nil {
			return out, err
		}
	}
	if err := driver.CheckCreateWaitpoint(e.decision(), args, live); err != nil {
		return out, err
	}
	if k.Current, err = driver.OpenRecord(q.ring, keyPartition, k.Current); err != nil {
		return out, err
	}
	out = driver.NewPendingWaitpoint(args, *k.Current, nowMs)
	if _, err := q.exec(rememberPending, args.ExecutionID, out.ExpiresAtMs); err != nil {
		return out, err
	}
	_, err = q.exec(insertPendingWaitpoint, storedID(out.WaitpointID), args.ExecutionID, out.WaitpointKey, out.CreatedAtMs,
		out.ExpiresAtMs, driver.TokenFingerprint(out.Token), tagsJSON(out.Tags))
	return out, err
}

// --- get_waitpoint ---------------------------------------------------------

// waitpointInfoColumns are what get_waitpoint shows of a waitpoint
// (scanWaitpointRecord reads them); a waitpoint carries its suspension's
// timeout_at_ms, so no other row is read.
const waitpointInfoColumns = `execution_id, waitpoint_id, waitpoint_key, created_at_ms,
    suspension_id IS NULL, expires_at_ms, closed, timeout_at_ms, signal_count, token_fingerprint, tags`

// selectWaitpointInfo reads what get_waitpoint shows of one waitpoint.
const selectWaitpointInfo = `SELECT ` + waitpointInfoColumns + ` FROM waitpoints WHERE waitpoint_id = ?`

// GetWaitpoint describes a waitpoint of the execution from one read
// snapshot (driver.DescribeWaitpoint), never with its token: the
// fingerprint stored when the token was handed out, null for a waitpoint
// opened before schema version 3. waitpoint_not_found when the execution
// has no such waitpoint.
func (b *Backend) GetWaitpoint(ctx context.Context, args contracts.GetWaitpointArgs) (contracts.WaitpointInfo, error) {
	var info contracts.WaitpointInfo
	err := b.read(ctx, func(q txn, nowMs int64) error {
		rec, err := loadWaitpointRecord(q, args.WaitpointID)
		if err != nil {
			return err
		}
		if rec == nil || rec.ExecutionID != args.ExecutionID {
			return driver.WaitpointNotFound(args.ExecutionID, args.WaitpointID)
		}
		info = driver.DescribeWaitpoint(*rec, nowMs)
		return nil
	})
	if err != nil {
		return contracts.WaitpointInfo{}, err
	}
	return info, nil
}

// loadWaitpointRecord returns what get_waitpoint reads of a waitpoint, or
// nil when there is none.
func loadWaitpointRecord(q txn, id string) (*driver.WaitpointRecord, error) {
	rec, err := scanWaitpointRecord(q.queryRow(selectWaitpointInfo, storedID(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return rec, err
}

// scanWaitpointRecord reads one row of waitpointInfoColumns as what
// get_waitpoint reads of a waitpoint (describe_execution reads its
// waitpoints the same way).
func scanWaitpointRecord(row interface{ Scan(...any) error }) (*driver.WaitpointRecord, error) {
	var rec driver.WaitpointRecord
	var expires, timeout sql.NullInt64
	var fingerprint, tags sql.NullString
	err := row.Scan(&rec.ExecutionID, scanID{&rec.WaitpointID}, &rec.WaitpointKey,
		&rec.CreatedAtMs, &rec.Pending, &expires, &rec.SuspensionClosed, &timeout, &rec.Signals, &fingerprint, &tags)
	if err != nil {
		return nil, err
	}
	rec.PendingExpiresAtMs, rec.TokenFingerprint = expires.Int64, fingerprint.String
	if timeout.Valid {
		rec.TimeoutAtMs = &timeout.Int64
	}
	if rec.Tags, err = scanTags(tags); err != nil {
		return nil, err
	}
	return &rec, nil
}

// --- extend_lease, release_execution ---------------------------------------

const setLease = `UPDATE executions SET lease_id = ?, lease_expires_at_ms = ?, overdue = 0 WHERE execution_id = ?`

// ExtendLease moves the lease of a claimed execution to now + args.LeaseMs
// in one write transaction (docs/spec.md §8.4). Errors
// (driver.CheckLeaseHolder): execution_not_found, lease_mismatch; an
// expired lease nobody re-claimed still extends.
func (b *Backend) ExtendLease(ctx context.Context, args contracts.ExtendLeaseArgs) (contracts.ExtendLeaseOutcome, error) {
	var expiresAtMs int64
	err := b.write(ctx, func(q txn, nowMs int64) error {
		if err := checkLeaseHolder(q, args.ExecutionID, args.LeaseID); err != nil {
			return err
		}
		expiresAtMs = nowMs + args.LeaseMs
		_, err := q.exec(setLease, storedID(args.LeaseID), expiresAtMs, args.ExecutionID)
		return err
	})
	if err != nil {
		return contracts.ExtendLeaseOutcome{}, err
	}
	return contracts.ExtendLeaseOutcome{Outcome: contracts.OutcomeExtended, ExecutionID: args.ExecutionID, LeaseExpiresAtMs: expiresAtMs}, nil
}

// ReleaseExecution gives a claimed execution back in one write
// transaction: it stores a lease nobody holds, expired since now - 1
// (driver.ReleasedLease), so the execution is claimable at once with its
// claim reason and args.LeaseID holds nothing any more (docs/spec.md §8.4).
// Errors as ExtendLease.
func (b *Backend) ReleaseExecution(ctx context.Context, args contracts.ReleaseArgs) (contracts.ReleaseOutcome, error) {
	err := b.write(ctx, func(q txn, nowMs int64) error {
		if err := checkLeaseHolder(q, args.ExecutionID, args.LeaseID); err != nil {
			return err
		}
		leaseID, expiresAtMs := driver.ReleasedLease(nowMs)
		_, err := q.exec(setLease, storedID(leaseID), expiresAtMs, args.ExecutionID)
		return err
	})
	if err != nil {
		return contracts.ReleaseOutcome{}, err
	}
	return contracts.ReleaseOutcome{Outcome: contracts.OutcomeReleased, ExecutionID: args.ExecutionID}, nil
}

// checkLeaseHolder decides the lease rules of extend and release
// (driver.CheckLeaseHolder) on the execution's row.
func checkLeaseHolder(q txn, executionID, leaseID string) error {
	e, err := loadExec(q, executionID)
	if err != nil {
		return err
	}
	return driver.CheckLeaseHolder(e.decision(), executionID, leaseID)
}

// --- cancel_suspension -----------------------------------------------------

const cancelExec = `UPDATE executions SET state = 'resumed', reason = 'cancelled', overdue = 0 WHERE execution_id = ?`

// CancelSuspension closes every waitpoint of a suspended execution's
// suspension and makes it claimable with reason cancelled, in one write
// transaction (docs/spec.md §8.5): a delivery that would resume it runs in
// another transaction, before or after, so exactly one of the two wins.
// Errors (driver.CheckCancel): execution_not_found, not_suspended.
func (b *Backend) CancelSuspension(ctx context.Context, args contracts.CancelArgs) (contracts.CancelOutcome, error) {
	var suspensionID string
	err := b.write(ctx, func(q txn, _ int64) error {
		e, err := loadExec(q, args.ExecutionID)
		if err != nil {
			return err
		}
		if err := driver.CheckCancel(e.decision(), args.ExecutionID); err != nil {
			return err
		}
		suspensionID = e.suspensionID
		if _, err := q.exec(cancelExec, e.id); err != nil {
			return err
		}
		return closeSuspension(q, e)
	})
	if err != nil {
		return contracts.CancelOutcome{}, err
	}
	return contracts.CancelOutcome{Outcome: contracts.OutcomeCancelled, ExecutionID: args.ExecutionID, SuspensionID: suspensionID}, nil
}
