package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// execRow is the executions row of one execution.
type execRow struct {
	id               string
	state            string
	suspensionID     string
	condition        string
	suspendedAtMs    int64
	timeoutAtMs      *int64
	waitpointCount   int
	signalCount      int
	signalSeq        int64
	reason           sql.NullString
	leaseID          sql.NullString
	leaseExpiresAtMs sql.NullInt64
}

const execColumns = `execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms,
    waitpoint_count, signal_count, signal_seq, reason, lease_id, lease_expires_at_ms`

const selectExec = `SELECT ` + execColumns + ` FROM executions WHERE execution_id = ?`

func scanExec(row interface{ Scan(...any) error }) (*execRow, error) {
	var e execRow
	var timeout sql.NullInt64
	err := row.Scan(&e.id, &e.state, &e.suspensionID, &e.condition, &e.suspendedAtMs, &timeout,
		&e.waitpointCount, &e.signalCount, &e.signalSeq, &e.reason, &e.leaseID, &e.leaseExpiresAtMs)
	if err != nil {
		return nil, err
	}
	if timeout.Valid {
		e.timeoutAtMs = &timeout.Int64
	}
	return &e, nil
}

// loadExec returns the execution's row, or nil when it is not remembered.
func loadExec(q txn, id string) (*execRow, error) {
	e, err := scanExec(q.queryRow(selectExec, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return e, err
}

// decision returns what the contract's decisions read of the execution; nil
// (state none) for a nil row.
func (e *execRow) decision() *driver.ExecutionState {
	if e == nil {
		return nil
	}
	return &driver.ExecutionState{
		ID: e.id, State: e.state, TimeoutAtMs: e.timeoutAtMs, LeaseID: e.leaseID.String,
		LeaseExpiresAtMs: e.leaseExpiresAtMs.Int64, Reason: e.reason.String,
	}
}

// --- suspend ---------------------------------------------------------------

const selectSuspendRecord = `SELECT fingerprint, outcome FROM suspend_idempotency
    WHERE execution_id = ? AND idempotency_key = ?`

const insertSuspendRecord = `INSERT INTO suspend_idempotency (execution_id, idempotency_key, fingerprint, outcome)
    VALUES (?, ?, ?, ?)`

// upsertSuspended makes the execution suspended on a new suspension: the
// per-suspension fields are replaced, the lease and reason dropped, and
// signal_seq (the execution's delivery order) kept.
const upsertSuspended = `INSERT INTO executions (execution_id, state, suspension_id, condition,
    suspended_at_ms, timeout_at_ms, waitpoint_count, signal_count, signal_seq, reason, lease_id, lease_expires_at_ms)
VALUES (?, 'suspended', ?, ?, ?, ?, ?, 0, 0, NULL, NULL, NULL)
ON CONFLICT (execution_id) DO UPDATE SET
    state = 'suspended', suspension_id = excluded.suspension_id, condition = excluded.condition,
    suspended_at_ms = excluded.suspended_at_ms, timeout_at_ms = excluded.timeout_at_ms,
    waitpoint_count = excluded.waitpoint_count, signal_count = 0,
    reason = NULL, lease_id = NULL, lease_expires_at_ms = NULL`

const insertWaitpoint = `INSERT INTO waitpoints (waitpoint_id, execution_id, suspension_id, waitpoint_key,
    position, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)`

// Suspend opens 1–16 waitpoints for an execution and signs their tokens with
// the current kid, in one write transaction (docs/spec.md §5.1 gives the
// order of checks). A replay with the same idempotency key returns the stored
// JSON outcome, byte for byte, for as long as the execution is remembered.
func (b *Backend) Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	err := b.write(ctx, func(q txn, nowMs int64) error {
		var err error
		out, err = suspend(q, args, nowMs)
		return err
	})
	if err != nil {
		return contracts.SuspendOutcome{}, err
	}
	return out, nil
}

func suspend(q txn, args contracts.SuspendArgs, nowMs int64) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	k, err := loadKeys(q)
	if err != nil {
		return out, err
	}
	if k.Current == nil {
		return out, driver.NotInitialized()
	}
	if replay, found, err := replaySuspend(q, args); found || err != nil {
		return replay, err
	}
	e, err := loadExec(q, args.ExecutionID)
	if err != nil {
		return out, err
	}
	if err := driver.CheckSuspend(e.decision(), args.LeaseID); err != nil {
		return out, err
	}
	// Opened only now: a replay returns the stored outcome without a secret.
	if k.Current, err = driver.OpenRecord(q.ring, keyPartition, k.Current); err != nil {
		return out, err
	}
	out = driver.NewSuspension(args, *k.Current, nowMs)
	err = storeSuspension(q, out)
	if err != nil || args.IdempotencyKey == "" {
		return out, err
	}
	stored, err := json.Marshal(out)
	if err != nil {
		return out, err
	}
	_, err = q.exec(insertSuspendRecord, args.ExecutionID, args.IdempotencyKey, args.Fingerprint(), stored)
	return out, err
}

// replaySuspend looks up the suspend idempotency record: found with the same
// fingerprint gives the stored outcome, another fingerprint
// idempotency_mismatch.
func replaySuspend(q txn, args contracts.SuspendArgs) (contracts.SuspendOutcome, bool, error) {
	var out contracts.SuspendOutcome
	if args.IdempotencyKey == "" {
		return out, false, nil
	}
	var fingerprint string
	var stored []byte
	err := q.queryRow(selectSuspendRecord, args.ExecutionID, args.IdempotencyKey).Scan(&fingerprint, &stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return out, false, nil
	case err != nil:
		return out, false, err
	}
	if err := driver.CheckSuspendReplay(fingerprint, args); err != nil {
		return out, true, err
	}
	return out, true, json.Unmarshal(stored, &out)
}

// storeSuspension writes a planned suspension: the execution becomes
// suspended on it, and its waitpoints are inserted in order.
func storeSuspension(q txn, out contracts.SuspendOutcome) error {
	_, err := q.exec(upsertSuspended, out.ExecutionID, out.SuspensionID, out.Condition,
		out.SuspendedAtMs, nullInt(out.TimeoutAtMs), len(out.Waitpoints))
	if err != nil {
		return err
	}
	for i, w := range out.Waitpoints {
		if _, err := q.exec(insertWaitpoint, w.WaitpointID, out.ExecutionID, out.SuspensionID, w.WaitpointKey, i, w.CreatedAtMs); err != nil {
			return err
		}
	}
	return nil
}

// --- deliver_signal --------------------------------------------------------

// waitpointRow is what delivery needs of a waitpoint.
type waitpointRow struct {
	ref          driver.WaitpointRef
	suspensionID string
	closed       bool
}

const selectWaitpoint = `SELECT execution_id, waitpoint_id, waitpoint_key, created_at_ms, suspension_id, closed
    FROM waitpoints WHERE waitpoint_id = ?`

const selectDuplicate = `SELECT signal_id FROM signals WHERE waitpoint_id = ? AND idempotency_key = ?`

const insertSignal = `INSERT INTO signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key,
    name, payload, idempotency_key, delivered_at_ms, sequence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const (
	countSignal     = `UPDATE waitpoints SET signal_count = signal_count + 1 WHERE waitpoint_id = ?`
	countExecSignal = `UPDATE executions SET signal_count = signal_count + 1, signal_seq = signal_seq + 1
    WHERE execution_id = ?`
	countSignaled   = `SELECT count(*) FROM waitpoints WHERE suspension_id = ? AND signal_count > 0`
	resumeExec      = `UPDATE executions SET state = 'resumed', reason = 'signal' WHERE execution_id = ?`
	closeWaitpoints = `UPDATE waitpoints SET closed = 1 WHERE suspension_id = ?`
)

// DeliverSignal records a signal exactly once per (waitpoint_id,
// idempotency_key) and resumes the execution when its condition holds,
// closing every waitpoint of the suspension, all in one write transaction.
// Checks run in the order of docs/spec.md §5.
func (b *Backend) DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	var out contracts.DeliverSignalOutcome
	err := b.write(ctx, func(q txn, nowMs int64) error {
		var err error
		out, err = deliver(q, args, nowMs)
		return err
	})
	if err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	return out, nil
}

func deliver(q txn, args contracts.DeliverSignalArgs, nowMs int64) (contracts.DeliverSignalOutcome, error) {
	var out contracts.DeliverSignalOutcome
	w, err := authorize(q, args, nowMs)
	if err != nil {
		return out, err
	}
	if args.IdempotencyKey != "" {
		var id string
		err := q.queryRow(selectDuplicate, w.ref.WaitpointID, args.IdempotencyKey).Scan(&id)
		if err == nil {
			return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: id}, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return out, err
		}
	}
	e, err := loadExec(q, w.ref.ExecutionID)
	if err != nil {
		return out, err
	}
	if e == nil { // cannot happen: waitpoints are deleted with their execution
		return out, driver.WaitpointClosed()
	}
	// An open waitpoint belongs to the execution's latest suspension, which is
	// suspended; the extra conditions only guard that invariant.
	closed := w.closed || e.suspensionID != w.suspensionID || e.state != contracts.StateSuspended
	if err := driver.CheckDeliverable(closed, e.timeoutAtMs, driver.SignalBudget{SuspensionSignals: e.signalCount}, args, nowMs); err != nil {
		return out, err
	}
	sig := driver.NewSignal(w.ref, args, nowMs)
	if err := recordSignal(q, sig, e); err != nil {
		return out, err
	}
	resumed, err := resumeIfDue(q, e)
	if err != nil {
		return out, err
	}
	return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: sig.SignalID, Resumed: resumed}, nil
}

// authorize runs checks 1 and 2 of deliver_signal (driver.AuthorizeSignal)
// against the keystore and the waitpoint row, if any.
func authorize(q txn, args contracts.DeliverSignalArgs, nowMs int64) (*waitpointRow, error) {
	k, err := loadKeys(q)
	if err != nil {
		return nil, err
	}
	if k, err = openVerifying(q, k, args.Token, nowMs); err != nil {
		return nil, err
	}
	var w waitpointRow
	err = q.queryRow(selectWaitpoint, args.WaitpointID).Scan(
		&w.ref.ExecutionID, &w.ref.WaitpointID, &w.ref.WaitpointKey, &w.ref.CreatedAtMs, &w.suspensionID, &w.closed)
	ref := &w.ref
	switch {
	case errors.Is(err, sql.ErrNoRows):
		ref = nil
	case err != nil:
		return nil, err
	}
	if err := driver.AuthorizeSignal(args, k, ref, nowMs); err != nil {
		return nil, err
	}
	return &w, nil
}

// recordSignal stores the signal with the execution's next sequence number
// and counts it on the waitpoint and the suspension.
func recordSignal(q txn, sig contracts.Signal, e *execRow) error {
	var payload, key any
	if len(sig.Payload) > 0 {
		payload = []byte(sig.Payload)
	}
	if sig.IdempotencyKey != "" {
		key = sig.IdempotencyKey
	}
	_, err := q.exec(insertSignal, sig.SignalID, e.id, e.suspensionID, sig.WaitpointID, sig.WaitpointKey,
		sig.Name, payload, key, sig.DeliveredAtMs, e.signalSeq+1)
	if err != nil {
		return err
	}
	if _, err := q.exec(countSignal, sig.WaitpointID); err != nil {
		return err
	}
	_, err = q.exec(countExecSignal, e.id)
	return err
}

// resumeIfDue resumes the execution when its condition holds after a signal
// (driver.ConditionHolds over the waitpoints holding a signal). Resuming
// closes every waitpoint of the suspension.
func resumeIfDue(q txn, e *execRow) (bool, error) {
	signaled := e.waitpointCount // "any" counts nothing
	if e.condition == contracts.ConditionAll {
		if err := q.queryRow(countSignaled, e.suspensionID).Scan(&signaled); err != nil {
			return false, err
		}
	}
	if !driver.ConditionHolds(e.condition, signaled, e.waitpointCount) {
		return false, nil
	}
	if _, err := q.exec(resumeExec, e.id); err != nil {
		return false, err
	}
	_, err := q.exec(closeWaitpoints, e.suspensionID)
	return err == nil, err
}

// --- observe_signals -------------------------------------------------------

// selectSignals lists a suspension's signals in delivery order.
const selectSignals = `SELECT signal_id, waitpoint_id, waitpoint_key, name, payload, idempotency_key, delivered_at_ms
    FROM signals WHERE suspension_id = ? ORDER BY sequence`

func loadSignals(q txn, suspensionID string) ([]contracts.Signal, error) {
	rows, err := q.query(selectSignals, suspensionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []contracts.Signal{}
	for rows.Next() {
		var s contracts.Signal
		var payload []byte
		var key sql.NullString
		if err := rows.Scan(&s.SignalID, &s.WaitpointID, &s.WaitpointKey, &s.Name, &payload, &key, &s.DeliveredAtMs); err != nil {
			return nil, err
		}
		if len(payload) > 0 {
			s.Payload = json.RawMessage(payload)
		}
		s.IdempotencyKey = key.String
		out = append(out, s)
	}
	return out, rows.Err()
}

// ObserveSignals returns the signals of the execution's latest suspension in
// delivery order, from one read snapshot.
func (b *Backend) ObserveSignals(ctx context.Context, args contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	var res contracts.ObserveSignalsResult
	err := b.read(ctx, func(q txn, _ int64) error {
		e, err := loadExec(q, args.ExecutionID)
		if err != nil {
			return err
		}
		if e == nil {
			return driver.ExecutionNotFound(args.ExecutionID)
		}
		signals, err := loadSignals(q, e.suspensionID)
		res = contracts.ObserveSignalsResult{ExecutionID: e.id, SuspensionID: e.suspensionID, Signals: signals}
		return err
	})
	if err != nil {
		return contracts.ObserveSignalsResult{}, err
	}
	return res, nil
}

// --- list_suspended --------------------------------------------------------

// selectSuspendedPage reads limit+1 suspended executions strictly after the
// cursor (row-value comparison, served by executions_by_state).
const selectSuspendedPage = `SELECT execution_id, suspension_id, suspended_at_ms, timeout_at_ms, waitpoint_count
    FROM executions
    WHERE state = 'suspended' AND (suspended_at_ms, execution_id) > (?, ?)
    ORDER BY suspended_at_ms, execution_id
    LIMIT ?`

// ListSuspended pages through executions in state suspended, ordered by
// (suspended_at_ms, execution_id), strictly after the cursor.
func (b *Backend) ListSuspended(ctx context.Context, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	after := contracts.Cursor{SuspendedAtMs: -1}
	if args.Cursor != "" {
		c, err := contracts.DecodeCursor(args.Cursor)
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		after = c
	}
	var rows []contracts.SuspendedExecution
	err := b.read(ctx, func(q txn, _ int64) error {
		var err error
		rows, err = suspendedPage(q, after, args.Limit+1)
		return err
	})
	if err != nil {
		return contracts.ListSuspendedResult{}, err
	}
	return driver.PageSuspended(rows, args.Limit), nil
}

func suspendedPage(q txn, after contracts.Cursor, n int) ([]contracts.SuspendedExecution, error) {
	rows, err := q.query(selectSuspendedPage, after.SuspendedAtMs, after.ExecutionID, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []contracts.SuspendedExecution{}
	for rows.Next() {
		var s contracts.SuspendedExecution
		var timeout sql.NullInt64
		if err := rows.Scan(&s.ExecutionID, &s.SuspensionID, &s.SuspendedAtMs, &timeout, &s.Waitpoints); err != nil {
			return nil, err
		}
		if timeout.Valid {
			s.TimeoutAtMs = &timeout.Int64
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// --- claim_resumed_execution -----------------------------------------------

// selectClaimable finds the oldest claimable execution by (suspended_at_ms,
// execution_id): resumed, suspended past its timeout, or claimed past its
// lease. Each branch is served by its own index and yields at most one row.
const selectClaimable = `SELECT ` + execColumns + ` FROM (
    SELECT * FROM (SELECT * FROM executions WHERE state = 'resumed'
        ORDER BY suspended_at_ms, execution_id LIMIT 1)
    UNION ALL
    SELECT * FROM (SELECT * FROM executions WHERE state = 'suspended' AND timeout_at_ms IS NOT NULL AND timeout_at_ms < ?1
        ORDER BY suspended_at_ms, execution_id LIMIT 1)
    UNION ALL
    SELECT * FROM (SELECT * FROM executions WHERE state = 'claimed' AND lease_expires_at_ms IS NOT NULL AND lease_expires_at_ms < ?1
        ORDER BY suspended_at_ms, execution_id LIMIT 1)
) ORDER BY suspended_at_ms, execution_id LIMIT 1`

const claimExec = `UPDATE executions SET state = 'claimed', reason = ?, lease_id = ?, lease_expires_at_ms = ?
    WHERE execution_id = ?`

// ClaimResumedExecution leases the oldest claimable execution in one write
// transaction, so each claimable execution goes to exactly one caller. A
// timeout claim closes the waitpoints; a re-claim after an expired lease
// keeps the reason.
func (b *Backend) ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	var out contracts.ClaimOutcome
	err := b.write(ctx, func(q txn, nowMs int64) error {
		var err error
		out, err = claim(q, args, nowMs)
		return err
	})
	if err != nil {
		return contracts.ClaimOutcome{}, err
	}
	return out, nil
}

func claim(q txn, args contracts.ClaimArgs, nowMs int64) (contracts.ClaimOutcome, error) {
	e, err := scanExec(q.queryRow(selectClaimable, nowMs))
	if errors.Is(err, sql.ErrNoRows) {
		return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, nil
	}
	if err != nil {
		return contracts.ClaimOutcome{}, err
	}
	reason, ok := e.decision().Claimable(nowMs)
	if !ok { // cannot happen: selectClaimable encodes the same rule
		return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, nil
	}
	out := contracts.ClaimOutcome{
		Outcome: contracts.OutcomeClaimed, ExecutionID: e.id, SuspensionID: e.suspensionID, Reason: reason,
		LeaseID: driver.NewID(), LeaseExpiresAtMs: nowMs + args.LeaseMs,
	}
	if _, err := q.exec(claimExec, reason, out.LeaseID, out.LeaseExpiresAtMs, e.id); err != nil {
		return out, err
	}
	if _, err := q.exec(closeWaitpoints, e.suspensionID); err != nil {
		return out, err
	}
	out.Signals, err = loadSignals(q, e.suspensionID)
	return out, err
}

// --- complete_execution ----------------------------------------------------

// forgetExecution deletes everything recorded for an execution.
var forgetExecution = []string{
	`DELETE FROM signals WHERE execution_id = ?`,
	`DELETE FROM waitpoints WHERE execution_id = ?`,
	`DELETE FROM suspend_idempotency WHERE execution_id = ?`,
	`DELETE FROM executions WHERE execution_id = ?`,
}

// CompleteExecution forgets a claimed execution and everything recorded for
// it, in one write transaction. An expired lease that nobody re-claimed still
// completes.
func (b *Backend) CompleteExecution(ctx context.Context, args contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	err := b.write(ctx, func(q txn, _ int64) error {
		e, err := loadExec(q, args.ExecutionID)
		if err != nil {
			return err
		}
		if err := driver.CheckComplete(e.decision(), args); err != nil {
			return err
		}
		for _, stmt := range forgetExecution {
			if _, err := q.exec(stmt, args.ExecutionID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return contracts.CompleteOutcome{}, err
	}
	return contracts.CompleteOutcome{Outcome: contracts.OutcomeCompleted, ExecutionID: args.ExecutionID}, nil
}
