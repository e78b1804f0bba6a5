package memory

import (
	"context"
	"slices"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

var _ driver.Lifecycle = (*Backend)(nil)

// CreateWaitpoint opens a pending waitpoint (docs/spec.md §8.1) for an
// execution in state none or claimed under args.LeaseID. Signals delivered
// to it are buffered on it until a suspend uses it.
func (b *Backend) CreateWaitpoint(ctx context.Context, args contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.CreateWaitpointOutcome{}, err
	}
	defer unlock()
	if b.keys.Current == nil {
		return contracts.CreateWaitpointOutcome{}, driver.NotInitialized()
	}
	e, stale := expiredPending(b.execs[args.ExecutionID], nowMs)
	live := 0
	if e != nil {
		for _, w := range e.pending {
			if w.pendingView().Live(nowMs) {
				live++
			}
		}
	}
	if err := driver.CheckCreateWaitpoint(e.view(), args, live); err != nil {
		return contracts.CreateWaitpointOutcome{}, err
	}
	current, err := driver.OpenRecord(b.ring.Load(), partition, b.keys.Current)
	if err != nil {
		return contracts.CreateWaitpointOutcome{}, err
	}
	out := driver.NewPendingWaitpoint(args, *current, nowMs)
	if stale != nil {
		b.forget(stale)
	}
	if e == nil {
		e = b.remember(args.ExecutionID)
	}
	w := &waitpoint{
		id: out.WaitpointID, key: out.WaitpointKey, createdAtMs: nowMs, exec: e, tags: slices.Clone(out.Tags),
		fingerprint: driver.TokenFingerprint(out.Token), pending: true, expiresAtMs: out.ExpiresAtMs,
		delivered: map[string]string{},
	}
	e.pending = append(e.pending, w)
	b.wps[w.id] = w
	return out, nil
}

// GetWaitpoint describes a waitpoint of the execution, never its token.
func (b *Backend) GetWaitpoint(ctx context.Context, args contracts.GetWaitpointArgs) (contracts.WaitpointInfo, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.WaitpointInfo{}, err
	}
	defer unlock()
	w := b.wps[args.WaitpointID]
	if w == nil || w.exec.id != args.ExecutionID {
		return contracts.WaitpointInfo{}, driver.WaitpointNotFound(args.ExecutionID, args.WaitpointID)
	}
	return driver.DescribeWaitpoint(w.record(), nowMs), nil
}

// record returns what get_waitpoint reads of w.
func (w *waitpoint) record() driver.WaitpointRecord {
	rec := driver.WaitpointRecord{
		WaitpointRef:     driver.WaitpointRef{ExecutionID: w.exec.id, WaitpointID: w.id, WaitpointKey: w.key, CreatedAtMs: w.createdAtMs},
		Pending:          w.susp == nil,
		Signals:          w.signals,
		TokenFingerprint: w.fingerprint,
		Tags:             w.tags,
	}
	if w.susp == nil {
		rec.PendingExpiresAtMs = w.expiresAtMs
	} else {
		rec.SuspensionClosed, rec.TimeoutAtMs = w.susp.closed, w.susp.timeoutAtMs
	}
	return rec
}

// ExtendLease moves the lease of a claimed execution to now + lease_ms.
func (b *Backend) ExtendLease(ctx context.Context, args contracts.ExtendLeaseArgs) (contracts.ExtendLeaseOutcome, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.ExtendLeaseOutcome{}, err
	}
	defer unlock()
	e := b.execs[args.ExecutionID]
	if err := driver.CheckLeaseHolder(e.view(), args.ExecutionID, args.LeaseID); err != nil {
		return contracts.ExtendLeaseOutcome{}, err
	}
	e.leaseExpiresAtMs = nowMs + args.LeaseMs
	return contracts.ExtendLeaseOutcome{Outcome: contracts.OutcomeExtended, ExecutionID: e.id, LeaseExpiresAtMs: e.leaseExpiresAtMs}, nil
}

// ReleaseExecution gives a claimed execution back: claimable at once with
// its claim reason, and no longer held by args.LeaseID.
func (b *Backend) ReleaseExecution(ctx context.Context, args contracts.ReleaseArgs) (contracts.ReleaseOutcome, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.ReleaseOutcome{}, err
	}
	defer unlock()
	e := b.execs[args.ExecutionID]
	if err := driver.CheckLeaseHolder(e.view(), args.ExecutionID, args.LeaseID); err != nil {
		return contracts.ReleaseOutcome{}, err
	}
	e.leaseID, e.leaseExpiresAtMs = driver.ReleasedLease(nowMs)
	return contracts.ReleaseOutcome{Outcome: contracts.OutcomeReleased, ExecutionID: e.id}, nil
}

// CancelSuspension closes the waitpoints of a suspended execution and makes
// it claimable with reason cancelled.
func (b *Backend) CancelSuspension(ctx context.Context, args contracts.CancelArgs) (contracts.CancelOutcome, error) {
	_, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.CancelOutcome{}, err
	}
	defer unlock()
	e := b.execs[args.ExecutionID]
	if err := driver.CheckCancel(e.view(), args.ExecutionID); err != nil {
		return contracts.CancelOutcome{}, err
	}
	e.latest.closed = true
	e.state, e.reason = contracts.StateResumed, contracts.ReasonCancelled
	return contracts.CancelOutcome{Outcome: contracts.OutcomeCancelled, ExecutionID: e.id, SuspensionID: e.latest.id}, nil
}
