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

// stateNone is how the executions table stores state none for an execution
// that is remembered in it (docs/spec.md §8.1): one with pending waitpoints,
// or whose latest suspension answered already_satisfied. Decisions read it
// as "" (driver.ExecutionState).
const stateNone = "none"

// execRow is the executions row of one execution.
type execRow struct {
	id                 string
	state              string // "" (none), or a contracts.State*
	suspensionID       string // of the latest suspension; "" before the first
	condition          string
	suspendedAtMs      int64
	timeoutAtMs        *int64
	waitpointCount     int
	signalCount        int   // signals of the latest suspension
	payloadBytes       int64 // their payload bytes (docs/spec.md §8.3)
	signalSeq          int64
	pendingExpiresAtMs int64 // latest expires_at_ms of the pending waitpoints made; 0: none
	tagged             bool  // the latest suspension has tags (suspension_tags rows while suspended)
	reason             sql.NullString
	leaseID            nullID
	leaseExpiresAtMs   sql.NullInt64
}

const execColumns = `execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms,
    waitpoint_count, signal_count, payload_bytes, signal_seq, pending_expires_at_ms, tags IS NOT NULL,
    reason, lease_id, lease_expires_at_ms`

const selectExec = `SELECT ` + execColumns + ` FROM executions WHERE execution_id = ?`

// scanExec reads a row of execColumns, followed by the columns scanned
// into extra when the query selects more.
func scanExec(row interface{ Scan(...any) error }, extra ...any) (*execRow, error) {
	var e execRow
	var suspension nullID
	var condition sql.NullString
	var suspendedAt, timeout, pendingExpires sql.NullInt64
	err := row.Scan(append([]any{&e.id, &e.state, &suspension, &condition, &suspendedAt, &timeout,
		&e.waitpointCount, &e.signalCount, &e.payloadBytes, &e.signalSeq, &pendingExpires, &e.tagged,
		&e.reason, &e.leaseID, &e.leaseExpiresAtMs}, extra...)...)
	if err != nil {
		return nil, err
	}
	if e.state == stateNone {
		e.state = ""
	}
	e.suspensionID, e.condition = suspension.String, condition.String
	e.suspendedAtMs, e.pendingExpiresAtMs = suspendedAt.Int64, pendingExpires.Int64
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

// loadLiveExec is loadExec for create_waitpoint and suspend at nowMs: an
// execution remembered in state none whose pending waitpoints have all
// expired is forgotten first, with everything recorded for it
// (driver.ForgetsExpiredPending, docs/spec.md §8.1), and reads as nil. The
// forgetting belongs to the caller's transaction: it is undone with
// everything else when the call fails.
func loadLiveExec(q txn, id string, nowMs int64) (*execRow, error) {
	e, err := loadExec(q, id)
	if err != nil || e == nil || !driver.ForgetsExpiredPending(e.state, e.pendingExpiresAtMs, nowMs) {
		return e, err
	}
	return nil, forget(q, e)
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

// tagsJSON is the stored form of tags: a JSON array, or NULL for none.
func tagsJSON(tags []string) any {
	if len(tags) == 0 {
		return nil
	}
	b, _ := json.Marshal(tags) // strings always encode
	return string(b)
}

// scanTags reads tags in their stored form (tagsJSON); nil for NULL.
func scanTags(stored sql.NullString) ([]string, error) {
	if !stored.Valid {
		return nil, nil
	}
	var tags []string
	if err := json.Unmarshal([]byte(stored.String), &tags); err != nil {
		return nil, contracts.ErrInternal.With("sqlite: stored tags do not decode").Wrapping(err)
	}
	return tags, nil
}

// --- suspend ---------------------------------------------------------------

const selectSuspendRecord = `SELECT fingerprint, outcome FROM suspend_idempotency
    WHERE execution_id = ? AND idempotency_key = ?`

const insertSuspendRecord = `INSERT INTO suspend_idempotency (execution_id, idempotency_key, fingerprint, outcome)
    VALUES (?, ?, ?, ?)`

// upsertSuspended makes the execution suspended on a new suspension: the
// per-suspension fields are replaced (its budget counters start from what
// its pending waitpoints bring, docs/spec.md §8.3), the lease and reason
// dropped, and signal_seq (the execution's delivery order) and
// pending_expires_at_ms kept.
const upsertSuspended = `INSERT INTO executions (execution_id, state, suspension_id, condition,
    suspended_at_ms, timeout_at_ms, waitpoint_count, signal_count, payload_bytes, tags)
VALUES (?, 'suspended', ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (execution_id) DO UPDATE SET
    state = 'suspended', suspension_id = excluded.suspension_id, condition = excluded.condition,
    suspended_at_ms = excluded.suspended_at_ms, timeout_at_ms = excluded.timeout_at_ms,
    waitpoint_count = excluded.waitpoint_count, signal_count = excluded.signal_count,
    payload_bytes = excluded.payload_bytes, tags = excluded.tags,
    reason = NULL, lease_id = NULL, lease_expires_at_ms = NULL, overdue = 0`

// recordSatisfied makes an already satisfied suspension the execution's
// latest (observe_signals shows it) and leaves its state, lease and reason
// as they were (docs/spec.md §8.1). The row exists: the execution made the
// pending waitpoints the suspension uses.
const recordSatisfied = `UPDATE executions SET suspension_id = ?, condition = ?, suspended_at_ms = ?,
    timeout_at_ms = ?, waitpoint_count = ?, signal_count = ?, payload_bytes = ?, tags = ?
    WHERE execution_id = ?`

// insertWaitpoint opens a waitpoint of a suspension under a new key, with
// the suspension's tags and the fingerprint of its token.
const insertWaitpoint = `INSERT INTO waitpoints (waitpoint_id, execution_id, suspension_id, waitpoint_key,
    position, created_at_ms, timeout_at_ms, closed, token_fingerprint, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// useWaitpoint makes a pending waitpoint one of a suspension's: it keeps its
// id, key, created_at_ms, counters and tags, and stores the fingerprint of
// the token the suspend hands out for it.
const useWaitpoint = `UPDATE waitpoints SET suspension_id = ?, position = ?, timeout_at_ms = ?, closed = ?,
    token_fingerprint = ? WHERE waitpoint_id = ?`

// joinBuffered moves the signals waiting on the pending waitpoints a suspend
// uses into its suspension (?1), numbering their positions in delivery order
// (sequence) from 0; it runs once the suspension's waitpoints are stored,
// so those are the waitpoints of ?1 (a range of the (suspension_id,
// waitpoint_key) index; the new ones hold no signal). It reads only those
// signals: the planner, without statistics, would otherwise walk every
// waiting signal of the store in signals_by_position (suspension_id IS
// NULL).
const joinBuffered = `UPDATE signals SET suspension_id = ?1, position = joined.position
    FROM (SELECT signal_id, row_number() OVER (ORDER BY sequence) - 1 AS position
          FROM signals INDEXED BY signals_buffered
          WHERE suspension_id IS NULL AND waitpoint_id IN (SELECT waitpoint_id FROM waitpoints WHERE suspension_id = ?1)) AS joined
    WHERE signals.signal_id = joined.signal_id`

// insertSuspensionTags indexes a suspended execution under each tag of its
// suspension (a JSON array) for list_suspended; deleteSuspensionTags drops
// them when it leaves state suspended.
const (
	insertSuspensionTags = `INSERT INTO suspension_tags (tag, suspended_at_ms, execution_id)
    SELECT value, ?, ? FROM json_each(?)`
	deleteSuspensionTags = `DELETE FROM suspension_tags WHERE execution_id = ?`
)

// Suspend opens 1–16 waitpoints for an execution, new ones or pending ones
// made by create_waitpoint, and signs their tokens with the current kid, in
// one write transaction (docs/spec.md §5.1 and §8.1 give the order of
// checks). When the signals already held by the pending waitpoints it uses
// satisfy the condition, the suspension is recorded closed and the outcome
// is already_satisfied; the execution keeps its state and lease. The
// idempotency record keeps the outcome with each token replaced by its kid
// (driver.StoredSuspendOutcome; no token or MAC is stored, docs/spec.md
// §3): a replay with the same idempotency key signs the tokens again and
// answers the first outcome byte for byte, for as long as the execution is
// remembered and that kid verifies; past it the replay is
// suspend_replay_expired and writes nothing.
func (b *Backend) Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	return writing(ctx, b, func(q txn, nowMs int64) (contracts.SuspendOutcome, error) { return suspend(q, args, nowMs) })
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
	e, err := loadLiveExec(q, args.ExecutionID, nowMs)
	if err != nil {
		return out, err
	}
	if replay, found, err := replaySuspend(q, k, args, nowMs); found || err != nil {
		return replay, err
	}
	if err := driver.CheckSuspend(e.decision(), args.LeaseID); err != nil {
		return out, err
	}
	found, err := loadPending(q, args)
	if err != nil {
		return out, err
	}
	if err := driver.CheckPendingUse(args, found, nowMs); err != nil {
		return out, err
	}
	// Opened only now: a replay returns the stored outcome without a secret.
	if k.Current, err = driver.OpenRecord(q.ring, keyPartition, k.Current); err != nil {
		return out, err
	}
	planned := driver.NewSuspensionUsing(args, *k.Current, found, nowMs)
	if out, err = storeSuspension(q, args, planned, found); err != nil || args.IdempotencyKey == "" {
		return out, err
	}
	stored, err := driver.StoredSuspendOutcome(out)
	if err != nil {
		return out, err
	}
	_, err = q.exec(insertSuspendRecord, args.ExecutionID, args.IdempotencyKey, args.Fingerprint(), stored)
	return out, err
}

// loadPending looks up the pending waitpoints a suspend names, by id
// (driver.CheckPendingUse decides on them): a waitpoint that a suspend
// opened is not a pending one and is left out, as is an unknown id.
func loadPending(q txn, args contracts.SuspendArgs) (map[string]*driver.PendingWaitpoint, error) {
	found := map[string]*driver.PendingWaitpoint{}
	for _, id := range driver.PendingIDs(args) {
		w, err := loadWaitpoint(q, id)
		if err != nil {
			return nil, err
		}
		if w != nil && w.expiresAtMs.Valid {
			found[id] = w.pending()
		}
	}
	return found, nil
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

// storeSuspension writes planned, the suspension of args planned by
// driver.NewSuspensionUsing with the pending waitpoints found, and returns
// the outcome to answer. Its waitpoints are inserted (new keys) or taken
// over (pending ones, with the signals waiting on them) in order, each with
// the fingerprint of the token handed out. When those signals satisfy the
// condition (driver.PendingSatisfied) the suspension is recorded closed as
// the execution's latest and the outcome is already_satisfied with them in
// delivery order; otherwise the execution becomes suspended and is indexed
// under its tags.
func storeSuspension(q txn, args contracts.SuspendArgs, planned contracts.SuspendOutcome, found map[string]*driver.PendingWaitpoint) (contracts.SuspendOutcome, error) {
	satisfied := driver.PendingSatisfied(args, found)
	signals, payloadBytes, _ := driver.PendingBudget(args, found)
	p, tags := planned, tagsJSON(planned.Tags)
	var err error
	if satisfied {
		_, err = q.exec(recordSatisfied, storedID(p.SuspensionID), p.Condition, p.SuspendedAtMs, nullInt(p.TimeoutAtMs),
			len(p.Waitpoints), signals, payloadBytes, tags, p.ExecutionID)
	} else {
		_, err = q.exec(upsertSuspended, p.ExecutionID, storedID(p.SuspensionID), p.Condition, p.SuspendedAtMs,
			nullInt(p.TimeoutAtMs), len(p.Waitpoints), signals, payloadBytes, tags)
	}
	if err != nil {
		return p, err
	}
	if err := storeWaitpoints(q, args, p, satisfied); err != nil {
		return p, err
	}
	if !satisfied {
		if tags != nil {
			_, err = q.exec(insertSuspensionTags, p.SuspendedAtMs, p.ExecutionID, tags)
		}
		return p, err
	}
	sigs, err := loadSignals(q, p.SuspensionID)
	return driver.AlreadySatisfied(p, sigs), err
}

// storeWaitpoints writes the waitpoints of the planned suspension p, closed
// when it is already satisfied: new keys are inserted with the suspension's
// tags, pending waitpoints are taken over with the signals waiting on them.
func storeWaitpoints(q txn, args contracts.SuspendArgs, p contracts.SuspendOutcome, closed bool) error {
	timeout := nullInt(p.TimeoutAtMs)
	for i, w := range p.Waitpoints {
		fingerprint := driver.TokenFingerprint(w.Token)
		var err error
		if args.Waitpoints[i].Pending != "" {
			_, err = q.exec(useWaitpoint, storedID(p.SuspensionID), i, timeout, closed, fingerprint, storedID(w.WaitpointID))
		} else {
			_, err = q.exec(insertWaitpoint, storedID(w.WaitpointID), p.ExecutionID, storedID(p.SuspensionID), w.WaitpointKey, i,
				w.CreatedAtMs, timeout, closed, fingerprint, tagsJSON(p.Tags))
		}
		if err != nil {
			return err
		}
	}
	if len(driver.PendingIDs(args)) == 0 {
		return nil
	}
	_, err := q.exec(joinBuffered, storedID(p.SuspensionID))
	return err
}

// --- deliver_signal --------------------------------------------------------

// waitpointRow is what delivery and suspend read of a waitpoint.
type waitpointRow struct {
	ref          driver.WaitpointRef
	suspensionID nullID        // NULL: pending, used by no suspension yet
	expiresAtMs  sql.NullInt64 // set when create_waitpoint made it
	closed       bool
	signals      int   // signals recorded on it: its holder's budget used
	payloadBytes int64 // their payload bytes
}

const selectWaitpoint = `SELECT execution_id, waitpoint_id, waitpoint_key, created_at_ms, suspension_id,
    expires_at_ms, closed, signal_count, payload_bytes FROM waitpoints WHERE waitpoint_id = ?`

// loadWaitpoint returns the waitpoint's row, or nil when there is none.
func loadWaitpoint(q txn, id string) (*waitpointRow, error) {
	var w waitpointRow
	err := q.queryRow(selectWaitpoint, storedID(id)).Scan(&w.ref.ExecutionID, scanID{&w.ref.WaitpointID}, &w.ref.WaitpointKey,
		&w.ref.CreatedAtMs, &w.suspensionID, &w.expiresAtMs, &w.closed, &w.signals, &w.payloadBytes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &w, nil
}

// pending returns what the decisions of docs/spec.md §8.1 read of w, a
// waitpoint made by create_waitpoint.
func (w *waitpointRow) pending() *driver.PendingWaitpoint {
	return &driver.PendingWaitpoint{
		ID: w.ref.WaitpointID, ExecutionID: w.ref.ExecutionID, Key: w.ref.WaitpointKey,
		CreatedAtMs: w.ref.CreatedAtMs, ExpiresAtMs: w.expiresAtMs.Int64, Used: w.suspensionID.Valid,
		Signals: w.signals, PayloadBytes: w.payloadBytes,
	}
}

const selectDuplicate = `SELECT signal_id FROM signals WHERE waitpoint_id = ? AND idempotency_key = ?`

// insertSignal records a signal; its suspension_id and position are NULL
// while it waits on a pending waitpoint.
const insertSignal = `INSERT INTO signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key,
    name, payload, idempotency_key, delivered_at_ms, sequence, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// selectPendingPool counts the live pending waitpoints of an execution at
// a time (unused, not past expires_at_ms) and sums their signals and
// payload bytes: what the suspension they will join would start with
// (driver.CheckPendingDeliverable). At most 16 rows of waitpoints_pending.
const selectPendingPool = `SELECT count(*), coalesce(sum(signal_count), 0), coalesce(sum(payload_bytes), 0)
    FROM waitpoints WHERE execution_id = ? AND suspension_id IS NULL AND expires_at_ms >= ?`

const (
	countSignal = `UPDATE waitpoints SET signal_count = signal_count + 1, payload_bytes = payload_bytes + ?
    WHERE waitpoint_id = ?`
	countExecSignal = `UPDATE executions SET signal_count = signal_count + 1, payload_bytes = payload_bytes + ?,
    signal_seq = signal_seq + 1 WHERE execution_id = ?`
	// countExecSignalResume is countExecSignal for the signal that resumes
	// the execution.
	countExecSignalResume = `UPDATE executions SET signal_count = signal_count + 1, payload_bytes = payload_bytes + ?,
    signal_seq = signal_seq + 1, state = 'resumed', reason = 'signal', overdue = 0 WHERE execution_id = ?`
	countBufferedSignal = `UPDATE executions SET signal_seq = signal_seq + 1 WHERE execution_id = ?`
	countSignaled       = `SELECT count(*) FROM waitpoints WHERE suspension_id = ? AND signal_count > 0`
	closeWaitpoints     = `UPDATE waitpoints SET closed = 1 WHERE suspension_id = ?`
)

// DeliverSignal records a signal exactly once per (waitpoint_id,
// idempotency_key) and resumes the execution when its condition holds,
// closing every waitpoint of the suspension, all in one write transaction.
// Checks run in the order of docs/spec.md §5; the budgets of §8.3 are read
// from the counters of the waitpoint and execution rows
// (waitpoints.signal_count, executions.signal_count and payload_bytes),
// which the same transaction advances with the insert. A signal to a
// pending waitpoint no suspend used yet is kept on it, against the budgets
// of its live pending waitpoints (docs/spec.md §8.1), and resumes nothing.
func (b *Backend) DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	return writing(ctx, b, func(q txn, nowMs int64) (contracts.DeliverSignalOutcome, error) { return deliver(q, args, nowMs) })
}

func deliver(q txn, args contracts.DeliverSignalArgs, nowMs int64) (contracts.DeliverSignalOutcome, error) {
	var out contracts.DeliverSignalOutcome
	w, err := authorize(q, args, nowMs)
	if err != nil {
		return out, err
	}
	if args.IdempotencyKey != "" {
		var id string
		err := q.queryRow(selectDuplicate, storedID(w.ref.WaitpointID), args.IdempotencyKey).Scan(scanID{&id})
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
	if !w.suspensionID.Valid {
		return deliverPending(q, w, e, args, nowMs)
	}
	// An open waitpoint belongs to the execution's latest suspension, which is
	// suspended; the extra conditions only guard that invariant.
	closed := w.closed || e.suspensionID != w.suspensionID.String || e.state != contracts.StateSuspended
	used := driver.SignalBudget{WaitpointSignals: w.signals, SuspensionSignals: e.signalCount, PayloadBytes: e.payloadBytes}
	if err := driver.CheckDeliverable(closed, e.timeoutAtMs, used, args, nowMs); err != nil {
		return out, err
	}
	sig := driver.NewSignal(w.ref, args, nowMs)
	if err := recordSignal(q, sig, e, true); err != nil {
		return out, err
	}
	resumed, err := countInSuspension(q, e, len(sig.Payload))
	if err != nil {
		return out, err
	}
	return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: sig.SignalID, Resumed: resumed}, nil
}

// deliverPending runs check 4 of deliver_signal for w, a pending waitpoint
// of e that no suspend used yet (driver.CheckPendingDeliverable: expired,
// then the budgets against the execution's live pending waitpoints), and
// keeps the signal on it until a suspend uses it.
func deliverPending(q txn, w *waitpointRow, e *execRow, args contracts.DeliverSignalArgs, nowMs int64) (contracts.DeliverSignalOutcome, error) {
	var out contracts.DeliverSignalOutcome
	var live int
	var pool driver.SignalBudget
	if err := q.queryRow(selectPendingPool, e.id, nowMs).Scan(&live, &pool.SuspensionSignals, &pool.PayloadBytes); err != nil {
		return out, err
	}
	if err := driver.CheckPendingDeliverable(*w.pending(), pool, args, nowMs); err != nil {
		return out, err
	}
	sig := driver.NewSignal(w.ref, args, nowMs)
	if err := recordSignal(q, sig, e, false); err != nil {
		return out, err
	}
	if _, err := q.exec(countBufferedSignal, e.id); err != nil {
		return out, err
	}
	return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: sig.SignalID}, nil
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
	w, err := loadWaitpoint(q, args.WaitpointID)
	if err != nil {
		return nil, err
	}
	var ref *driver.WaitpointRef
	if w != nil {
		ref = &w.ref
	}
	if err := driver.AuthorizeSignal(args, k, ref, nowMs); err != nil {
		return nil, err
	}
	return w, nil
}

// recordSignal stores the signal with the execution's next sequence number
// and counts it, and its payload bytes, on the waitpoint. In a suspension
// (e's latest) it takes the next position of its delivery order; on a
// pending waitpoint it waits without a suspension (joinBuffered moves it).
// The caller counts it on the execution row: countInSuspension, or
// countBufferedSignal.
func recordSignal(q txn, sig contracts.Signal, e *execRow, inSuspension bool) error {
	var payload, key, suspension, position any
	if len(sig.Payload) > 0 {
		payload = []byte(sig.Payload)
	}
	if sig.IdempotencyKey != "" {
		key = sig.IdempotencyKey
	}
	if inSuspension {
		suspension, position = storedID(e.suspensionID), e.signalCount
	}
	_, err := q.exec(insertSignal, storedID(sig.SignalID), e.id, suspension, storedID(sig.WaitpointID), sig.WaitpointKey,
		sig.Name, payload, key, sig.DeliveredAtMs, e.signalSeq+1, position)
	if err != nil {
		return err
	}
	_, err = q.exec(countSignal, len(sig.Payload), storedID(sig.WaitpointID))
	return err
}

// countInSuspension counts a signal recordSignal stored in e's latest
// suspension on the execution row, and resumes the execution in the same
// update when its condition now holds (driver.ConditionHolds over the
// waitpoints of the suspension holding a signal, at most 16; a condition
// that needs one signaled waitpoint holds without reading them, since the
// signal's waitpoint now holds one). Resuming closes every waitpoint of
// the suspension and takes the execution out of list_suspended's tag
// index.
func countInSuspension(q txn, e *execRow, payloadBytes int) (bool, error) {
	resumes := contracts.ConditionCount(e.condition, e.waitpointCount) == 1
	if !resumes {
		var signaled int
		if err := q.queryRow(countSignaled, storedID(e.suspensionID)).Scan(&signaled); err != nil {
			return false, err
		}
		resumes = driver.ConditionHolds(e.condition, signaled, e.waitpointCount)
	}
	if !resumes {
		_, err := q.exec(countExecSignal, payloadBytes, e.id)
		return false, err
	}
	if _, err := q.exec(countExecSignalResume, payloadBytes, e.id); err != nil {
		return false, err
	}
	err := closeSuspension(q, e)
	return err == nil, err
}

// closeSuspension closes every waitpoint of e's latest suspension and drops
// e from the tag index, for a step that takes e out of state suspended
// (resume, cancel, a timeout claim). An execution in another state left it
// already, which closed them: there is nothing to do.
func closeSuspension(q txn, e *execRow) error {
	if e.state != contracts.StateSuspended {
		return nil
	}
	if _, err := q.exec(closeWaitpoints, storedID(e.suspensionID)); err != nil {
		return err
	}
	return untag(q, e)
}

// untag drops e from list_suspended's tag index; it holds rows of e only
// when e's latest suspension has tags.
func untag(q txn, e *execRow) error {
	if !e.tagged {
		return nil
	}
	_, err := q.exec(deleteSuspensionTags, e.id)
	return err
}

// --- observe_signals -------------------------------------------------------

const signalColumns = `signal_id, waitpoint_id, waitpoint_key, name, payload, idempotency_key, delivered_at_ms`

// selectSignals lists a suspension's signals in delivery order.
const selectSignals = `SELECT ` + signalColumns + ` FROM signals WHERE suspension_id = ? ORDER BY position`

// A signal's position is its place (from 0) in its suspension's delivery
// order: signals delivered to the suspension take the next one, and those
// that waited on its pending waitpoints take the first ones, in delivery
// order, when the suspend moves them (joinBuffered). So a page is one range
// read of signals_by_position, however deep the cursor.
const selectSignalPage = `SELECT ` + signalColumns + ` FROM signals
    WHERE suspension_id = ? AND position >= ? ORDER BY position LIMIT ?`

func loadSignals(q txn, suspensionID string) ([]contracts.Signal, error) {
	return scanSignals(q.query(selectSignals, storedID(suspensionID)))
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
		if err := rows.Scan(scanID{&s.SignalID}, scanID{&s.WaitpointID}, &s.WaitpointKey, &s.Name, &payload, &key, &s.DeliveredAtMs); err != nil {
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
	return scanSignals(q.query(selectSignalPage, storedID(e.suspensionID), start, n))
}

// ObserveSignals returns a page of the signals of the execution's latest
// suspension in delivery order, from one read snapshot: at most args.Limit
// signals from the cursor's position (driver.ObserveStart), with the cursor
// of the next page when more follow (driver.PageSignals, reading one signal
// more than the page). A cursor of an earlier suspension gives an empty last
// page. An execution that never suspended (pending waitpoints only) has no
// suspension to observe: execution_not_found.
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
		if e == nil || e.suspensionID == "" {
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

const suspendedColumns = `e.execution_id, e.suspension_id, e.suspended_at_ms, e.timeout_at_ms, e.waitpoint_count, e.tags`

// selectSuspendedPage reads limit+1 suspended executions strictly after the
// cursor (row-value comparison, served by executions_by_state).
const selectSuspendedPage = `SELECT ` + suspendedColumns + `
    FROM executions AS e
    WHERE e.state = 'suspended' AND (e.suspended_at_ms, e.execution_id) > (?, ?)
    ORDER BY e.suspended_at_ms, e.execution_id
    LIMIT ?`

// selectTaggedPage is selectSuspendedPage for the executions whose
// suspension carries a tag: one range read of suspension_tags' primary key
// (which holds suspended executions only) in page order, and the
// executions row of each match (CROSS JOIN keeps suspension_tags the outer
// loop), so a page reads only matching rows.
const selectTaggedPage = `SELECT ` + suspendedColumns + `
    FROM suspension_tags AS t CROSS JOIN executions AS e ON e.execution_id = t.execution_id
    WHERE t.tag = ? AND (t.suspended_at_ms, t.execution_id) > (?, ?)
    ORDER BY t.suspended_at_ms, t.execution_id
    LIMIT ?`

// ListSuspended pages through executions in state suspended, ordered by
// (suspended_at_ms, execution_id), strictly after the cursor; with a tag,
// only those whose suspension carries it (docs/spec.md §8.6).
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
		if args.Tag == "" {
			rows, err = scanSuspended(q.query(selectSuspendedPage, after.SuspendedAtMs, after.ExecutionID, args.Limit+1))
		} else {
			rows, err = scanSuspended(q.query(selectTaggedPage, args.Tag, after.SuspendedAtMs, after.ExecutionID, args.Limit+1))
		}
		return err
	})
	if err != nil {
		return contracts.ListSuspendedResult{}, err
	}
	return driver.PageSuspended(rows, args.Limit), nil
}

func scanSuspended(rows *sql.Rows, err error) ([]contracts.SuspendedExecution, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []contracts.SuspendedExecution{}
	for rows.Next() {
		var s contracts.SuspendedExecution
		var timeout sql.NullInt64
		var tags sql.NullString
		if err := rows.Scan(&s.ExecutionID, scanID{&s.SuspensionID}, &s.SuspendedAtMs, &timeout, &s.Waitpoints, &tags); err != nil {
			return nil, err
		}
		if timeout.Valid {
			s.TimeoutAtMs = &timeout.Int64
		}
		if s.Tags, err = scanTags(tags); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// --- claim_resumed_execution -----------------------------------------------

// markOverdue marks (overdue = 1) the suspended executions past their
// timeout and the claimed ones past their lease that no claim marked yet:
// the unmarked ranges of executions_by_timeout and executions_by_lease,
// keyed by (state, overdue, deadline), so each execution is read and
// marked once however long it then waits (schema version 5).
const markOverdue = `UPDATE executions SET overdue = 1 WHERE rowid IN (
    SELECT rowid FROM executions WHERE state = 'suspended' AND overdue = 0 AND timeout_at_ms < ?1
    UNION ALL
    SELECT rowid FROM executions WHERE state = 'claimed' AND overdue = 0 AND lease_expires_at_ms < ?1)`

// selectClaimable finds the oldest claimable execution by (suspended_at_ms,
// execution_id), once markOverdue ran at the same now: resumed (the first
// entry of executions_by_state's range), or marked overdue (the first entry
// of executions_overdue) and still past its deadline at now, which only a
// clock that went back since the mark can deny. Each branch reads its
// index in claim order and stops at its first row; nothing is sorted but
// the two rows they yield.
const selectClaimable = `SELECT ` + execColumns + ` FROM (
    SELECT * FROM (SELECT * FROM executions WHERE state = 'resumed'
        ORDER BY suspended_at_ms, execution_id LIMIT 1)
    UNION ALL
    SELECT * FROM (SELECT * FROM executions INDEXED BY executions_overdue WHERE overdue = 1
            AND (state = 'suspended' AND timeout_at_ms < ?1 OR state = 'claimed' AND lease_expires_at_ms < ?1)
        ORDER BY suspended_at_ms, execution_id LIMIT 1)
) ORDER BY suspended_at_ms, execution_id LIMIT 1`

const claimExec = `UPDATE executions SET state = 'claimed', reason = ?, lease_id = ?, lease_expires_at_ms = ?,
    overdue = 0 WHERE execution_id = ?`

// ClaimResumedExecution leases the oldest claimable execution in one write
// transaction, so each claimable execution goes to exactly one caller. A
// timeout claim closes the waitpoints; a re-claim after an expired lease
// keeps the reason.
func (b *Backend) ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	return writing(ctx, b, func(q txn, nowMs int64) (contracts.ClaimOutcome, error) {
		if _, err := q.exec(markOverdue, nowMs); err != nil {
			return contracts.ClaimOutcome{}, err
		}
		return claim(q, args, nowMs)
	})
}

var _ driver.BatchClaimer = (*Backend)(nil)

// ClaimResumedExecutions claims up to args.Max executions, oldest first,
// each as ClaimResumedExecution would (docs/spec.md §8.8), in one write
// transaction: all of them or, on an error, none.
func (b *Backend) ClaimResumedExecutions(ctx context.Context, args contracts.ClaimBatchArgs) (contracts.ClaimBatchOutcome, error) {
	return writing(ctx, b, func(q txn, nowMs int64) (contracts.ClaimBatchOutcome, error) {
		out := contracts.ClaimBatchOutcome{Claims: []contracts.ClaimOutcome{}}
		if _, err := q.exec(markOverdue, nowMs); err != nil {
			return out, err
		}
		for len(out.Claims) < args.Max {
			c, err := claim(q, args.Claim(), nowMs)
			if err != nil || c.Outcome != contracts.OutcomeClaimed {
				return out, err
			}
			out.Claims = append(out.Claims, c)
		}
		return out, nil
	})
}

// claim leases the oldest claimable execution at nowMs; markOverdue ran
// at nowMs earlier in the transaction.
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
	if _, err := q.exec(claimExec, reason, storedID(out.LeaseID), out.LeaseExpiresAtMs, e.id); err != nil {
		return out, err
	}
	if err := closeSuspension(q, e); err != nil { // a timeout claim closes the waitpoints here
		return out, err
	}
	out.Signals, err = loadSignals(q, e.suspensionID)
	return out, err
}

// --- complete_execution ----------------------------------------------------

// forgetExecution deletes everything recorded for an execution but its
// rows of suspension_tags (untag).
var forgetExecution = []string{
	`DELETE FROM signals WHERE execution_id = ?`,
	`DELETE FROM waitpoints WHERE execution_id = ?`,
	`DELETE FROM suspend_idempotency WHERE execution_id = ?`,
	`DELETE FROM executions WHERE execution_id = ?`,
}

// forget deletes the execution e and everything recorded for it:
// suspensions, waitpoints (pending ones too), signals, idempotency records
// and its rows of the tag index.
func forget(q txn, e *execRow) error {
	if err := untag(q, e); err != nil {
		return err
	}
	for _, stmt := range forgetExecution {
		if _, err := q.exec(stmt, e.id); err != nil {
			return err
		}
	}
	return nil
}

// CompleteExecution forgets a claimed execution and everything recorded for
// it, pending waitpoints included, in one write transaction. An expired
// lease that nobody re-claimed still completes.
func (b *Backend) CompleteExecution(ctx context.Context, args contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	err := b.write(ctx, func(q txn, _ int64) error {
		e, err := loadExec(q, args.ExecutionID)
		if err != nil {
			return err
		}
		if err := driver.CheckComplete(e.decision(), args); err != nil {
			return err
		}
		return forget(q, e)
	})
	if err != nil {
		return contracts.CompleteOutcome{}, err
	}
	return contracts.CompleteOutcome{Outcome: contracts.OutcomeCompleted, ExecutionID: args.ExecutionID}, nil
}
