package conformance

import (
	"testing"
	"time"

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
		if timeout > 10_000 {
			t.Fatalf("suspend plus one delivery take longer than timeout_ms %d: cannot test timeouts in real time", timeout)
		}
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
	if err != nil || early.Outcome != contracts.OutcomeAccepted {
		t.Fatalf("deliver_before_timeout: want accepted, got %+v %v", early, err)
	}

	// when the timeout passes
	w.pass(timeoutWait(w, timeout))

	// then signals are refused, duplicates still answer duplicate
	_, err = w.deliver("deliver_after_timeout", signalTo(s, "b", "late", ""))
	sigWantErr(t, "deliver_after_timeout", err, contracts.ErrSuspensionTimedOut)
	if d, err := w.deliver("redeliver_after_timeout", signalTo(s, "a", "early", "e-1")); err != nil || d.Outcome != contracts.OutcomeDuplicate || d.SignalID != early.SignalID {
		t.Fatalf("redeliver_after_timeout: want duplicate of %s, got %+v %v", early.SignalID, d, err)
	}
	if l := w.mustList("list_after_timeout", contracts.ListSuspendedArgs{}); len(l.Executions) != 1 {
		t.Fatalf("list_after_timeout: a timed-out suspension nobody claimed is still listed, got %+v", l.Executions)
	}

	// and a worker claims it with reason timeout and the early signal
	c := w.mustClaim("claim", "worker-1", 60_000)
	if c.ExecutionID != "slow-1" || c.Reason != contracts.ReasonTimeout || len(c.Signals) != 1 || c.Signals[0].SignalID != early.SignalID {
		t.Fatalf("claim: want slow-1 with reason timeout and the early signal, got %+v", c)
	}
	_, err = w.deliver("deliver_after_claim", signalTo(s, "b", "late", ""))
	sigWantErr(t, "deliver_after_claim", err, contracts.ErrWaitpointClosed)
	if l := w.mustList("list_after_claim", contracts.ListSuspendedArgs{}); len(l.Executions) != 0 {
		t.Fatalf("list_after_claim: want nothing suspended, got %+v", l.Executions)
	}

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
	if *s.TimeoutAtMs != w.nowMs()+200 {
		t.Fatalf("suspend: want timeout_at_ms = now + 200, got %d", *s.TimeoutAtMs)
	}
	w.pass(200 * oneMs)
	if out, _ := w.claim("claim_at_timeout", "worker-1", 60_000); out.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim_at_timeout: timeout_at_ms == now has not timed out, got %+v", out)
	}
	w.mustDeliver("deliver_at_timeout", signalTo(s, "a", "x", ""))
	w.pass(oneMs)
	_, err := w.deliver("deliver_past_timeout", signalTo(s, "b", "x", ""))
	sigWantErr(t, "deliver_past_timeout", err, contracts.ErrSuspensionTimedOut)
	c := w.mustClaim("claim_past_timeout", "worker-1", 60_000)
	if c.Reason != contracts.ReasonTimeout {
		t.Fatalf("claim_past_timeout: want reason timeout, got %s", c.Reason)
	}
	// a re-claim after the lease expired keeps the reason
	w.pass(60_001 * oneMs)
	if c2 := w.mustClaim("reclaim_after_lease_expiry", "worker-2", 60_000); c2.Reason != contracts.ReasonTimeout || c2.LeaseID == c.LeaseID {
		t.Fatalf("reclaim_after_lease_expiry: want reason timeout and a new lease, got %+v", c2)
	}
	w.golden("signals_timeout_boundary")
}
