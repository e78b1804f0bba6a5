package memory

import (
	"bytes"
	"slices"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// execution is a remembered execution: one in state suspended, resumed or
// claimed. Completing it deletes it (state none).
type execution struct {
	id    string
	state string // contracts.StateSuspended, StateResumed or StateClaimed

	latest      *suspension   // the suspension observe_signals and claim report
	suspensions []*suspension // every suspension since the execution was first seen, oldest first

	// The lease, set while state is claimed.
	leaseID          string
	leaseExpiresAtMs int64
	reason           string // claim reason, kept across re-claims after an expired lease

	nextSeq int64                    // delivery sequence of the execution's signals
	suspend map[string]suspendRecord // suspend idempotency records by idempotency_key
}

// suspendRecord is a suspend idempotency record: the arguments' fingerprint
// and the outcome to replay.
type suspendRecord struct {
	fingerprint string
	outcome     contracts.SuspendOutcome
}

// suspension is one suspend of an execution with its waitpoints and signals.
type suspension struct {
	id            string
	suspendedAtMs int64
	timeoutAtMs   *int64
	condition     string
	waitpoints    []*waitpoint
	signals       []storedSignal // in delivery order (ascending seq)
	signaled      int            // waitpoints holding at least one signal, for "all"
	closed        bool           // resumed, or claimed after its timeout
}

// signalList returns the suspension's signals in delivery order, as copies
// the caller may change.
func (s *suspension) signalList() []contracts.Signal {
	out := make([]contracts.Signal, len(s.signals))
	for i, st := range s.signals {
		out[i] = st.Signal
		out[i].Payload = bytes.Clone(st.Payload)
	}
	return out
}

// waitpoint is one waitpoint of a suspension. Closed waitpoints of earlier
// suspensions stay until the execution completes, so that late deliveries
// answer duplicate or waitpoint_closed rather than signature_mismatch.
type waitpoint struct {
	id          string
	key         string
	createdAtMs int64
	exec        *execution
	susp        *suspension
	signals     int               // signals recorded on this waitpoint
	delivered   map[string]string // signal_id by idempotency_key
}

// storedSignal is a recorded signal with its place in the execution's
// delivery sequence.
type storedSignal struct {
	seq int64
	contracts.Signal
}

// view returns what the contract's decisions read of e; nil for state none.
func (e *execution) view() *driver.ExecutionState {
	if e == nil {
		return nil
	}
	return &driver.ExecutionState{
		ID: e.id, State: e.state, TimeoutAtMs: e.latest.timeoutAtMs,
		LeaseID: e.leaseID, LeaseExpiresAtMs: e.leaseExpiresAtMs, Reason: e.reason,
	}
}

// before orders executions oldest first: by (suspended_at_ms, execution_id)
// of their latest suspension.
func (e *execution) before(o *execution) bool {
	if e.latest.suspendedAtMs != o.latest.suspendedAtMs {
		return e.latest.suspendedAtMs < o.latest.suspendedAtMs
	}
	return e.id < o.id
}

// cloneSuspendOutcome deep-copies an outcome, so that neither the stored
// record nor a caller's copy can change the other.
func cloneSuspendOutcome(o contracts.SuspendOutcome) contracts.SuspendOutcome {
	if o.TimeoutAtMs != nil {
		t := *o.TimeoutAtMs
		o.TimeoutAtMs = &t
	}
	o.Waitpoints = slices.Clone(o.Waitpoints)
	return o
}
