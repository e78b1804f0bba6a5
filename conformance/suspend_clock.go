package conformance

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// sigSuspendClockScenarios are the suspend scenarios of the clock-controlled
// group (docs/spec.md §5.1).
func sigSuspendClockScenarios(t *testing.T, s sigSuite) {
	s.clockScenario(t, "ReplayIdenticalInEveryState", "replays exactly one second apart", suspendReplayEveryState)
}

// suspendReplayEveryState: a replay answers the first outcome byte for byte
// in every state the execution passes through (suspended, resumed, claimed,
// and claimed after a rotation made another kid current), each one second
// later on the clock, however the caller changed the outcomes it was given:
// a backend hands out copies, never its stored record.
func suspendReplayEveryState(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	a := suspendArgs("replay-3", contracts.ConditionAny, "a", "b")
	a.TimeoutMs = sigPtr[int64](60_000)
	a.IdempotencyKey = "attempt-1"

	// given a suspension recorded under an idempotency key
	first := w.mustSuspend("suspend", a)
	want := sigMarshal(t, first)
	tokens := slices.Clone(first.Waitpoints)
	// and a caller that changes the outcome it got
	first.Waitpoints[0].Token = "changed by the caller"
	*first.TimeoutAtMs = 0

	// when the same call is replayed a second later in each state, then it
	// answers the first outcome byte for byte
	replay := func(step string) {
		t.Helper()
		w.pass(time.Second)
		got, err := w.suspend(step, a)
		require.NoError(t, err, step)
		require.Equal(t, want, sigMarshal(t, got), "%s: want the first outcome byte for byte", step)
		got.Waitpoints[1].Token = "changed again"
	}
	replay("replay_while_suspended")
	w.mustDeliver("deliver", contracts.DeliverSignalArgs{ExecutionID: a.ExecutionID,
		WaitpointID: tokens[0].WaitpointID, Token: tokens[0].Token, Name: "go"})
	replay("replay_while_resumed")
	w.mustClaim("claim", "worker-1", 60_000)
	replay("replay_while_claimed")
	r, err := w.e.RotateAll(ctx(), contracts.RotateArgs{NewKid: fxB.Kid, NewSecret: fxB.Secret, GraceMs: hourMs})
	w.record("rotate_to_kid_b", r, err)
	require.NoError(t, err, "rotate_to_kid_b")
	require.False(t, r.Failed(), "rotate_to_kid_b: a partition failed: %+v", r)
	replay("replay_after_rotation")

	// and nothing of the replays was written: the suspension is the first one
	o := w.mustObserve("observe", a.ExecutionID)
	require.Equal(t, first.SuspensionID, o.SuspensionID, "observe: the first suspension")
	require.Len(t, o.Signals, 1, "observe: the one signal")
	require.Equal(t, tokens[0].WaitpointID, o.Signals[0].WaitpointID, "observe: the signal of the first suspension")
	w.golden("signals_suspend_replay_every_state")
}
