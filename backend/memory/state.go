package memory

import (
	"bytes"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// execution is a remembered execution: one in state suspended, resumed or
// claimed, or in state none ("") while it holds pending waitpoints or a
// suspension that answered already_satisfied (docs/spec.md §8.1).
// Completing it deletes it.
type execution struct {
	id    string
	state string // contracts.StateSuspended, StateResumed, StateClaimed or "" (none)

	latest      *suspension   // the suspension observe_signals and claim report; nil before the first
	suspensions []*suspension // every suspension since the execution was first seen, oldest first
	pending     []*waitpoint  // every waitpoint create_waitpoint made, used or not, oldest first

	// The lease, set while state is claimed.
	leaseID          string
	leaseExpiresAtMs int64
	reason           string // claim reason, kept across re-claims after an expired lease; "cancelled" while resumed by cancel

	nextSeq int64                    // delivery sequence of the execution's signals
	suspend map[string]suspendRecord // suspend idempotency records by idempotency_key
}

// suspendRecord is a suspend idempotency record: the arguments' fingerprint
// and the outcome in its stored form (driver.StoredSuspendOutcome: every
// token replaced by its kid), which a replay signs again. No token and no
// MAC is ever kept (docs/spec.md §3).
type suspendRecord struct {
	fingerprint string
	stored      []byte
}

// suspension is one suspend of an execution with its waitpoints and signals.
type suspension struct {
	id            string
	suspendedAtMs int64
	timeoutAtMs   *int64
	condition     string
	tags          []string
	waitpoints    []*waitpoint
	signals       []storedSignal // in delivery order (ascending seq); a signal's place is its cursor position
	payloadBytes  int64          // len(payload) summed over signals: the payload budget used (docs/spec.md §8.3)
	signaled      int            // waitpoints holding at least one signal, for the condition
	closed        bool           // resumed, cancelled, already satisfied, or claimed after its timeout
}

// signalList returns the suspension's signals in delivery order, as copies
// the caller may change.
func (s *suspension) signalList() []contracts.Signal {
	return s.signalRange(0, len(s.signals))
}

// signalRange returns copies of the signals at positions [from, to) of the
// delivery order (to is clamped to the signals the suspension holds; an
// empty range gives an empty list).
func (s *suspension) signalRange(from, to int) []contracts.Signal {
	to = min(to, len(s.signals))
	if from < 0 || from >= to {
		return []contracts.Signal{}
	}
	out := make([]contracts.Signal, 0, to-from)
	for _, st := range s.signals[from:to] {
		sig := st.Signal
		sig.Payload = bytes.Clone(st.Payload)
		out = append(out, sig)
	}
	return out
}

// waitpoint is one waitpoint of a suspension, or a pending one that no
// suspension uses yet (susp nil). Closed waitpoints of earlier suspensions
// stay until the execution completes, so that late deliveries answer
// duplicate or waitpoint_closed rather than signature_mismatch.
type waitpoint struct {
	id          string
	key         string
	createdAtMs int64
	exec        *execution
	susp        *suspension // nil while pending and unused
	tags        []string
	fingerprint string // of the token last handed out for it (driver.TokenFingerprint)

	pending     bool           // made by create_waitpoint
	expiresAtMs int64          // pending only: unused past it, the waitpoint is closed
	buffered    []storedSignal // pending only: signals recorded before a suspension used it

	signals      int               // signals recorded on this waitpoint: its holder's budget used (docs/spec.md §8.3)
	payloadBytes int64             // their payload bytes, which a suspension using it starts with
	delivered    map[string]string // signal_id by idempotency_key
}

// pendingView returns what the decisions of docs/spec.md §8.1 read of w.
func (w *waitpoint) pendingView() *driver.PendingWaitpoint {
	return &driver.PendingWaitpoint{
		ID: w.id, ExecutionID: w.exec.id, Key: w.key, CreatedAtMs: w.createdAtMs, ExpiresAtMs: w.expiresAtMs,
		Used: w.susp != nil, Signals: w.signals, PayloadBytes: w.payloadBytes,
	}
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
	v := &driver.ExecutionState{
		ID: e.id, State: e.state,
		LeaseID: e.leaseID, LeaseExpiresAtMs: e.leaseExpiresAtMs, Reason: e.reason,
	}
	if e.latest != nil {
		v.TimeoutAtMs = e.latest.timeoutAtMs
	}
	return v
}

// before orders executions oldest first: by (suspended_at_ms, execution_id)
// of their latest suspension.
func (e *execution) before(o *execution) bool {
	if e.latest.suspendedAtMs != o.latest.suspendedAtMs {
		return e.latest.suspendedAtMs < o.latest.suspendedAtMs
	}
	return e.id < o.id
}
