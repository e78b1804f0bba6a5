package conformance

import (
	"encoding/json"
	"testing"

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
	if s1.Condition != contracts.ConditionAny || s1.TimeoutAtMs != nil {
		t.Fatalf("suspend: want condition any and timeout_at_ms null, got %q %v", s1.Condition, s1.TimeoutAtMs)
	}
	if l := w.mustList("list_while_suspended", contracts.ListSuspendedArgs{}); len(l.Executions) != 1 || l.Executions[0].Waitpoints != 2 {
		t.Fatalf("list_while_suspended: want the execution with 2 waitpoints, got %+v", l.Executions)
	}

	// when a signal arrives on one waitpoint
	approve := signalTo(s1, "approve", "approved", "webhook-1")
	approve.Payload = json.RawMessage(`{ "by": "alice",  "note": "<ok> & done" }`)
	d1 := w.mustDeliver("deliver_approve", approve)

	// then the execution resumes and the other waitpoint is closed
	if !d1.Resumed {
		t.Fatalf("deliver_approve: want resumed true under condition any")
	}
	_, err := w.deliver("deliver_reject_after_resume", signalTo(s1, "reject", "rejected", ""))
	sigWantErr(t, "deliver_reject_after_resume", err, contracts.ErrWaitpointClosed)
	if l := w.mustList("list_while_resumed", contracts.ListSuspendedArgs{}); len(l.Executions) != 0 {
		t.Fatalf("list_while_resumed: a resumed execution is not suspended, got %+v", l.Executions)
	}

	// when a worker claims it
	c1 := w.mustClaim("claim_after_signal", "worker-1", 60_000)

	// then the claim names reason signal and carries the signal
	if c1.ExecutionID != exec || c1.SuspensionID != s1.SuspensionID || c1.Reason != contracts.ReasonSignal {
		t.Fatalf("claim_after_signal: want %s/%s reason signal, got %+v", exec, s1.SuspensionID, c1)
	}
	if len(c1.Signals) != 1 || c1.Signals[0].SignalID != d1.SignalID || string(c1.Signals[0].Payload) != `{"by":"alice","note":"<ok> & done"}` {
		t.Fatalf("claim_after_signal: want the one signal %s with its compact payload, got %+v", d1.SignalID, c1.Signals)
	}
	if out, _ := w.claim("claim_while_leased", "worker-2", 60_000); out.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim_while_leased: a leased execution is not claimable, got %+v", out)
	}

	// when the worker suspends it again with its lease, a signal resumes it
	again := suspendArgs(exec, contracts.ConditionAny, "next-step")
	again.LeaseID = &c1.LeaseID
	s2 := w.mustSuspend("suspend_again_with_lease", again)
	if s2.SuspensionID == s1.SuspensionID {
		t.Fatalf("suspend_again_with_lease: want a new suspension_id")
	}
	d2 := w.mustDeliver("deliver_next_step", signalTo(s2, "next-step", "done", ""))
	c2 := w.mustClaim("claim_second_suspension", "worker-1", 60_000)
	if c2.SuspensionID != s2.SuspensionID || c2.LeaseID == c1.LeaseID || len(c2.Signals) != 1 || c2.Signals[0].SignalID != d2.SignalID {
		t.Fatalf("claim_second_suspension: want a new lease and only the second suspension's signal, got %+v", c2)
	}

	// then completing forgets the execution
	if out, err := w.complete("complete", exec, c2.LeaseID); err != nil || out.Outcome != contracts.OutcomeCompleted || out.ExecutionID != exec {
		t.Fatalf("complete: want completed, got %+v %v", out, err)
	}
	_, err = w.observe("observe_after_complete", exec)
	sigWantErr(t, "observe_after_complete", err, contracts.ErrExecutionNotFound)
	_, err = w.complete("complete_again", exec, c2.LeaseID)
	sigWantErr(t, "complete_again", err, contracts.ErrExecutionNotFound)
	if out, _ := w.claim("claim_after_complete", "worker-1", 60_000); out.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim_after_complete: want none, got %+v", out)
	}
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
	if d1.Resumed || d2.Resumed || d1.SignalID == d2.SignalID {
		t.Fatalf("want two distinct signals and no resume, got %+v %+v", d1, d2)
	}
	if out, _ := w.claim("claim_before_all", "worker-1", 60_000); out.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim_before_all: want none, got %+v", out)
	}
	if d := w.mustDeliver("deliver_hotel", signalTo(s, "hotel", "booked", "")); d.Resumed {
		t.Fatalf("deliver_hotel: two of three waitpoints must not resume")
	}
	if l := w.mustList("list_before_all", contracts.ListSuspendedArgs{}); len(l.Executions) != 1 {
		t.Fatalf("list_before_all: want the execution still suspended, got %+v", l.Executions)
	}

	// when the last waitpoint gets its signal, it resumes
	if d := w.mustDeliver("deliver_car", signalTo(s, "car", "booked", "")); !d.Resumed {
		t.Fatalf("deliver_car: want resumed true once every waitpoint holds a signal")
	}
	_, err := w.deliver("deliver_flight_after_resume", signalTo(s, "flight", "late", "f-3"))
	sigWantErr(t, "deliver_flight_after_resume", err, contracts.ErrWaitpointClosed)

	// then the claim carries all four signals in delivery order
	c := w.mustClaim("claim", "worker-1", 60_000)
	names := []string{}
	for _, sg := range c.Signals {
		names = append(names, sg.WaitpointKey+"/"+sg.Name)
	}
	if sigMarshal(t, names) != `["flight/booked","flight/rebooked","hotel/booked","car/booked"]` {
		t.Fatalf("claim: want the four signals in delivery order, got %v", names)
	}
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
	if !(s3.SuspendedAtMs < s2.SuspendedAtMs && s2.SuspendedAtMs < s1.SuspendedAtMs) {
		t.Fatalf("given: suspended_at_ms must increase, got %d %d %d", s3.SuspendedAtMs, s2.SuspendedAtMs, s1.SuspendedAtMs)
	}

	// when the newest resumes first and the oldest times out
	w.mustDeliver("deliver_a", signalTo(s1, "go", "go", ""))
	w.mustDeliver("deliver_b", signalTo(s2, "go", "go", ""))
	w.pass(timeoutWait(w, 200))

	// then claims come oldest first
	want := []string{"c-exec", "b-exec", "a-exec"}
	reasons := []string{contracts.ReasonTimeout, contracts.ReasonSignal, contracts.ReasonSignal}
	for i, exec := range want {
		c := w.mustClaim("claim_"+exec, "worker-1", 60_000)
		if c.ExecutionID != exec || c.Reason != reasons[i] {
			t.Fatalf("claim %d: want %s (%s), got %s (%s)", i, exec, reasons[i], c.ExecutionID, c.Reason)
		}
	}
	if out, _ := w.claim("claim_none_left", "worker-1", 60_000); out.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim_none_left: want none, got %+v", out)
	}
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
		if c := w.mustClaim("claim", "worker-1", 60_000); c.ExecutionID != want {
			t.Fatalf("claim: want %s (same suspended_at_ms, lowest id), got %s", want, c.ExecutionID)
		}
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
	if o := w.mustObserve("observe_suspended", exec); o.SuspensionID != s1.SuspensionID || len(o.Signals) != 0 {
		t.Fatalf("observe_suspended: want no signals of %s, got %+v", s1.SuspensionID, o)
	}
	d := w.mustDeliver("deliver", signalTo(s1, "k", "ping", "p-1"))
	if o := w.mustObserve("observe_resumed", exec); len(o.Signals) != 1 || o.Signals[0].SignalID != d.SignalID ||
		o.Signals[0].IdempotencyKey != "p-1" || o.Signals[0].WaitpointID != s1.Waitpoints[0].WaitpointID {
		t.Fatalf("observe_resumed: want the signal, got %+v", o)
	}
	c := w.mustClaim("claim", "worker-1", 60_000)
	if o := w.mustObserve("observe_claimed", exec); len(o.Signals) != 1 {
		t.Fatalf("observe_claimed: want the signal, got %+v", o)
	}
	again := suspendArgs(exec, contracts.ConditionAny, "k")
	again.LeaseID = &c.LeaseID
	s2 := w.mustSuspend("suspend_again", again)
	if o := w.mustObserve("observe_latest_suspension", exec); o.SuspensionID != s2.SuspensionID || len(o.Signals) != 0 {
		t.Fatalf("observe_latest_suspension: want the new suspension without signals, got %+v", o)
	}
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
	if err != nil || d1.Outcome != contracts.OutcomeAccepted || d1.Resumed {
		t.Fatalf("deliver through the second handle: want accepted, not resumed; got %+v %v", d1, err)
	}
	if d, err := w.e.DeliverSignal(ctx(), signalTo(s, "a", "from-first", "k-1")); err != nil || d.Outcome != contracts.OutcomeDuplicate || d.SignalID != d1.SignalID {
		t.Fatalf("redeliver through the first handle: want duplicate of %s, got %+v %v", d1.SignalID, d, err)
	}
	if d, err := w.e.DeliverSignal(ctx(), signalTo(s, "b", "from-first", "")); err != nil || !d.Resumed {
		t.Fatalf("deliver through the first handle: want resumed, got %+v %v", d, err)
	}
	c, err := other.ClaimResumedExecution(ctx(), contracts.ClaimArgs{WorkerID: "worker-2", LeaseMs: 60_000})
	if err != nil || c.ExecutionID != "shared-1" || len(c.Signals) != 2 || c.Signals[0].SignalID != d1.SignalID {
		t.Fatalf("claim through the second handle: want shared-1 with both signals, got %+v %v", c, err)
	}
	if out, err := w.e.CompleteExecution(ctx(), contracts.CompleteArgs{ExecutionID: "shared-1", LeaseID: c.LeaseID}); err != nil || out.Outcome != contracts.OutcomeCompleted {
		t.Fatalf("complete through the first handle: got %+v %v", out, err)
	}
	_, err = other.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: "shared-1"})
	sigWantErr(t, "observe through the second handle", err, contracts.ErrExecutionNotFound)
}
