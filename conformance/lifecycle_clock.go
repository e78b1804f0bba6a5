package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// sigLifecycleClockScenarios are the execution lifecycle scenarios of the
// clock-controlled group (docs/spec.md §5.6).
func sigLifecycleClockScenarios(t *testing.T, s sigSuite) {
	s.clockScenario(t, "CompleteForgetsEverything", "complete an hour after the lease expired", completeForgetsEverything)
}

// completeForgetsEverything: an execution with two suspensions, their
// signals and idempotency records, completed an hour after its lease
// expired (nobody re-claimed it), leaves nothing in the store
// (Harness.Leftover counts zero; it counted more before complete), and
// answers as never seen: observe and complete are execution_not_found, the
// tokens of both suspensions are signature_mismatch, nothing is claimable,
// and the old idempotency key suspends afresh.
//
// It needs Harness.Leftover, which the reference memory harness of this
// package cannot provide (it looks inside the driver), so it has no golden
// file; it asserts every step instead.
func completeForgetsEverything(t *testing.T, suite sigSuite) {
	if suite.h.Leftover == nil {
		t.Skip("needs Harness.Leftover: counting what the store still holds of a completed execution")
	}
	w := suite.open(t)
	const exec = "forget-1"
	leftover := func() int { return suite.h.Leftover(t, w.e.Backend(), exec) }

	// given an execution with two suspensions, signals and idempotency records
	first := suspendArgs(exec, contracts.ConditionAny, "a")
	first.IdempotencyKey = "i1"
	s1 := w.mustSuspend("suspend", first)
	w.mustDeliver("deliver", signalTo(s1, "a", "go", "d1"))
	c1 := w.mustClaim("claim", "worker-1", 60_000)
	second := suspendArgs(exec, contracts.ConditionAny, "a")
	second.IdempotencyKey = "i2"
	second.LeaseID = &c1.LeaseID
	s2 := w.mustSuspend("suspend_again", second)
	w.mustDeliver("deliver_again", signalTo(s2, "a", "go", "d1"))
	c2 := w.mustClaim("claim_again", "worker-1", 60_000)
	var pending *contracts.CreateWaitpointOutcome
	if _, ok := w.e.Backend().(driver.Lifecycle); ok {
		// and a pending waitpoint with a buffered signal (docs/spec.md §8.1)
		ca := pendingArgs(exec, "later", hour, "t")
		ca.LeaseID = &c2.LeaseID
		p := w.mustCreate("create_waitpoint", ca)
		w.mustDeliver("deliver_pending", signalPending(p, "early", "d1"))
		pending = &p
	}
	require.Positive(t, leftover(), "Harness.Leftover counts nothing of an execution the store holds: it does not see the driver's records")

	// when it is completed an hour after the lease expired
	w.pass(time.Hour)
	out, err := w.complete("complete", exec, c2.LeaseID)
	require.NoError(t, err, "complete")
	require.Equal(t, contracts.OutcomeCompleted, out.Outcome, "complete: outcome")

	// then nothing of it remains
	require.Zero(t, leftover(), "after complete the store still holds rows, entries or keys naming %s", exec)
	_, err = w.observe("observe", exec)
	sigWantErr(t, "observe", err, contracts.ErrExecutionNotFound)
	_, err = w.deliver("redeliver_first_suspension", signalTo(s1, "a", "go", "d1"))
	sigWantErr(t, "redeliver_first_suspension", err, contracts.ErrSignatureMismatch)
	_, err = w.deliver("redeliver_second_suspension", signalTo(s2, "a", "go", "d1"))
	sigWantErr(t, "redeliver_second_suspension", err, contracts.ErrSignatureMismatch)
	_, err = w.complete("complete_again", exec, c2.LeaseID)
	sigWantErr(t, "complete_again", err, contracts.ErrExecutionNotFound)
	none, err := w.claim("claim_after_complete", "worker-1", 60_000)
	require.NoError(t, err, "claim_after_complete")
	require.Equal(t, contracts.OutcomeNone, none.Outcome, "claim_after_complete: want none, got %+v", none)
	if pending != nil {
		_, err = w.deliver("redeliver_pending", signalPending(*pending, "early", "d1"))
		sigWantErr(t, "redeliver_pending", err, contracts.ErrSignatureMismatch)
	}
	require.Zero(t, leftover(), "the calls after complete stored something of %s", exec)

	// and the execution starts afresh, its old idempotency keys free
	fresh := w.mustSuspend("suspend_after_complete", first)
	require.NotEqual(t, s1.SuspensionID, fresh.SuspensionID, "suspend_after_complete: the idempotency record survived completion")
}
