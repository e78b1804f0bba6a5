package boltstore

import (
	"context"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// The optional interface of version 2 of the waitpoint lifecycle
// (docs/spec.md §8.1, §8.2, §8.4–§8.6). Implementing it is what lets the
// Engine pass this driver the version 2 arguments of Suspend and
// ListSuspended too (pending items, count conditions, tags, a tag filter),
// which suspensions.go honours. As everywhere in this package, each method
// is one bbolt transaction at one reading of the clock, the kit in package
// driver decides, and an error rolls the transaction back.
var _ driver.Lifecycle = (*Backend)(nil)

// CreateWaitpoint opens a pending waitpoint for an execution in state none
// (it becomes remembered) or claimed under args.LeaseID, and signs its
// token with the current kid (docs/spec.md §8.1); the waitpoint keeps the
// token's fingerprint, never the token. Errors, in this order:
// hmac_secret_not_initialized; already_suspended or lease_mismatch;
// waitpoint_limit_exceeded (driver.CheckCreateWaitpoint). An execution in
// state none whose pending waitpoints all expired is forgotten first. Not
// idempotent.
func (b *Backend) CreateWaitpoint(ctx context.Context, args contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.CreateWaitpointOutcome, error) {
		return createWaitpoint(tx, b.ring.Load(), args, nowMs)
	})
}

func createWaitpoint(tx *bolt.Tx, ring *kek.Keyring, args contracts.CreateWaitpointArgs, nowMs int64) (contracts.CreateWaitpointOutcome, error) {
	var out contracts.CreateWaitpointOutcome
	k, e, err := loadSigning(tx, args.ExecutionID, nowMs)
	if err != nil {
		return out, err
	}
	if e != nil { // expired pending waitpoints can never be used, nor count again
		e.Unused = slices.DeleteFunc(e.Unused, func(p pendingRef) bool { return nowMs > p.ExpiresAtMs })
	}
	if err := driver.CheckCreateWaitpoint(e.decisionState(), args, len(e.unused())); err != nil {
		return out, err
	}
	current, err := driver.OpenRecord(ring, partition, k.Current) // signs the token
	if err != nil {
		return out, err
	}
	out = driver.NewPendingWaitpoint(args, *current, nowMs)
	if e == nil {
		e = &execDoc{ID: args.ExecutionID}
	}
	w := &waitpointDoc{
		ExecutionID: e.ID, Key: out.WaitpointKey, CreatedAtMs: out.CreatedAtMs, Pending: true,
		ExpiresAtMs: out.ExpiresAtMs, Fingerprint: driver.TokenFingerprint(out.Token), Tags: out.Tags,
	}
	if err := saveWaitpoint(tx, out.WaitpointID, w); err != nil {
		return out, err
	}
	e.Waitpoints = append(e.Waitpoints, out.WaitpointID)
	e.Unused = append(e.Unused, pendingRef{ID: out.WaitpointID, ExpiresAtMs: out.ExpiresAtMs})
	e.PendingExpiresAtMs = max(e.PendingExpiresAtMs, out.ExpiresAtMs)
	return out, saveExec(tx, e)
}

// unused returns e's unused pending waitpoints (nil e: none).
func (e *execDoc) unused() []pendingRef {
	if e == nil {
		return nil
	}
	return e.Unused
}

// GetWaitpoint describes a waitpoint of the execution, pending or of any of
// its remembered suspensions (driver.DescribeWaitpoint), with its token's
// fingerprint and never the token; waitpoint_not_found when the execution
// has no such waitpoint. One read transaction.
func (b *Backend) GetWaitpoint(ctx context.Context, args contracts.GetWaitpointArgs) (contracts.WaitpointInfo, error) {
	return read(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.WaitpointInfo, error) {
		w, err := loadWaitpoint(tx, args.WaitpointID)
		if err != nil {
			return contracts.WaitpointInfo{}, err
		}
		if w == nil || w.ExecutionID != args.ExecutionID {
			return contracts.WaitpointInfo{}, driver.WaitpointNotFound(args.ExecutionID, args.WaitpointID)
		}
		var e *execDoc
		if w.SuspensionID != "" { // its suspension's state is the execution's
			if e, err = loadExec(tx, w.ExecutionID); err != nil {
				return contracts.WaitpointInfo{}, err
			}
		}
		return driver.DescribeWaitpoint(w.record(args.WaitpointID, e), nowMs), nil
	})
}

// record returns what get_waitpoint reads of w, whose id is id, given its
// execution e (needed only once a suspension used w): pending while no
// suspension used it; else open or closed with its suspension when that is
// e's latest, and closed when it is an earlier one, with the suspension's
// timeout_at_ms either way.
func (w *waitpointDoc) record(id string, e *execDoc) driver.WaitpointRecord {
	rec := driver.WaitpointRecord{
		WaitpointRef: w.ref(id), Pending: w.SuspensionID == "",
		PendingExpiresAtMs: w.ExpiresAtMs, Signals: w.Signals, TokenFingerprint: w.Fingerprint, Tags: w.Tags,
	}
	if !rec.Pending {
		rec.SuspensionClosed, rec.TimeoutAtMs = true, w.TimeoutAtMs // an earlier suspension: closed
		if e != nil && e.Suspension.ID == w.SuspensionID {
			rec.SuspensionClosed, rec.TimeoutAtMs = e.Suspension.Closed, e.Suspension.TimeoutAtMs
		}
	}
	return rec
}

// ExtendLease sets the lease of a claimed execution to expire at now +
// args.LeaseMs (docs/spec.md §8.4). Errors (driver.CheckLeaseHolder):
// execution_not_found, lease_mismatch; an expired lease nobody re-claimed
// still extends.
func (b *Backend) ExtendLease(ctx context.Context, args contracts.ExtendLeaseArgs) (contracts.ExtendLeaseOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.ExtendLeaseOutcome, error) {
		e, err := leaseHolder(tx, args.ExecutionID, args.LeaseID)
		if err != nil {
			return contracts.ExtendLeaseOutcome{}, err
		}
		e.LeaseExpiresAtMs = nowMs + args.LeaseMs
		out := contracts.ExtendLeaseOutcome{Outcome: contracts.OutcomeExtended, ExecutionID: e.ID, LeaseExpiresAtMs: e.LeaseExpiresAtMs}
		return out, saveExec(tx, e)
	})
}

// ReleaseExecution gives a claimed execution back (docs/spec.md §8.4): it
// keeps its claim reason and stores driver.ReleasedLease in place of the
// lease, so it is claimable at once and args.LeaseID holds nothing any
// more. Errors as ExtendLease.
func (b *Backend) ReleaseExecution(ctx context.Context, args contracts.ReleaseArgs) (contracts.ReleaseOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.ReleaseOutcome, error) {
		e, err := leaseHolder(tx, args.ExecutionID, args.LeaseID)
		if err != nil {
			return contracts.ReleaseOutcome{}, err
		}
		e.LeaseID, e.LeaseExpiresAtMs = driver.ReleasedLease(nowMs)
		return contracts.ReleaseOutcome{Outcome: contracts.OutcomeReleased, ExecutionID: e.ID}, saveExec(tx, e)
	})
}

// leaseHolder loads the execution args name and checks that leaseID holds
// it (driver.CheckLeaseHolder).
func leaseHolder(tx *bolt.Tx, executionID, leaseID string) (*execDoc, error) {
	e, err := loadExec(tx, executionID)
	if err != nil {
		return nil, err
	}
	return e, driver.CheckLeaseHolder(e.decisionState(), executionID, leaseID)
}

// CancelSuspension closes every waitpoint of a suspended execution's
// suspension and makes it claimable with reason cancelled, its signals
// staying for the claim (docs/spec.md §8.5); its tag entries go with its
// state suspended. Errors (driver.CheckCancel): execution_not_found,
// not_suspended. A delivery racing it is serialized by bbolt: it sees
// either the open suspension or the closed one.
func (b *Backend) CancelSuspension(ctx context.Context, args contracts.CancelArgs) (contracts.CancelOutcome, error) {
	return write(ctx, b, func(tx *bolt.Tx, _ int64) (contracts.CancelOutcome, error) {
		e, err := loadExec(tx, args.ExecutionID)
		if err != nil {
			return contracts.CancelOutcome{}, err
		}
		if err := driver.CheckCancel(e.decisionState(), args.ExecutionID); err != nil {
			return contracts.CancelOutcome{}, err
		}
		e.Suspension.Closed = true
		e.State, e.Reason = contracts.StateResumed, contracts.ReasonCancelled
		out := contracts.CancelOutcome{Outcome: contracts.OutcomeCancelled, ExecutionID: e.ID, SuspensionID: e.Suspension.ID}
		return out, saveExec(tx, e)
	})
}
