package memory

import (
	"bytes"
	"cmp"
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
	e, stale := expiredPending(b.execs[args.ExecutionID], nowMs)
	if rec, ok := e.idempotencyRecord(args.IdempotencyKey); ok {
		if err := driver.CheckSuspendReplay(rec.fingerprint, args); err != nil {
			return contracts.SuspendOutcome{}, err
		}
		return replayStored(b.ring.Load(), b.keys, rec.stored, nowMs)
	}
	if err := driver.CheckSuspend(e.view(), args.LeaseID); err != nil {
		return contracts.SuspendOutcome{}, err
	}
	found := b.pendingFound(args, stale)
	if err := driver.CheckPendingUse(args, found, nowMs); err != nil {
		return contracts.SuspendOutcome{}, err
	}
	current, err := driver.OpenRecord(b.ring.Load(), partition, b.keys.Current) // signs the tokens; before any write
	if err != nil {
		return contracts.SuspendOutcome{}, err
	}
	out := driver.NewSuspensionUsing(args, *current, found, nowMs)
	satisfied := driver.PendingSatisfied(args, found)
	result := out
	if satisfied {
		result = driver.AlreadySatisfied(out, b.bufferedSignals(args))
	}
	var stored []byte
	if args.IdempotencyKey != "" {
		if stored, err = driver.StoredSuspendOutcome(result); err != nil { // before any write
			return contracts.SuspendOutcome{}, contracts.ErrInternal.With("suspend: the outcome does not encode").Wrapping(err)
		}
	}
	if stale != nil {
		b.forget(stale)
	}
	if e == nil {
		e = b.remember(args.ExecutionID)
	}
	b.openSuspension(e, out, satisfied, nowMs)
	if stored != nil {
		e.suspend[args.IdempotencyKey] = suspendRecord{args.Fingerprint(), stored}
	}
	return result, nil
}

// remember starts remembering execution id, in state none.
func (b *Backend) remember(id string) *execution {
	e := &execution{id: id, suspend: map[string]suspendRecord{}}
	b.execs[id] = e
	return e
}

// pendingFound looks up the pending waitpoints args names: a waitpoint
// that a suspend opened is not a pending one, and neither is one of stale,
// an execution about to be forgotten.
func (b *Backend) pendingFound(args contracts.SuspendArgs, stale *execution) map[string]*driver.PendingWaitpoint {
	found := map[string]*driver.PendingWaitpoint{}
	for _, id := range driver.PendingIDs(args) {
		if w := b.wps[id]; w != nil && w.pending && (stale == nil || w.exec != stale) {
			found[id] = w.pendingView()
		}
	}
	return found
}

// bufferedSignals returns the signals recorded on the pending waitpoints
// args names, in delivery order.
func (b *Backend) bufferedSignals(args contracts.SuspendArgs) []contracts.Signal {
	var all []storedSignal
	for _, id := range driver.PendingIDs(args) {
		all = append(all, b.wps[id].buffered...)
	}
	slices.SortFunc(all, func(x, y storedSignal) int { return cmp.Compare(x.seq, y.seq) })
	out := make([]contracts.Signal, 0, len(all))
	for _, st := range all {
		sig := st.Signal
		sig.Payload = bytes.Clone(st.Payload)
		out = append(out, sig)
	}
	return out
}

// expiredPending splits e for create_waitpoint and suspend: when e is in
// state none and every pending waitpoint it made has expired
// (driver.ForgetsExpiredPending), the call treats it as unknown and, once
// its checks passed, forgets it (stale) before writing; otherwise e is as
// it is. Nothing is forgotten by a call that fails.
func expiredPending(e *execution, nowMs int64) (live, stale *execution) {
	if e == nil || e.state != "" {
		return e, nil
	}
	var last int64
	for _, w := range e.pending {
		last = max(last, w.expiresAtMs)
	}
	if !driver.ForgetsExpiredPending(e.state, last, nowMs) {
		return e, nil
	}
	return nil, e
}

// forget deletes e and everything recorded for it.
func (b *Backend) forget(e *execution) {
	for _, s := range e.suspensions {
		for _, w := range s.waitpoints {
			delete(b.wps, w.id)
		}
	}
	for _, w := range e.pending {
		delete(b.wps, w.id)
	}
	delete(b.execs, e.id)
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
// (driver.NewSuspensionUsing): pending waitpoints it uses join it with
// their signals and counters. The lease, if any, is dropped; earlier
// suspensions stay, closed. An already satisfied suspension is recorded
// closed and leaves the execution's state and lease as they were.
func (b *Backend) openSuspension(e *execution, out contracts.SuspendOutcome, satisfied bool, nowMs int64) {
	s := &suspension{id: out.SuspensionID, suspendedAtMs: nowMs, timeoutAtMs: clonePtr(out.TimeoutAtMs),
		condition: out.Condition, tags: slices.Clone(out.Tags), closed: satisfied}
	for _, wo := range out.Waitpoints {
		w := b.wps[wo.WaitpointID]
		if w == nil { // a new key
			w = &waitpoint{id: wo.WaitpointID, key: wo.WaitpointKey, createdAtMs: nowMs, exec: e, tags: slices.Clone(out.Tags), delivered: map[string]string{}}
			b.wps[w.id] = w
		}
		w.susp, w.fingerprint = s, driver.TokenFingerprint(wo.Token)
		s.signals = append(s.signals, w.buffered...)
		w.buffered = nil
		s.payloadBytes += w.payloadBytes
		if w.signals > 0 {
			s.signaled++
		}
		s.waitpoints = append(s.waitpoints, w)
	}
	slices.SortFunc(s.signals, func(x, y storedSignal) int { return cmp.Compare(x.seq, y.seq) })
	e.latest = s
	e.suspensions = append(e.suspensions, s)
	if satisfied {
		return
	}
	e.state, e.reason = contracts.StateSuspended, ""
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
	if w.susp == nil { // pending: buffered until a suspend uses it (docs/spec.md §8.1)
		if err := driver.CheckPendingDeliverable(*w.pendingView(), w.exec.pendingPool(nowMs), args, nowMs); err != nil {
			return contracts.DeliverSignalOutcome{}, err
		}
		return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: record(w, args, nowMs)}, nil
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
		w.exec.state, w.exec.reason = contracts.StateResumed, ""
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

// pendingPool is what the live pending waitpoints of e hold: the budget of
// the suspension they will join (driver.CheckPendingDeliverable).
func (e *execution) pendingPool(nowMs int64) driver.SignalBudget {
	var pool driver.SignalBudget
	for _, w := range e.pending {
		if w.pendingView().Live(nowMs) {
			pool.SuspensionSignals += w.signals
			pool.PayloadBytes += w.payloadBytes
		}
	}
	return pool
}

// record stores an accepted signal on w (in its suspension, or buffered
// while it is pending and unused) and returns its signal_id.
func record(w *waitpoint, args contracts.DeliverSignalArgs, nowMs int64) string {
	e, s := w.exec, w.susp
	sig := driver.NewSignal(driver.WaitpointRef{ExecutionID: e.id, WaitpointID: w.id, WaitpointKey: w.key, CreatedAtMs: w.createdAtMs}, args, nowMs)
	sig.Payload = bytes.Clone(args.Payload) // the caller keeps its slice
	e.nextSeq++
	st := storedSignal{seq: e.nextSeq, Signal: sig}
	if s == nil {
		w.buffered = append(w.buffered, st)
	} else {
		s.signals = append(s.signals, st)
		s.payloadBytes += int64(len(sig.Payload))
		if w.signals == 0 {
			s.signaled++
		}
	}
	w.payloadBytes += int64(len(sig.Payload))
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
	if e == nil || e.latest == nil { // pending waitpoints alone are no suspension to observe
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
		if e.state == contracts.StateSuspended && after(e) && (args.Tag == "" || slices.Contains(e.latest.tags, args.Tag)) {
			rows = append(rows, e)
		}
	}
	slices.SortFunc(rows, func(x, y *execution) int { return compareOldest(x, y) })
	page := make([]contracts.SuspendedExecution, 0, min(len(rows), args.Limit+1))
	for _, e := range rows[:min(len(rows), args.Limit+1)] {
		s := e.latest
		page = append(page, contracts.SuspendedExecution{
			ExecutionID: e.id, SuspensionID: s.id, SuspendedAtMs: s.suspendedAtMs,
			TimeoutAtMs: clonePtr(s.timeoutAtMs), Waitpoints: len(s.waitpoints), Tags: slices.Clone(s.tags),
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
	return b.claimOldest(nowMs, args.LeaseMs), nil
}

// ClaimResumedExecutions claims up to args.Max executions, oldest first,
// each as ClaimResumedExecution would (docs/spec.md §8.8), under one lock.
func (b *Backend) ClaimResumedExecutions(ctx context.Context, args contracts.ClaimBatchArgs) (contracts.ClaimBatchOutcome, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.ClaimBatchOutcome{}, err
	}
	defer unlock()
	out := contracts.ClaimBatchOutcome{Claims: []contracts.ClaimOutcome{}}
	for len(out.Claims) < args.Max {
		c := b.claimOldest(nowMs, args.LeaseMs)
		if c.Outcome != contracts.OutcomeClaimed {
			break
		}
		out.Claims = append(out.Claims, c)
	}
	return out, nil
}

// claimOldest leases the oldest claimable execution at nowMs, or answers
// outcome none. The caller holds the lock.
func (b *Backend) claimOldest(nowMs, leaseMs int64) contracts.ClaimOutcome {
	var oldest *execution
	var reason string
	for _, e := range b.execs {
		if r, ok := e.view().Claimable(nowMs); ok && (oldest == nil || e.before(oldest)) {
			oldest, reason = e, r
		}
	}
	if oldest == nil {
		return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}
	}
	e := oldest
	e.state, e.reason = contracts.StateClaimed, reason
	e.leaseID, e.leaseExpiresAtMs = driver.NewID(), nowMs+leaseMs
	e.latest.closed = true // a timeout claim closes the waitpoints here
	return contracts.ClaimOutcome{
		Outcome: contracts.OutcomeClaimed, ExecutionID: e.id, SuspensionID: e.latest.id, Reason: reason,
		LeaseID: e.leaseID, LeaseExpiresAtMs: e.leaseExpiresAtMs, Signals: e.latest.signalList(),
	}
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
	b.forget(e)
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
