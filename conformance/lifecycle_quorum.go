package conformance

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// quorumScenarios cover count conditions (docs/spec.md §8.2).
func quorumScenarios(t *testing.T, s sigSuite) {
	s.v2scenario(t, "TwoOfThree", quorumTwoOfThree)
	s.v2scenario(t, "CountBounds", quorumBounds)
	s.v2scenario(t, "CountWithPending", quorumWithPending)
}

// quorumTwoOfThree: count 2 of 3 resumes when a second distinct waitpoint
// holds a signal, not on a second signal to the same one; the condition is
// echoed as given; the third approver is then too late.
func quorumTwoOfThree(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	const exec = "quorum-1"
	s := w.mustSuspend("suspend", suspendArgs(exec, contracts.CountCondition(2), "ana", "bo", "cy"))
	require.Contains(t, sigMarshal(t, s), `"condition":{"count":2}`, "suspend: the condition is echoed as given")
	d1 := w.mustDeliver("deliver_ana", signalTo(s, "ana", "approve", ""))
	require.False(t, d1.Resumed, "deliver_ana: 1 of 2")
	d2 := w.mustDeliver("deliver_ana_again", signalTo(s, "ana", "approve", ""))
	require.False(t, d2.Resumed, "deliver_ana_again: still 1 distinct waitpoint")
	d3 := w.mustDeliver("deliver_bo", signalTo(s, "bo", "approve", ""))
	require.True(t, d3.Resumed, "deliver_bo: 2 distinct waitpoints")
	_, err := w.deliver("deliver_cy", signalTo(s, "cy", "approve", ""))
	sigWantErr(t, "deliver_cy", err, contracts.ErrWaitpointClosed)
	c := w.mustClaim("claim", "worker-1", 60_000)
	require.Len(t, c.Signals, 3, "claim: every accepted signal")

	one := w.mustSuspend("suspend_count_one", func() contracts.SuspendArgs {
		a := suspendArgs(exec, contracts.CountCondition(1), "x", "y")
		a.LeaseID = &c.LeaseID
		return a
	}())
	require.Contains(t, sigMarshal(t, one), `"condition":{"count":1}`, "suspend_count_one: count 1 stays a count")
	d := w.mustDeliver("deliver_x", signalTo(one, "x", "go", ""))
	require.True(t, d.Resumed, "deliver_x: count 1 behaves as any")
	w.golden("lifecycle_quorum_two_of_three")
}

// quorumBounds: a count outside 1..M, or anything that is not "any",
// "all" or a count, is invalid_input and writes nothing.
func quorumBounds(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	for _, c := range []struct {
		step, cond, field string
	}{
		{"suspend_count_zero", "count:0", "condition"},
		{"suspend_count_above_waitpoints", contracts.CountCondition(4), "condition.count"},
		{"suspend_count_not_a_number", "count:two", "condition"},
		{"suspend_count_leading_zero", "count:02", "condition"},
		{"suspend_other_word", "most", "condition"},
	} {
		_, err := w.suspend(c.step, suspendArgs("bounds-1", c.cond, "a", "b", "c"))
		sigWantInvalid(t, c.step, err, c.field)
	}
	w.mustSuspend("suspend_count_all_waitpoints", suspendArgs("bounds-1", contracts.CountCondition(3), "a", "b", "c"))
	w.golden("lifecycle_quorum_bounds")
}

// quorumWithPending: a count over pending and new waitpoints counts the
// signals the pending ones already hold: 2 of 3 with two signaled pending
// waitpoints is already satisfied, with one it waits for one more.
func quorumWithPending(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	pa := w.mustCreate("create_a", pendingArgs("qp-1", "a", hour))
	pb := w.mustCreate("create_b", pendingArgs("qp-1", "b", hour))
	da := w.mustDeliver("deliver_a", signalPending(pa, "ok", ""))
	db := w.mustDeliver("deliver_b", signalPending(pb, "ok", ""))
	a := usingPending("qp-1", contracts.CountCondition(2), pa, pb, "c")
	out, err := w.suspend("suspend_satisfied", a)
	require.NoError(t, err, "suspend_satisfied")
	checkSatisfied(t, "suspend_satisfied", a, out, da.SignalID, db.SignalID)

	pc := w.mustCreate("create_c", pendingArgs("qp-2", "a", hour))
	w.mustDeliver("deliver_c", signalPending(pc, "ok", ""))
	s := w.mustSuspend("suspend_waiting", usingPending("qp-2", contracts.CountCondition(2), pc, "b", "c"))
	d := w.mustDeliver("deliver_new_key", signalTo(s, "c", "ok", ""))
	require.True(t, d.Resumed, "deliver_new_key: the pending signal counts toward the quorum")
	w.golden("lifecycle_quorum_with_pending")
}
