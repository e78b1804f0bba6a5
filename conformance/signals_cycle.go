package conformance

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// sigCycleScenarios walk executions through their states (docs/spec.md §5):
// none → suspended → resumed → claimed → suspended … → none.
func sigCycleScenarios(t *testing.T, s sigSuite) {
	s.scenario(t, "FullCycle", fullCycle)
	s.scenario(t, "AllNeedsEveryWaitpoint", allCondition)
	s.scenario(t, "ClaimOldestFirst", claimOldestFirst)
	s.scenario(t, "ClaimTiesByExecutionID", claimTiesByExecutionID)
	s.scenario(t, "ObserveInEveryState", observeInEveryState)
	s.scenario(t, "AcrossHandles", acrossHandles)
}

// fullCycle: suspend on two waitpoints (any) → a signal on one resumes and
// closes the other → claim with reason signal → suspend again under the
// lease → signal → claim → complete → the execution is forgotten.
func fullCycle(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	const exec = "order-1001:approval"

	// given an execution suspended on two waitpoints, condition any
	s1 := w.mustSuspend("suspend", suspendArgs(exec, contracts.ConditionAny, "approve", "reject"))
	for _, wp := range s1.Waitpoints {
		checkWaitpointToken(t, "suspend", fxA, exec, wp)
	}
	require.Equal(t, contracts.ConditionAny, s1.Condition, "suspend: condition")
	require.Nil(t, s1.TimeoutAtMs, "suspend: timeout_at_ms")
	if w.manual() {
		require.Equal(t, w.nowMs(), s1.SuspendedAtMs, "suspend: suspended_at_ms is the backend's now")
	}
	l := w.mustList("list_while_suspended", contracts.ListSuspendedArgs{})
	require.Len(t, l.Executions, 1, "list_while_suspended: want the execution")
	require.Equal(t, 2, l.Executions[0].Waitpoints, "list_while_suspended: waitpoints")

	// when a signal arrives on one waitpoint
	approve := signalTo(s1, "approve", "approved", "webhook-1")
	approve.Payload = json.RawMessage(`{ "by": "alice",  "note": "<ok> & done" }`)
	d1 := w.mustDeliver("deliver_approve", approve)

	// then the execution resumes and the other waitpoint is closed
	require.True(t, d1.Resumed, "deliver_approve: want resumed true under condition any")
	_, err := w.deliver("deliver_reject_after_resume", signalTo(s1, "reject", "rejected", ""))
	sigWantErr(t, "deliver_reject_after_resume", err, contracts.ErrWaitpointClosed)
	l = w.mustList("list_while_resumed", contracts.ListSuspendedArgs{})
	require.Empty(t, l.Executions, "list_while_resumed: a resumed execution is not suspended")

	// when a worker claims it
	c1 := w.mustClaim("claim_after_signal", "worker-1", 60_000)

	// then the claim names reason signal and carries the signal
	require.Equal(t, exec, c1.ExecutionID, "claim_after_signal: execution_id")
	require.Equal(t, s1.SuspensionID, c1.SuspensionID, "claim_after_signal: suspension_id")
	require.Equal(t, contracts.ReasonSignal, c1.Reason, "claim_after_signal: reason")
	require.Len(t, c1.Signals, 1, "claim_after_signal: want the one signal")
	require.Equal(t, d1.SignalID, c1.Signals[0].SignalID, "claim_after_signal: signal_id")
	require.Equal(t, `{"by":"alice","note":"<ok> & done"}`, string(c1.Signals[0].Payload), "claim_after_signal: the compact payload")
	out, _ := w.claim("claim_while_leased", "worker-2", 60_000)
	require.Equal(t, contracts.OutcomeNone, out.Outcome, "claim_while_leased: a leased execution is not claimable, got %+v", out)

	// when the worker suspends it again with its lease, a signal resumes it
	again := suspendArgs(exec, contracts.ConditionAny, "next-step")
	again.LeaseID = &c1.LeaseID
	s2 := w.mustSuspend("suspend_again_with_lease", again)
	require.NotEqual(t, s1.SuspensionID, s2.SuspensionID, "suspend_again_with_lease: want a new suspension_id")
	w.aside(func() {
		// the suspension dropped the lease: it no longer completes, and only
		// the new suspension is listed
		_, err := w.complete("complete_with_the_dropped_lease", exec, c1.LeaseID)
		sigWantErr(t, "complete_with_the_dropped_lease", err, contracts.ErrLeaseMismatch)
		l := w.mustList("list_after_suspend_again", contracts.ListSuspendedArgs{})
		require.Len(t, l.Executions, 1, "list_after_suspend_again: want the execution once")
		require.Equal(t, s2.SuspensionID, l.Executions[0].SuspensionID, "list_after_suspend_again: want the new suspension")
	})
	d2 := w.mustDeliver("deliver_next_step", signalTo(s2, "next-step", "done", ""))
	c2 := w.mustClaim("claim_second_suspension", "worker-1", 60_000)
	require.Equal(t, s2.SuspensionID, c2.SuspensionID, "claim_second_suspension: suspension_id")
	require.NotEqual(t, c1.LeaseID, c2.LeaseID, "claim_second_suspension: want a new lease")
	require.Len(t, c2.Signals, 1, "claim_second_suspension: want only the second suspension's signal")
	require.Equal(t, d2.SignalID, c2.Signals[0].SignalID, "claim_second_suspension: signal_id")

	// then completing forgets the execution
	done, err := w.complete("complete", exec, c2.LeaseID)
	require.NoError(t, err, "complete")
	require.Equal(t, contracts.OutcomeCompleted, done.Outcome, "complete: outcome")
	require.Equal(t, exec, done.ExecutionID, "complete: execution_id")
	_, err = w.observe("observe_after_complete", exec)
	sigWantErr(t, "observe_after_complete", err, contracts.ErrExecutionNotFound)
	_, err = w.complete("complete_again", exec, c2.LeaseID)
	sigWantErr(t, "complete_again", err, contracts.ErrExecutionNotFound)
	out, _ = w.claim("claim_after_complete", "worker-1", 60_000)
	require.Equal(t, contracts.OutcomeNone, out.Outcome, "claim_after_complete: want none, got %+v", out)
	w.golden("signals_full_cycle")
}

// allCondition: condition all resumes only once every waitpoint holds a
// signal; a second signal on the same waitpoint is accepted and recorded but
// does not count twice.
func allCondition(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	const exec = "trip-7:bookings"

	// given an execution suspended on three waitpoints, condition all
	s := w.mustSuspend("suspend", suspendArgs(exec, contracts.ConditionAll, "flight", "hotel", "car"))

	// when the first waitpoint gets two signals
	d1 := w.mustDeliver("deliver_flight", signalTo(s, "flight", "booked", "f-1"))
	d2 := w.mustDeliver("deliver_flight_again", signalTo(s, "flight", "rebooked", "f-2"))

	// then nothing resumes: one waitpoint of three holds signals
	require.False(t, d1.Resumed, "deliver_flight: one waitpoint of three must not resume")
	require.False(t, d2.Resumed, "deliver_flight_again: one waitpoint of three must not resume")
	require.NotEqual(t, d1.SignalID, d2.SignalID, "deliver_flight_again: want two distinct signals")
	out, _ := w.claim("claim_before_all", "worker-1", 60_000)
	require.Equal(t, contracts.OutcomeNone, out.Outcome, "claim_before_all: want none, got %+v", out)
	d := w.mustDeliver("deliver_hotel", signalTo(s, "hotel", "booked", ""))
	require.False(t, d.Resumed, "deliver_hotel: two of three waitpoints must not resume")
	l := w.mustList("list_before_all", contracts.ListSuspendedArgs{})
	require.Len(t, l.Executions, 1, "list_before_all: want the execution still suspended")

	// when the last waitpoint gets its signal, it resumes
	d = w.mustDeliver("deliver_car", signalTo(s, "car", "booked", ""))
	require.True(t, d.Resumed, "deliver_car: want resumed true once every waitpoint holds a signal")
	_, err := w.deliver("deliver_flight_after_resume", signalTo(s, "flight", "late", "f-3"))
	sigWantErr(t, "deliver_flight_after_resume", err, contracts.ErrWaitpointClosed)

	// then the claim carries all four signals in delivery order
	c := w.mustClaim("claim", "worker-1", 60_000)
	require.Equal(t, contracts.ReasonSignal, c.Reason, "claim: reason")
	names := []string{}
	for _, sg := range c.Signals {
		names = append(names, sg.WaitpointKey+"/"+sg.Name)
	}
	require.Equal(t, []string{"flight/booked", "flight/rebooked", "hotel/booked", "car/booked"}, names, "claim: want the four signals in delivery order")
	w.golden("signals_all_condition")
}

// claimOldestFirst: claims take the lowest (suspended_at_ms, execution_id)
// first, whatever the order of the signals, and a suspension past its
// timeout competes by its suspended_at_ms too.
func claimOldestFirst(t *testing.T, suite sigSuite) {
	w := suite.open(t)

	// given three executions suspended one after another, the ids running
	// against the time order, and the oldest one timing out
	oldest := suspendArgs("c-exec", contracts.ConditionAny, "go")
	oldest.TimeoutMs = sigPtr[int64](200)
	s3 := w.mustSuspend("suspend_c_first", oldest)
	w.pass(5 * oneMs)
	s2 := w.mustSuspend("suspend_b_second", suspendArgs("b-exec", contracts.ConditionAny, "go"))
	w.pass(5 * oneMs)
	s1 := w.mustSuspend("suspend_a_third", suspendArgs("a-exec", contracts.ConditionAny, "go"))
	require.Less(t, s3.SuspendedAtMs, s2.SuspendedAtMs, "given: suspended_at_ms must increase")
	require.Less(t, s2.SuspendedAtMs, s1.SuspendedAtMs, "given: suspended_at_ms must increase")

	// when the newest resumes first and the oldest times out
	w.mustDeliver("deliver_a", signalTo(s1, "go", "go", ""))
	w.mustDeliver("deliver_b", signalTo(s2, "go", "go", ""))
	w.pass(timeoutWait(w, 200))

	// then claims come oldest first
	want := []string{"c-exec", "b-exec", "a-exec"}
	reasons := []string{contracts.ReasonTimeout, contracts.ReasonSignal, contracts.ReasonSignal}
	for i, exec := range want {
		c := w.mustClaim("claim_"+exec, "worker-1", 60_000)
		require.Equal(t, exec, c.ExecutionID, "claim %d: execution_id", i)
		require.Equal(t, reasons[i], c.Reason, "claim %d (%s): reason", i, exec)
	}
	out, _ := w.claim("claim_none_left", "worker-1", 60_000)
	require.Equal(t, contracts.OutcomeNone, out.Outcome, "claim_none_left: want none, got %+v", out)
	w.golden("signals_claim_oldest_first")
}

// claimTiesByExecutionID: executions suspended in the same millisecond are
// claimed by ascending execution_id. It needs the manual clock.
func claimTiesByExecutionID(t *testing.T, suite sigSuite) {
	if !suite.clock() {
		t.Skip("needs Harness.ClockControl: suspensions within one millisecond")
	}
	w := suite.open(t)
	ids := []string{"exec-b", "exec-c", "exec-a"}
	var ss []contracts.SuspendOutcome
	for _, id := range ids {
		ss = append(ss, w.mustSuspend("suspend_"+id, suspendArgs(id, contracts.ConditionAny, "go")))
	}
	for i := len(ss) - 1; i >= 0; i-- {
		w.mustDeliver("deliver_"+ss[i].ExecutionID, signalTo(ss[i], "go", "go", ""))
	}
	for _, want := range []string{"exec-a", "exec-b", "exec-c"} {
		c := w.mustClaim("claim", "worker-1", 60_000)
		require.Equal(t, want, c.ExecutionID, "claim: want the lowest execution_id among the same suspended_at_ms")
	}
	w.golden("signals_claim_ties_by_execution_id")
}

// observeInEveryState: observe_signals answers in every state while the
// execution is remembered, reports the latest suspension only, and answers
// execution_not_found for an execution never seen.
func observeInEveryState(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	const exec = "observe-me"
	_, err := w.observe("observe_unknown", exec)
	sigWantErr(t, "observe_unknown", err, contracts.ErrExecutionNotFound)

	s1 := w.mustSuspend("suspend", suspendArgs(exec, contracts.ConditionAny, "k"))
	o := w.mustObserve("observe_suspended", exec)
	require.Equal(t, s1.SuspensionID, o.SuspensionID, "observe_suspended: suspension_id")
	require.NotNil(t, o.Signals, "observe_suspended: signals is [], never null")
	require.Empty(t, o.Signals, "observe_suspended: want no signals")
	d := w.mustDeliver("deliver", signalTo(s1, "k", "ping", "p-1"))
	o = w.mustObserve("observe_resumed", exec)
	require.Len(t, o.Signals, 1, "observe_resumed: want the signal")
	require.Equal(t, d.SignalID, o.Signals[0].SignalID, "observe_resumed: signal_id")
	require.Equal(t, "p-1", o.Signals[0].IdempotencyKey, "observe_resumed: idempotency_key")
	require.Equal(t, s1.Waitpoints[0].WaitpointID, o.Signals[0].WaitpointID, "observe_resumed: waitpoint_id")
	if w.manual() {
		require.Equal(t, w.nowMs(), o.Signals[0].DeliveredAtMs, "observe_resumed: delivered_at_ms is the backend's now")
	}
	c := w.mustClaim("claim", "worker-1", 60_000)
	o = w.mustObserve("observe_claimed", exec)
	require.Len(t, o.Signals, 1, "observe_claimed: want the signal")
	again := suspendArgs(exec, contracts.ConditionAny, "k")
	again.LeaseID = &c.LeaseID
	s2 := w.mustSuspend("suspend_again", again)
	o = w.mustObserve("observe_latest_suspension", exec)
	require.Equal(t, s2.SuspensionID, o.SuspensionID, "observe_latest_suspension: want the new suspension")
	require.NotNil(t, o.Signals, "observe_latest_suspension: signals is [], never null")
	require.Empty(t, o.Signals, "observe_latest_suspension: want no signals")
	w.golden("signals_observe_every_state")
}

// acrossHandles: a store shared by two handles (Harness.Reopen: another
// process) sees one history: suspend through one, deliver and claim through
// the other, complete through the first. It skips for drivers that cannot
// share a store, so it has no golden file (the memory reference cannot
// produce one); it asserts every step instead.
func acrossHandles(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	other := w.reopen()
	s := w.mustSuspend("suspend", suspendArgs("shared-1", contracts.ConditionAll, "a", "b"))

	d1, err := other.DeliverSignal(ctx(), signalTo(s, "a", "from-other", "k-1"))
	require.NoError(t, err, "deliver through the second handle")
	require.Equal(t, contracts.OutcomeAccepted, d1.Outcome, "deliver through the second handle: outcome")
	require.False(t, d1.Resumed, "deliver through the second handle: one of two waitpoints must not resume")
	d, err := w.e.DeliverSignal(ctx(), signalTo(s, "a", "from-first", "k-1"))
	require.NoError(t, err, "redeliver through the first handle")
	require.Equal(t, contracts.OutcomeDuplicate, d.Outcome, "redeliver through the first handle: outcome")
	require.Equal(t, d1.SignalID, d.SignalID, "redeliver through the first handle: want the duplicate's signal_id")
	d, err = w.e.DeliverSignal(ctx(), signalTo(s, "b", "from-first", ""))
	require.NoError(t, err, "deliver through the first handle")
	require.True(t, d.Resumed, "deliver through the first handle: want resumed, got %+v", d)
	c, err := other.ClaimResumedExecution(ctx(), contracts.ClaimArgs{WorkerID: "worker-2", LeaseMs: 60_000})
	require.NoError(t, err, "claim through the second handle")
	require.Equal(t, "shared-1", c.ExecutionID, "claim through the second handle: execution_id")
	require.Len(t, c.Signals, 2, "claim through the second handle: want both signals")
	require.Equal(t, d1.SignalID, c.Signals[0].SignalID, "claim through the second handle: first signal")
	out, err := w.e.CompleteExecution(ctx(), contracts.CompleteArgs{ExecutionID: "shared-1", LeaseID: c.LeaseID})
	require.NoError(t, err, "complete through the first handle")
	require.Equal(t, contracts.OutcomeCompleted, out.Outcome, "complete through the first handle: outcome")
	_, err = other.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: "shared-1"})
	sigWantErr(t, "observe through the second handle", err, contracts.ErrExecutionNotFound)
}
