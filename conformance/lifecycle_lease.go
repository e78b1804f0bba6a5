package conformance

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// leaseV2Scenarios cover extend_lease and release_execution (docs/spec.md §8.4).
func leaseV2Scenarios(t *testing.T, s sigSuite) {
	s.v2scenario(t, "Rules", leaseV2Rules)
	s.v2scenario(t, "ReleaseKeepsReason", leaseReleaseKeepsReason)
	s.v2scenario(t, "ExtendExpiredNotReclaimed", leaseExtendExpired)
	s.v2scenario(t, "ReleaseExpiredNotReclaimed", leaseReleaseExpired)
	s.v2clockScenario(t, "ExtendHeartbeat", "a lease extended just before it expires, at exact boundaries", leaseHeartbeat)
}

// leaseV2Rules: extend and release need the execution claimed under the
// lease: unknown is execution_not_found; suspended, pending-only and
// another lease are lease_mismatch; the holder extends and releases, after
// which the released lease holds nothing. An execution holding only pending
// waitpoints (state none, remembered) is lease_mismatch to complete too, and
// has no suspension to observe: execution_not_found (docs/spec.md §8.1).
func leaseV2Rules(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	lease := driver.NewID()
	_, err := w.extend("extend_unknown", "nobody", lease, 1_000)
	sigWantErr(t, "extend_unknown", err, contracts.ErrExecutionNotFound)
	_, err = w.release("release_unknown", "nobody", lease)
	sigWantErr(t, "release_unknown", err, contracts.ErrExecutionNotFound)
	w.mustCreate("create_pending_only", pendingArgs("lease-p", "a", hour))
	_, err = w.extend("extend_pending_only", "lease-p", lease, 1_000)
	sigWantErr(t, "extend_pending_only", err, contracts.ErrLeaseMismatch)
	_, err = w.release("release_pending_only", "lease-p", lease)
	sigWantErr(t, "release_pending_only", err, contracts.ErrLeaseMismatch)
	_, err = w.complete("complete_pending_only", "lease-p", lease)
	sigWantErr(t, "complete_pending_only", err, contracts.ErrLeaseMismatch)
	_, err = w.observe("observe_pending_only", "lease-p")
	sigWantErr(t, "observe_pending_only", err, contracts.ErrExecutionNotFound)

	s := w.mustSuspend("suspend", suspendArgs("lease-v2", contracts.ConditionAny, "a"))
	_, err = w.extend("extend_suspended", "lease-v2", lease, 1_000)
	sigWantErr(t, "extend_suspended", err, contracts.ErrLeaseMismatch)
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	c := w.mustClaim("claim", "worker-1", 60_000)
	_, err = w.extend("extend_other_lease", "lease-v2", lease, 1_000)
	sigWantErr(t, "extend_other_lease", err, contracts.ErrLeaseMismatch)

	ext, err := w.extend("extend", "lease-v2", c.LeaseID, 120_000)
	require.NoError(t, err, "extend")
	require.Equal(t, contracts.OutcomeExtended, ext.Outcome, "extend: outcome")
	require.GreaterOrEqual(t, ext.LeaseExpiresAtMs, c.LeaseExpiresAtMs+60_000, "extend: now + lease_ms")
	rel, err := w.release("release", "lease-v2", c.LeaseID)
	require.NoError(t, err, "release")
	require.Equal(t, contracts.OutcomeReleased, rel.Outcome, "release: outcome")
	for _, step := range []string{"extend_released", "release_released", "complete_released"} {
		switch step {
		case "extend_released":
			_, err = w.extend(step, "lease-v2", c.LeaseID, 1_000)
		case "release_released":
			_, err = w.release(step, "lease-v2", c.LeaseID)
		default:
			_, err = w.complete(step, "lease-v2", c.LeaseID)
		}
		sigWantErr(t, step, err, contracts.ErrLeaseMismatch)
	}
	c2 := w.mustClaim("claim_released", "worker-2", 60_000)
	require.Equal(t, "lease-v2", c2.ExecutionID, "claim_released: claimable at once")
	require.NotEqual(t, c.LeaseID, c2.LeaseID, "claim_released: a new lease")
	_, err = w.extend("extend_zero_lease_ms", "lease-v2", c2.LeaseID, -1)
	sigWantInvalid(t, "extend_zero_lease_ms", err, "lease_ms")
	w.golden("lifecycle_lease_rules")
}

// leaseReleaseKeepsReason: a released execution is claimed again with the
// reason it was first claimed with: timeout here.
func leaseReleaseKeepsReason(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	a := suspendArgs("release-1", contracts.ConditionAny, "a")
	a.TimeoutMs = sigPtr(int64(100))
	w.mustSuspend("suspend", a)
	w.pass(timeoutWait(w, 100))
	c := w.mustClaim("claim", "worker-1", 60_000)
	require.Equal(t, contracts.ReasonTimeout, c.Reason, "claim: reason")
	_, err := w.release("release", "release-1", c.LeaseID)
	require.NoError(t, err, "release")
	c2 := w.mustClaim("claim_again", "worker-2", 60_000)
	require.Equal(t, contracts.ReasonTimeout, c2.Reason, "claim_again: the reason is kept")
	w.golden("lifecycle_lease_release_keeps_reason")
}

// leaseExtendExpired: a lease that expired but that nobody re-claimed
// still extends, and then holds the execution against claims.
func leaseExtendExpired(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	lease := leaseWait(w)
	s := w.mustSuspend("suspend", suspendArgs("extend-1", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	c := w.mustClaim("claim", "worker-1", lease)
	w.pass(timeoutWait(w, lease))
	_, err := w.extend("extend_expired", "extend-1", c.LeaseID, 60_000)
	require.NoError(t, err, "extend_expired: nobody re-claimed it")
	out, err := w.claim("claim_after_extend", "worker-2", 60_000)
	require.NoError(t, err, "claim_after_extend")
	require.Equal(t, contracts.OutcomeNone, out.Outcome, "claim_after_extend: the extended lease holds")
	_, err = w.complete("complete", "extend-1", c.LeaseID)
	require.NoError(t, err, "complete")
	w.golden("lifecycle_lease_extend_expired")
}

// leaseReleaseExpired: a lease that expired but that nobody re-claimed
// still releases (the lease rules of complete_execution); the released
// lease then holds nothing, and the execution is claimed at once with the
// reason it was first claimed with: cancelled here.
func leaseReleaseExpired(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	const exec = "release-2"
	lease := leaseWait(w)
	w.mustSuspend("suspend", suspendArgs(exec, contracts.ConditionAny, "a"))
	_, err := w.cancel("cancel", exec)
	require.NoError(t, err, "cancel")
	c := w.mustClaim("claim", "worker-1", lease)
	require.Equal(t, contracts.ReasonCancelled, c.Reason, "claim: reason")
	w.pass(timeoutWait(w, lease))
	rel, err := w.release("release_expired", exec, c.LeaseID)
	require.NoError(t, err, "release_expired: nobody re-claimed it")
	require.Equal(t, contracts.OutcomeReleased, rel.Outcome, "release_expired: outcome")
	require.Equal(t, exec, rel.ExecutionID, "release_expired: execution_id")
	_, err = w.extend("extend_released", exec, c.LeaseID, 60_000)
	sigWantErr(t, "extend_released", err, contracts.ErrLeaseMismatch)
	c2 := w.mustClaim("claim_after_release", "worker-2", 60_000)
	require.Equal(t, exec, c2.ExecutionID, "claim_after_release: execution_id")
	require.Equal(t, contracts.ReasonCancelled, c2.Reason, "claim_after_release: the reason is kept")
	require.NotEqual(t, c.LeaseID, c2.LeaseID, "claim_after_release: a new lease")
	_, err = w.complete("complete", exec, c2.LeaseID)
	require.NoError(t, err, "complete")
	w.golden("lifecycle_lease_release_expired")
}

// leaseHeartbeat: a lease extended at its expiry runs lease_ms from then;
// at the new expiry nothing is claimable, one millisecond later it is.
func leaseHeartbeat(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("beat-1", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
	c := w.mustClaim("claim", "worker-1", 1_000)
	w.pass(1_000 * oneMs)
	ext, err := w.extend("extend_at_expiry", "beat-1", c.LeaseID, 1_000)
	require.NoError(t, err, "extend_at_expiry")
	require.Equal(t, w.nowMs()+1_000, ext.LeaseExpiresAtMs, "extend_at_expiry: now + lease_ms")
	w.pass(1_000 * oneMs)
	out, _ := w.claim("claim_at_new_expiry", "worker-2", 1_000)
	require.Equal(t, contracts.OutcomeNone, out.Outcome, "claim_at_new_expiry: not yet expired")
	w.pass(oneMs)
	c2 := w.mustClaim("claim_past_new_expiry", "worker-2", 1_000)
	require.Equal(t, contracts.ReasonSignal, c2.Reason, "claim_past_new_expiry: reason")
	_, err = w.extend("extend_after_reclaim", "beat-1", c.LeaseID, 1_000)
	sigWantErr(t, "extend_after_reclaim", err, contracts.ErrLeaseMismatch)
	w.golden("lifecycle_lease_heartbeat")
}
