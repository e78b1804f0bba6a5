package driver

import "github.com/flowfabric/flowfabric-go/contracts"

// Errors that drivers raise after validation. Their Detail text appears in
// the conformance goldens, so every driver builds them here and none words
// its own.

// NotInitialized is state / hmac_secret_not_initialized: the partition has
// no current kid.
func NotInitialized() *contracts.Error {
	return contracts.ErrHMACSecretNotInitialized.With("the keystore has no current kid: seed it first")
}

// SignatureMismatch is the single answer for a wrong MAC, a missing waitpoint
// and another execution's waitpoint, so a caller without a valid token
// learns nothing.
func SignatureMismatch() *contracts.Error {
	return contracts.ErrSignatureMismatch.With("token: signature does not match")
}

// ExecutionNotFound answers observe_signals or complete_execution on an
// execution that is not remembered.
func ExecutionNotFound(executionID string) *contracts.Error {
	return contracts.ErrExecutionNotFound.With("execution_id: %q is not known", executionID)
}

// AlreadySuspended answers suspend while the execution is suspended or
// resumed and not yet claimed.
func AlreadySuspended(executionID, state string) *contracts.Error {
	return contracts.ErrAlreadySuspended.With("execution_id: %q is %s and not yet claimed", executionID, state)
}

// LeaseNotHeld answers suspend with a lease_id while the execution is in
// state none (unknown or completed).
func LeaseNotHeld() *contracts.Error {
	return contracts.ErrLeaseMismatch.With("lease_id: the execution holds no lease (it is not claimed)")
}

// SuspendLeaseMismatch answers suspend of a claimed execution without its
// current lease.
func SuspendLeaseMismatch(executionID string) *contracts.Error {
	return contracts.ErrLeaseMismatch.With("lease_id: not the current lease of claimed execution %q", executionID)
}

// CompleteLeaseMismatch answers complete_execution of an execution that is
// not claimed under lease_id.
func CompleteLeaseMismatch(executionID string) *contracts.Error {
	return contracts.ErrLeaseMismatch.With("lease_id: not the current lease of execution %q", executionID)
}

// IdempotencyMismatch answers a suspend whose idempotency key was used for
// the execution with other arguments.
func IdempotencyMismatch() *contracts.Error {
	return contracts.ErrIdempotencyMismatch.With("idempotency_key: already used for this execution with other arguments")
}

// WaitpointClosed answers a delivery to a waitpoint whose suspension
// resumed, was cancelled or was claimed.
func WaitpointClosed() *contracts.Error {
	return contracts.ErrWaitpointClosed.With("waitpoint_id: the waitpoint is closed (its suspension resumed, was cancelled or was claimed)")
}

// PendingWaitpointExpired answers a delivery to a pending waitpoint past
// its expires_at_ms that no suspend used (docs/spec.md §8.1).
func PendingWaitpointExpired() *contracts.Error {
	return contracts.ErrWaitpointClosed.With("waitpoint_id: the pending waitpoint expired before a suspend used it")
}

// SuspensionTimedOut answers a delivery after the suspension's timeout_at_ms.
func SuspensionTimedOut() *contracts.Error {
	return contracts.ErrSuspensionTimedOut.With("waitpoint_id: the suspension passed its timeout_at_ms")
}

// Budget names one of the budgets of docs/spec.md §8.3.
type Budget int

// The budgets of docs/spec.md §8.3.
const (
	BudgetWaitpointSignals  Budget = iota // signals recorded on one waitpoint
	BudgetSuspensionSignals               // signals recorded on one suspension
	BudgetPayloadBytes                    // payload bytes of one suspension's signals
)

// SignalLimitExceeded answers a delivery past budget b, whose limit is n.
func SignalLimitExceeded(b Budget, n int64) *contracts.Error {
	var limit string
	switch b {
	case BudgetWaitpointSignals:
		limit = "the waitpoint already holds %d signals, its limit"
	case BudgetPayloadBytes:
		limit = "the suspension's payloads would exceed %d bytes, its limit"
	default:
		limit = "the suspension already holds %d signals, its limit"
	}
	return contracts.ErrSignalLimitExceeded.With("waitpoint_id: "+limit, n)
}

// SchemaMismatch wraps a refusal of migrations.Pending (or a pending
// migration the caller must apply) as unavailable / schema_mismatch. The
// cause names versions and checksums only, never data.
func SchemaMismatch(cause error) *contracts.Error {
	return contracts.ErrSchemaMismatch.With("schema: %v", cause).Wrapping(cause)
}

// Causes of pending_waitpoint_unavailable (docs/spec.md §8.1).
const (
	pendingUnknown = "is not a pending waitpoint of this execution"
	pendingExpired = "expired before this suspend"
	pendingUsed    = "is already used by a suspension"
)

// pendingWaitpointUnavailable answers a suspend naming a pending waitpoint
// that is unknown or of another execution (one answer for both), expired,
// or already used; cause is one of the texts above.
func pendingWaitpointUnavailable(waitpointID, cause string) *contracts.Error {
	return contracts.ErrPendingWaitpointUnavailable.With("waitpoints.pending: %q %s", waitpointID, cause)
}

// WaitpointLimitExceeded answers create_waitpoint on an execution that
// already holds MaxPendingWaitpoints live pending waitpoints.
func WaitpointLimitExceeded(executionID string) *contracts.Error {
	return contracts.ErrWaitpointLimitExceeded.With("execution_id: %q already holds %d pending waitpoints, its limit",
		executionID, contracts.MaxPendingWaitpoints)
}

// NotSuspended answers cancel_suspension of an execution that is remembered
// but not suspended.
func NotSuspended(executionID string) *contracts.Error {
	return contracts.ErrNotSuspended.With("execution_id: %q is not suspended", executionID)
}

// WaitpointNotFound answers get_waitpoint of a waitpoint that is unknown or
// of another execution (one answer for both).
func WaitpointNotFound(executionID, waitpointID string) *contracts.Error {
	return contracts.ErrWaitpointNotFound.With("waitpoint_id: %q is not a waitpoint of execution %q", waitpointID, executionID)
}

// DuplicateWaitpointKey answers a suspend whose new key equals the key of a
// pending waitpoint it uses, or two pending waitpoints with one key: keys
// are unique across both kinds (docs/spec.md §8.1).
func DuplicateWaitpointKey() *contracts.Error {
	return contracts.Invalid("waitpoints.key", "must be unique within one suspension")
}
