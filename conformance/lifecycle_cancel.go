package conformance

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// cancelScenarios cover cancel_suspension (docs/spec.md §8.5).
func cancelScenarios(t *testing.T, s sigSuite) {
	s.v2scenario(t, "CancelClaimable", cancelClaimable)
	s.v2scenario(t, "Rules", cancelRules)
}

// cancelClaimable: cancel closes every waitpoint of the suspension and
// makes the execution claimable with reason cancelled and the signals
// recorded so far; the reason survives a release.
func cancelClaimable(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	const exec = "cancel-1"
	a := suspendArgs(exec, contracts.ConditionAll, "a", "b")
	a.Tags = []string{"cancel-me"}
	s := w.mustSuspend("suspend", a)
	d := w.mustDeliver("deliver_a", signalTo(s, "a", "go", ""))
	out, err := w.cancel("cancel", exec)
	require.NoError(t, err, "cancel")
	require.Equal(t, contracts.CancelOutcome{Outcome: contracts.OutcomeCancelled, ExecutionID: exec, SuspensionID: s.SuspensionID}, out, "cancel")
	_, err = w.deliver("deliver_b_after_cancel", signalTo(s, "b", "go", ""))
	sigWantErr(t, "deliver_b_after_cancel", err, contracts.ErrWaitpointClosed)
	w.mustGet("get_cancelled", exec, waitpointOf(s, "b").WaitpointID, contracts.WaitpointClosed)
	l := w.mustList("list_by_tag", contracts.ListSuspendedArgs{Limit: 10, Tag: "cancel-me"})
	require.Empty(t, l.Executions, "list_by_tag: a cancelled execution is no longer suspended")
	_, err = w.cancel("cancel_again", exec)
	sigWantErr(t, "cancel_again", err, contracts.ErrNotSuspended)

	c := w.mustClaim("claim", "worker-1", 60_000)
	require.Equal(t, contracts.ReasonCancelled, c.Reason, "claim: reason")
	require.Len(t, c.Signals, 1, "claim: the signal recorded before cancel")
	require.Equal(t, d.SignalID, c.Signals[0].SignalID, "claim: the signal recorded before cancel")
	_, err = w.release("release", exec, c.LeaseID)
	require.NoError(t, err, "release")
	c2 := w.mustClaim("claim_again", "worker-2", 60_000)
	require.Equal(t, contracts.ReasonCancelled, c2.Reason, "claim_again: the reason is kept")

	// and a later suspension resumed by a signal is claimed with reason signal
	next := suspendArgs(exec, contracts.ConditionAny, "c")
	next.LeaseID = &c2.LeaseID
	s2 := w.mustSuspend("suspend_again", next)
	w.mustDeliver("deliver_c", signalTo(s2, "c", "go", ""))
	c3 := w.mustClaim("claim_signal", "worker-1", 60_000)
	require.Equal(t, contracts.ReasonSignal, c3.Reason, "claim_signal: suspend clears the cancel reason")
	w.golden("lifecycle_cancel_claimable")
}

// cancelRules: only a suspended execution cancels: unknown is
// execution_not_found; resumed, claimed and pending-only are not_suspended;
// a suspension past its timeout still cancels.
func cancelRules(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	_, err := w.cancel("cancel_unknown", "nobody")
	sigWantErr(t, "cancel_unknown", err, contracts.ErrExecutionNotFound)
	w.mustCreate("create_pending_only", pendingArgs("cr-p", "a", hour))
	_, err = w.cancel("cancel_pending_only", "cr-p")
	sigWantErr(t, "cancel_pending_only", err, contracts.ErrNotSuspended)
	s := w.mustSuspend("suspend", suspendArgs("cr-1", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	_, err = w.cancel("cancel_resumed", "cr-1")
	sigWantErr(t, "cancel_resumed", err, contracts.ErrNotSuspended)
	w.mustClaim("claim", "worker-1", 60_000)
	_, err = w.cancel("cancel_claimed", "cr-1")
	sigWantErr(t, "cancel_claimed", err, contracts.ErrNotSuspended)
	_, err = w.cancel("cancel_bad_id", "..")
	sigWantInvalid(t, "cancel_bad_id", err, "execution_id")

	a := suspendArgs("cr-2", contracts.ConditionAny, "a")
	a.TimeoutMs = sigPtr(int64(100))
	w.mustSuspend("suspend_with_timeout", a)
	w.pass(timeoutWait(w, 100))
	_, err = w.cancel("cancel_timed_out", "cr-2")
	require.NoError(t, err, "cancel_timed_out")
	c := w.mustClaim("claim_timed_out", "worker-1", 60_000)
	require.Equal(t, contracts.ReasonCancelled, c.Reason, "claim_timed_out: reason")
	w.golden("lifecycle_cancel_rules")
}
