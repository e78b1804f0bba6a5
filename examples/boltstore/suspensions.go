package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Every operation below is one bbolt transaction. The decisions (which
// check fails with which error, what a new suspension or signal looks like,
// when a condition holds, what is claimable, how a page ends) are the
// driver kit's (driver/decide.go, driver/lifecycle.go, driver/errors.go);
// this file only loads and stores.

// Suspend opens 1–16 waitpoints for an execution, new ones and pending
// ones made by create_waitpoint, and signs their tokens with the current
// kid (docs/spec.md §5.1 and §8.1 give the order of checks). When the
// signals its pending waitpoints buffered satisfy the condition, the
// suspension is recorded closed and the outcome is already_satisfied. A
// replay with the same idempotency key signs the stored outcome's tokens
// again and answers the first outcome byte for byte while their kid
// verifies, suspend_replay_expired after that. One transaction: an error
// rolls back everything, the forgetting of an expired execution included.
func (b *Backend) Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.SuspendOutcome, error) {
		return suspend(tx, b.ring.Load(), args, nowMs)
	})
}

func suspend(tx *bolt.Tx, ring *kek.Keyring, args contracts.SuspendArgs, nowMs int64) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	k, e, err := loadSigning(tx, args.ExecutionID, nowMs)
	if err != nil {
		return out, err
	}
	if args.IdempotencyKey != "" {
		var rec suspendRecord
		found, err := getJSON(tx.Bucket(bucketIdempotency), suspendRecordKey(args.ExecutionID, args.IdempotencyKey), &rec)
		if found || err != nil {
			if err == nil {
				err = driver.CheckSuspendReplay(rec.Fingerprint, args)
			}
			if err != nil {
				return out, err
			}
			return replayStored(ring, k, rec.Outcome, nowMs)
		}
	}
	if err := driver.CheckSuspend(e.decisionState(), args.LeaseID); err != nil {
		return out, err
	}
	docs, found, err := loadPending(tx, args)
	if err != nil {
		return out, err
	}
	if err := driver.CheckPendingUse(args, found, nowMs); err != nil {
		return out, err
	}
	current, err := driver.OpenRecord(ring, partition, k.Current) // signs the tokens
	if err != nil {
		return out, err
	}
	out = driver.NewSuspensionUsing(args, *current, found, nowMs)
	satisfied := driver.PendingSatisfied(args, found)
	buffered, err := storeSuspension(tx, e, args, out, docs, found, satisfied)
	if err != nil {
		return out, err
	}
	if satisfied {
		out = driver.AlreadySatisfied(out, buffered)
	}
	return out, storeSuspendRecord(tx, args, out)
}

// loadPending loads the pending waitpoints args names (docs/spec.md §8.1):
// their documents and what the decisions read of them, by id. An id of no
// waitpoint, or of one a suspend opened, is absent from both.
func loadPending(tx *bolt.Tx, args contracts.SuspendArgs) (map[string]*waitpointDoc, map[string]*driver.PendingWaitpoint, error) {
	docs := map[string]*waitpointDoc{}
	found := map[string]*driver.PendingWaitpoint{}
	for _, id := range driver.PendingIDs(args) {
		w, err := loadWaitpoint(tx, id)
		if err != nil {
			return nil, nil, err
		}
		if w != nil && w.Pending {
			docs[id], found[id] = w, w.pendingView(id)
		}
	}
	return docs, found, nil
}

// replayStored rebuilds a stored suspend outcome at nowMs
// (driver.ReplaySuspendOutcome), opening the secret of the kid that signed
// its tokens only while that kid verifies: a kid collected or past its
// grace answers suspend_replay_expired whatever the keyring.
func replayStored(ring *kek.Keyring, k driver.PartitionKeys, stored []byte, nowMs int64) (contracts.SuspendOutcome, error) {
	kid, err := driver.StoredOutcomeKid(stored)
	if err != nil {
		return contracts.SuspendOutcome{}, err
	}
	if rec := k.Find(kid); rec != nil && rec.Usable(nowMs) {
		if k, err = driver.OpenKid(ring, partition, k, kid); err != nil {
			return contracts.SuspendOutcome{}, err
		}
	}
	return driver.ReplaySuspendOutcome(stored, k, nowMs)
}

// storeSuspension writes the new suspension out of e (nil: a new
// execution), planned by driver.NewSuspensionUsing with the pending
// waitpoints docs (found: their decision views): the new waitpoints, the
// pending ones joining it with their signals and counters
// (driver.PendingBudget), and the execution, whose earlier waitpoints stay.
// The execution becomes suspended with no lease and no reason, unless the
// suspension is already satisfied: then it is recorded closed and the
// execution keeps its state and lease. It returns the buffered signals the
// suspension starts with, in delivery order.
func storeSuspension(tx *bolt.Tx, e *execDoc, args contracts.SuspendArgs, out contracts.SuspendOutcome,
	docs map[string]*waitpointDoc, found map[string]*driver.PendingWaitpoint, satisfied bool,
) ([]contracts.Signal, error) {
	if e == nil {
		e = &execDoc{ID: args.ExecutionID}
	} else if err := unindex(tx, e); err != nil {
		return nil, err
	}
	buffered, err := joinBuffered(tx, e, driver.PendingIDs(args), out.SuspensionID)
	if err != nil {
		return nil, err
	}
	for _, w := range out.Waitpoints {
		doc := docs[w.WaitpointID]
		if doc == nil { // a new key
			doc = &waitpointDoc{ExecutionID: e.ID, Key: w.WaitpointKey, CreatedAtMs: w.CreatedAtMs, Tags: out.Tags}
			e.Waitpoints = append(e.Waitpoints, w.WaitpointID)
		}
		doc.SuspensionID, doc.TimeoutAtMs, doc.Fingerprint = out.SuspensionID, out.TimeoutAtMs, driver.TokenFingerprint(w.Token)
		if err := saveWaitpoint(tx, w.WaitpointID, doc); err != nil {
			return nil, err
		}
	}
	e.Unused = slices.DeleteFunc(e.Unused, func(p pendingRef) bool { return docs[p.ID] != nil })
	signals, payloadBytes, signaled := driver.PendingBudget(args, found)
	e.Suspension = suspDoc{
		ID: out.SuspensionID, SuspendedAtMs: out.SuspendedAtMs, TimeoutAtMs: out.TimeoutAtMs,
		Condition: out.Condition, Waitpoints: len(out.Waitpoints),
		Signaled: signaled, Signals: signals, PayloadBytes: payloadBytes, Closed: satisfied, Tags: out.Tags,
	}
	if !satisfied {
		e.State = contracts.StateSuspended
		e.LeaseID, e.LeaseExpiresAtMs, e.Reason = "", 0, ""
	}
	return buffered, saveExec(tx, e)
}

// joinBuffered moves the signals buffered on the pending waitpoints ids
// into suspension suspensionID of e: in delivery order (PendingSeq), each
// numbered with e's next Seq, so that the suspension's signals stay
// consecutive (signalRange). It returns them in that order. The caller
// saves e.
func joinBuffered(tx *bolt.Tx, e *execDoc, ids []string, suspensionID string) ([]contracts.Signal, error) {
	type entry struct {
		seq        uint64
		key, value []byte
	}
	var all []entry
	c := tx.Bucket(bucketSignals).Cursor()
	for _, id := range ids {
		prefix := bufferPrefix(e.ID, id)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			all = append(all, entry{binary.BigEndian.Uint64(k[len(prefix):]), bytes.Clone(k), bytes.Clone(v)})
		}
	}
	slices.SortFunc(all, func(x, y entry) int { return cmp.Compare(x.seq, y.seq) })
	out := make([]contracts.Signal, 0, len(all))
	for _, en := range all {
		s, err := decodeSignal(en.value)
		if err != nil {
			return nil, err
		}
		e.Seq++
		if err := tx.Bucket(bucketSignals).Put(signalKey(e.ID, suspensionID, e.Seq), en.value); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bucketSignals).Delete(en.key); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// storeSuspendRecord stores the idempotency record of a suspend that
// answered out, when args name a key: the fingerprint of args and out
// without its tokens (driver.StoredSuspendOutcome).
func storeSuspendRecord(tx *bolt.Tx, args contracts.SuspendArgs, out contracts.SuspendOutcome) error {
	if args.IdempotencyKey == "" {
		return nil
	}
	stored, err := driver.StoredSuspendOutcome(out)
	if err != nil {
		return err
	}
	rec := suspendRecord{Fingerprint: args.Fingerprint(), Outcome: stored}
	return putJSON(tx.Bucket(bucketIdempotency), suspendRecordKey(args.ExecutionID, args.IdempotencyKey), rec)
}

// DeliverSignal records a signal on a waitpoint exactly once per
// (waitpoint_id, idempotency_key) and resumes the execution when its
// condition holds, closing the suspension in the same transaction.
func (b *Backend) DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.DeliverSignalOutcome, error) {
		return deliver(tx, b.ring.Load(), args, nowMs)
	})
}

func deliver(tx *bolt.Tx, ring *kek.Keyring, args contracts.DeliverSignalArgs, nowMs int64) (contracts.DeliverSignalOutcome, error) {
	var out contracts.DeliverSignalOutcome
	w, err := authorize(tx, ring, args, nowMs)
	if err != nil {
		return out, err
	}
	idem := tx.Bucket(bucketIdempotency)
	recKey := deliveryRecordKey(w.ExecutionID, args.WaitpointID, args.IdempotencyKey)
	if args.IdempotencyKey != "" {
		if id := idem.Get(recKey); id != nil {
			return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: string(id)}, nil
		}
	}
	e, err := loadExec(tx, w.ExecutionID)
	if err != nil {
		return out, err
	}
	sig := driver.NewSignal(w.ref(args.WaitpointID), args, nowMs)
	resumed := false
	if w.SuspensionID == "" { // pending: buffered until a suspend uses it (docs/spec.md §8.1)
		err = deliverPending(tx, e, w, sig, args, nowMs)
	} else {
		resumed, err = deliverToSuspension(tx, e, w, sig, args, nowMs)
	}
	if err != nil {
		return out, err
	}
	if args.IdempotencyKey != "" {
		if err := idem.Put(recKey, []byte(sig.SignalID)); err != nil {
			return out, err
		}
	}
	return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: sig.SignalID, Resumed: resumed}, saveExec(tx, e)
}

// deliverToSuspension decides check 4 of deliver_signal for w, a waitpoint
// of a suspension of e (driver.CheckDeliverable), records sig and resumes e
// when its condition holds (driver.ConditionHolds): state resumed, no
// reason, the suspension closed. The caller saves e.
func deliverToSuspension(tx *bolt.Tx, e *execDoc, w *waitpointDoc, sig contracts.Signal, args contracts.DeliverSignalArgs, nowMs int64) (bool, error) {
	s := &e.Suspension
	closed := w.SuspensionID != s.ID || s.Closed // earlier suspensions are all closed
	used := driver.SignalBudget{WaitpointSignals: w.Signals, SuspensionSignals: s.Signals, PayloadBytes: s.PayloadBytes}
	if err := driver.CheckDeliverable(closed, s.TimeoutAtMs, used, args, nowMs); err != nil {
		return false, err
	}
	if err := recordSignal(tx, e, w, sig); err != nil {
		return false, err
	}
	resumed := driver.ConditionHolds(s.Condition, s.Signaled, s.Waitpoints)
	if resumed {
		s.Closed = true
		e.State, e.Reason = contracts.StateResumed, ""
	}
	return resumed, nil
}

// deliverPending decides check 4 of deliver_signal for w, a pending
// waitpoint of e that no suspend used (driver.CheckPendingDeliverable,
// against the pool of e's live pending waitpoints), and buffers sig on it,
// numbered with e's next PendingSeq. The caller saves e.
func deliverPending(tx *bolt.Tx, e *execDoc, w *waitpointDoc, sig contracts.Signal, args contracts.DeliverSignalArgs, nowMs int64) error {
	pool, err := pendingPool(tx, e, nowMs)
	if err != nil {
		return err
	}
	if err := driver.CheckPendingDeliverable(*w.pendingView(sig.WaitpointID), pool, args, nowMs); err != nil {
		return err
	}
	e.PendingSeq++
	if err := putSignal(tx, bufferKey(e.ID, sig.WaitpointID, e.PendingSeq), sig); err != nil {
		return err
	}
	w.Signals++
	w.PayloadBytes += int64(len(sig.Payload))
	return saveWaitpoint(tx, sig.WaitpointID, w)
}

// pendingPool sums what e's live pending waitpoints hold: the budget of
// the suspension they will join (driver.CheckPendingDeliverable). It reads
// at most MaxPendingWaitpoints waitpoints.
func pendingPool(tx *bolt.Tx, e *execDoc, nowMs int64) (driver.SignalBudget, error) {
	var pool driver.SignalBudget
	for _, p := range e.Unused {
		if nowMs > p.ExpiresAtMs {
			continue
		}
		w, err := loadWaitpoint(tx, p.ID)
		if err != nil {
			return pool, err
		}
		if w != nil && w.pendingView(p.ID).Live(nowMs) {
			pool.SuspensionSignals += w.Signals
			pool.PayloadBytes += w.PayloadBytes
		}
	}
	return pool, nil
}

// authorize runs checks 1 and 2 of deliver_signal (contracts.AuthorizeToken)
// and returns the waitpoint the token opens. The token kid's secret is
// opened with ring when the check gets as far as the MAC.
func authorize(tx *bolt.Tx, ring *kek.Keyring, args contracts.DeliverSignalArgs, nowMs int64) (*waitpointDoc, error) {
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return nil, err
	}
	k, err := loadKeys(tx)
	if err != nil {
		return nil, err
	}
	initialized := k.Current != nil
	rec, err := driver.OpenForCheck(ring, partition, initialized, k.Find(t.Kid), nowMs)
	if err != nil {
		return nil, err
	}
	w, err := loadWaitpoint(tx, args.WaitpointID)
	if err != nil {
		return nil, err
	}
	var ref *driver.WaitpointRef
	if w != nil {
		r := w.ref(args.WaitpointID)
		ref = &r
	}
	return w, driver.AuthorizeToken(t, args.ExecutionID, initialized, rec, ref, nowMs)
}

// recordSignal stores sig as the execution's next signal and counts it, and
// its payload bytes, on the waitpoint and the suspension (the budgets of
// docs/spec.md §8.3 are these counters, never a scan). The caller saves e.
func recordSignal(tx *bolt.Tx, e *execDoc, w *waitpointDoc, sig contracts.Signal) error {
	e.Seq++
	if err := putSignal(tx, signalKey(e.ID, e.Suspension.ID, e.Seq), sig); err != nil {
		return err
	}
	if w.Signals == 0 {
		e.Suspension.Signaled++
	}
	e.Suspension.Signals++
	e.Suspension.PayloadBytes += int64(len(sig.Payload))
	w.Signals++
	w.PayloadBytes += int64(len(sig.Payload))
	return saveWaitpoint(tx, sig.WaitpointID, w)
}

// ObserveSignals returns a page of the signals of the execution's latest
// suspension in delivery order, in any state while the execution is
// remembered: at most args.Limit signals from the cursor's position
// (driver.ObserveStart), reading one more to learn whether another page
// follows (driver.PageSignals). A cursor of an earlier suspension gives an
// empty last page.
func (b *Backend) ObserveSignals(ctx context.Context, args contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	limit := args.Limit
	if limit <= 0 { // a caller that reached the driver without the Engine's default
		limit = contracts.DefaultObserveLimit
	}
	return read(ctx, b, func(tx *bolt.Tx, _ int64) (contracts.ObserveSignalsResult, error) {
		e, err := loadExec(tx, args.ExecutionID)
		switch {
		case err != nil:
			return contracts.ObserveSignalsResult{}, err
		case e == nil || e.Suspension.ID == "": // pending waitpoints alone are no suspension to observe
			return contracts.ObserveSignalsResult{}, driver.ExecutionNotFound(args.ExecutionID)
		}
		s := e.Suspension
		start, ok := driver.ObserveStart(args, s.ID)
		var rows []contracts.Signal
		if ok && start < int64(s.Signals) { // positions past the last signal give an empty page
			if rows, err = signalRange(tx, e.ID, s.ID, start, limit+1); err != nil {
				return contracts.ObserveSignalsResult{}, err
			}
		}
		return driver.PageSignals(e.ID, s.ID, rows, start, limit), nil
	})
}

// ListSuspended walks the executions in state suspended in
// (suspended_at_ms, execution_id) order strictly after the cursor and
// returns up to args.Limit of them, reading one more to learn whether
// another page follows (driver.PageSuspended). Without a tag it walks the
// order bucket, skipping executions in other states; with args.Tag it walks
// that tag's entries of the tags bucket, which name only suspended
// executions carrying it (docs/spec.md §8.6).
func (b *Backend) ListSuspended(ctx context.Context, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	var after []byte
	if args.Cursor != "" {
		c, err := contracts.DecodeCursor(args.Cursor)
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		after = orderKeyOf(c.SuspendedAtMs, c.ExecutionID)
	}
	bucket, prefix := bucketOrder, []byte(nil)
	if args.Tag != "" {
		bucket, prefix = bucketTags, tagPrefix(args.Tag)
	}
	return read(ctx, b, func(tx *bolt.Tx, _ int64) (contracts.ListSuspendedResult, error) {
		var rows []contracts.SuspendedExecution
		c := tx.Bucket(bucket).Cursor()
		start := append(bytes.Clone(prefix), after...)
		for k, state := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix) && len(rows) <= args.Limit; k, state = c.Next() {
			if string(state) != contracts.StateSuspended || after != nil && bytes.Equal(k, start) {
				continue
			}
			e, err := loadExec(tx, orderID(k[len(prefix):]))
			if err != nil {
				return contracts.ListSuspendedResult{}, err
			}
			s := e.Suspension
			rows = append(rows, contracts.SuspendedExecution{
				ExecutionID: e.ID, SuspensionID: s.ID, SuspendedAtMs: s.SuspendedAtMs, TimeoutAtMs: s.TimeoutAtMs,
				Waitpoints: s.Waitpoints, Tags: slices.Clone(s.Tags),
			})
		}
		return driver.PageSuspended(rows, args.Limit), nil
	})
}

// ClaimResumedExecution leases the oldest claimable execution: the order
// bucket is walked oldest first and the first claimable one is taken.
func (b *Backend) ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.ClaimOutcome, error) {
		return claimOldest(tx, nowMs, args.LeaseMs)
	})
}

var _ driver.BatchClaimer = (*Backend)(nil)

// ClaimResumedExecutions claims up to args.Max executions, oldest first,
// each as ClaimResumedExecution would (docs/spec.md §8.8), in one bbolt
// write transaction.
func (b *Backend) ClaimResumedExecutions(ctx context.Context, args contracts.ClaimBatchArgs) (contracts.ClaimBatchOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.ClaimBatchOutcome, error) {
		out := contracts.ClaimBatchOutcome{Claims: []contracts.ClaimOutcome{}}
		for len(out.Claims) < args.Max {
			c, err := claimOldest(tx, nowMs, args.LeaseMs)
			if err != nil || c.Outcome != contracts.OutcomeClaimed {
				return out, err
			}
			out.Claims = append(out.Claims, c)
		}
		return out, nil
	})
}

// claimOldest leases the oldest claimable execution in tx, or answers
// outcome none.
func claimOldest(tx *bolt.Tx, nowMs, leaseMs int64) (contracts.ClaimOutcome, error) {
	e, reason, err := oldestClaimable(tx, nowMs)
	if e == nil || err != nil {
		return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, err
	}
	e.State, e.Reason = contracts.StateClaimed, reason
	e.LeaseID, e.LeaseExpiresAtMs = driver.NewID(), nowMs+leaseMs
	e.Suspension.Closed = true // a timeout claim closes the waitpoints here
	signals, err := signalsOf(tx, e.ID, e.Suspension.ID)
	if err != nil {
		return contracts.ClaimOutcome{}, err
	}
	return contracts.ClaimOutcome{
		Outcome: contracts.OutcomeClaimed, ExecutionID: e.ID, SuspensionID: e.Suspension.ID, Reason: reason,
		LeaseID: e.LeaseID, LeaseExpiresAtMs: e.LeaseExpiresAtMs, Signals: signals,
	}, saveExec(tx, e)
}

// oldestClaimable returns the first claimable execution in (suspended_at_ms,
// execution_id) order and its claim reason, or nil.
func oldestClaimable(tx *bolt.Tx, nowMs int64) (*execDoc, string, error) {
	c := tx.Bucket(bucketOrder).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		e, err := loadExec(tx, orderID(k))
		if err != nil {
			return nil, "", err
		}
		if reason, ok := e.decisionState().Claimable(nowMs); ok {
			return e, reason, nil
		}
	}
	return nil, "", nil
}

// CompleteExecution forgets a claimed execution and everything recorded for
// it: waitpoints, signals, idempotency records and its order entry.
func (b *Backend) CompleteExecution(ctx context.Context, args contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, _ int64) (contracts.CompleteOutcome, error) {
		e, err := loadExec(tx, args.ExecutionID)
		if err == nil {
			err = driver.CheckComplete(e.decisionState(), args)
		}
		if err == nil {
			err = forget(tx, e)
		}
		return contracts.CompleteOutcome{Outcome: contracts.OutcomeCompleted, ExecutionID: args.ExecutionID}, err
	})
}

// forget deletes e and everything recorded for it: its waitpoints (of
// every suspension, and pending ones), its signals (buffered ones
// included) and idempotency records under its key prefix, and its index
// entries.
func forget(tx *bolt.Tx, e *execDoc) error {
	for _, id := range e.Waitpoints {
		if err := tx.Bucket(bucketWaitpoints).Delete([]byte(id)); err != nil {
			return err
		}
	}
	if err := deletePrefix(tx.Bucket(bucketSignals), execPrefix(e.ID)); err != nil {
		return err
	}
	if err := deletePrefix(tx.Bucket(bucketIdempotency), execPrefix(e.ID)); err != nil {
		return err
	}
	if err := unindex(tx, e); err != nil {
		return err
	}
	return tx.Bucket(bucketExecutions).Delete([]byte(e.ID))
}

// forgetExpiredPending forgets e when it is remembered in state none and
// every pending waitpoint it made has expired (driver.ForgetsExpiredPending),
// as create_waitpoint and suspend do before their checks (docs/spec.md
// §8.1). It returns what is left of e: nil when forgotten.
// loadSigning is what create_waitpoint and suspend read first: the
// keystore, which must have a current kid to sign with
// (hmac_secret_not_initialized), and the execution, forgotten first when
// it is in state none with every pending waitpoint expired (nil then).
func loadSigning(tx *bolt.Tx, executionID string, nowMs int64) (driver.PartitionKeys, *execDoc, error) {
	k, err := loadKeys(tx)
	if err != nil {
		return k, nil, err
	}
	if k.Current == nil {
		return k, nil, driver.NotInitialized()
	}
	e, err := loadExec(tx, executionID)
	if err == nil {
		e, err = forgetExpiredPending(tx, e, nowMs)
	}
	return k, e, err
}

func forgetExpiredPending(tx *bolt.Tx, e *execDoc, nowMs int64) (*execDoc, error) {
	if e == nil || !driver.ForgetsExpiredPending(e.State, e.PendingExpiresAtMs, nowMs) {
		return e, nil
	}
	return nil, forget(tx, e)
}
