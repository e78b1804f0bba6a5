package boltstore

import (
	"bytes"
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Every operation below is one bbolt transaction. The decisions (which
// check fails with which error, what a new suspension or signal looks like,
// when a condition holds, what is claimable, how a page ends) are
// contracts' (decide.go, driver_errors.go); this file only loads and stores.

// Suspend opens 1–16 waitpoints for an execution and signs their tokens with
// the current kid (docs/spec.md §5.1 gives the order of checks). A replay
// with the same idempotency key signs the stored outcome's tokens again
// and answers the first outcome byte for byte while their kid verifies,
// suspend_replay_expired after that.
func (b *Backend) Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.SuspendOutcome, error) {
		return suspend(tx, b.ring.Load(), args, nowMs)
	})
}

func suspend(tx *bolt.Tx, ring *kek.Keyring, args contracts.SuspendArgs, nowMs int64) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	k, err := loadKeys(tx)
	if err != nil {
		return out, err
	}
	if k.Current == nil {
		return out, driver.NotInitialized()
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
	e, err := loadExec(tx, args.ExecutionID)
	if err != nil {
		return out, err
	}
	if err := driver.CheckSuspend(e.decisionState(), args.LeaseID); err != nil {
		return out, err
	}
	current, err := driver.OpenRecord(ring, partition, k.Current) // signs the tokens
	if err != nil {
		return out, err
	}
	out = driver.NewSuspension(args, *current, nowMs)
	return out, storeSuspension(tx, e, args, out)
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

// storeSuspension writes the new suspension out of e (nil: a new execution):
// its waitpoints, the execution (state suspended, lease dropped, earlier
// waitpoints kept) and the idempotency record.
func storeSuspension(tx *bolt.Tx, e *execDoc, args contracts.SuspendArgs, out contracts.SuspendOutcome) error {
	if e == nil {
		e = &execDoc{ID: args.ExecutionID}
	} else if err := tx.Bucket(bucketOrder).Delete(orderKey(e)); err != nil {
		return err
	}
	for _, w := range out.Waitpoints {
		doc := waitpointDoc{ExecutionID: e.ID, SuspensionID: out.SuspensionID, Key: w.WaitpointKey, CreatedAtMs: w.CreatedAtMs}
		if err := putJSON(tx.Bucket(bucketWaitpoints), []byte(w.WaitpointID), doc); err != nil {
			return err
		}
		e.Waitpoints = append(e.Waitpoints, w.WaitpointID)
	}
	e.State = contracts.StateSuspended
	e.LeaseID, e.LeaseExpiresAtMs, e.Reason = "", 0, ""
	e.Suspension = suspDoc{
		ID: out.SuspensionID, SuspendedAtMs: out.SuspendedAtMs, TimeoutAtMs: out.TimeoutAtMs,
		Condition: out.Condition, Waitpoints: len(out.Waitpoints),
	}
	if err := saveExec(tx, e); err != nil {
		return err
	}
	if args.IdempotencyKey == "" {
		return nil
	}
	stored, err := driver.StoredSuspendOutcome(out)
	if err != nil {
		return err
	}
	rec := suspendRecord{Fingerprint: args.Fingerprint(), Outcome: stored}
	return putJSON(tx.Bucket(bucketIdempotency), suspendRecordKey(e.ID, args.IdempotencyKey), rec)
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
	s := &e.Suspension
	closed := w.SuspensionID != s.ID || s.Closed // earlier suspensions are all closed
	used := driver.SignalBudget{WaitpointSignals: w.Signals, SuspensionSignals: s.Signals, PayloadBytes: s.PayloadBytes}
	if err := driver.CheckDeliverable(closed, s.TimeoutAtMs, used, args, nowMs); err != nil {
		return out, err
	}
	sig := driver.NewSignal(w.ref(args.WaitpointID), args, nowMs)
	if err := recordSignal(tx, e, w, sig); err != nil {
		return out, err
	}
	if args.IdempotencyKey != "" {
		if err := idem.Put(recKey, []byte(sig.SignalID)); err != nil {
			return out, err
		}
	}
	resumed := driver.ConditionHolds(s.Condition, s.Signaled, s.Waitpoints)
	if resumed {
		s.Closed, e.State = true, contracts.StateResumed
	}
	return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: sig.SignalID, Resumed: resumed}, saveExec(tx, e)
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
	return putJSON(tx.Bucket(bucketWaitpoints), []byte(sig.WaitpointID), w)
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
		case e == nil:
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

// ListSuspended walks the order bucket strictly after the cursor and returns
// up to args.Limit executions in state suspended.
func (b *Backend) ListSuspended(ctx context.Context, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	var start []byte
	if args.Cursor != "" {
		c, err := contracts.DecodeCursor(args.Cursor)
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		start = orderKeyOf(c.SuspendedAtMs, c.ExecutionID)
	}
	return read(ctx, b, func(tx *bolt.Tx, _ int64) (contracts.ListSuspendedResult, error) {
		var rows []contracts.SuspendedExecution
		c := tx.Bucket(bucketOrder).Cursor()
		k, state := c.First()
		if start != nil {
			k, state = c.Seek(start)
		}
		for ; k != nil && len(rows) <= args.Limit; k, state = c.Next() {
			if string(state) != contracts.StateSuspended || bytes.Equal(k, start) {
				continue
			}
			e, err := loadExec(tx, orderID(k))
			if err != nil {
				return contracts.ListSuspendedResult{}, err
			}
			s := e.Suspension
			rows = append(rows, contracts.SuspendedExecution{
				ExecutionID: e.ID, SuspensionID: s.ID, SuspendedAtMs: s.SuspendedAtMs, TimeoutAtMs: s.TimeoutAtMs, Waitpoints: s.Waitpoints,
			})
		}
		return driver.PageSuspended(rows, args.Limit), nil
	})
}

// ClaimResumedExecution leases the oldest claimable execution: the order
// bucket is walked oldest first and the first claimable one is taken.
func (b *Backend) ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.ClaimOutcome, error) {
		e, reason, err := oldestClaimable(tx, nowMs)
		if e == nil || err != nil {
			return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, err
		}
		e.State, e.Reason = contracts.StateClaimed, reason
		e.LeaseID, e.LeaseExpiresAtMs = driver.NewID(), nowMs+args.LeaseMs
		e.Suspension.Closed = true // a timeout claim closes the waitpoints here
		signals, err := signalsOf(tx, e.ID, e.Suspension.ID)
		if err != nil {
			return contracts.ClaimOutcome{}, err
		}
		return contracts.ClaimOutcome{
			Outcome: contracts.OutcomeClaimed, ExecutionID: e.ID, SuspensionID: e.Suspension.ID, Reason: reason,
			LeaseID: e.LeaseID, LeaseExpiresAtMs: e.LeaseExpiresAtMs, Signals: signals,
		}, saveExec(tx, e)
	})
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
	if err := tx.Bucket(bucketOrder).Delete(orderKey(e)); err != nil {
		return err
	}
	return tx.Bucket(bucketExecutions).Delete([]byte(e.ID))
}
