package driver

import (
	"context"
	"slices"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Lifecycle is the optional part of a driver for version 2 of the waitpoint
// lifecycle (docs/spec.md §8.1, §8.2, §8.4–§8.6). A backend that implements
// it also honours the version 2 arguments of Suspensions: pending items and
// count conditions in SuspendArgs, SuspendArgs.Tags, and
// ListSuspendedArgs.Tag. The Engine answers unavailable / unsupported for
// those arguments and these operations on a backend without it.
//
// The rules of Suspensions hold for every method: one atomic step of the
// backend (one transaction, or one script call per partition), the
// backend's clock read once, validated arguments, *contracts.Error values,
// and nothing written when a method returns an error.
type Lifecycle interface {
	// CreateWaitpoint opens a pending waitpoint for an execution that is
	// not suspended: in state none (the execution becomes remembered), or
	// claimed under args.LeaseID; it signs its token with the current kid.
	// Errors, in this order: hmac_secret_not_initialized; already_suspended
	// and lease_mismatch as for suspend (CheckCreateWaitpoint);
	// waitpoint_limit_exceeded past MaxPendingWaitpoints live pending
	// waitpoints. An execution in state none whose pending waitpoints all
	// expired is forgotten first (ForgetsExpiredPending). Not idempotent:
	// each call opens another waitpoint.
	CreateWaitpoint(ctx context.Context, args contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error)
	// GetWaitpoint describes one waitpoint of an execution, pending or of
	// any of its remembered suspensions (DescribeWaitpoint), never with its
	// token; waitpoint_not_found when the execution has no such waitpoint.
	// It writes nothing.
	GetWaitpoint(ctx context.Context, args contracts.GetWaitpointArgs) (contracts.WaitpointInfo, error)
	// ExtendLease sets the lease of a claimed execution to expire at now +
	// args.LeaseMs. Lease rules as CompleteExecution (CheckLeaseHolder): an
	// expired lease nobody re-claimed still extends.
	ExtendLease(ctx context.Context, args contracts.ExtendLeaseArgs) (contracts.ExtendLeaseOutcome, error)
	// ReleaseExecution gives a claimed execution back: it is claimable at
	// once, keeping its claim reason, and args.LeaseID no longer holds it
	// (ReleasedLease). Lease rules as CompleteExecution.
	ReleaseExecution(ctx context.Context, args contracts.ReleaseArgs) (contracts.ReleaseOutcome, error)
	// CancelSuspension closes every waitpoint of a suspended execution's
	// suspension and makes it claimable with reason cancelled, the signals
	// recorded so far staying in its claim. Errors (CheckCancel):
	// execution_not_found, not_suspended.
	CancelSuspension(ctx context.Context, args contracts.CancelArgs) (contracts.CancelOutcome, error)
}

// PendingWaitpoint is what the decisions of docs/spec.md §8.1 read of a
// waitpoint made by create_waitpoint.
type PendingWaitpoint struct {
	ID           string
	ExecutionID  string
	Key          string
	CreatedAtMs  int64
	ExpiresAtMs  int64
	Used         bool // a suspension uses it: it follows that suspension from then on
	Signals      int  // signals recorded on it
	PayloadBytes int64
}

// Live reports whether p still waits for its suspend at nowMs: unused and
// not past its expires_at_ms (expiry is strict, as for timeouts).
func (p PendingWaitpoint) Live(nowMs int64) bool { return !p.Used && nowMs <= p.ExpiresAtMs }

// CheckCreateWaitpoint decides create_waitpoint for e (nil or State "":
// state none) holding live live pending waitpoints: the state and lease
// rules of suspend, then the limit of MaxPendingWaitpoints.
func CheckCreateWaitpoint(e *ExecutionState, args contracts.CreateWaitpointArgs, live int) error {
	if err := CheckSuspend(e, args.LeaseID); err != nil {
		return err
	}
	if live >= contracts.MaxPendingWaitpoints {
		return WaitpointLimitExceeded(args.ExecutionID)
	}
	return nil
}

// ForgetsExpiredPending reports whether create_waitpoint or suspend at
// nowMs must first forget an execution in state (StateNone: "") whose
// pending waitpoints, used or not, the latest expiring at
// lastExpiresAtMs, have all expired: the execution and everything recorded
// for it go, as complete_execution would remove them (docs/spec.md §8.1).
func ForgetsExpiredPending(state string, lastExpiresAtMs int64, nowMs int64) bool {
	return state == "" && nowMs > lastExpiresAtMs
}

// NewPendingWaitpoint plans create_waitpoint at nowMs: a fresh waitpoint
// id, created_at_ms = nowMs, expires_at_ms = nowMs + expires_in_ms, and its
// token signed with the partition's current kid. The driver stores the
// outcome and the token's fingerprint (TokenFingerprint), never the token.
func NewPendingWaitpoint(args contracts.CreateWaitpointArgs, current KidRecord, nowMs int64) contracts.CreateWaitpointOutcome {
	id := NewID()
	in := WaitpointInput(current.Kid, args.ExecutionID, id, args.Key, nowMs)
	return contracts.CreateWaitpointOutcome{
		Outcome: contracts.OutcomeCreated, ExecutionID: args.ExecutionID, WaitpointID: id, WaitpointKey: args.Key,
		CreatedAtMs: nowMs, ExpiresAtMs: nowMs + args.ExpiresInMs,
		Token: SignToken(current.Kid, current.Secret, in), Tags: slices.Clone(nonNilTags(args.Tags)),
	}
}

// PendingIDs returns the pending waitpoint ids a suspend names, in order.
func PendingIDs(args contracts.SuspendArgs) []string {
	var ids []string
	for _, w := range args.Waitpoints {
		if w.Pending != "" {
			ids = append(ids, w.Pending)
		}
	}
	return ids
}

// CheckPendingUse decides whether a suspend at nowMs may use the pending
// waitpoints it names, given what the driver found under each id (absent
// or nil: no pending waitpoint with that id; a waitpoint that a suspend
// opened is not a pending one): each must be of args.ExecutionID, unused
// and not expired (pending_waitpoint_unavailable, checked in the order of
// args.Waitpoints), and no two of the suspension's waitpoints may share a
// key (validation / invalid_input).
func CheckPendingUse(args contracts.SuspendArgs, found map[string]*PendingWaitpoint, nowMs int64) error {
	keys := make(map[string]bool, len(args.Waitpoints))
	for _, w := range args.Waitpoints {
		if w.Pending == "" {
			keys[w.Key] = true
			continue
		}
		p := found[w.Pending]
		switch {
		case p == nil || p.ExecutionID != args.ExecutionID:
			return pendingWaitpointUnavailable(w.Pending, pendingUnknown)
		case p.Used:
			return pendingWaitpointUnavailable(w.Pending, pendingUsed)
		case nowMs > p.ExpiresAtMs:
			return pendingWaitpointUnavailable(w.Pending, pendingExpired)
		}
	}
	for _, id := range PendingIDs(args) {
		k := found[id].Key
		if keys[k] {
			return DuplicateWaitpointKey()
		}
		keys[k] = true
	}
	return nil
}

// PendingSatisfied reports whether the signals already recorded on the
// pending waitpoints a suspend uses satisfy its condition: the suspend then
// answers already_satisfied (docs/spec.md §8.1).
func PendingSatisfied(args contracts.SuspendArgs, found map[string]*PendingWaitpoint) bool {
	signaled := 0
	for _, id := range PendingIDs(args) {
		if found[id].Signals > 0 {
			signaled++
		}
	}
	return ConditionHolds(args.Condition, signaled, len(args.Waitpoints))
}

// PendingBudget is what the pending waitpoints a suspend uses bring to its
// budgets (docs/spec.md §8.3): the suspension starts with their signals,
// payload bytes and signaled waitpoints.
func PendingBudget(args contracts.SuspendArgs, found map[string]*PendingWaitpoint) (signals int, payloadBytes int64, signaled int) {
	for _, id := range PendingIDs(args) {
		p := found[id]
		signals += p.Signals
		payloadBytes += p.PayloadBytes
		if p.Signals > 0 {
			signaled++
		}
	}
	return signals, payloadBytes, signaled
}

// AlreadySatisfied is the already_satisfied outcome of the suspension out
// planned by NewSuspensionUsing, given the signals of its pending
// waitpoints in delivery order. The driver records out's suspension closed
// and keeps the execution's state and lease.
func AlreadySatisfied(out contracts.SuspendOutcome, signals []contracts.Signal) contracts.SuspendOutcome {
	return contracts.SuspendOutcome{
		Outcome: contracts.OutcomeAlreadySatisfied, ExecutionID: out.ExecutionID, SuspensionID: out.SuspensionID,
		Signals: nonNilSignals(signals),
	}
}

// CheckPendingDeliverable decides check 4 of deliver_signal for a pending
// waitpoint p that no suspend used yet: closed past its expires_at_ms, then
// the budgets, where p's own count is its waitpoint budget and pool, the
// signals and payload bytes of the execution's live pending waitpoints (p
// included), stands for the suspension they will join.
func CheckPendingDeliverable(p PendingWaitpoint, pool SignalBudget, args contracts.DeliverSignalArgs, nowMs int64) error {
	if nowMs > p.ExpiresAtMs {
		return PendingWaitpointExpired()
	}
	used := SignalBudget{WaitpointSignals: p.Signals, SuspensionSignals: pool.SuspensionSignals, PayloadBytes: pool.PayloadBytes}
	return CheckDeliverable(false, nil, used, args, nowMs)
}

// CheckLeaseHolder decides the lease rules of complete_execution,
// extend_lease and release_execution for e (nil: not remembered):
// execution_not_found, or lease_mismatch unless e is claimed under leaseID.
// An expired lease that nobody re-claimed still holds.
func CheckLeaseHolder(e *ExecutionState, executionID, leaseID string) error {
	switch {
	case e == nil:
		return ExecutionNotFound(executionID)
	case e.State != contracts.StateClaimed || e.LeaseID != leaseID:
		return CompleteLeaseMismatch(executionID)
	}
	return nil
}

// ReleasedLease is what release_execution at nowMs stores in place of the
// lease: a fresh lease id nobody holds, expired since nowMs-1, so the
// execution is claimable at once (Claimable keeps its reason) and the
// released lease id matches nothing.
func ReleasedLease(nowMs int64) (leaseID string, leaseExpiresAtMs int64) {
	return NewID(), nowMs - 1
}

// CheckCancel decides cancel_suspension for e (nil: not remembered).
func CheckCancel(e *ExecutionState, executionID string) error {
	switch {
	case e == nil:
		return ExecutionNotFound(executionID)
	case e.State != contracts.StateSuspended:
		return NotSuspended(executionID)
	}
	return nil
}

// WaitpointRecord is what get_waitpoint reads of a stored waitpoint.
type WaitpointRecord struct {
	WaitpointRef
	// Pending: made by create_waitpoint and used by no suspend yet; it
	// expires at PendingExpiresAtMs. Otherwise it belongs to a suspension,
	// closed or not, timing out at TimeoutAtMs (nil: never).
	Pending            bool
	PendingExpiresAtMs int64
	SuspensionClosed   bool
	TimeoutAtMs        *int64
	Signals            int
	TokenFingerprint   string // "": opened before fingerprints were kept
	Tags               []string
}

// DescribeWaitpoint builds the get_waitpoint envelope of w at nowMs. Its
// status is pending or expired for a pending waitpoint (by its
// expires_at_ms); closed, expired (past the suspension's timeout_at_ms) or
// open for a suspension's.
func DescribeWaitpoint(w WaitpointRecord, nowMs int64) contracts.WaitpointInfo {
	info := contracts.WaitpointInfo{
		ExecutionID: w.ExecutionID, WaitpointID: w.WaitpointID, WaitpointKey: w.WaitpointKey,
		CreatedAtMs: w.CreatedAtMs, Signals: w.Signals, Tags: slices.Clone(nonNilTags(w.Tags)),
	}
	if w.TokenFingerprint != "" {
		f := w.TokenFingerprint
		info.TokenFingerprint = &f
	}
	switch {
	case w.Pending:
		exp := w.PendingExpiresAtMs
		info.ExpiresAtMs = &exp
		info.Status = contracts.WaitpointPending
		if nowMs > exp {
			info.Status = contracts.WaitpointExpired
		}
	default:
		if w.TimeoutAtMs != nil {
			t := *w.TimeoutAtMs
			info.ExpiresAtMs = &t
		}
		switch {
		case w.SuspensionClosed:
			info.Status = contracts.WaitpointClosed
		case TimedOut(w.TimeoutAtMs, nowMs):
			info.Status = contracts.WaitpointExpired
		default:
			info.Status = contracts.WaitpointOpen
		}
	}
	return info
}

func nonNilTags(t []string) []string {
	if t == nil {
		return []string{}
	}
	return t
}

func nonNilSignals(s []contracts.Signal) []contracts.Signal {
	if s == nil {
		return []contracts.Signal{}
	}
	return s
}
