package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// sigSuspendReplayKidScenarios cover suspend replays once tokens are no
// longer stored (docs/spec.md §3 "Where tokens are kept", §5.1): a replay
// signs the tokens again with the kid that signed them first, identical
// while that kid verifies, and suspend_replay_expired once it does not.
func sigSuspendReplayKidScenarios(t *testing.T, s sigSuite) {
	s.scenario(t, "ReplayAcrossTheKidsGrace", suspendReplayAcrossGrace)
}

// rotateTo rotates every partition to f with graceMs, recording the result
// as step, and requires no partition to fail.
func (w *sigWorld) rotateTo(step string, f fixture, graceMs int64) contracts.RotateAllResult {
	w.t.Helper()
	r, err := w.e.RotateAll(ctx(), contracts.RotateArgs{NewKid: f.Kid, NewSecret: f.Secret, GraceMs: graceMs})
	w.record(step, r, err)
	require.NoError(w.t, err, step)
	require.False(w.t, r.Failed(), "%s: a partition failed: %+v", step, r)
	return r
}

// suspendReplayAcrossGrace: a suspension recorded under an idempotency key
// with kid-a's tokens replays byte for byte after a rotation made kid-b
// current, while kid-a is in its grace (its replayed token still opens the
// waitpoint), on the manual clock also at expires_at_ms exactly. One
// millisecond past the grace the replay is state / suspend_replay_expired
// naming the kid and writes nothing, a replay with other arguments is still
// idempotency_mismatch, and once a later rotation collected kid-a the replay
// is still suspend_replay_expired. In real time the replay within the grace
// is conclusive only if it finishes within grace_ms of the rotation; on a
// slower backend the scenario retries with a four times longer grace.
func suspendReplayAcrossGrace(t *testing.T, suite sigSuite) {
	for grace := int64(500); ; grace *= 4 {
		if replayAcrossGraceAttempt(t, suite.open(t), grace) {
			return
		}
		require.LessOrEqual(t, grace, int64(32_000), "a rotation, a replay and a delivery take longer than grace_ms %d: cannot test the grace in real time", grace)
		t.Logf("a rotation, a replay and a delivery took longer than grace_ms %d; retrying with a longer grace", grace)
	}
}

func replayAcrossGraceAttempt(t *testing.T, w *sigWorld, grace int64) bool {
	a := suspendArgs("replay-kid-1", contracts.ConditionAll, "a", "b")
	a.IdempotencyKey = "attempt-1"
	first := w.mustSuspend("suspend", a)
	want := sigMarshal(t, first)
	checkWaitpointToken(t, "suspend", fxA, a.ExecutionID, first.Waitpoints[0])

	// given kid-b became current, kid-a verifying for grace ms
	start := time.Now()
	w.rotateTo("rotate_to_kid_b", fxB, grace)

	// when the suspend is replayed within the grace, then it is identical
	replay, err := w.suspend("replay_within_grace", a)
	require.NoError(t, err, "replay_within_grace")
	require.Equal(t, want, sigMarshal(t, replay), "replay_within_grace: want the first outcome byte for byte")
	// and its token still opens the waitpoint
	d, err := w.deliver("deliver_with_replayed_token", signalTo(replay, "a", "go", "r-1"))
	if !w.manual() && time.Since(start) >= time.Duration(grace)*oneMs {
		return false
	}
	require.NoError(t, err, "deliver_with_replayed_token")
	require.Equal(t, contracts.OutcomeAccepted, d.Outcome, "deliver_with_replayed_token: outcome")
	if w.manual() {
		w.aside(func() {
			w.pass(time.Duration(grace) * oneMs) // now == kid-a's expires_at_ms: still in grace
			at, err := w.suspend("replay_at_the_end_of_grace", a)
			require.NoError(t, err, "replay_at_the_end_of_grace")
			require.Equal(t, want, sigMarshal(t, at), "replay_at_the_end_of_grace: want the first outcome byte for byte")
		})
	}

	// when kid-a's grace has passed
	w.pass(timeoutWait(w, grace))

	// then the replay is refused, naming the kid, and writes nothing
	_, err = w.suspend("replay_past_grace", a)
	ce := sigWantErr(t, "replay_past_grace", err, contracts.ErrSuspendReplayExpired)
	require.Contains(t, ce.Detail, `"`+fxA.Kid+`"`, "replay_past_grace: the detail names the kid")
	require.False(t, ce.Retryable, "replay_past_grace: retryable")
	other := a
	other.Condition = contracts.ConditionAny
	_, err = w.suspend("replay_other_arguments_past_grace", other)
	sigWantErr(t, "replay_other_arguments_past_grace", err, contracts.ErrIdempotencyMismatch)
	o := w.mustObserve("observe", a.ExecutionID)
	require.Equal(t, first.SuspensionID, o.SuspensionID, "observe: still the first suspension")
	require.Len(t, o.Signals, 1, "observe: the one signal")
	l := w.mustList("list", contracts.ListSuspendedArgs{})
	require.Len(t, l.Executions, 1, "list: the one suspension")
	require.Equal(t, first.SuspendedAtMs, l.Executions[0].SuspendedAtMs, "list: a refused replay writes nothing")

	// and once a rotation collected kid-a, the replay is still refused
	r := w.rotateTo("rotate_to_kid_c_collects_kid_a", fxC, hourMs)
	require.Equal(t, 1, r.Entries[0].Outcome.GCCount, "rotate_to_kid_c_collects_kid_a: gc_count")
	_, err = w.suspend("replay_after_kid_a_was_collected", a)
	sigWantErr(t, "replay_after_kid_a_was_collected", err, contracts.ErrSuspendReplayExpired)
	w.golden("signals_suspend_replay_kid_expiry")
	return true
}
