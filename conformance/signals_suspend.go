package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// oneMs is one millisecond, the unit of every *_ms value.
const oneMs = time.Millisecond

// timeoutWait is how long to let pass so that a deadline ms from now is
// past: one millisecond beyond it on the manual clock ("past" is strict),
// twice it plus 100 ms of margin in real time.
func timeoutWait(w *sigWorld, ms int64) time.Duration {
	if w.manual() {
		return time.Duration(ms+1) * oneMs
	}
	return time.Duration(2*ms+100) * oneMs
}

// sigSuspendScenarios cover suspend's checks after validation (docs/spec.md §5.1):
// keystore, idempotency, state, lease.
func sigSuspendScenarios(t *testing.T, s sigSuite) {
	s.scenario(t, "ReplayIsIdentical", suspendReplay)
	s.scenario(t, "ReplayWithOtherArguments", suspendReplayMismatch)
	s.scenario(t, "AlreadySuspended", suspendAlreadySuspended)
	s.scenario(t, "AlreadySuspendedWhileResumed", suspendWhileResumed)
	s.scenario(t, "LeaseRules", suspendLeaseRules)
	s.scenario(t, "NoKeystore", suspendNoKeystore)
}

// suspendReplay: the same (execution_id, idempotency_key) with the same
// arguments answers the first outcome byte for byte, also after the
// execution moved on, and writes nothing; completing the execution forgets
// the record, so the key then suspends afresh; keys are scoped by execution.
func suspendReplay(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	args := suspendArgs("replay-1", contracts.ConditionAll, "a", "b")
	args.TimeoutMs = sigPtr[int64](3_600_000)
	args.IdempotencyKey = "suspend-attempt-1"

	// given a suspend with an idempotency key
	first := w.mustSuspend("suspend", args)
	w.pass(3 * oneMs)

	// when the same call is replayed, then the outcome is identical
	replay, err := w.suspend("suspend_replay", args)
	require.NoError(t, err, "suspend_replay")
	require.Equal(t, sigMarshal(t, first), sigMarshal(t, replay), "suspend_replay: want the first envelope byte for byte")
	l := w.mustList("list_after_replay", contracts.ListSuspendedArgs{})
	require.Len(t, l.Executions, 1, "list_after_replay: want only the first suspension")
	require.Equal(t, first.SuspensionID, l.Executions[0].SuspensionID, "list_after_replay: suspension_id")
	require.Equal(t, first.SuspendedAtMs, l.Executions[0].SuspendedAtMs, "list_after_replay: a replay writes nothing (suspended_at_ms)")

	// and it stays identical once the execution resumed and was claimed
	w.mustDeliver("deliver_a", signalTo(first, "a", "x", ""))
	w.mustDeliver("deliver_b", signalTo(first, "b", "x", ""))
	late, err := w.suspend("suspend_replay_after_resume", args)
	require.NoError(t, err, "suspend_replay_after_resume")
	require.Equal(t, sigMarshal(t, first), sigMarshal(t, late), "suspend_replay_after_resume: want the first envelope byte for byte")
	claim := w.mustClaim("claim", "worker-1", 60_000)
	late, err = w.suspend("suspend_replay_after_claim", args)
	require.NoError(t, err, "suspend_replay_after_claim")
	require.Equal(t, sigMarshal(t, first), sigMarshal(t, late), "suspend_replay_after_claim: want the first envelope byte for byte")

	// and once completed the execution is forgotten: the key is free again
	o, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: "replay-1"})
	require.NoError(t, err, "observe")
	require.Len(t, o.Signals, 2, "observe: want the two signals")
	_, err = w.complete("complete", "replay-1", claim.LeaseID)
	require.NoError(t, err, "complete")
	fresh := w.mustSuspend("suspend_same_key_after_complete", args)
	require.NotEqual(t, first.SuspensionID, fresh.SuspensionID, "suspend_same_key_after_complete: a completed execution's idempotency record must be gone")
	w.aside(func() {
		// the same key on another execution is another suspension
		other := args
		other.ExecutionID = "replay-1b"
		s := w.mustSuspend("suspend_same_key_other_execution", other)
		require.NotEqual(t, fresh.SuspensionID, s.SuspensionID, "suspend_same_key_other_execution: the key of replay-1 answered for replay-1b")
	})
	w.golden("signals_suspend_replay")
}

// suspendReplayMismatch: the same idempotency key with any other argument
// is idempotency_mismatch and changes nothing.
func suspendReplayMismatch(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	args := suspendArgs("replay-2", contracts.ConditionAny, "a", "b")
	args.IdempotencyKey = "k"
	first := w.mustSuspend("suspend", args)

	variants := []struct {
		step   string
		change func(*contracts.SuspendArgs)
	}{
		{"replay_other_timeout", func(a *contracts.SuspendArgs) { a.TimeoutMs = sigPtr[int64](1000) }},
		{"replay_other_condition", func(a *contracts.SuspendArgs) { a.Condition = contracts.ConditionAll }},
		{"replay_other_keys", func(a *contracts.SuspendArgs) { a.Waitpoints = []contracts.WaitpointSpec{{Key: "a"}} }},
		{"replay_other_key_order", func(a *contracts.SuspendArgs) { a.Waitpoints = []contracts.WaitpointSpec{{Key: "b"}, {Key: "a"}} }},
		{"replay_with_lease", func(a *contracts.SuspendArgs) { a.LeaseID = sigPtr(driver.NewID()) }},
	}
	for _, v := range variants {
		a := suspendArgs("replay-2", contracts.ConditionAny, "a", "b")
		a.IdempotencyKey = "k"
		v.change(&a)
		_, err := w.suspend(v.step, a)
		sigWantErr(t, v.step, err, contracts.ErrIdempotencyMismatch)
	}
	// an unchanged replay still answers the first outcome
	again, err := w.suspend("replay_same", args)
	require.NoError(t, err, "replay_same")
	require.Equal(t, sigMarshal(t, first), sigMarshal(t, again), "replay_same: want the first envelope byte for byte")
	o := w.mustObserve("observe", "replay-2")
	require.Equal(t, first.SuspensionID, o.SuspensionID, "observe: want the first suspension")
	w.golden("signals_suspend_replay_mismatch")
}

// suspendAlreadySuspended: a second suspend of a suspended execution (other
// idempotency key or none) is already_suspended.
func suspendAlreadySuspended(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	first := suspendArgs("twice", contracts.ConditionAny, "a")
	first.IdempotencyKey = "one"
	s := w.mustSuspend("suspend", first)

	second := suspendArgs("twice", contracts.ConditionAny, "a")
	_, err := w.suspend("suspend_without_key", second)
	sigWantErr(t, "suspend_without_key", err, contracts.ErrAlreadySuspended)
	second.IdempotencyKey = "two"
	_, err = w.suspend("suspend_other_key", second)
	sigWantErr(t, "suspend_other_key", err, contracts.ErrAlreadySuspended)
	second.LeaseID = sigPtr(driver.NewID())
	_, err = w.suspend("suspend_with_a_lease", second)
	sigWantErr(t, "suspend_with_a_lease", err, contracts.ErrAlreadySuspended)

	o := w.mustObserve("observe", "twice")
	require.Equal(t, s.SuspensionID, o.SuspensionID, "observe: want the first suspension")
	w.golden("signals_suspend_already_suspended")
}

// suspendWhileResumed: a resumed execution that nobody claimed yet is still
// already_suspended: only the claiming worker may suspend it again.
func suspendWhileResumed(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("resumed-1", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	_, err := w.suspend("suspend_while_resumed", suspendArgs("resumed-1", contracts.ConditionAny, "b"))
	sigWantErr(t, "suspend_while_resumed", err, contracts.ErrAlreadySuspended)
	c := w.mustClaim("claim", "worker-1", 60_000)
	require.Equal(t, s.SuspensionID, c.SuspensionID, "claim: want the first suspension")
	w.golden("signals_suspend_while_resumed")
}

// suspendLeaseRules: a claimed execution suspends again only with its
// current lease; a lease for an execution in state none is lease_mismatch
// (a worker must not resurrect an execution completed by another).
func suspendLeaseRules(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("leased-1", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	c := w.mustClaim("claim", "worker-1", 60_000)

	noLease := suspendArgs("leased-1", contracts.ConditionAny, "b")
	_, err := w.suspend("suspend_claimed_without_lease", noLease)
	sigWantErr(t, "suspend_claimed_without_lease", err, contracts.ErrLeaseMismatch)
	wrong := noLease
	wrong.LeaseID = sigPtr(driver.NewID())
	_, err = w.suspend("suspend_claimed_wrong_lease", wrong)
	sigWantErr(t, "suspend_claimed_wrong_lease", err, contracts.ErrLeaseMismatch)

	unknown := suspendArgs("never-seen", contracts.ConditionAny, "a")
	unknown.LeaseID = &c.LeaseID
	_, err = w.suspend("suspend_unknown_with_lease", unknown)
	sigWantErr(t, "suspend_unknown_with_lease", err, contracts.ErrLeaseMismatch)
	_, err = w.observe("observe_unknown", "never-seen")
	sigWantErr(t, "observe_unknown", err, contracts.ErrExecutionNotFound)

	_, err = w.complete("complete", "leased-1", c.LeaseID)
	require.NoError(t, err, "complete")
	stale := suspendArgs("leased-1", contracts.ConditionAny, "a")
	stale.LeaseID = &c.LeaseID
	_, err = w.suspend("suspend_completed_with_old_lease", stale)
	sigWantErr(t, "suspend_completed_with_old_lease", err, contracts.ErrLeaseMismatch)
	_, err = w.observe("observe_completed", "leased-1")
	sigWantErr(t, "observe_completed", err, contracts.ErrExecutionNotFound)
	w.golden("signals_suspend_lease_rules")
}

// suspendNoKeystore: without a keystore suspend and deliver answer
// hmac_secret_not_initialized and nothing is written.
func suspendNoKeystore(t *testing.T, suite sigSuite) {
	w := suite.openUnseeded(t)
	_, err := w.suspend("suspend", suspendArgs("no-keys", contracts.ConditionAny, "a"))
	sigWantErr(t, "suspend", err, contracts.ErrHMACSecretNotInitialized)
	_, err = w.deliver("deliver", contracts.DeliverSignalArgs{
		ExecutionID: "no-keys", WaitpointID: driver.NewID(), Name: "x",
		Token: refToken(fxA.Kid, fxA.Secret, []byte("anything")),
	})
	sigWantErr(t, "deliver", err, contracts.ErrHMACSecretNotInitialized)
	l := w.mustList("list", contracts.ListSuspendedArgs{})
	require.Empty(t, l.Executions, "list: want nothing suspended")
	_, err = w.observe("observe", "no-keys")
	sigWantErr(t, "observe", err, contracts.ErrExecutionNotFound)
	w.golden("signals_suspend_no_keystore")
}
