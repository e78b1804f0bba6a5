package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// sigTimeoutScenarios cover suspensions with timeout_ms (docs/spec.md §5).
func sigTimeoutScenarios(t *testing.T, s sigSuite) {
	s.scenario(t, "RefusesSignalsClaimedAsTimeout", timeoutClaim)
	s.scenario(t, "Boundary", timeoutBoundary)
}

// timeoutClaim: past timeout_at_ms a suspension refuses signals
// (suspension_timed_out), stays listed until claimed, is claimed with
// reason timeout and the signals it got, and its waitpoints then close.
// In real time the delivery before the timeout is conclusive only if it
// finishes within timeout_ms of the suspend's start; on a slower backend the
// scenario retries on a fresh backend with a four times longer timeout.
func timeoutClaim(t *testing.T, suite sigSuite) {
	for timeout := int64(200); ; timeout *= 4 {
		if timeoutClaimAttempt(t, suite.open(t), timeout) {
			return
		}
		require.LessOrEqual(t, timeout, int64(10_000), "suspend plus one delivery take longer than timeout_ms %d: cannot test timeouts in real time", timeout)
		t.Logf("suspend and a delivery took longer than timeout_ms %d; retrying with a longer timeout", timeout)
	}
}

// timeoutClaimAttempt runs timeoutClaim once; it reports false when the
// real-time delivery before the timeout finished too late to be conclusive.
func timeoutClaimAttempt(t *testing.T, w *sigWorld, timeout int64) bool {
	// given a suspension with a timeout on two waitpoints (all) and one signal
	a := suspendArgs("slow-1", contracts.ConditionAll, "a", "b")
	a.TimeoutMs = sigPtr(timeout)
	start := time.Now()
	s := w.mustSuspend("suspend", a)
	early, err := w.deliver("deliver_before_timeout", signalTo(s, "a", "early", "e-1"))
	if !w.manual() && time.Since(start) >= time.Duration(timeout)*oneMs {
		return false
	}
	require.NoError(t, err, "deliver_before_timeout")
	require.Equal(t, contracts.OutcomeAccepted, early.Outcome, "deliver_before_timeout: outcome")

	// when the timeout passes
	w.pass(timeoutWait(w, timeout))

	// then signals are refused, duplicates still answer duplicate
	_, err = w.deliver("deliver_after_timeout", signalTo(s, "b", "late", ""))
	sigWantErr(t, "deliver_after_timeout", err, contracts.ErrSuspensionTimedOut)
	d, err := w.deliver("redeliver_after_timeout", signalTo(s, "a", "early", "e-1"))
	require.NoError(t, err, "redeliver_after_timeout")
	require.Equal(t, contracts.OutcomeDuplicate, d.Outcome, "redeliver_after_timeout: outcome")
	require.Equal(t, early.SignalID, d.SignalID, "redeliver_after_timeout: want the early signal_id")
	l := w.mustList("list_after_timeout", contracts.ListSuspendedArgs{})
	require.Len(t, l.Executions, 1, "list_after_timeout: a timed-out suspension nobody claimed is still listed")

	// and a worker claims it with reason timeout and the early signal
	c := w.mustClaim("claim", "worker-1", 60_000)
	require.Equal(t, "slow-1", c.ExecutionID, "claim: execution_id")
	require.Equal(t, contracts.ReasonTimeout, c.Reason, "claim: reason")
	require.Len(t, c.Signals, 1, "claim: want the early signal")
	require.Equal(t, early.SignalID, c.Signals[0].SignalID, "claim: want the early signal")
	_, err = w.deliver("deliver_after_claim", signalTo(s, "b", "late", ""))
	sigWantErr(t, "deliver_after_claim", err, contracts.ErrWaitpointClosed)
	l = w.mustList("list_after_claim", contracts.ListSuspendedArgs{})
	require.Empty(t, l.Executions, "list_after_claim: want nothing suspended")

	// and the worker may suspend it again
	again := suspendArgs("slow-1", contracts.ConditionAny, "a")
	again.LeaseID = &c.LeaseID
	w.mustSuspend("suspend_again", again)
	w.golden("signals_timeout_claim")
	return true
}

// timeoutBoundary: timeout_at_ms == now has not timed out; one millisecond
// later it has, and a re-claim after the lease expired keeps reason
// timeout. It needs the manual clock.
func timeoutBoundary(t *testing.T, suite sigSuite) {
	if !suite.clock() {
		t.Skip("needs Harness.ClockControl: exact timeout boundary")
	}
	w := suite.open(t)
	a := suspendArgs("edge-1", contracts.ConditionAll, "a", "b")
	a.TimeoutMs = sigPtr[int64](200)
	s := w.mustSuspend("suspend", a)
	require.Equal(t, w.nowMs()+200, *s.TimeoutAtMs, "suspend: want timeout_at_ms = now + 200")
	w.pass(200 * oneMs)
	out, _ := w.claim("claim_at_timeout", "worker-1", 60_000)
	require.Equal(t, contracts.OutcomeNone, out.Outcome, "claim_at_timeout: timeout_at_ms == now has not timed out, got %+v", out)
	w.mustDeliver("deliver_at_timeout", signalTo(s, "a", "x", ""))
	w.pass(oneMs)
	_, err := w.deliver("deliver_past_timeout", signalTo(s, "b", "x", ""))
	sigWantErr(t, "deliver_past_timeout", err, contracts.ErrSuspensionTimedOut)
	c := w.mustClaim("claim_past_timeout", "worker-1", 60_000)
	require.Equal(t, contracts.ReasonTimeout, c.Reason, "claim_past_timeout: reason")
	require.Len(t, c.Signals, 1, "claim_past_timeout: want the signal delivered at timeout_at_ms")
	// a re-claim after the lease expired keeps the reason
	w.pass(60_001 * oneMs)
	c2 := w.mustClaim("reclaim_after_lease_expiry", "worker-2", 60_000)
	require.Equal(t, contracts.ReasonTimeout, c2.Reason, "reclaim_after_lease_expiry: reason")
	require.NotEqual(t, c.LeaseID, c2.LeaseID, "reclaim_after_lease_expiry: want a new lease")
	w.golden("signals_timeout_boundary")
}
