package memory

import (
	"bytes"
	"context"
	"slices"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Suspend opens 1–16 waitpoints for an execution and signs their tokens with
// the current kid (docs/spec.md §5.1 gives the order of checks). A replay
// with the same idempotency key answers the first outcome byte for byte for
// as long as the execution is remembered and the kid that signed its tokens
// verifies: the record keeps no token (docs/spec.md §3), so the replay signs
// them again; once that kid is collected or past its grace the replay
// answers suspend_replay_expired and writes nothing.
func (b *Backend) Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.SuspendOutcome{}, err
	}
	defer unlock()
	if b.keys.Current == nil {
		return contracts.SuspendOutcome{}, driver.NotInitialized()
	}
	e := b.execs[args.ExecutionID]
	if rec, ok := e.idempotencyRecord(args.IdempotencyKey); ok {
		if err := driver.CheckSuspendReplay(rec.fingerprint, args); err != nil {
			return contracts.SuspendOutcome{}, err
		}
		return replayStored(b.ring.Load(), b.keys, rec.stored, nowMs)
	}
	if err := driver.CheckSuspend(e.view(), args.LeaseID); err != nil {
		return contracts.SuspendOutcome{}, err
	}
	current, err := driver.OpenRecord(b.ring.Load(), partition, b.keys.Current) // signs the tokens; before any write
	if err != nil {
		return contracts.SuspendOutcome{}, err
	}
	out := driver.NewSuspension(args, *current, nowMs)
	var stored []byte
	if args.IdempotencyKey != "" {
		if stored, err = driver.StoredSuspendOutcome(out); err != nil { // before any write
			return contracts.SuspendOutcome{}, contracts.ErrInternal.With("suspend: the outcome does not encode").Wrapping(err)
		}
	}
	if e == nil {
		e = &execution{id: args.ExecutionID, suspend: map[string]suspendRecord{}}
		b.execs[e.id] = e
	}
	b.openSuspension(e, out, nowMs)
	if stored != nil {
		e.suspend[args.IdempotencyKey] = suspendRecord{args.Fingerprint(), stored}
	}
	return out, nil
}

// replayStored rebuilds the outcome of a suspend record from its stored
// form at nowMs (driver.ReplaySuspendOutcome): the secret of the kid that
// signed its tokens is opened with ring only when that kid still verifies,
// so a kid collected or past its grace answers suspend_replay_expired
// whatever the keyring.
func replayStored(ring *kek.Keyring, keys driver.PartitionKeys, stored []byte, nowMs int64) (contracts.SuspendOutcome, error) {
	kid, err := driver.StoredOutcomeKid(stored)
	if err != nil {
		return contracts.SuspendOutcome{}, contracts.ErrInternal.With("suspend: the stored outcome does not decode").Wrapping(err)
	}
	if rec := keys.Find(kid); rec != nil && rec.Usable(nowMs) {
		if keys, err = driver.OpenKid(ring, partition, keys, kid); err != nil {
			return contracts.SuspendOutcome{}, err
		}
	}
	return driver.ReplaySuspendOutcome(stored, keys, nowMs)
}

// idempotencyRecord returns the suspend record stored under key, if the
// execution is remembered and key is not empty.
func (e *execution) idempotencyRecord(key string) (suspendRecord, bool) {
	if e == nil || key == "" {
		return suspendRecord{}, false
	}
	rec, ok := e.suspend[key]
	return rec, ok
}

// openSuspension writes out, the new suspension of e planned at nowMs
// (driver.NewSuspension). The lease, if any, is dropped; earlier
// suspensions stay, closed.
func (b *Backend) openSuspension(e *execution, out contracts.SuspendOutcome, nowMs int64) {
	s := &suspension{id: out.SuspensionID, suspendedAtMs: nowMs, timeoutAtMs: clonePtr(out.TimeoutAtMs), condition: out.Condition}
	for _, wo := range out.Waitpoints {
		w := &waitpoint{id: wo.WaitpointID, key: wo.WaitpointKey, createdAtMs: nowMs, exec: e, susp: s, delivered: map[string]string{}}
		s.waitpoints = append(s.waitpoints, w)
		b.wps[w.id] = w
	}
	e.state, e.latest = contracts.StateSuspended, s
	e.suspensions = append(e.suspensions, s)
	e.leaseID, e.leaseExpiresAtMs = "", 0
}

// DeliverSignal records a signal on a waitpoint exactly once per
// (waitpoint_id, idempotency_key) and resumes the execution when its
// condition holds, closing every waitpoint of the suspension in the same
// step. Checks run in the order of docs/spec.md §5; the budgets of §8.3
// (the waitpoint's signals, the suspension's signals and payload bytes) are
// counters kept with the waitpoint and the suspension, never a scan.
func (b *Backend) DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	defer unlock()
	w, err := b.authorize(args, nowMs)
	if err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	if id, ok := w.delivered[args.IdempotencyKey]; args.IdempotencyKey != "" && ok {
		return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: id}, nil
	}
	s := w.susp
	used := driver.SignalBudget{WaitpointSignals: w.signals, SuspensionSignals: len(s.signals), PayloadBytes: s.payloadBytes}
	if err := driver.CheckDeliverable(s.closed, s.timeoutAtMs, used, args, nowMs); err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	id := record(w, args, nowMs)
	resumed := driver.ConditionHolds(s.condition, s.signaled, len(s.waitpoints))
	if resumed {
		s.closed = true
		w.exec.state = contracts.StateResumed
	}
	return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: id, Resumed: resumed}, nil
}

// authorize runs checks 1 and 2 of deliver_signal: the token's kid is known
// and in grace, and the waitpoint exists, belongs to the execution and
// matches the MAC. It returns the waitpoint.
func (b *Backend) authorize(args contracts.DeliverSignalArgs, nowMs int64) (*waitpoint, error) {
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return nil, err
	}
	w := b.wps[args.WaitpointID]
	var ref *driver.WaitpointRef
	if w != nil {
		ref = &driver.WaitpointRef{ExecutionID: w.exec.id, WaitpointID: w.id, WaitpointKey: w.key, CreatedAtMs: w.createdAtMs}
	}
	initialized := b.keys.Current != nil
	rec, err := driver.OpenForCheck(b.ring.Load(), partition, initialized, b.keys.Find(t.Kid), nowMs)
	if err != nil {
		return nil, err
	}
	if err := driver.AuthorizeToken(t, args.ExecutionID, initialized, rec, ref, nowMs); err != nil {
		return nil, err
	}
	return w, nil
}

// record stores an accepted signal on w and returns its signal_id.
func record(w *waitpoint, args contracts.DeliverSignalArgs, nowMs int64) string {
	e, s := w.exec, w.susp
	sig := driver.NewSignal(driver.WaitpointRef{ExecutionID: e.id, WaitpointID: w.id, WaitpointKey: w.key, CreatedAtMs: w.createdAtMs}, args, nowMs)
	sig.Payload = bytes.Clone(args.Payload) // the caller keeps its slice
	e.nextSeq++
	s.signals = append(s.signals, storedSignal{seq: e.nextSeq, Signal: sig})
	s.payloadBytes += int64(len(sig.Payload))
	if w.signals == 0 {
		s.signaled++
	}
	w.signals++
	if args.IdempotencyKey != "" {
		w.delivered[args.IdempotencyKey] = sig.SignalID
	}
	return sig.SignalID
}

// ObserveSignals returns a page of the signals of the execution's latest
// suspension in delivery order, in any state while the execution is
// remembered: at most args.Limit signals from the cursor's position
// (driver.ObserveStart), with the cursor of the next page when more follow
// (driver.PageSignals). A cursor of an earlier suspension gives an empty
// last page.
func (b *Backend) ObserveSignals(ctx context.Context, args contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	_, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.ObserveSignalsResult{}, err
	}
	defer unlock()
	e := b.execs[args.ExecutionID]
	if e == nil {
		return contracts.ObserveSignalsResult{}, driver.ExecutionNotFound(args.ExecutionID)
	}
	s, limit := e.latest, observeLimit(args)
	start, ok := driver.ObserveStart(args, s.id)
	var rows []contracts.Signal
	if ok && start < int64(len(s.signals)) { // positions past the last signal give an empty page
		rows = s.signalRange(int(start), int(start)+limit+1) // one more than the page: does another follow?
	}
	return driver.PageSignals(e.id, s.id, rows, start, limit), nil
}

// observeLimit is the page size of args: its Limit, or the default for a
// caller that reached the driver without the Engine's defaults.
func observeLimit(args contracts.ObserveSignalsArgs) int {
	if args.Limit <= 0 {
		return contracts.DefaultObserveLimit
	}
	return args.Limit
}

// ListSuspended pages through executions in state suspended, ordered by
// (suspended_at_ms, execution_id), strictly after the cursor.
func (b *Backend) ListSuspended(ctx context.Context, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	_, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.ListSuspendedResult{}, err
	}
	defer unlock()
	after := func(*execution) bool { return true }
	if args.Cursor != "" {
		c, err := contracts.DecodeCursor(args.Cursor)
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		after = func(e *execution) bool { return c.After(e.latest.suspendedAtMs, e.id) }
	}
	var rows []*execution
	for _, e := range b.execs {
		if e.state == contracts.StateSuspended && after(e) {
			rows = append(rows, e)
		}
	}
	slices.SortFunc(rows, func(x, y *execution) int { return compareOldest(x, y) })
	page := make([]contracts.SuspendedExecution, 0, min(len(rows), args.Limit+1))
	for _, e := range rows[:min(len(rows), args.Limit+1)] {
		s := e.latest
		page = append(page, contracts.SuspendedExecution{
			ExecutionID: e.id, SuspensionID: s.id, SuspendedAtMs: s.suspendedAtMs,
			TimeoutAtMs: clonePtr(s.timeoutAtMs), Waitpoints: len(s.waitpoints),
		})
	}
	return driver.PageSuspended(page, args.Limit), nil
}

// ClaimResumedExecution leases the oldest claimable execution: resumed,
// suspended past its timeout, or claimed with an expired lease.
func (b *Backend) ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.ClaimOutcome{}, err
	}
	defer unlock()
	var oldest *execution
	var reason string
	for _, e := range b.execs {
		if r, ok := e.view().Claimable(nowMs); ok && (oldest == nil || e.before(oldest)) {
			oldest, reason = e, r
		}
	}
	if oldest == nil {
		return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, nil
	}
	e := oldest
	e.state, e.reason = contracts.StateClaimed, reason
	e.leaseID, e.leaseExpiresAtMs = driver.NewID(), nowMs+args.LeaseMs
	e.latest.closed = true // a timeout claim closes the waitpoints here
	return contracts.ClaimOutcome{
		Outcome: contracts.OutcomeClaimed, ExecutionID: e.id, SuspensionID: e.latest.id, Reason: reason,
		LeaseID: e.leaseID, LeaseExpiresAtMs: e.leaseExpiresAtMs, Signals: e.latest.signalList(),
	}, nil
}

// CompleteExecution forgets a claimed execution and everything recorded for
// it: suspensions, waitpoints, signals and idempotency records. An expired
// lease that nobody re-claimed still completes.
func (b *Backend) CompleteExecution(ctx context.Context, args contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	_, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.CompleteOutcome{}, err
	}
	defer unlock()
	e := b.execs[args.ExecutionID]
	if err := driver.CheckComplete(e.view(), args); err != nil {
		return contracts.CompleteOutcome{}, err
	}
	for _, s := range e.suspensions {
		for _, w := range s.waitpoints {
			delete(b.wps, w.id)
		}
	}
	delete(b.execs, e.id)
	return contracts.CompleteOutcome{Outcome: contracts.OutcomeCompleted, ExecutionID: e.id}, nil
}

// compareOldest orders executions by (suspended_at_ms, execution_id).
func compareOldest(x, y *execution) int {
	switch {
	case x.before(y):
		return -1
	case y.before(x):
		return 1
	}
	return 0
}

func clonePtr(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
