package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	s.scenario(t, "ZeroLeaseIsTheDefault", leaseZeroIsDefault)
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
	require.Equal(t, "lease-1", c2.ExecutionID, "claim_worker_2: execution_id")
	require.NotEqual(t, c1.LeaseID, c2.LeaseID, "claim_worker_2: want a new lease")
	require.Equal(t, contracts.ReasonSignal, c2.Reason, "claim_worker_2: reason")
	require.Len(t, c2.Signals, 1, "claim_worker_2: want the signal")
	require.Greater(t, c2.LeaseExpiresAtMs, c1.LeaseExpiresAtMs, "claim_worker_2: lease_expires_at_ms must be after the first lease's")

	// then worker-1 can neither suspend nor complete
	stale := suspendArgs("lease-1", contracts.ConditionAny, "b")
	stale.LeaseID = &c1.LeaseID
	_, err := w.suspend("suspend_worker_1", stale)
	sigWantErr(t, "suspend_worker_1", err, contracts.ErrLeaseMismatch)
	_, err = w.complete("complete_worker_1", "lease-1", c1.LeaseID)
	sigWantErr(t, "complete_worker_1", err, contracts.ErrLeaseMismatch)

	// and worker-2 completes
	out, err := w.complete("complete_worker_2", "lease-1", c2.LeaseID)
	require.NoError(t, err, "complete_worker_2")
	require.Equal(t, contracts.OutcomeCompleted, out.Outcome, "complete_worker_2: outcome")
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
	out, err := w.complete("complete_with_expired_lease", "lease-2", c2.LeaseID)
	require.NoError(t, err, "complete_with_expired_lease")
	require.Equal(t, contracts.OutcomeCompleted, out.Outcome, "complete_with_expired_lease: outcome")
	w.golden("signals_lease_expired_not_reclaimed")
}

// leaseBoundary: a lease with lease_expires_at_ms == now has not expired;
// one millisecond later it has, and the re-claim's lease runs from then. It
// needs the manual clock.
func leaseBoundary(t *testing.T, suite sigSuite) {
	if !suite.clock() {
		t.Skip("needs Harness.ClockControl: exact lease boundary")
	}
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("lease-3", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	c := w.mustClaim("claim", "worker-1", 1_000)
	require.Equal(t, w.nowMs()+1_000, c.LeaseExpiresAtMs, "claim: want lease_expires_at_ms = now + lease_ms")
	w.pass(1_000 * oneMs)
	out, _ := w.claim("claim_at_expiry", "worker-2", 1_000)
	require.Equal(t, contracts.OutcomeNone, out.Outcome, "claim_at_expiry: lease_expires_at_ms == now has not expired, got %+v", out)
	w.pass(oneMs)
	c2 := w.mustClaim("claim_past_expiry", "worker-2", 1_000)
	require.NotEqual(t, c.LeaseID, c2.LeaseID, "claim_past_expiry: want a new lease_id")
	require.Equal(t, w.nowMs()+1_000, c2.LeaseExpiresAtMs, "claim_past_expiry: want lease_expires_at_ms = now + lease_ms")
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
	o := w.mustObserve("observe_still_claimed", "done-1")
	require.Len(t, o.Signals, 1, "observe_still_claimed: want the signal kept")
	_, err = w.complete("complete", "done-1", c.LeaseID)
	require.NoError(t, err, "complete")
	w.golden("signals_complete_rules")
}

// leaseZeroIsDefault: a claim whose lease_ms is 0 gets the default lease,
// contracts.DefaultLeaseMs (docs/spec.md §5.5); the Engine fills it.
func leaseZeroIsDefault(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("lease-zero", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	if w.manual() {
		before := w.nowMs()
		c := w.mustClaim("claim_lease_0", "worker-1", 0)
		require.Equal(t, before+contracts.DefaultLeaseMs, c.LeaseExpiresAtMs, "claim_lease_0: want lease_expires_at_ms = now + the default lease")
		return
	}
	before := time.Now().UnixMilli()
	c := w.mustClaim("claim_lease_0", "worker-1", 0)
	after := time.Now().UnixMilli()
	// The backend's clock is not the process's: allow a few seconds of skew.
	require.InDelta(t, (before+after)/2+contracts.DefaultLeaseMs, c.LeaseExpiresAtMs, 5000, "claim_lease_0: want lease_expires_at_ms = now + the default lease")
}
