package conformance

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// sigTimeoutScenarios cover suspensions with timeout_ms (CONTRACT.md §5).
func sigTimeoutScenarios(t *testing.T, s sigSuite) {
	s.scenario(t, "RefusesSignalsClaimedAsTimeout", timeoutClaim)
	s.scenario(t, "Boundary", timeoutBoundary)
}

// timeoutClaim: past timeout_at_ms a suspension refuses signals
// (suspension_timed_out), stays listed until claimed, is claimed with
// reason timeout and the signals it got, and its waitpoints then close.
func timeoutClaim(t *testing.T, suite sigSuite) {
	w := suite.open(t)

	// given a suspension with timeout_ms 200 on two waitpoints (all) and one signal
	a := suspendArgs("slow-1", contracts.ConditionAll, "a", "b")
	a.TimeoutMs = sigPtr[int64](200)
	s := w.mustSuspend("suspend", a)
	early := w.mustDeliver("deliver_before_timeout", signalTo(s, "a", "early", "e-1"))

	// when the timeout passes
	w.pass(timeoutWait(w, 200))

	// then signals are refused, duplicates still answer duplicate
	_, err := w.deliver("deliver_after_timeout", signalTo(s, "b", "late", ""))
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
}

// timeoutBoundary: timeout_at_ms == now has not timed out; one millisecond
// later it has. It needs the manual clock.
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
	if c := w.mustClaim("claim_past_timeout", "worker-1", 60_000); c.Reason != contracts.ReasonTimeout {
		t.Fatalf("claim_past_timeout: want reason timeout, got %s", c.Reason)
	}
	w.golden("signals_timeout_boundary")
}
