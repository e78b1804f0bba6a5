package drivertest

import (
	"encoding/json"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// SuspendArgs suspends execution on waitpoints keys with condition "any".
func SuspendArgs(execution string, keys ...string) contracts.SuspendArgs {
	a := contracts.SuspendArgs{ExecutionID: execution, Condition: contracts.ConditionAny}
	for _, k := range keys {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: k})
	}
	return a
}

// Suspend suspends through the Engine and fails the test on an error.
func (f *Fixture) Suspend(a contracts.SuspendArgs) contracts.SuspendOutcome {
	f.T.Helper()
	return Try(f.Eng.Suspend(f.Ctx, a)).Must(f.T)
}

// DeliverArgs targets waitpoint i of a suspend outcome with its own token.
func DeliverArgs(s contracts.SuspendOutcome, i int, idem string) contracts.DeliverSignalArgs {
	w := s.Waitpoints[i]
	return contracts.DeliverSignalArgs{ExecutionID: s.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: "approve", IdempotencyKey: idem}
}

// Deliver delivers signal "approve" to waitpoint i of s under idempotency
// key idem (none when empty) and fails the test on an error.
func (f *Fixture) Deliver(s contracts.SuspendOutcome, i int, idem string) contracts.DeliverSignalOutcome {
	f.T.Helper()
	return Try(f.Eng.DeliverSignal(f.Ctx, DeliverArgs(s, i, idem))).Must(f.T)
}

// DeliverErr is Deliver for a delivery the test expects to fail: it
// returns the error.
func (f *Fixture) DeliverErr(s contracts.SuspendOutcome, i int, idem string) error {
	f.T.Helper()
	_, err := f.Eng.DeliverSignal(f.Ctx, DeliverArgs(s, i, idem))
	return err
}

// Claim claims as worker "w1" with the given lease and fails the test on
// an error; the outcome may be none.
func (f *Fixture) Claim(lease time.Duration) contracts.ClaimOutcome {
	f.T.Helper()
	return Try(f.Eng.ClaimResumedExecution(f.Ctx, contracts.ClaimArgs{WorkerID: "w1", LeaseMs: lease.Milliseconds()})).Must(f.T)
}

// Observe observes the execution's signals and fails the test on an error.
func (f *Fixture) Observe(execution string) contracts.ObserveSignalsResult {
	f.T.Helper()
	return Try(f.Eng.ObserveSignals(f.Ctx, contracts.ObserveSignalsArgs{ExecutionID: execution})).Must(f.T)
}

// List lists one page of suspended executions and fails the test on an
// error.
func (f *Fixture) List(limit int, cursor string) contracts.ListSuspendedResult {
	f.T.Helper()
	return Try(f.Eng.ListSuspended(f.Ctx, contracts.ListSuspendedArgs{Limit: limit, Cursor: cursor})).Must(f.T)
}

// ClaimedExecution suspends execution on one waitpoint, signals it and
// claims it, returning the claim.
func (f *Fixture) ClaimedExecution(execution string, lease time.Duration) contracts.ClaimOutcome {
	f.T.Helper()
	s := f.Suspend(SuspendArgs(execution, "a"))
	f.Deliver(s, 0, "")
	c := f.Claim(lease)
	if c.ExecutionID != execution {
		f.T.Fatalf("claimed %q, want %q", c.ExecutionID, execution)
	}
	return c
}

// WithTimeout returns a with a timeout of d.
func WithTimeout(a contracts.SuspendArgs, d time.Duration) contracts.SuspendArgs {
	a.TimeoutMs = ptr(d.Milliseconds())
	return a
}

// WithLease returns a presenting lease.
func WithLease(a contracts.SuspendArgs, lease string) contracts.SuspendArgs {
	a.LeaseID = &lease
	return a
}

// WithIdem returns a with idempotency key key.
func WithIdem(a contracts.SuspendArgs, key string) contracts.SuspendArgs {
	a.IdempotencyKey = key
	return a
}

// ids lists a page's execution ids in order.
func ids(r contracts.ListSuspendedResult) []string {
	out := []string{}
	for _, e := range r.Executions {
		out = append(out, e.ExecutionID)
	}
	return out
}

// payload is s as a signal payload.
func payload(s string) json.RawMessage { return json.RawMessage(s) }

// ptr returns a pointer to a copy of v.
func ptr[V any](v V) *V { return &v }
