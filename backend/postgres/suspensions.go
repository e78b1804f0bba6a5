package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// currentKeySQL reads the clock and the current kid (NULLs when the
// keystore is empty) in one statement.
const currentKeySQL = `SELECT n.now_ms, k.kid, k.secret
FROM (SELECT ` + nowMsExpr + ` AS now_ms) n
LEFT JOIN ff_keys k ON k.expires_at_ms IS NULL`

// createExecutionSQL creates the execution suspended on its first
// suspension, or does nothing (no row returned) when it exists. It is the
// first touch of ff_executions in suspend: the conflict check reads no
// index range, so suspends of new executions never fail to serialize
// against one another.
const createExecutionSQL = `INSERT INTO ff_executions
    (execution_id, state, suspension_id, suspended_at_ms, timeout_at_ms, condition, waitpoint_count)
VALUES ($1, 'suspended', $2, $3, $4, $5, $6)
ON CONFLICT (execution_id) DO NOTHING
RETURNING true`

// suspendStateSQL reads an existing execution's state and lease and the
// idempotency record of (execution_id, idempotency_key) ($2 NULL: none).
const suspendStateSQL = `SELECT e.state, e.lease_id, r.fingerprint, r.outcome
FROM ff_executions e
LEFT JOIN ff_suspend_requests r ON r.execution_id = e.execution_id AND r.idempotency_key = $2
WHERE e.execution_id = $1`

// kidSQL reads one kid's stored secret and expiry (no row: unknown or
// collected), for the replay of a suspend whose tokens another kid than
// the current one signed.
const kidSQL = `SELECT secret, expires_at_ms FROM ff_keys WHERE kid = $1`

// resuspendSQL suspends an existing execution on a new latest suspension,
// resetting the suspension columns (its budget counters included) and
// dropping the lease; next_seq continues, so delivery order spans
// suspensions.
const resuspendSQL = `UPDATE ff_executions SET
    state = 'suspended', suspension_id = $2, suspended_at_ms = $3, timeout_at_ms = $4,
    condition = $5, waitpoint_count = $6, signal_count = 0, signaled_count = 0, payload_bytes = 0,
    lease_id = NULL, lease_expires_at_ms = NULL, reason = NULL
WHERE execution_id = $1`

// insertWaitpointsSQL opens the suspension's waitpoints ($1 ids, $2 keys,
// in the same order).
const insertWaitpointsSQL = `INSERT INTO ff_waitpoints (waitpoint_id, waitpoint_key, execution_id, suspension_id, created_at_ms)
SELECT w.id, w.key, $3, $4, $5 FROM unnest($1::text[], $2::text[]) AS w(id, key)`

// insertSuspendRequestSQL stores a suspend outcome under its idempotency
// key, in the form driver.StoredSuspendOutcome gives: each token replaced
// by its kid, so that no table holds a token or a MAC.
const insertSuspendRequestSQL = `INSERT INTO ff_suspend_requests (execution_id, idempotency_key, fingerprint, outcome)
VALUES ($1, $2, $3, $4)`

// deliverLoadSQL reads everything deliver_signal decides on but the
// duplicate check, in one round trip: the clock; whether a current kid
// exists and the token's kid; the waitpoint if it belongs to the execution
// and its signal count; whether it is open (its suspension is the latest
// and not yet resumed) with the suspension's timeout, condition and
// counters (signals, waitpoints holding one, payload bytes: with the
// waitpoint's count, the budget of docs/spec.md §8.3), and the execution's
// delivery sequence. The execution's lock keeps these stable until commit.
const deliverLoadSQL = `SELECT n.now_ms,
       EXISTS (SELECT 1 FROM ff_keys WHERE expires_at_ms IS NULL),
       k.kid IS NOT NULL, k.secret, k.expires_at_ms,
       w.waitpoint_id IS NOT NULL, w.waitpoint_key, w.created_at_ms, w.suspension_id, w.signal_count,
       coalesce(e.suspension_id = w.suspension_id AND e.state = 'suspended', false),
       e.timeout_at_ms, e.condition, e.waitpoint_count, e.signal_count, e.signaled_count, e.payload_bytes,
       e.next_seq
FROM (SELECT ` + nowMsExpr + ` AS now_ms) n
LEFT JOIN ff_keys k ON k.kid = $1
LEFT JOIN ff_waitpoints w ON w.waitpoint_id = $2 AND w.execution_id = $3
LEFT JOIN ff_executions e ON e.execution_id = w.execution_id`

// recordSignalSQL records an accepted signal in one statement: it inserts
// the signal at place $13 of its suspension's delivery order and, only if
// it was inserted, counts it and its $14 payload bytes on the execution
// ($11 = 1 when it is its waitpoint's first), advances the delivery
// sequence to $6, resumes the execution when $12, and counts it on the
// waitpoint. The counters are the budget the next delivery reads. With
// an idempotency key the insert is also the duplicate check: the unique
// index on (waitpoint_id, idempotency_key) admits one signal per key
// whatever the isolation level, and DO NOTHING returns no row for a key
// already recorded. Checking by inserting reads no index range, so
// deliveries to different executions do not fail to serialize against one
// another.
const recordSignalSQL = `WITH ins AS (
    INSERT INTO ff_signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key, seq,
                            name, payload, idempotency_key, delivered_at_ms, ordinal)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $13)
    ON CONFLICT (waitpoint_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING signal_id
), e AS (
    UPDATE ff_executions
    SET next_seq = $6, signal_count = signal_count + 1, signaled_count = signaled_count + $11,
        payload_bytes = payload_bytes + $14,
        state = CASE WHEN $12 THEN 'resumed' ELSE state END
    WHERE execution_id = $2 AND EXISTS (SELECT 1 FROM ins)
), w AS (
    UPDATE ff_waitpoints SET signal_count = signal_count + 1
    WHERE waitpoint_id = $4 AND EXISTS (SELECT 1 FROM ins)
)
SELECT signal_id FROM ins`

// recordedSignalSQL finds the signal recorded under (waitpoint_id,
// idempotency_key).
const recordedSignalSQL = `SELECT signal_id FROM ff_signals WHERE waitpoint_id = $1 AND idempotency_key = $2`

// observeSQL reads the latest suspension of an execution and at most $4 of
// its signals in delivery order from place $3 on, in one statement (one
// snapshot): a range of the index on (suspension_id, ordinal). $2 is the
// cursor's suspension (NULL: no cursor); another one than the latest
// selects no signal. No row: unknown.
const observeSQL = `SELECT e.suspension_id, s.signal_id, s.waitpoint_id, s.waitpoint_key, s.name,
       s.payload, s.idempotency_key, s.delivered_at_ms
FROM ff_executions e
LEFT JOIN LATERAL (
    SELECT signal_id, waitpoint_id, waitpoint_key, name, payload, idempotency_key, delivered_at_ms, ordinal
    FROM ff_signals
    WHERE suspension_id = e.suspension_id AND ordinal >= $3 AND ($2::text IS NULL OR $2::text = e.suspension_id)
    ORDER BY ordinal
    LIMIT $4
) s ON true
WHERE e.execution_id = $1
ORDER BY s.ordinal`

// listSuspendedSQL reads one page of suspended executions strictly after
// the cursor ($1, $2), oldest first; the caller asks for one row more than
// the page to know whether another page follows.
const listSuspendedSQL = `SELECT execution_id, suspension_id, suspended_at_ms, timeout_at_ms, waitpoint_count
FROM ff_executions
WHERE state = 'suspended' AND (suspended_at_ms, execution_id) > ($1, $2)
ORDER BY suspended_at_ms, execution_id
LIMIT $3`

// claimLockSQL queues a claim behind every other claim and every operation
// on an execution in flight, in all processes; execGateSQL is the
// operations' side of the gate (ROW EXCLUSIVE conflicts with EXCLUSIVE, not
// with itself), and execGateAloneSQL the side of an operation's retry,
// which runs alone like a claim. Each must be the first statement of its
// transaction (sent with BEGIN): LOCK TABLE takes no snapshot, so whoever waited here sees
// what the other side committed and does not fail to serialize against it.
const (
	claimLockSQL     = `LOCK TABLE ff_claim_lock IN EXCLUSIVE MODE`
	execGateSQL      = `LOCK TABLE ff_claim_lock IN ROW EXCLUSIVE MODE`
	execGateAloneSQL = claimLockSQL
)

// claimSQL leases the oldest claimable execution in one statement, at one
// reading of the clock. The candidates are the oldest execution of each
// claimable kind, each found through its partial index: resumed (reason
// signal), suspended past its timeout (reason timeout), claimed with an
// expired lease (reason kept); the oldest of them by (suspended_at_ms,
// execution_id) is taken. No row: nothing claimable. Claims run behind
// claimLockSQL, alone among execution writers, so the rows read cannot
// change before the update.
const claimSQL = `WITH n AS (SELECT ` + nowMsExpr + ` AS now_ms),
candidates AS (
    (SELECT execution_id, suspended_at_ms, 'signal' AS reason FROM ff_executions
     WHERE state = 'resumed'
     ORDER BY suspended_at_ms, execution_id LIMIT 1)
    UNION ALL
    (SELECT execution_id, suspended_at_ms, 'timeout' FROM ff_executions
     WHERE state = 'suspended' AND timeout_at_ms IS NOT NULL AND timeout_at_ms < (SELECT now_ms FROM n)
     ORDER BY suspended_at_ms, execution_id LIMIT 1)
    UNION ALL
    (SELECT execution_id, suspended_at_ms, reason FROM ff_executions
     WHERE state = 'claimed' AND lease_expires_at_ms < (SELECT now_ms FROM n)
     ORDER BY suspended_at_ms, execution_id LIMIT 1)
),
pick AS (SELECT execution_id, reason FROM candidates ORDER BY suspended_at_ms, execution_id LIMIT 1)
UPDATE ff_executions e
SET state = 'claimed', reason = pick.reason, lease_id = $1, lease_expires_at_ms = n.now_ms + $2
FROM pick, n
WHERE e.execution_id = pick.execution_id
RETURNING e.execution_id, e.suspension_id, e.reason, e.lease_expires_at_ms`

// suspensionSignalsSQL lists a suspension's signals in delivery order.
const suspensionSignalsSQL = `SELECT signal_id, waitpoint_id, waitpoint_key, name, payload, idempotency_key, delivered_at_ms
FROM ff_signals WHERE suspension_id = $1 ORDER BY ordinal`

// leaseSQL reads the state and lease of an execution; no row: unknown.
const leaseSQL = `SELECT state, lease_id FROM ff_executions WHERE execution_id = $1`

// forgetExecutionSQL deletes an execution and everything recorded for it,
// in one statement.
const forgetExecutionSQL = `WITH s AS (DELETE FROM ff_signals WHERE execution_id = $1),
w AS (DELETE FROM ff_waitpoints WHERE execution_id = $1),
r AS (DELETE FROM ff_suspend_requests WHERE execution_id = $1)
DELETE FROM ff_executions WHERE execution_id = $1`

// nullIfEmpty maps the contract's "empty means none" to SQL NULL.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Suspend opens 1–16 waitpoints for an execution and signs their tokens with
// the current kid (docs/spec.md §5.1 gives the order of
// checks). One SERIALIZABLE transaction under the execution's lock. A replay
// with the same idempotency key returns the first outcome, its tokens signed
// again by their kid (the record holds no token); when that kid no longer
// verifies (collected, or past its grace) it fails with state /
// suspend_replay_expired and writes nothing.
func (b *Backend) Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	ring := b.keyring.Load()
	err := b.inExecTx(ctx, args.ExecutionID, func(tx pgx.Tx) error {
		var (
			nowMs  int64
			kid    *string
			secret []byte
		)
		if err := tx.QueryRow(ctx, currentKeySQL).Scan(&nowMs, &kid, &secret); err != nil {
			return err
		}
		if kid == nil {
			return driver.NotInitialized()
		}
		current := driver.KidRecord{Kid: *kid, Secret: secret}
		if err := openRecord(ring, &current); err != nil {
			return err
		}
		out = driver.NewSuspension(args, current, nowMs)
		created, err := createExecution(ctx, tx, args, out)
		switch {
		case err != nil:
			return err
		case created:
			// State none: CheckSuspend refuses a lease_id, and the error
			// rolls the creation back.
			if err := driver.CheckSuspend(nil, args.LeaseID); err != nil {
				return err
			}
			return writeSuspension(ctx, tx, args, out)
		}
		replay, err := resuspend(ctx, tx, ring, current, nowMs, args, out)
		if replay != nil {
			out = *replay
		}
		return err
	})
	return out, interpretError(err)
}

// createExecution creates the execution on its first suspension and
// reports whether it did (false: it exists).
func createExecution(ctx context.Context, tx pgx.Tx, args contracts.SuspendArgs, out contracts.SuspendOutcome) (bool, error) {
	var created bool
	err := tx.QueryRow(ctx, createExecutionSQL, args.ExecutionID, out.SuspensionID, out.SuspendedAtMs,
		out.TimeoutAtMs, out.Condition, len(out.Waitpoints)).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return created, err
}

// resuspend suspends an execution that exists: it replays the outcome
// stored under the idempotency key (returned), or checks the state and
// lease and writes the new suspension out. current is the current kid,
// opened.
func resuspend(ctx context.Context, tx pgx.Tx, ring *kek.Keyring, current driver.KidRecord, nowMs int64,
	args contracts.SuspendArgs, out contracts.SuspendOutcome) (*contracts.SuspendOutcome, error) {
	var (
		state         string
		lease, fprint *string
		stored        []byte
	)
	err := tx.QueryRow(ctx, suspendStateSQL, args.ExecutionID, nullIfEmpty(args.IdempotencyKey)).Scan(&state, &lease, &fprint, &stored)
	if err != nil {
		return nil, err
	}
	if fprint != nil {
		if err := driver.CheckSuspendReplay(*fprint, args); err != nil {
			return nil, err
		}
		replay, err := replaySuspend(ctx, tx, ring, current, stored, nowMs)
		if err != nil {
			return nil, err
		}
		return &replay, nil
	}
	e := driver.ExecutionState{ID: args.ExecutionID, State: state}
	if lease != nil {
		e.LeaseID = *lease
	}
	if err := driver.CheckSuspend(&e, args.LeaseID); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, resuspendSQL, args.ExecutionID, out.SuspensionID, out.SuspendedAtMs,
		out.TimeoutAtMs, out.Condition, len(out.Waitpoints)); err != nil {
		return nil, err
	}
	return nil, writeSuspension(ctx, tx, args, out)
}

// replaySuspend rebuilds the outcome of a stored suspend record at nowMs
// (driver.ReplaySuspendOutcome): its tokens are signed again by their kid,
// the current one (already opened) or a verifying one read and, when it
// still verifies, opened with ring. Records written before tokens stopped
// being stored hold whole tokens and replay the same way.
func replaySuspend(ctx context.Context, tx pgx.Tx, ring *kek.Keyring, current driver.KidRecord, stored []byte, nowMs int64) (contracts.SuspendOutcome, error) {
	kid, err := driver.StoredOutcomeKid(stored)
	if err != nil {
		return contracts.SuspendOutcome{}, contracts.ErrInternal.With("suspend: the stored outcome does not decode").Wrapping(err)
	}
	var keys driver.PartitionKeys
	switch {
	case kid == current.Kid:
		keys.Current = &current
	case kid != "":
		rec := driver.KidRecord{Kid: kid}
		err := tx.QueryRow(ctx, kidSQL, kid).Scan((*[]byte)(&rec.Secret), &rec.ExpiresAtMs)
		switch {
		case errors.Is(err, pgx.ErrNoRows): // collected: the replay has expired
		case err != nil:
			return contracts.SuspendOutcome{}, err
		case !rec.Usable(nowMs):
			// Past its grace: the replay has expired, and answers so
			// without opening the secret (so without a KEK).
			keys.Verifying = []driver.KidRecord{rec}
		default:
			keys.Verifying = []driver.KidRecord{rec}
			if keys, err = driver.OpenKid(ring, keyPartition, keys, kid); err != nil {
				return contracts.SuspendOutcome{}, err
			}
		}
	}
	return driver.ReplaySuspendOutcome(stored, keys, nowMs)
}

// writeSuspension writes the waitpoints of a new suspension and its
// idempotency record (driver.StoredSuspendOutcome: no token), in one round
// trip.
func writeSuspension(ctx context.Context, tx pgx.Tx, args contracts.SuspendArgs, out contracts.SuspendOutcome) error {
	ids := make([]string, len(out.Waitpoints))
	keys := make([]string, len(out.Waitpoints))
	for i, w := range out.Waitpoints {
		ids[i], keys[i] = w.WaitpointID, w.WaitpointKey
	}
	var batch pgx.Batch
	batch.Queue(insertWaitpointsSQL, ids, keys, args.ExecutionID, out.SuspensionID, out.SuspendedAtMs)
	if args.IdempotencyKey != "" {
		stored, err := driver.StoredSuspendOutcome(out)
		if err != nil {
			return err
		}
		batch.Queue(insertSuspendRequestSQL, args.ExecutionID, args.IdempotencyKey, args.Fingerprint(), stored)
	}
	return tx.SendBatch(ctx, &batch).Close()
}

// deliveryState is what deliverLoadSQL returns.
type deliveryState struct {
	nowMs                      int64
	initialized, known, found  bool
	rec                        driver.KidRecord
	key                        *string
	createdAtMs                *int64
	suspensionID               *string
	waitpointSignals           *int
	open                       bool
	timeoutAtMs                *int64
	condition                  *string
	waitpoints, signals, fired *int
	payloadBytes               *int64
	nextSeq                    *int64
}

// DeliverSignal records a signal on a waitpoint exactly once per
// (waitpoint_id, idempotency_key) and resumes the execution when its
// condition holds, closing every waitpoint of the suspension in the same
// transaction. Checks run in the order of docs/spec.md §5. One SERIALIZABLE
// transaction under the execution's lock.
func (b *Backend) DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	var out contracts.DeliverSignalOutcome
	ring := b.keyring.Load()
	err = b.inExecTx(ctx, args.ExecutionID, func(tx pgx.Tx) error {
		var d deliveryState
		d.rec.Kid = t.Kid
		err := tx.QueryRow(ctx, deliverLoadSQL, t.Kid, args.WaitpointID, args.ExecutionID).Scan(
			&d.nowMs, &d.initialized, &d.known, (*[]byte)(&d.rec.Secret), &d.rec.ExpiresAtMs,
			&d.found, &d.key, &d.createdAtMs, &d.suspensionID, &d.waitpointSignals,
			&d.open, &d.timeoutAtMs, &d.condition, &d.waitpoints, &d.signals, &d.fired, &d.payloadBytes, &d.nextSeq)
		if err != nil {
			return err
		}
		if err := authorize(ring, t, args, d); err != nil {
			return err
		}
		out, err = recordSignal(ctx, tx, args, d)
		return err
	})
	return out, interpretError(err)
}

// authorize runs checks 1 and 2 of deliver_signal on what deliverLoadSQL
// read (contracts.AuthorizeToken), opening the kid's secret with ring when
// the check gets as far as the MAC.
func authorize(ring *kek.Keyring, t contracts.Token, args contracts.DeliverSignalArgs, d deliveryState) error {
	var rec *driver.KidRecord
	if d.known {
		var err error
		if rec, err = driver.OpenForCheck(ring, keyPartition, d.initialized, &d.rec, d.nowMs); err != nil {
			return err
		}
	}
	var w *driver.WaitpointRef
	if d.found { // deliverLoadSQL found it among the execution's waitpoints
		w = &driver.WaitpointRef{ExecutionID: args.ExecutionID, WaitpointID: args.WaitpointID, WaitpointKey: *d.key, CreatedAtMs: *d.createdAtMs}
	}
	return driver.AuthorizeToken(t, args.ExecutionID, d.initialized, rec, w, d.nowMs)
}

// recordSignal runs checks 3 to 5 of deliver_signal. When the waitpoint
// accepts a signal (open, not timed out, within the budget its counters
// give), one statement records it or finds the key recorded (duplicate);
// when it does not, a recorded key still answers duplicate (check 3 comes
// before check 4).
func recordSignal(ctx context.Context, tx pgx.Tx, args contracts.DeliverSignalArgs, d deliveryState) (contracts.DeliverSignalOutcome, error) {
	var used driver.SignalBudget
	if d.open { // else the counters are another suspension's, and unused
		used = driver.SignalBudget{WaitpointSignals: *d.waitpointSignals, SuspensionSignals: *d.signals, PayloadBytes: *d.payloadBytes}
	}
	if refusal := driver.CheckDeliverable(!d.open, d.timeoutAtMs, used, args, d.nowMs); refusal != nil {
		if args.IdempotencyKey == "" {
			return contracts.DeliverSignalOutcome{}, refusal
		}
		return duplicateOr(ctx, tx, args, refusal)
	}
	w := driver.WaitpointRef{ExecutionID: args.ExecutionID, WaitpointID: args.WaitpointID, WaitpointKey: *d.key, CreatedAtMs: *d.createdAtMs}
	sig := driver.NewSignal(w, args, d.nowMs)
	var payload []byte
	if len(sig.Payload) > 0 {
		payload = sig.Payload
	}
	first := 0
	if *d.waitpointSignals == 0 {
		first = 1
	}
	resumes := driver.ConditionHolds(*d.condition, *d.fired+first, *d.waitpoints)
	var id string
	err := tx.QueryRow(ctx, recordSignalSQL, sig.SignalID, args.ExecutionID, *d.suspensionID, args.WaitpointID,
		sig.WaitpointKey, *d.nextSeq+1, sig.Name, payload, nullIfEmpty(sig.IdempotencyKey), sig.DeliveredAtMs, first, resumes,
		*d.signals, int64(len(payload))).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return duplicateOr(ctx, tx, args, nil)
	}
	if err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: id, Resumed: resumes}, nil
}

// duplicateOr answers duplicate when the delivery's idempotency key is
// recorded on the waitpoint, else refusal.
func duplicateOr(ctx context.Context, tx pgx.Tx, args contracts.DeliverSignalArgs, refusal error) (contracts.DeliverSignalOutcome, error) {
	var id string
	err := tx.QueryRow(ctx, recordedSignalSQL, args.WaitpointID, args.IdempotencyKey).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows) && refusal != nil:
		return contracts.DeliverSignalOutcome{}, refusal
	case err != nil:
		return contracts.DeliverSignalOutcome{}, err
	}
	return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: id}, nil
}

// ObserveSignals returns one page of the signals of the execution's latest
// suspension in delivery order: at most args.Limit from the cursor's
// position (driver.ObserveStart), and next_cursor when more follow
// (driver.PageSignals). A cursor of another suspension than the latest
// gives an empty last page. One statement, reading limit+1 entries of an
// index range.
func (b *Backend) ObserveSignals(ctx context.Context, args contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	if err := b.usable(); err != nil {
		return contracts.ObserveSignalsResult{}, err
	}
	limit := args.Limit
	if limit < 1 { // the Engine fills the default; direct callers may not
		limit = contracts.DefaultObserveLimit
	}
	var (
		cursorSuspension *string
		from             int64
	)
	if args.Cursor != "" {
		c, err := contracts.DecodeSignalCursor(args.Cursor)
		if err != nil {
			return contracts.ObserveSignalsResult{}, err
		}
		cursorSuspension, from = &c.SuspensionID, c.Position
	}
	rows, err := b.pool.Query(ctx, observeSQL, args.ExecutionID, cursorSuspension, from, limit+1)
	if err != nil {
		return contracts.ObserveSignalsResult{}, interpretError(err)
	}
	var (
		suspensionID string
		sigs         []contracts.Signal
		seen         bool
	)
	for rows.Next() {
		seen = true
		var sig nullableSignal
		if err := rows.Scan(&suspensionID, &sig.id, &sig.waitpointID, &sig.key, &sig.name, &sig.payload, &sig.idem, &sig.at); err != nil {
			rows.Close()
			return contracts.ObserveSignalsResult{}, interpretError(err)
		}
		if sig.id != nil {
			sigs = append(sigs, sig.signal())
		}
	}
	if err := rows.Err(); err != nil {
		return contracts.ObserveSignalsResult{}, interpretError(err)
	}
	if !seen {
		return contracts.ObserveSignalsResult{}, driver.ExecutionNotFound(args.ExecutionID)
	}
	start, ok := driver.ObserveStart(args, suspensionID)
	if !ok {
		sigs = nil // observeSQL selected none; the cursor is stale
	}
	return driver.PageSignals(args.ExecutionID, suspensionID, sigs, start, limit), nil
}

// nullableSignal is a signal row of a LEFT JOIN.
type nullableSignal struct {
	id, waitpointID, key, name, idem *string
	payload                          []byte
	at                               *int64
}

func (s nullableSignal) signal() contracts.Signal {
	sig := contracts.Signal{SignalID: *s.id, WaitpointID: *s.waitpointID, WaitpointKey: *s.key, Name: *s.name, DeliveredAtMs: *s.at}
	if s.payload != nil {
		sig.Payload = json.RawMessage(s.payload)
	}
	if s.idem != nil {
		sig.IdempotencyKey = *s.idem
	}
	return sig
}

// ListSuspended pages through executions in state suspended, ordered by
// (suspended_at_ms, execution_id), strictly after the cursor; one statement.
func (b *Backend) ListSuspended(ctx context.Context, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	if err := b.usable(); err != nil {
		return contracts.ListSuspendedResult{}, err
	}
	after := contracts.Cursor{SuspendedAtMs: -1}
	if args.Cursor != "" {
		c, err := contracts.DecodeCursor(args.Cursor)
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		after = c
	}
	rows, err := b.pool.Query(ctx, listSuspendedSQL, after.SuspendedAtMs, after.ExecutionID, args.Limit+1)
	if err != nil {
		return contracts.ListSuspendedResult{}, interpretError(err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (contracts.SuspendedExecution, error) {
		var e contracts.SuspendedExecution
		err := r.Scan(&e.ExecutionID, &e.SuspensionID, &e.SuspendedAtMs, &e.TimeoutAtMs, &e.Waitpoints)
		return e, err
	})
	if err != nil {
		return contracts.ListSuspendedResult{}, interpretError(err)
	}
	return driver.PageSuspended(list, args.Limit), nil
}

// ClaimResumedExecution leases the oldest claimable execution: resumed,
// suspended past its timeout, or claimed with an expired lease. One
// SERIALIZABLE transaction behind claimLockSQL, so concurrent claims of all
// processes each get another execution.
func (b *Backend) ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	var out contracts.ClaimOutcome
	err := b.inTx(ctx, claimLockSQL, func(tx pgx.Tx) error {
		out = contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}
		c := contracts.ClaimOutcome{Outcome: contracts.OutcomeClaimed, LeaseID: driver.NewID()}
		err := tx.QueryRow(ctx, claimSQL, c.LeaseID, args.LeaseMs).Scan(&c.ExecutionID, &c.SuspensionID, &c.Reason, &c.LeaseExpiresAtMs)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.Signals, err = suspensionSignals(ctx, tx, c.SuspensionID); err != nil {
			return err
		}
		out = c
		return nil
	})
	return out, interpretError(err)
}

// suspensionSignals lists a suspension's signals in delivery order.
func suspensionSignals(ctx context.Context, tx pgx.Tx, suspensionID string) ([]contracts.Signal, error) {
	rows, err := tx.Query(ctx, suspensionSignalsSQL, suspensionID)
	if err != nil {
		return nil, err
	}
	sigs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (contracts.Signal, error) {
		var s nullableSignal
		err := r.Scan(&s.id, &s.waitpointID, &s.key, &s.name, &s.payload, &s.idem, &s.at)
		if err != nil {
			return contracts.Signal{}, err
		}
		return s.signal(), nil
	})
	if sigs == nil {
		sigs = []contracts.Signal{}
	}
	return sigs, err
}

// CompleteExecution forgets a claimed execution and everything recorded for
// it. An expired lease that nobody re-claimed still completes. One
// SERIALIZABLE transaction under the execution's lock.
func (b *Backend) CompleteExecution(ctx context.Context, args contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	err := b.inExecTx(ctx, args.ExecutionID, func(tx pgx.Tx) error {
		e := &driver.ExecutionState{ID: args.ExecutionID}
		var lease *string
		err := tx.QueryRow(ctx, leaseSQL, args.ExecutionID).Scan(&e.State, &lease)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			e = nil
		case err != nil:
			return err
		case lease != nil:
			e.LeaseID = *lease
		}
		if err := driver.CheckComplete(e, args); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, forgetExecutionSQL, args.ExecutionID)
		return err
	})
	if err != nil {
		return contracts.CompleteOutcome{}, interpretError(err)
	}
	return contracts.CompleteOutcome{Outcome: contracts.OutcomeCompleted, ExecutionID: args.ExecutionID}, nil
}
