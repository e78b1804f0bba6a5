package conformance

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// sigLeaseScenarios cover claim leases: expiry, re-claim, and which worker may
// suspend or complete (docs/spec.md §5.5, §5.6).
func sigLeaseScenarios(t *testing.T, s sigSuite) {
	s.scenario(t, "ExpiredLeaseReclaimed", leaseReclaimed)
	s.scenario(t, "ExpiredLeaseNotReclaimed", leaseExpiredNotReclaimed)
	s.scenario(t, "LeaseBoundary", leaseBoundary)
	s.scenario(t, "CompleteRules", completeRules)
}

// leaseWait is the lease of the expiry scenarios and how long to let pass
// so that it is past: 100 ms on the manual clock, 300 ms in real time.
func leaseWait(w *sigWorld) int64 {
	if w.manual() {
		return 100
	}
	return 300
}

// leaseReclaimed: a claim whose lease passed is claimable again; the second
// worker gets a new lease_id and keeps the reason; the first worker's
// suspend and complete are lease_mismatch; the second's complete works.
func leaseReclaimed(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	lease := leaseWait(w)

	// given an execution claimed by worker-1 with a short lease
	s := w.mustSuspend("suspend", suspendArgs("lease-1", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	c1 := w.mustClaim("claim_worker_1", "worker-1", lease)

	// when the lease passes, worker-2 claims it
	w.pass(timeoutWait(w, lease))
	c2 := w.mustClaim("claim_worker_2", "worker-2", 60_000)
	if c2.ExecutionID != "lease-1" || c2.LeaseID == c1.LeaseID || c2.Reason != contracts.ReasonSignal || len(c2.Signals) != 1 {
		t.Fatalf("claim_worker_2: want lease-1 with a new lease, reason signal and the signal, got %+v", c2)
	}
	if c2.LeaseExpiresAtMs <= c1.LeaseExpiresAtMs {
		t.Fatalf("claim_worker_2: lease_expires_at_ms %d must be after the first lease's %d", c2.LeaseExpiresAtMs, c1.LeaseExpiresAtMs)
	}

	// then worker-1 can neither suspend nor complete
	stale := suspendArgs("lease-1", contracts.ConditionAny, "b")
	stale.LeaseID = &c1.LeaseID
	_, err := w.suspend("suspend_worker_1", stale)
	sigWantErr(t, "suspend_worker_1", err, contracts.ErrLeaseMismatch)
	_, err = w.complete("complete_worker_1", "lease-1", c1.LeaseID)
	sigWantErr(t, "complete_worker_1", err, contracts.ErrLeaseMismatch)

	// and worker-2 completes
	if out, err := w.complete("complete_worker_2", "lease-1", c2.LeaseID); err != nil || out.Outcome != contracts.OutcomeCompleted {
		t.Fatalf("complete_worker_2: want completed, got %+v %v", out, err)
	}
	w.golden("signals_lease_reclaimed")
}

// leaseExpiredNotReclaimed: an expired lease nobody re-claimed still
// suspends and completes (docs/spec.md §5.1 check 3, §5.6).
func leaseExpiredNotReclaimed(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	lease := leaseWait(w)
	s := w.mustSuspend("suspend", suspendArgs("lease-2", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	c := w.mustClaim("claim", "worker-1", lease)
	w.pass(timeoutWait(w, lease))

	again := suspendArgs("lease-2", contracts.ConditionAny, "a")
	again.LeaseID = &c.LeaseID
	s2 := w.mustSuspend("suspend_with_expired_lease", again)
	w.mustDeliver("deliver_again", signalTo(s2, "a", "go", ""))
	c2 := w.mustClaim("claim_again", "worker-1", lease)
	w.pass(timeoutWait(w, lease))
	if out, err := w.complete("complete_with_expired_lease", "lease-2", c2.LeaseID); err != nil || out.Outcome != contracts.OutcomeCompleted {
		t.Fatalf("complete_with_expired_lease: want completed, got %+v %v", out, err)
	}
	w.golden("signals_lease_expired_not_reclaimed")
}

// leaseBoundary: a lease with lease_expires_at_ms == now has not expired;
// one millisecond later it has. It needs the manual clock.
func leaseBoundary(t *testing.T, suite sigSuite) {
	if !suite.clock() {
		t.Skip("needs Harness.ClockControl: exact lease boundary")
	}
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("lease-3", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	c := w.mustClaim("claim", "worker-1", 1_000)
	if c.LeaseExpiresAtMs != w.nowMs()+1_000 {
		t.Fatalf("claim: want lease_expires_at_ms = now + lease_ms = %d, got %d", w.nowMs()+1_000, c.LeaseExpiresAtMs)
	}
	w.pass(1_000 * oneMs)
	if out, _ := w.claim("claim_at_expiry", "worker-2", 1_000); out.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim_at_expiry: lease_expires_at_ms == now has not expired, got %+v", out)
	}
	w.pass(oneMs)
	if c2 := w.mustClaim("claim_past_expiry", "worker-2", 1_000); c2.LeaseID == c.LeaseID {
		t.Fatalf("claim_past_expiry: want a new lease_id")
	}
	w.golden("signals_lease_boundary")
}

// completeRules: complete needs state claimed and the current lease.
func completeRules(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	_, err := w.complete("complete_unknown", "nobody", driver.NewID())
	sigWantErr(t, "complete_unknown", err, contracts.ErrExecutionNotFound)

	s := w.mustSuspend("suspend", suspendArgs("done-1", contracts.ConditionAny, "a"))
	_, err = w.complete("complete_suspended", "done-1", driver.NewID())
	sigWantErr(t, "complete_suspended", err, contracts.ErrLeaseMismatch)
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	_, err = w.complete("complete_resumed", "done-1", driver.NewID())
	sigWantErr(t, "complete_resumed", err, contracts.ErrLeaseMismatch)
	c := w.mustClaim("claim", "worker-1", 60_000)
	_, err = w.complete("complete_wrong_lease", "done-1", driver.NewID())
	sigWantErr(t, "complete_wrong_lease", err, contracts.ErrLeaseMismatch)
	if o := w.mustObserve("observe_still_claimed", "done-1"); len(o.Signals) != 1 {
		t.Fatalf("observe_still_claimed: want the signal kept, got %+v", o.Signals)
	}
	if _, err := w.complete("complete", "done-1", c.LeaseID); err != nil {
		t.Fatalf("complete: %v", err)
	}
	w.golden("signals_complete_rules")
}
