package driver

import (
	"errors"
	"slices"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// ExecutionState is what the suspension decisions read of one remembered
// execution (one in state suspended, resumed or claimed). A nil
// *ExecutionState stands for state none: unknown or completed.
//
// State "" is an execution that is remembered in state none: one that has
// pending waitpoints, or a suspension that answered already_satisfied
// (docs/spec.md §8.1). Decisions treat it as state none.
type ExecutionState struct {
	ID               string
	State            string // StateSuspended, StateResumed, StateClaimed, or "" (none)
	TimeoutAtMs      *int64 // of the latest suspension; nil: never times out
	LeaseID          string // while claimed
	LeaseExpiresAtMs int64  // while claimed
	// Reason is, while claimed, the claim reason, kept across re-claims;
	// while resumed, ReasonCancelled after cancel_suspension and otherwise
	// "" (a signal resumed it). Suspend clears it.
	Reason string
}

// CheckSuspendReplay decides check 2 of suspend once a driver found an
// idempotency record for (execution_id, idempotency_key): nil means replay
// the stored outcome byte for byte; otherwise conflict / idempotency_mismatch.
func CheckSuspendReplay(storedFingerprint string, args contracts.SuspendArgs) error {
	if storedFingerprint != args.Fingerprint() {
		return IdempotencyMismatch()
	}
	return nil
}

// CheckSuspend decides check 3 of suspend: whether e (nil: state none) may
// suspend, presenting leaseID.
func CheckSuspend(e *ExecutionState, leaseID *string) error {
	none := e == nil || e.State == ""
	switch {
	case none && leaseID != nil:
		return LeaseNotHeld()
	case none:
		return nil
	case e.State == contracts.StateSuspended || e.State == contracts.StateResumed:
		return AlreadySuspended(e.ID, e.State)
	case leaseID == nil || *leaseID != e.LeaseID:
		return SuspendLeaseMismatch(e.ID)
	}
	return nil
}

// NewSuspension plans step 4 of suspend at nowMs: a fresh suspension_id and
// waitpoint ids, created_at_ms = suspended_at_ms = nowMs, timeout_at_ms and
// each waitpoint's token signed with the partition's current kid. The driver
// stores what it returns.
func NewSuspension(args contracts.SuspendArgs, current KidRecord, nowMs int64) contracts.SuspendOutcome {
	return NewSuspensionUsing(args, current, nil, nowMs)
}

// NewSuspensionUsing is NewSuspension for a suspend that may use pending
// waitpoints, found by id (CheckPendingUse passed): they keep their ids,
// keys and created_at_ms, and their tokens are signed again with the
// current kid, which gives the token create_waitpoint answered unless a
// rotation came between (docs/spec.md §8.1). Waitpoints are listed in the
// order of args.Waitpoints.
func NewSuspensionUsing(args contracts.SuspendArgs, current KidRecord, pending map[string]*PendingWaitpoint, nowMs int64) contracts.SuspendOutcome {
	out := contracts.SuspendOutcome{
		Outcome: contracts.OutcomeSuspended, ExecutionID: args.ExecutionID, SuspensionID: NewID(),
		SuspendedAtMs: nowMs, Condition: args.Condition,
		Waitpoints: make([]contracts.WaitpointOutcome, 0, len(args.Waitpoints)),
		Tags:       slices.Clone(nonNilTags(args.Tags)),
	}
	if args.TimeoutMs != nil {
		t := nowMs + *args.TimeoutMs
		out.TimeoutAtMs = &t
	}
	for _, spec := range args.Waitpoints {
		id, key, created := NewID(), spec.Key, nowMs
		if p := pending[spec.Pending]; spec.Pending != "" && p != nil {
			id, key, created = p.ID, p.Key, p.CreatedAtMs
		}
		in := WaitpointInput(current.Kid, args.ExecutionID, id, key, created)
		out.Waitpoints = append(out.Waitpoints, contracts.WaitpointOutcome{
			WaitpointID: id, WaitpointKey: key, CreatedAtMs: created,
			Token: SignToken(current.Kid, current.Secret, in),
		})
	}
	return out
}

// WaitpointRef identifies a stored waitpoint: what its token signs.
type WaitpointRef struct {
	ExecutionID  string
	WaitpointID  string
	WaitpointKey string
	CreatedAtMs  int64
}

// AuthorizeSignal decides checks 1 and 2 of deliver_signal: the token's kid
// is known to keys and in grace at nowMs, and w (nil: no such waitpoint)
// exists, belongs to args.ExecutionID and matches the token's MAC. A missing
// waitpoint, another execution's waitpoint and a wrong MAC all answer
// SignatureMismatch.
func AuthorizeSignal(args contracts.DeliverSignalArgs, keys PartitionKeys, w *WaitpointRef, nowMs int64) error {
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return err
	}
	return AuthorizeToken(t, args.ExecutionID, keys.Current != nil, keys.Find(t.Kid), w, nowMs)
}

// AuthorizeToken is AuthorizeSignal for drivers that look up only the
// token's kid: initialized reports whether the partition has a current kid,
// rec is the token kid's record (nil: unknown).
func AuthorizeToken(t contracts.Token, executionID string, initialized bool, rec *KidRecord, w *WaitpointRef, nowMs int64) error {
	if w == nil || w.ExecutionID != executionID {
		// Check the kid first (step 1), then answer as a wrong MAC would.
		err := CheckToken(t, nil, initialized, rec, nowMs)
		if err == nil || errors.Is(err, contracts.ErrSignatureMismatch) {
			return SignatureMismatch()
		}
		return err
	}
	return CheckToken(t, WaitpointInput(t.Kid, w.ExecutionID, w.WaitpointID, w.WaitpointKey, w.CreatedAtMs), initialized, rec, nowMs)
}

// TimedOut reports whether a suspension with timeoutAtMs (nil: none) is past
// it at nowMs. "Past" is strict: timeout_at_ms == now has not timed out.
func TimedOut(timeoutAtMs *int64, nowMs int64) bool {
	return timeoutAtMs != nil && nowMs > *timeoutAtMs
}

// SignalBudget is what a suspension's token holders have used so far
// (docs/spec.md §8.3): signals recorded on the waitpoint being delivered
// to, signals recorded on the whole suspension, and the payload bytes of
// those signals.
type SignalBudget struct {
	WaitpointSignals  int
	SuspensionSignals int
	PayloadBytes      int64
}

// CheckDeliverable decides check 4 of deliver_signal for a waitpoint whose
// suspension is closed or not and times out at timeoutAtMs, given the
// budget used so far and the payload of the new signal (its length in
// bytes, 0 for none), against args' limits (Limits.OrDefaults).
func CheckDeliverable(closed bool, timeoutAtMs *int64, used SignalBudget, args contracts.DeliverSignalArgs, nowMs int64) error {
	l := args.Limits.OrDefaults()
	switch {
	case closed:
		return WaitpointClosed()
	case TimedOut(timeoutAtMs, nowMs):
		return SuspensionTimedOut()
	case used.WaitpointSignals >= l.PerWaitpoint:
		return SignalLimitExceeded(BudgetWaitpointSignals, int64(l.PerWaitpoint))
	case used.SuspensionSignals >= l.PerSuspension:
		return SignalLimitExceeded(BudgetSuspensionSignals, int64(l.PerSuspension))
	case used.PayloadBytes+int64(len(args.Payload)) > l.PayloadBytes:
		return SignalLimitExceeded(BudgetPayloadBytes, l.PayloadBytes)
	}
	return nil
}

// NewSignal plans step 5 of deliver_signal: the signal to record on w at nowMs.
func NewSignal(w WaitpointRef, args contracts.DeliverSignalArgs, nowMs int64) contracts.Signal {
	return contracts.Signal{
		SignalID: NewID(), WaitpointID: w.WaitpointID, WaitpointKey: w.WaitpointKey, Name: args.Name,
		Payload: args.Payload, IdempotencyKey: args.IdempotencyKey, DeliveredAtMs: nowMs,
	}
}

// ConditionHolds reports whether a suspension with condition ("any", "all"
// or a count, docs/spec.md §8.2) resumes once signaled of its waitpoints
// waitpoints hold at least one signal.
func ConditionHolds(condition string, signaled, waitpoints int) bool {
	n := contracts.ConditionCount(condition, waitpoints)
	return n > 0 && signaled >= n
}

// Claimable reports whether a claim at nowMs may take e, and with which
// reason: resumed (signal), suspended past its timeout (timeout), or claimed
// with an expired lease (the reason it was first claimed with).
func (e ExecutionState) Claimable(nowMs int64) (reason string, ok bool) {
	switch e.State {
	case contracts.StateResumed:
		if e.Reason != "" {
			return e.Reason, true // cancelled
		}
		return contracts.ReasonSignal, true
	case contracts.StateSuspended:
		return contracts.ReasonTimeout, TimedOut(e.TimeoutAtMs, nowMs)
	case contracts.StateClaimed:
		return e.Reason, nowMs > e.LeaseExpiresAtMs
	}
	return "", false
}

// CheckComplete decides complete_execution for e (nil: not remembered):
// execution_not_found, lease_mismatch, or nil to delete everything recorded
// for it. An expired lease that nobody re-claimed still completes.
func CheckComplete(e *ExecutionState, args contracts.CompleteArgs) error {
	return CheckLeaseHolder(e, args.ExecutionID, args.LeaseID)
}

// PageSuspended renders a list_suspended page from rows sorted by
// (suspended_at_ms, execution_id), all strictly after the cursor, of which
// drivers fetch limit+1: the first limit rows, and next_cursor exactly when
// more follow.
func PageSuspended(rows []contracts.SuspendedExecution, limit int) contracts.ListSuspendedResult {
	res := contracts.ListSuspendedResult{Executions: []contracts.SuspendedExecution{}}
	for i := range rows {
		rows[i].Tags = nonNilTags(rows[i].Tags)
	}
	if len(rows) > limit {
		last := rows[limit-1]
		c := contracts.EncodeCursor(contracts.Cursor{SuspendedAtMs: last.SuspendedAtMs, ExecutionID: last.ExecutionID})
		res.NextCursor = &c
		rows = rows[:limit]
	}
	res.Executions = append(res.Executions, rows...)
	return res
}

// SignWith decides sign for a partition's keystore k: the token of
// args.Message under the current kid, or NotInitialized.
func SignWith(k PartitionKeys, args contracts.SignArgs) (contracts.SignResult, error) {
	if k.Current == nil {
		return contracts.SignResult{}, NotInitialized()
	}
	kid := k.Current.Kid
	return contracts.SignResult{Kid: kid, Token: SignToken(kid, k.Current.Secret, SignatureInput(kid, args.Scope, args.Message))}, nil
}

// VerifyWith decides verify for a partition's keystore k at nowMs
// (docs/spec.md §3).
func VerifyWith(k PartitionKeys, args contracts.VerifyArgs, nowMs int64) (contracts.VerifyResult, error) {
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	if err := CheckToken(t, SignatureInput(t.Kid, args.Scope, args.Message), k.Current != nil, k.Find(t.Kid), nowMs); err != nil {
		return contracts.VerifyResult{}, err
	}
	return contracts.VerifyResult{Valid: true, Kid: t.Kid}, nil
}

// RotatePartition is PlanRotate as the entry rotate_all reports for
// partition: the outcome, or the rotation_conflict in the entry's error.
// changed reports whether next must be written.
func RotatePartition(partition int, k PartitionKeys, args contracts.RotateArgs, nowMs int64) (entry contracts.RotateEntry, next PartitionKeys, changed bool) {
	entry.Partition = partition
	next, out, changed, err := PlanRotate(k, args, nowMs)
	if err != nil {
		entry.Error = contracts.AsError(err)
		return entry, k, false
	}
	entry.Outcome = &out
	return entry, next, changed
}
