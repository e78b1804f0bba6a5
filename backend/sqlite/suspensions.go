package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/flowfabric/flowfabric-go/contracts"
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
func loadExec(ctx context.Context, tx *sql.Tx, id string) (*execRow, error) {
	e, err := scanExec(tx.QueryRowContext(ctx, selectExec, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return e, err
}

// timedOut reports whether the latest suspension is past its timeout at nowMs
// (strictly: timeout_at_ms == now has not timed out).
func (e *execRow) timedOut(nowMs int64) bool {
	return e.timeoutAtMs != nil && nowMs > *e.timeoutAtMs
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
// the current kid, in one write transaction (SEMANTICS.md "Suspend" gives the
// order of checks). A replay with the same idempotency key returns the stored
// JSON outcome, byte for byte, for as long as the execution is remembered.
func (b *Backend) Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	err := b.write(ctx, func(tx *sql.Tx, nowMs int64) error {
		var err error
		out, err = suspend(ctx, tx, args, nowMs)
		return err
	})
	if err != nil {
		return contracts.SuspendOutcome{}, err
	}
	return out, nil
}

func suspend(ctx context.Context, tx *sql.Tx, args contracts.SuspendArgs, nowMs int64) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	k, err := loadKeys(ctx, tx)
	if err != nil {
		return out, err
	}
	if k.Current == nil {
		return out, errNotInitialized()
	}
	if replay, found, err := replaySuspend(ctx, tx, args); found || err != nil {
		return replay, err
	}
	e, err := loadExec(ctx, tx, args.ExecutionID)
	if err != nil {
		return out, err
	}
	if err := checkSuspendable(e, args); err != nil {
		return out, err
	}
	out, err = openSuspension(ctx, tx, k.Current, args, nowMs)
	if err != nil || args.IdempotencyKey == "" {
		return out, err
	}
	stored, err := json.Marshal(out)
	if err != nil {
		return out, err
	}
	_, err = tx.ExecContext(ctx, insertSuspendRecord, args.ExecutionID, args.IdempotencyKey, args.Fingerprint(), stored)
	return out, err
}

// replaySuspend looks up the suspend idempotency record: found with the same
// fingerprint gives the stored outcome, another fingerprint
// idempotency_mismatch.
func replaySuspend(ctx context.Context, tx *sql.Tx, args contracts.SuspendArgs) (contracts.SuspendOutcome, bool, error) {
	var out contracts.SuspendOutcome
	if args.IdempotencyKey == "" {
		return out, false, nil
	}
	var fingerprint string
	var stored []byte
	err := tx.QueryRowContext(ctx, selectSuspendRecord, args.ExecutionID, args.IdempotencyKey).Scan(&fingerprint, &stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return out, false, nil
	case err != nil:
		return out, false, err
	case fingerprint != args.Fingerprint():
		return out, true, contracts.ErrIdempotencyMismatch.With(
			"idempotency_key: already used for this execution with other arguments")
	}
	return out, true, json.Unmarshal(stored, &out)
}

// checkSuspendable decides whether the execution (nil: state none) may
// suspend with the given lease.
func checkSuspendable(e *execRow, args contracts.SuspendArgs) error {
	switch {
	case e == nil && args.LeaseID != nil:
		return contracts.ErrLeaseMismatch.With("lease_id: the execution holds no lease (it is not claimed)")
	case e == nil:
		return nil
	case e.state == contracts.StateSuspended || e.state == contracts.StateResumed:
		return contracts.ErrAlreadySuspended.With("execution_id: %q is %s and not yet claimed", e.id, e.state)
	case args.LeaseID == nil || *args.LeaseID != e.leaseID.String:
		return contracts.ErrLeaseMismatch.With("lease_id: not the current lease of claimed execution %q", e.id)
	}
	return nil
}

// openSuspension writes a new suspension with its waitpoints at nowMs and
// returns its outcome.
func openSuspension(ctx context.Context, tx *sql.Tx, cur *contracts.KidRecord, args contracts.SuspendArgs, nowMs int64) (contracts.SuspendOutcome, error) {
	out := contracts.SuspendOutcome{
		Outcome: contracts.OutcomeSuspended, ExecutionID: args.ExecutionID, SuspensionID: contracts.NewID(),
		SuspendedAtMs: nowMs, Condition: args.Condition,
		Waitpoints: make([]contracts.WaitpointOutcome, 0, len(args.Waitpoints)),
	}
	if args.TimeoutMs != nil {
		t := nowMs + *args.TimeoutMs
		out.TimeoutAtMs = &t
	}
	_, err := tx.ExecContext(ctx, upsertSuspended, args.ExecutionID, out.SuspensionID, args.Condition,
		nowMs, nullInt(out.TimeoutAtMs), len(args.Waitpoints))
	if err != nil {
		return out, err
	}
	for i, spec := range args.Waitpoints {
		w := contracts.WaitpointOutcome{WaitpointID: contracts.NewID(), WaitpointKey: spec.Key, CreatedAtMs: nowMs}
		w.Token = contracts.SignToken(cur.Kid, cur.Secret, contracts.WaitpointMessage(args.ExecutionID, w.WaitpointID, w.WaitpointKey, nowMs))
		if _, err := tx.ExecContext(ctx, insertWaitpoint, w.WaitpointID, args.ExecutionID, out.SuspensionID, spec.Key, i, nowMs); err != nil {
			return out, err
		}
		out.Waitpoints = append(out.Waitpoints, w)
	}
	return out, nil
}

// --- deliver_signal --------------------------------------------------------

// waitpointRow is what delivery needs of a waitpoint.
type waitpointRow struct {
	id, executionID, suspensionID, key string
	createdAtMs                        int64
	closed                             bool
}

const selectWaitpoint = `SELECT waitpoint_id, execution_id, suspension_id, waitpoint_key, created_at_ms, closed
    FROM waitpoints WHERE waitpoint_id = ?`

const selectDuplicate = `SELECT signal_id FROM signals WHERE waitpoint_id = ? AND idempotency_key = ?`

const insertSignal = `INSERT INTO signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key,
    name, payload, idempotency_key, delivered_at_ms, sequence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const (
	countSignal     = `UPDATE waitpoints SET signal_count = signal_count + 1 WHERE waitpoint_id = ?`
	countExecSignal = `UPDATE executions SET signal_count = signal_count + 1, signal_seq = signal_seq + 1
    WHERE execution_id = ?`
	countUnsignaled = `SELECT count(*) FROM waitpoints WHERE suspension_id = ? AND signal_count = 0`
	resumeExec      = `UPDATE executions SET state = 'resumed', reason = 'signal' WHERE execution_id = ?`
	closeWaitpoints = `UPDATE waitpoints SET closed = 1 WHERE suspension_id = ?`
)

// DeliverSignal records a signal exactly once per (waitpoint_id,
// idempotency_key) and resumes the execution when its condition holds,
// closing every waitpoint of the suspension, all in one write transaction.
// Checks run in the order of CONTRACT.md §5.
func (b *Backend) DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	var out contracts.DeliverSignalOutcome
	err := b.write(ctx, func(tx *sql.Tx, nowMs int64) error {
		var err error
		out, err = deliver(ctx, tx, args, nowMs)
		return err
	})
	if err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	return out, nil
}

func deliver(ctx context.Context, tx *sql.Tx, args contracts.DeliverSignalArgs, nowMs int64) (contracts.DeliverSignalOutcome, error) {
	var out contracts.DeliverSignalOutcome
	w, err := authorize(ctx, tx, args, nowMs)
	if err != nil {
		return out, err
	}
	if args.IdempotencyKey != "" {
		var id string
		err := tx.QueryRowContext(ctx, selectDuplicate, w.id, args.IdempotencyKey).Scan(&id)
		if err == nil {
			return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: id}, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return out, err
		}
	}
	e, err := loadExec(ctx, tx, w.executionID)
	if err != nil {
		return out, err
	}
	if err := checkDeliverable(w, e, nowMs); err != nil {
		return out, err
	}
	id, err := recordSignal(ctx, tx, w, e, args, nowMs)
	if err != nil {
		return out, err
	}
	resumed, err := resumeIfDue(ctx, tx, e)
	if err != nil {
		return out, err
	}
	return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: id, Resumed: resumed}, nil
}

// authorize runs checks 1 and 2 of deliver_signal: the token's kid is known
// and in grace, and the waitpoint exists, belongs to the execution and
// matches the MAC. A missing waitpoint, another execution's waitpoint and a
// wrong MAC give the same signature_mismatch.
func authorize(ctx context.Context, tx *sql.Tx, args contracts.DeliverSignalArgs, nowMs int64) (*waitpointRow, error) {
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return nil, err
	}
	k, err := loadKeys(ctx, tx)
	if err != nil {
		return nil, err
	}
	var w waitpointRow
	err = tx.QueryRowContext(ctx, selectWaitpoint, args.WaitpointID).Scan(
		&w.id, &w.executionID, &w.suspensionID, &w.key, &w.createdAtMs, &w.closed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if err != nil || w.executionID != args.ExecutionID {
		// Check the kid first (step 1), then answer as a wrong MAC would.
		err := contracts.CheckToken(t, nil, k.Current != nil, k.Find(t.Kid), nowMs)
		if err == nil || errors.Is(err, contracts.ErrSignatureMismatch) {
			return nil, signatureMismatch()
		}
		return nil, err
	}
	msg := contracts.WaitpointMessage(w.executionID, w.id, w.key, w.createdAtMs)
	if err := contracts.CheckToken(t, msg, k.Current != nil, k.Find(t.Kid), nowMs); err != nil {
		return nil, err
	}
	return &w, nil
}

// checkDeliverable runs check 4: the waitpoint is open, the suspension has
// not timed out and holds fewer than 10,000 signals. An open waitpoint
// always belongs to the execution's latest, suspended suspension.
func checkDeliverable(w *waitpointRow, e *execRow, nowMs int64) error {
	switch {
	case w.closed || e == nil || e.suspensionID != w.suspensionID || e.state != contracts.StateSuspended:
		return contracts.ErrWaitpointClosed.With("waitpoint_id: the waitpoint's suspension has resumed")
	case e.timedOut(nowMs):
		return contracts.ErrSuspensionTimedOut.With("waitpoint_id: the suspension passed its timeout_at_ms")
	case e.signalCount >= contracts.SignalLimit:
		return contracts.ErrSignalLimitExceeded.With("waitpoint_id: the suspension already holds %d signals", contracts.SignalLimit)
	}
	return nil
}

// recordSignal stores the signal with the execution's next sequence number
// and counts it on the waitpoint and the suspension.
func recordSignal(ctx context.Context, tx *sql.Tx, w *waitpointRow, e *execRow, args contracts.DeliverSignalArgs, nowMs int64) (string, error) {
	id := contracts.NewID()
	var payload, key any
	if len(args.Payload) > 0 {
		payload = []byte(args.Payload)
	}
	if args.IdempotencyKey != "" {
		key = args.IdempotencyKey
	}
	_, err := tx.ExecContext(ctx, insertSignal, id, e.id, e.suspensionID, w.id, w.key, args.Name, payload, key, nowMs, e.signalSeq+1)
	if err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, countSignal, w.id); err != nil {
		return "", err
	}
	_, err = tx.ExecContext(ctx, countExecSignal, e.id)
	return id, err
}

// resumeIfDue resumes the execution when its condition holds after a signal:
// "any" at once, "all" once no waitpoint of the suspension lacks a signal.
// Resuming closes every waitpoint of the suspension.
func resumeIfDue(ctx context.Context, tx *sql.Tx, e *execRow) (bool, error) {
	if e.condition == contracts.ConditionAll {
		var unsignaled int
		if err := tx.QueryRowContext(ctx, countUnsignaled, e.suspensionID).Scan(&unsignaled); err != nil {
			return false, err
		}
		if unsignaled > 0 {
			return false, nil
		}
	}
	if _, err := tx.ExecContext(ctx, resumeExec, e.id); err != nil {
		return false, err
	}
	_, err := tx.ExecContext(ctx, closeWaitpoints, e.suspensionID)
	return err == nil, err
}

func signatureMismatch() error {
	return contracts.ErrSignatureMismatch.With("token: signature does not match")
}

// --- observe_signals -------------------------------------------------------

// selectSignals lists a suspension's signals in delivery order.
const selectSignals = `SELECT signal_id, waitpoint_id, waitpoint_key, name, payload, idempotency_key, delivered_at_ms
    FROM signals WHERE suspension_id = ? ORDER BY sequence`

func loadSignals(ctx context.Context, tx *sql.Tx, suspensionID string) ([]contracts.Signal, error) {
	rows, err := tx.QueryContext(ctx, selectSignals, suspensionID)
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
	err := b.read(ctx, func(tx *sql.Tx, _ int64) error {
		e, err := loadExec(ctx, tx, args.ExecutionID)
		if err != nil {
			return err
		}
		if e == nil {
			return errExecutionNotFound(args.ExecutionID)
		}
		signals, err := loadSignals(ctx, tx, e.suspensionID)
		res = contracts.ObserveSignalsResult{ExecutionID: e.id, SuspensionID: e.suspensionID, Signals: signals}
		return err
	})
	if err != nil {
		return contracts.ObserveSignalsResult{}, err
	}
	return res, nil
}

func errExecutionNotFound(id string) error {
	return contracts.ErrExecutionNotFound.With("execution_id: %q is not known", id)
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
	err := b.read(ctx, func(tx *sql.Tx, _ int64) error {
		var err error
		rows, err = suspendedPage(ctx, tx, after, args.Limit+1)
		return err
	})
	if err != nil {
		return contracts.ListSuspendedResult{}, err
	}
	res := contracts.ListSuspendedResult{Executions: rows}
	if len(rows) > args.Limit {
		last := rows[args.Limit-1]
		c := contracts.EncodeCursor(contracts.Cursor{SuspendedAtMs: last.SuspendedAtMs, ExecutionID: last.ExecutionID})
		res.Executions, res.NextCursor = rows[:args.Limit], &c
	}
	return res, nil
}

func suspendedPage(ctx context.Context, tx *sql.Tx, after contracts.Cursor, n int) ([]contracts.SuspendedExecution, error) {
	rows, err := tx.QueryContext(ctx, selectSuspendedPage, after.SuspendedAtMs, after.ExecutionID, n)
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
	err := b.write(ctx, func(tx *sql.Tx, nowMs int64) error {
		var err error
		out, err = claim(ctx, tx, args, nowMs)
		return err
	})
	if err != nil {
		return contracts.ClaimOutcome{}, err
	}
	return out, nil
}

func claim(ctx context.Context, tx *sql.Tx, args contracts.ClaimArgs, nowMs int64) (contracts.ClaimOutcome, error) {
	e, err := scanExec(tx.QueryRowContext(ctx, selectClaimable, nowMs))
	if errors.Is(err, sql.ErrNoRows) {
		return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, nil
	}
	if err != nil {
		return contracts.ClaimOutcome{}, err
	}
	reason := e.reason.String
	switch e.state {
	case contracts.StateResumed:
		reason = contracts.ReasonSignal
	case contracts.StateSuspended:
		reason = contracts.ReasonTimeout
	}
	out := contracts.ClaimOutcome{
		Outcome: contracts.OutcomeClaimed, ExecutionID: e.id, SuspensionID: e.suspensionID, Reason: reason,
		LeaseID: contracts.NewID(), LeaseExpiresAtMs: nowMs + args.LeaseMs,
	}
	if _, err := tx.ExecContext(ctx, claimExec, reason, out.LeaseID, out.LeaseExpiresAtMs, e.id); err != nil {
		return out, err
	}
	if _, err := tx.ExecContext(ctx, closeWaitpoints, e.suspensionID); err != nil {
		return out, err
	}
	out.Signals, err = loadSignals(ctx, tx, e.suspensionID)
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
	err := b.write(ctx, func(tx *sql.Tx, _ int64) error {
		e, err := loadExec(ctx, tx, args.ExecutionID)
		switch {
		case err != nil:
			return err
		case e == nil:
			return errExecutionNotFound(args.ExecutionID)
		case e.state != contracts.StateClaimed || e.leaseID.String != args.LeaseID:
			return contracts.ErrLeaseMismatch.With("lease_id: not the current lease of execution %q", e.id)
		}
		for _, stmt := range forgetExecution {
			if _, err := tx.ExecContext(ctx, stmt, e.id); err != nil {
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
