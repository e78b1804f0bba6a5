package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
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
	signalCount      int   // signals of the latest suspension
	payloadBytes     int64 // their payload bytes (docs/spec.md §8.3)
	signalSeq        int64
	reason           sql.NullString
	leaseID          sql.NullString
	leaseExpiresAtMs sql.NullInt64
}

const execColumns = `execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms,
    waitpoint_count, signal_count, payload_bytes, signal_seq, reason, lease_id, lease_expires_at_ms`

const selectExec = `SELECT ` + execColumns + ` FROM executions WHERE execution_id = ?`

func scanExec(row interface{ Scan(...any) error }) (*execRow, error) {
	var e execRow
	var timeout sql.NullInt64
	err := row.Scan(&e.id, &e.state, &e.suspensionID, &e.condition, &e.suspendedAtMs, &timeout,
		&e.waitpointCount, &e.signalCount, &e.payloadBytes, &e.signalSeq, &e.reason, &e.leaseID, &e.leaseExpiresAtMs)
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
// per-suspension fields are replaced (its budget counters start at 0), the
// lease and reason dropped, and signal_seq (the execution's delivery order)
// kept.
const upsertSuspended = `INSERT INTO executions (execution_id, state, suspension_id, condition,
    suspended_at_ms, timeout_at_ms, waitpoint_count, signal_count, payload_bytes, signal_seq, reason, lease_id, lease_expires_at_ms)
VALUES (?, 'suspended', ?, ?, ?, ?, ?, 0, 0, 0, NULL, NULL, NULL)
ON CONFLICT (execution_id) DO UPDATE SET
    state = 'suspended', suspension_id = excluded.suspension_id, condition = excluded.condition,
    suspended_at_ms = excluded.suspended_at_ms, timeout_at_ms = excluded.timeout_at_ms,
    waitpoint_count = excluded.waitpoint_count, signal_count = 0, payload_bytes = 0,
    reason = NULL, lease_id = NULL, lease_expires_at_ms = NULL`

const insertWaitpoint = `INSERT INTO waitpoints (waitpoint_id, execution_id, suspension_id, waitpoint_key,
    position, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)`

// Suspend opens 1–16 waitpoints for an execution and signs their tokens with
// the current kid, in one write transaction (docs/spec.md §5.1 gives the
// order of checks). The idempotency record keeps the outcome with each token
// replaced by its kid (driver.StoredSuspendOutcome; no token or MAC is
// stored, docs/spec.md §3): a replay with the same idempotency key signs the
// tokens again and answers the first outcome byte for byte, for as long as
// the execution is remembered and that kid verifies; past it the replay is
// suspend_replay_expired and writes nothing.
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
	if replay, found, err := replaySuspend(q, k, args, nowMs); found || err != nil {
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
	stored, err := driver.StoredSuspendOutcome(out)
	if err != nil {
		return out, err
	}
	_, err = q.exec(insertSuspendRecord, args.ExecutionID, args.IdempotencyKey, args.Fingerprint(), stored)
	return out, err
}

// replaySuspend looks up the suspend idempotency record: found with the same
// fingerprint gives the stored outcome with its tokens signed again at nowMs
// from the keystore k (replayStored), another fingerprint
// idempotency_mismatch.
func replaySuspend(q txn, k driver.PartitionKeys, args contracts.SuspendArgs, nowMs int64) (contracts.SuspendOutcome, bool, error) {
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
	out, err = replayStored(q.ring, k, stored, nowMs)
	return out, true, err
}

// replayStored rebuilds a stored suspend outcome at nowMs
// (driver.ReplaySuspendOutcome), opening with ring the secret of the kid
// that signed its tokens only when that kid still verifies: a kid collected
// or past its grace answers suspend_replay_expired whatever the keyring.
// Records written before tokens stopped being stored hold whole tokens and
// replay the same way.
func replayStored(ring *kek.Keyring, k driver.PartitionKeys, stored []byte, nowMs int64) (contracts.SuspendOutcome, error) {
	kid, err := driver.StoredOutcomeKid(stored)
	if err != nil {
		return contracts.SuspendOutcome{}, contracts.ErrInternal.With("suspend: the stored outcome does not decode").Wrapping(err)
	}
	if rec := k.Find(kid); rec != nil && rec.Usable(nowMs) {
		if k, err = driver.OpenKid(ring, keyPartition, k, kid); err != nil {
			return contracts.SuspendOutcome{}, err
		}
	}
	return driver.ReplaySuspendOutcome(stored, k, nowMs)
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
	signals      int // signals recorded on it: its holder's budget used
}

const selectWaitpoint = `SELECT execution_id, waitpoint_id, waitpoint_key, created_at_ms, suspension_id, closed, signal_count
    FROM waitpoints WHERE waitpoint_id = ?`

const selectDuplicate = `SELECT signal_id FROM signals WHERE waitpoint_id = ? AND idempotency_key = ?`

const insertSignal = `INSERT INTO signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key,
    name, payload, idempotency_key, delivered_at_ms, sequence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const (
	countSignal     = `UPDATE waitpoints SET signal_count = signal_count + 1 WHERE waitpoint_id = ?`
	countExecSignal = `UPDATE executions SET signal_count = signal_count + 1, payload_bytes = payload_bytes + ?,
    signal_seq = signal_seq + 1 WHERE execution_id = ?`
	countSignaled   = `SELECT count(*) FROM waitpoints WHERE suspension_id = ? AND signal_count > 0`
	resumeExec      = `UPDATE executions SET state = 'resumed', reason = 'signal' WHERE execution_id = ?`
	closeWaitpoints = `UPDATE waitpoints SET closed = 1 WHERE suspension_id = ?`
)

// DeliverSignal records a signal exactly once per (waitpoint_id,
// idempotency_key) and resumes the execution when its condition holds,
// closing every waitpoint of the suspension, all in one write transaction.
// Checks run in the order of docs/spec.md §5; the budgets of §8.3 are read
// from the counters of the waitpoint and execution rows
// (waitpoints.signal_count, executions.signal_count and payload_bytes),
// which the same transaction advances with the insert.
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
	used := driver.SignalBudget{WaitpointSignals: w.signals, SuspensionSignals: e.signalCount, PayloadBytes: e.payloadBytes}
	if err := driver.CheckDeliverable(closed, e.timeoutAtMs, used, args, nowMs); err != nil {
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
		&w.ref.ExecutionID, &w.ref.WaitpointID, &w.ref.WaitpointKey, &w.ref.CreatedAtMs, &w.suspensionID, &w.closed, &w.signals)
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
// and counts it, and its payload bytes, on the waitpoint and the suspension.
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
	_, err = q.exec(countExecSignal, len(sig.Payload), e.id)
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

const signalColumns = `signal_id, waitpoint_id, waitpoint_key, name, payload, idempotency_key, delivered_at_ms`

// selectSignals lists a suspension's signals in delivery order.
const selectSignals = `SELECT ` + signalColumns + ` FROM signals WHERE suspension_id = ? ORDER BY sequence`

// A suspension's signals have consecutive sequence numbers: signal_seq
// counts every signal of the execution, and only the latest suspension,
// while it is suspended, records signals. So the signal at position p of a
// suspension's delivery order has sequence first + p, and a page is one
// range read of signals_by_suspension, however deep the cursor.
const (
	selectFirstSequence = `SELECT min(sequence) FROM signals WHERE suspension_id = ?`
	selectSignalPage    = `SELECT ` + signalColumns + ` FROM signals
    WHERE suspension_id = ? AND sequence >= ? ORDER BY sequence LIMIT ?`
)

func loadSignals(q txn, suspensionID string) ([]contracts.Signal, error) {
	return scanSignals(q.query(selectSignals, suspensionID))
}

func scanSignals(rows *sql.Rows, err error) ([]contracts.Signal, error) {
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

// signalPage reads up to n signals of e's latest suspension from position
// start of its delivery order; none when start is at or past its last
// signal.
func signalPage(q txn, e *execRow, start int64, n int) ([]contracts.Signal, error) {
	if start >= int64(e.signalCount) {
		return nil, nil
	}
	var first sql.NullInt64
	if err := q.queryRow(selectFirstSequence, e.suspensionID).Scan(&first); err != nil || !first.Valid {
		return nil, err
	}
	return scanSignals(q.query(selectSignalPage, e.suspensionID, first.Int64+start, n))
}

// ObserveSignals returns a page of the signals of the execution's latest
// suspension in delivery order, from one read snapshot: at most args.Limit
// signals from the cursor's position (driver.ObserveStart), with the cursor
// of the next page when more follow (driver.PageSignals, reading one signal
// more than the page). A cursor of an earlier suspension gives an empty last
// page.
func (b *Backend) ObserveSignals(ctx context.Context, args contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	limit := args.Limit
	if limit <= 0 { // a caller that reached the driver without the Engine's default
		limit = contracts.DefaultObserveLimit
	}
	var res contracts.ObserveSignalsResult
	err := b.read(ctx, func(q txn, _ int64) error {
		e, err := loadExec(q, args.ExecutionID)
		if err != nil {
			return err
		}
		if e == nil {
			return driver.ExecutionNotFound(args.ExecutionID)
		}
		start, ok := driver.ObserveStart(args, e.suspensionID)
		var rows []contracts.Signal
		if ok {
			if rows, err = signalPage(q, e, start, limit+1); err != nil {
				return err
			}
		}
		res = driver.PageSignals(e.id, e.suspensionID, rows, start, limit)
		return nil
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
