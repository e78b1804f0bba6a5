package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Suspend opens 1–16 waitpoints for an execution, new ones and pending
// ones it names, and signs their tokens with the current kid (docs/spec.md
// §5.1 and §8.1 give the order of checks). One transaction under the
// execution's locks (inExecTx): one statement reads the clock, the
// current kid and the execution (suspendLoadSQL), and the writes go with
// COMMIT, so a suspend without pending waitpoints costs two round trips.
// An execution in state none whose pending waitpoints all expired is
// forgotten first. When the signals already kept on the pending
// waitpoints satisfy the condition, the suspension is recorded closed and
// the outcome is already_satisfied, the execution keeping its state and
// lease. A replay with the same idempotency key returns the first outcome,
// its tokens signed again by their kid (the record holds no token); when
// that kid no longer verifies (collected, or past its grace) it fails with
// state / suspend_replay_expired and writes nothing. Concurrent suspends
// of distinct executions share one transaction (group commit,
// suspend_group.go): each decides exactly as it would alone and answers
// after the group's COMMIT; a suspend that finds no group to join runs at
// once, alone (suspendAlone).
func (b *Backend) Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	if err := b.usable(); err != nil {
		return contracts.SuspendOutcome{}, err
	}
	out, err := b.suspends.call(ctx, suspendCall{args: args, ring: b.keyring.Load()})
	if err != nil {
		return contracts.SuspendOutcome{}, interpretError(err)
	}
	return out, nil
}

// suspendAlone is suspend in a transaction of its own (inExecTx).
func (b *Backend) suspendAlone(ctx context.Context, c suspendCall) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	err := b.inExecTx(ctx, c.args.ExecutionID, func(tx *pipeTx) error {
		var err error
		out, err = suspendIn(ctx, tx, c.ring, c.args)
		return err
	})
	if err != nil {
		return contracts.SuspendOutcome{}, interpretError(err)
	}
	return out, nil
}

// suspendIn is one attempt of suspend in tx, which holds the execution's
// locks.
func suspendIn(ctx context.Context, tx dbtx, ring *kek.Keyring, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	var l suspendLoad
	if err := tx.QueryRow(ctx, suspendLoadSQL, l.loadArgs(args)...).Scan(l.dest(args.ExecutionID)...); err != nil {
		return contracts.SuspendOutcome{}, err
	}
	return suspendDecide(ctx, tx, ring, args, &l)
}

// suspendDecide runs suspend on what suspendLoadSQL read (l), in tx: the
// same decision alone and in a group.
func suspendDecide(ctx context.Context, tx dbtx, ring *kek.Keyring, args contracts.SuspendArgs, l *suspendLoad) (contracts.SuspendOutcome, error) {
	if l.kid == nil {
		return contracts.SuspendOutcome{}, driver.NotInitialized()
	}
	current := driver.KidRecord{Kid: *l.kid, Secret: l.secret}
	if err := openRecord(ring, &current); err != nil {
		return contracts.SuspendOutcome{}, err
	}
	l.st.LeaseID = deref(l.lease)
	s := suspendStep{ctx: ctx, tx: tx, args: args, current: current, nowMs: l.nowMs}
	return s.run(ring, *l)
}

// suspendLoad is what suspendLoadSQL reads: the clock, the current kid
// (nil: none), and whether the execution is remembered and, if so, its
// state.
type suspendLoad struct {
	nowMs  int64
	kid    *string
	secret []byte
	lease  *string
	exists bool
	st     suspendState
}

// loadArgs are suspendLoadSQL's arguments for args.
func (l *suspendLoad) loadArgs(args contracts.SuspendArgs) []any {
	return []any{args.ExecutionID, nullIfEmpty(args.IdempotencyKey)}
}

// dest are the destinations of suspendLoadSQL's row for execution id.
func (l *suspendLoad) dest(id string) []any {
	l.st.ID = id
	return []any{&l.nowMs, &l.kid, &l.secret, &l.exists, &l.st.State, &l.lease, &l.st.fingerprint, &l.st.stored, &l.st.lastPendingExpiry}
}

// currentKey reads the clock and the current kid, its secret opened with
// ring; hmac_secret_not_initialized when the keystore has none.
func currentKey(ctx context.Context, tx dbtx, ring *kek.Keyring) (int64, driver.KidRecord, error) {
	var (
		nowMs  int64
		kid    *string
		secret []byte
	)
	if err := tx.QueryRow(ctx, currentKeySQL).Scan(&nowMs, &kid, &secret); err != nil {
		return 0, driver.KidRecord{}, err
	}
	if kid == nil {
		return 0, driver.KidRecord{}, driver.NotInitialized()
	}
	current := driver.KidRecord{Kid: *kid, Secret: secret}
	if err := openRecord(ring, &current); err != nil {
		return 0, driver.KidRecord{}, err
	}
	return nowMs, current, nil
}

// suspendStep is one attempt of suspend inside its transaction; current is
// the current kid, opened.
type suspendStep struct {
	ctx     context.Context
	tx      dbtx
	args    contracts.SuspendArgs
	current driver.KidRecord
	nowMs   int64
}

// suspendState is what suspendLoadSQL reads of an existing execution.
type suspendState struct {
	driver.ExecutionState
	fingerprint       *string
	stored            []byte
	lastPendingExpiry *int64 // state none only
}

// run decides and writes the suspend on what suspendLoadSQL read (l): an
// execution not remembered is created (fresh); an existing one is
// forgotten when ForgetsExpiredPending says so (and then created afresh),
// replayed from its idempotency record, or checked (CheckSuspend, then
// CheckPendingUse) and suspended.
func (s suspendStep) run(ring *kek.Keyring, l suspendLoad) (contracts.SuspendOutcome, error) {
	plan := driver.NewSuspension(s.args, s.current, s.nowMs) // for an execution not remembered
	st := l.st
	if !l.exists {
		return plan, s.fresh(plan)
	}
	if st.lastPendingExpiry != nil && driver.ForgetsExpiredPending(st.State, *st.lastPendingExpiry, s.nowMs) {
		if _, err := s.tx.Exec(s.ctx, forgetExecutionSQL, s.args.ExecutionID); err != nil {
			return contracts.SuspendOutcome{}, err
		}
		return plan, s.fresh(plan)
	}
	if st.fingerprint != nil {
		if err := driver.CheckSuspendReplay(*st.fingerprint, s.args); err != nil {
			return contracts.SuspendOutcome{}, err
		}
		return replaySuspend(s.ctx, s.tx, ring, s.current, st.stored, s.nowMs)
	}
	if err := driver.CheckSuspend(&st.ExecutionState, s.args.LeaseID); err != nil {
		return contracts.SuspendOutcome{}, err
	}
	found, err := s.pendingFound()
	if err != nil {
		return contracts.SuspendOutcome{}, err
	}
	if err := driver.CheckPendingUse(s.args, found, s.nowMs); err != nil {
		return contracts.SuspendOutcome{}, err
	}
	out := driver.NewSuspensionUsing(s.args, s.current, found, s.nowMs)
	return s.resuspend(out, found, driver.PendingSatisfied(s.args, found))
}

// fresh writes the suspend of an execution that is not remembered (or was
// just forgotten): state none refuses a lease_id (CheckSuspend) and holds
// no pending waitpoint (CheckPendingUse refuses every one named), then
// the execution, plan's waitpoints, tags and idempotency record are
// written in one batch (held back until COMMIT in a pipelined
// transaction). Under the execution's lock nobody created it since the
// load; should a snapshot older than the lock (an application's
// REPEATABLE READ transaction) have missed it, the insert fails on the
// primary key, which is retried or answered as contention
// (concurrentWriterConstraints).
func (s suspendStep) fresh(plan contracts.SuspendOutcome) error {
	if err := driver.CheckSuspend(nil, s.args.LeaseID); err != nil {
		return err
	}
	if err := driver.CheckPendingUse(s.args, nil, s.nowMs); err != nil {
		return err
	}
	var batch pgx.Batch
	batch.Queue(insertExecutionSQL, s.args.ExecutionID, plan.SuspensionID, plan.SuspendedAtMs,
		plan.TimeoutAtMs, plan.Condition, len(plan.Waitpoints), tagsParam(plan.Tags))
	s.queueWaitpoints(&batch, plan, nil)
	if err := s.queueRecord(&batch, plan, plan); err != nil {
		return err
	}
	queueTags(&batch, s.args.ExecutionID, plan)
	return s.tx.SendBatch(s.ctx, &batch).Close()
}

// pendingFound reads the pending waitpoints the suspend names, by id
// (pendingSQL); ids that are not pending waitpoints are absent.
func (s suspendStep) pendingFound() (map[string]*driver.PendingWaitpoint, error) {
	ids := driver.PendingIDs(s.args)
	found := make(map[string]*driver.PendingWaitpoint, len(ids))
	if len(ids) == 0 {
		return found, nil
	}
	rows, err := s.tx.Query(s.ctx, pendingSQL, ids)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*driver.PendingWaitpoint, error) {
		var p driver.PendingWaitpoint
		err := r.Scan(&p.ID, &p.ExecutionID, &p.Key, &p.CreatedAtMs, &p.ExpiresAtMs, &p.Used, &p.Signals, &p.PayloadBytes)
		return &p, err
	})
	for _, p := range list {
		found[p.ID] = p
	}
	return found, err
}

// resuspend writes out, the new suspension of an existing execution
// planned with the pending waitpoints found: the execution's suspension
// columns, with the counters its pending waitpoints bring (PendingBudget);
// its new waitpoints; the pending ones handed to it with the signals kept
// on them; its tags; its idempotency record. When satisfied, the
// execution keeps its state and lease (resuspendSQL), the suspension is
// closed (it is not the open one of a suspended execution) and listed
// under no tag, and the outcome is already_satisfied with the signals the
// suspension now holds, in delivery order.
func (s suspendStep) resuspend(out contracts.SuspendOutcome, found map[string]*driver.PendingWaitpoint, satisfied bool) (contracts.SuspendOutcome, error) {
	signals, payloadBytes, signaled := driver.PendingBudget(s.args, found)
	var batch pgx.Batch
	batch.Queue(resuspendSQL, s.args.ExecutionID, out.SuspensionID, out.SuspendedAtMs, out.TimeoutAtMs,
		out.Condition, len(out.Waitpoints), tagsParam(out.Tags), signals, signaled, payloadBytes, satisfied)
	s.queueWaitpoints(&batch, out, found)
	if ids := driver.PendingIDs(s.args); len(ids) > 0 {
		batch.Queue(joinBufferedSQL, out.SuspensionID, s.args.ExecutionID, ids)
	}
	result := out
	if satisfied {
		if err := s.tx.SendBatch(s.ctx, &batch).Close(); err != nil {
			return contracts.SuspendOutcome{}, err
		}
		batch = pgx.Batch{}
		sigs, err := suspensionSignals(s.ctx, s.tx, out.SuspensionID)
		if err != nil {
			return contracts.SuspendOutcome{}, err
		}
		result = driver.AlreadySatisfied(out, sigs)
	} else {
		queueTags(&batch, s.args.ExecutionID, out)
	}
	if err := s.queueRecord(&batch, out, result); err != nil {
		return contracts.SuspendOutcome{}, err
	}
	return result, s.tx.SendBatch(s.ctx, &batch).Close()
}

// queueWaitpoints queues the writes of out's waitpoints: new keys are
// inserted, pending waitpoints (those of found that the suspend names) are
// handed to the suspension; each stores the fingerprint of the token out
// holds for it (driver.TokenFingerprint), never the token.
func (s suspendStep) queueWaitpoints(batch *pgx.Batch, out contracts.SuspendOutcome, found map[string]*driver.PendingWaitpoint) {
	var newIDs, newKeys, newFps, usedIDs, usedFps []string
	for i, w := range out.Waitpoints {
		fp := driver.TokenFingerprint(w.Token)
		if spec := s.args.Waitpoints[i]; spec.Pending != "" && found[spec.Pending] != nil {
			usedIDs, usedFps = append(usedIDs, w.WaitpointID), append(usedFps, fp)
			continue
		}
		newIDs, newKeys, newFps = append(newIDs, w.WaitpointID), append(newKeys, w.WaitpointKey), append(newFps, fp)
	}
	if len(newIDs) > 0 {
		batch.Queue(insertWaitpointsSQL, newIDs, newKeys, newFps, s.args.ExecutionID, out.SuspensionID,
			out.SuspendedAtMs, out.TimeoutAtMs, tagsParam(out.Tags))
	}
	if len(usedIDs) > 0 {
		batch.Queue(usePendingSQL, usedIDs, usedFps, out.SuspensionID, out.TimeoutAtMs)
	}
}

// queueRecord queues the idempotency record of the suspend, if it has a
// key: result (out, or its already_satisfied form) as
// driver.StoredSuspendOutcome stores it, without tokens.
func (s suspendStep) queueRecord(batch *pgx.Batch, out, result contracts.SuspendOutcome) error {
	if s.args.IdempotencyKey == "" {
		return nil
	}
	stored, err := driver.StoredSuspendOutcome(result)
	if err != nil {
		return contracts.ErrInternal.With("suspend: the outcome does not encode").Wrapping(err)
	}
	batch.Queue(insertSuspendRequestSQL, out.ExecutionID, s.args.IdempotencyKey, s.args.Fingerprint(), stored)
	return nil
}

// queueTags lists the execution, suspended by out, under each of out's
// tags for list_suspended by tag.
func queueTags(batch *pgx.Batch, executionID string, out contracts.SuspendOutcome) {
	if len(out.Tags) > 0 {
		batch.Queue(insertTagsSQL, executionID, out.SuspendedAtMs, out.Tags)
	}
}

// tagsParam is tags as a text[] parameter: never NULL, the columns are NOT
// NULL.
func tagsParam(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

// replaySuspend rebuilds the outcome of a stored suspend record at nowMs
// (driver.ReplaySuspendOutcome): its tokens are signed again by their kid,
// the current one (already opened) or a verifying one read and, when it
// still verifies, opened with ring. Records written before tokens stopped
// being stored hold whole tokens and replay the same way.
func replaySuspend(ctx context.Context, tx dbtx, ring *kek.Keyring, current driver.KidRecord, stored []byte, nowMs int64) (contracts.SuspendOutcome, error) {
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
		err := tx.QueryRow(ctx, kidSQL, kid).Scan((*[]byte)(&rec.Secret), &rec.ExpiresAtMs, &rec.Revoked)
		switch {
		case errors.Is(err, pgx.ErrNoRows): // collected: the replay has expired
		case err != nil:
			return contracts.SuspendOutcome{}, err
		case !rec.Usable(nowMs):
			// Past its grace or revoked: the replay has expired, and answers so
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
