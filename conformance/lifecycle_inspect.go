package conformance

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// inspectScenarios cover the operators' views: describe_execution and
// count_executions (docs/spec.md §8.9). A driver that does not implement
// driver.Inspector skips them, naming the interface.
func inspectScenarios(t *testing.T, s sigSuite) {
	s.inspectScenario(t, "DescribeThroughTheLifecycle", describeThroughTheLifecycle)
	s.inspectScenario(t, "DescribeClaimableWithTime", describeClaimableWithTime)
	s.inspectScenario(t, "DescribeRules", describeRules)
	s.inspectScenario(t, "CountEveryState", countEveryState)
}

// inspectScenario is scenario for a driver.Inspector scenario (which also
// needs driver.Lifecycle for pending waitpoints, tags and cancel).
func (s sigSuite) inspectScenario(t *testing.T, name string, run func(t *testing.T, s sigSuite)) {
	s.v2scenario(t, name, func(t *testing.T, s sigSuite) {
		e, _ := newEngine(t, s.h)
		if _, ok := e.Backend().(driver.Inspector); !ok {
			t.Skip("needs driver.Inspector (describe_execution and count_executions, docs/spec.md §8.9)")
		}
		run(t, s)
	})
}

func (w *sigWorld) describe(step, executionID string) (contracts.ExecutionInfo, error) {
	out, err := w.e.DescribeExecution(ctx(), contracts.DescribeExecutionArgs{ExecutionID: executionID})
	w.record(step, out, err)
	return out, err
}

// mustDescribe describes an execution, failing the test on error or when
// its state, claimability or reason ("" for null) are not the ones given.
func (w *sigWorld) mustDescribe(step, executionID, state string, claimable bool, reason string) contracts.ExecutionInfo {
	w.t.Helper()
	out, err := w.describe(step, executionID)
	require.NoError(w.t, err, "%s: describe_execution %s", step, executionID)
	require.Equal(w.t, executionID, out.ExecutionID, "%s: execution_id", step)
	require.Equal(w.t, state, out.State, "%s: state", step)
	require.Equal(w.t, claimable, out.Claimable, "%s: claimable", step)
	if reason == "" {
		require.Nil(w.t, out.Reason, "%s: reason", step)
	} else {
		require.NotNil(w.t, out.Reason, "%s: reason", step)
		require.Equal(w.t, reason, *out.Reason, "%s: reason", step)
	}
	require.LessOrEqual(w.t, len(out.Waitpoints), contracts.MaxDescribedWaitpoints, "%s: waitpoints", step)
	return out
}

func (w *sigWorld) count(step string) (contracts.ExecutionCounts, error) {
	out, err := w.e.CountExecutions(ctx(), contracts.CountExecutionsArgs{})
	w.record(step, out, err)
	return out, err
}

// mustCount counts the store's executions and fails the test on error or
// when the counts are not want.
func (w *sigWorld) mustCount(step string, want contracts.ExecutionCounts) {
	w.t.Helper()
	out, err := w.count(step)
	require.NoError(w.t, err, "%s: count_executions", step)
	require.Equal(w.t, want, out, "%s: counts", step)
}

// describedWaitpoints returns the keys and statuses of info's waitpoints, in order.
func describedWaitpoints(info contracts.ExecutionInfo) [][2]string {
	out := [][2]string{}
	for _, wp := range info.Waitpoints {
		out = append(out, [2]string{wp.WaitpointKey, wp.Status})
	}
	return out
}

// describeThroughTheLifecycle: one execution described in state none (a
// pending waitpoint holding a signal), suspended on it and a new key
// (tags, both waitpoints open, the buffered signal counted), resumed
// (claimable, reason signal, waitpoints closed) and claimed (not claimable,
// its lease expiry, the claim's reason); the lease id and the tokens never
// appear. Completing it forgets it.
func describeThroughTheLifecycle(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	const exec = "desc-1"
	p := w.mustCreate("create_pending", pendingArgs(exec, "approve", 3_600_000, "mail"))
	info := w.mustDescribe("describe_none", exec, contracts.StateNone, false, "")
	require.Nil(t, info.SuspensionID, "describe_none: no suspension yet")
	require.Equal(t, [][2]string{{"approve", contracts.WaitpointPending}}, describedWaitpoints(info), "describe_none: the pending waitpoint")
	checkFingerprint(t, "describe_none", info.Waitpoints[0], p.Token)
	w.mustDeliver("deliver_early", signalPending(p, "approved-by-ann", "ann"))

	a := usingPending(exec, contracts.CountCondition(2), p, "second")
	a.Tags = []string{"mail", "tier:gold"}
	s := w.mustSuspend("suspend", a)
	info = w.mustDescribe("describe_suspended", exec, contracts.StateSuspended, false, "")
	require.Equal(t, s.SuspensionID, *info.SuspensionID, "describe_suspended: suspension_id")
	require.Equal(t, a.Tags, info.Tags, "describe_suspended: the suspension's tags")
	require.Nil(t, info.TimeoutAtMs, "describe_suspended: no timeout")
	require.Nil(t, info.LeaseExpiresAtMs, "describe_suspended: no lease")
	require.Len(t, info.Waitpoints, 2, "describe_suspended: the suspension's waitpoints")
	for _, wp := range info.Waitpoints {
		require.Equal(t, contracts.WaitpointOpen, wp.Status, "describe_suspended: %s", wp.WaitpointKey)
		signals := 0
		if wp.WaitpointID == p.WaitpointID {
			signals = 1
		}
		require.Equal(t, signals, wp.Signals, "describe_suspended: signals on %s", wp.WaitpointKey)
	}

	w.mustDeliver("deliver_second", signalTo(s, "second", "approved-by-bob", "bob"))
	info = w.mustDescribe("describe_resumed", exec, contracts.StateResumed, true, contracts.ReasonSignal)
	for _, wp := range info.Waitpoints {
		require.Equal(t, contracts.WaitpointClosed, wp.Status, "describe_resumed: %s", wp.WaitpointKey)
	}

	c := w.mustClaim("claim", "worker-1", 60_000)
	require.Equal(t, exec, c.ExecutionID, "claim: the resumed execution")
	info = w.mustDescribe("describe_claimed", exec, contracts.StateClaimed, false, contracts.ReasonSignal)
	require.NotNil(t, info.LeaseExpiresAtMs, "describe_claimed: lease_expires_at_ms")
	require.Equal(t, c.LeaseExpiresAtMs, *info.LeaseExpiresAtMs, "describe_claimed: the claim's lease expiry")
	raw, err := json.Marshal(info)
	require.NoError(t, err)
	require.NotContains(t, string(raw), c.LeaseID, "describe_claimed: the lease id never shows")
	require.NotContains(t, string(raw), macOf(p.Token), "describe_claimed: no token")

	_, err = w.complete("complete", exec, c.LeaseID)
	require.NoError(t, err, "complete")
	_, err = w.describe("describe_completed", exec)
	sigWantErr(t, "describe_completed", err, contracts.ErrExecutionNotFound)
	w.golden("inspect_describe_lifecycle")
}

// describeClaimableWithTime: a suspension past its timeout is claimable
// with reason timeout, and a claim whose lease expired is claimable again
// with its first reason; a cancelled one is resumed with reason cancelled.
func describeClaimableWithTime(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	// The cancelled execution suspends first: being the older, it is the
	// one a claim takes even when the other's timeout has already passed
	// (a slow machine), so the scenario does not depend on timing.
	w.mustSuspend("suspend_cancel", suspendArgs("desc-cancel", contracts.ConditionAny, "a"))
	to := suspendArgs("desc-timeout", contracts.ConditionAny, "a")
	to.TimeoutMs = sigPtr(int64(200))
	st := w.mustSuspend("suspend_timeout", to)
	_, err := w.cancel("cancel", "desc-cancel")
	require.NoError(t, err, "cancel")
	c := w.mustClaim("claim_cancelled", "worker-1", 200)
	require.Equal(t, "desc-cancel", c.ExecutionID, "claim_cancelled: the oldest claimable execution")

	w.pass(timeoutWait(w, 200))
	info := w.mustDescribe("describe_timed_out", "desc-timeout", contracts.StateSuspended, true, contracts.ReasonTimeout)
	require.Equal(t, st.TimeoutAtMs, info.TimeoutAtMs, "describe_timed_out: timeout_at_ms")
	require.Equal(t, [][2]string{{"a", contracts.WaitpointExpired}}, describedWaitpoints(info), "describe_timed_out: waitpoints")
	info = w.mustDescribe("describe_lease_expired", "desc-cancel", contracts.StateClaimed, true, contracts.ReasonCancelled)
	require.Equal(t, c.LeaseExpiresAtMs, *info.LeaseExpiresAtMs, "describe_lease_expired: the expired lease's expiry")
	w.golden("inspect_describe_with_time")
}

// describeRules: an unknown execution is execution_not_found, a malformed
// id invalid_input naming execution_id; expired pending waitpoints are left
// out while live ones show.
func describeRules(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	_, err := w.describe("describe_unknown", "nobody")
	sigWantErr(t, "describe_unknown", err, contracts.ErrExecutionNotFound)
	_, err = w.describe("describe_malformed", "")
	sigWantInvalid(t, "describe_malformed", err, "execution_id")
	_, err = w.describe("describe_too_long", string(make([]byte, contracts.MaxIdentifierLen+1)))
	sigWantInvalid(t, "describe_too_long", err, "execution_id")

	w.mustCreate("create_short", pendingArgs("desc-p", "short", 200))
	w.mustCreate("create_long", pendingArgs("desc-p", "long", 3_600_000))
	w.pass(timeoutWait(w, 200))
	info := w.mustDescribe("describe_pending", "desc-p", contracts.StateNone, false, "")
	require.Equal(t, [][2]string{{"long", contracts.WaitpointPending}}, describedWaitpoints(info), "describe_pending: the live pending waitpoint only")
	w.golden("inspect_describe_rules")
}

// countEveryState: count_executions puts every execution in exactly one
// field: suspended, timed_out, resumed (a cancelled one too), claimed,
// lease_expired; an execution holding pending waitpoints only counts
// nowhere, and a completed one is gone.
func countEveryState(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	w.mustCount("count_empty", contracts.ExecutionCounts{})

	w.mustSuspend("suspend_s1", suspendArgs("cnt-s1", contracts.ConditionAny, "a"))
	w.mustSuspend("suspend_s2", suspendArgs("cnt-s2", contracts.ConditionAny, "a"))
	r1 := w.mustSuspend("suspend_r1", suspendArgs("cnt-r1", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver_r1", signalTo(r1, "a", "go", ""))
	long := w.mustClaim("claim_long", "worker-1", 60_000)
	require.Equal(t, "cnt-r1", long.ExecutionID, "claim_long")
	r2 := w.mustSuspend("suspend_r2", suspendArgs("cnt-r2", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver_r2", signalTo(r2, "a", "go", ""))
	short := w.mustClaim("claim_short", "worker-2", 200)
	require.Equal(t, "cnt-r2", short.ExecutionID, "claim_short")
	w.mustSuspend("suspend_c1", suspendArgs("cnt-c1", contracts.ConditionAny, "a"))
	_, err := w.cancel("cancel_c1", "cnt-c1")
	require.NoError(t, err, "cancel_c1")
	r3 := w.mustSuspend("suspend_r3", suspendArgs("cnt-r3", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver_r3", signalTo(r3, "a", "go", ""))
	to := suspendArgs("cnt-t1", contracts.ConditionAny, "a")
	to.TimeoutMs = sigPtr(int64(200))
	w.mustSuspend("suspend_t1", to)
	w.mustCreate("create_n1", pendingArgs("cnt-n1", "early", 3_600_000))

	w.pass(timeoutWait(w, 200))
	w.mustCount("count_all", contracts.ExecutionCounts{Suspended: 2, TimedOut: 1, Resumed: 2, Claimed: 1, LeaseExpired: 1})

	_, err = w.complete("complete_long", "cnt-r1", long.LeaseID)
	require.NoError(t, err, "complete_long")
	w.mustCount("count_after_complete", contracts.ExecutionCounts{Suspended: 2, TimedOut: 1, Resumed: 2, LeaseExpired: 1})
	w.golden("inspect_count_every_state")
}
