package sqlite

import (
	"encoding/json"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// suspendArgs suspends execution on waitpoints keys with condition "any".
func suspendArgs(execution string, keys ...string) contracts.SuspendArgs {
	a := contracts.SuspendArgs{ExecutionID: execution, Condition: contracts.ConditionAny}
	for _, k := range keys {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: k})
	}
	return a
}

func (f *fixture) suspend(a contracts.SuspendArgs) contracts.SuspendOutcome {
	f.t.Helper()
	return try(f.eng.Suspend(f.ctx, a)).must(f.t)
}

// deliverArgs targets waitpoint i of a suspend outcome with its own token.
func deliverArgs(s contracts.SuspendOutcome, i int, idem string) contracts.DeliverSignalArgs {
	w := s.Waitpoints[i]
	return contracts.DeliverSignalArgs{ExecutionID: s.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: "approve", IdempotencyKey: idem}
}

func (f *fixture) deliver(s contracts.SuspendOutcome, i int, idem string) contracts.DeliverSignalOutcome {
	f.t.Helper()
	return try(f.eng.DeliverSignal(f.ctx, deliverArgs(s, i, idem))).must(f.t)
}

func (f *fixture) deliverErr(s contracts.SuspendOutcome, i int, idem string) error {
	f.t.Helper()
	_, err := f.eng.DeliverSignal(f.ctx, deliverArgs(s, i, idem))
	return err
}

func (f *fixture) claim(lease time.Duration) contracts.ClaimOutcome {
	f.t.Helper()
	return try(f.eng.ClaimResumedExecution(f.ctx, contracts.ClaimArgs{WorkerID: "w1", LeaseMs: lease.Milliseconds()})).must(f.t)
}

func (f *fixture) observe(execution string) contracts.ObserveSignalsResult {
	f.t.Helper()
	return try(f.eng.ObserveSignals(f.ctx, contracts.ObserveSignalsArgs{ExecutionID: execution})).must(f.t)
}

func (f *fixture) list(limit int, cursor string) contracts.ListSuspendedResult {
	f.t.Helper()
	return try(f.eng.ListSuspended(f.ctx, contracts.ListSuspendedArgs{Limit: limit, Cursor: cursor})).must(f.t)
}

// claimedExecution suspends execution on one waitpoint, signals it and
// claims it, returning the claim.
func (f *fixture) claimedExecution(execution string, lease time.Duration) contracts.ClaimOutcome {
	f.t.Helper()
	s := f.suspend(suspendArgs(execution, "a"))
	f.deliver(s, 0, "")
	c := f.claim(lease)
	if c.ExecutionID != execution {
		f.t.Fatalf("claimed %q, want %q", c.ExecutionID, execution)
	}
	return c
}

func withTimeout(a contracts.SuspendArgs, d time.Duration) contracts.SuspendArgs {
	a.TimeoutMs = ptr(d.Milliseconds())
	return a
}

func withLease(a contracts.SuspendArgs, lease string) contracts.SuspendArgs {
	a.LeaseID = &lease
	return a
}

func withIdem(a contracts.SuspendArgs, key string) contracts.SuspendArgs {
	a.IdempotencyKey = key
	return a
}

func ids(r contracts.ListSuspendedResult) []string {
	out := []string{}
	for _, e := range r.Executions {
		out = append(out, e.ExecutionID)
	}
	return out
}

func payload(s string) json.RawMessage { return json.RawMessage(s) }
