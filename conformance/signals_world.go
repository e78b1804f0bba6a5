package conformance

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// sigWorld is one suspension scenario: a fresh engine, its clock (nil when
// the harness has no clock control), the steps compared with the scenario's
// golden file, and the suite's recorder for the secret hygiene check. Every
// operation method records its envelope (or error envelope) under a step
// name, so golden files read as the history of the scenario.
type sigWorld struct {
	t     testing.TB
	h     Harness
	opts  []engine.Option // of every Engine the scenario opens (signal limits)
	e     *engine.Engine
	clock *Clock
	rec   *recorder
	steps steps
	// retries counts calls repeated after a retryable contention error
	// (concurrent scenarios only); logged when the scenario ends.
	retries atomic.Int64
}

// newSigWorld opens a fresh backend with the fixture keystore fxA seeded, so
// that every scenario starts from the state a deployment has after boot. The
// scenario's Engines are opened with opts.
func newSigWorld(t testing.TB, h Harness, rec *recorder, opts ...engine.Option) *sigWorld {
	t.Helper()
	w := newUnseededSigWorld(t, h, rec, opts...)
	_, err := w.e.Seed(ctx(), contracts.SeedArgs{Kid: fxA.Kid, Secret: fxA.Secret})
	require.NoError(t, err, "given a seeded keystore: seed %s", fxA.Kid)
	return w
}

// newUnseededSigWorld opens a fresh backend without a keystore.
func newUnseededSigWorld(t testing.TB, h Harness, rec *recorder, opts ...engine.Option) *sigWorld {
	t.Helper()
	e, clock := newEngine(t, h, opts...)
	w := &sigWorld{t: t, h: h, opts: opts, e: e, clock: clock, rec: rec}
	t.Cleanup(func() {
		if n := w.retries.Load(); n > 0 {
			t.Logf("repeated %d calls after retryable contention errors", n)
		}
	})
	return w
}

// handles returns the scenario's engine and, when the driver can share a
// store (Harness.Reopen), a second engine on the same store, so that
// concurrent scenarios race across handles (processes) as well.
func (w *sigWorld) handles() []*engine.Engine {
	if w.h.Reopen == nil {
		return []*engine.Engine{w.e}
	}
	return []*engine.Engine{w.e, w.reopen()}
}

// reopen returns a second engine on the scenario's store, closed when the
// test ends; it skips the test when the driver cannot share a store.
func (w *sigWorld) reopen() *engine.Engine {
	w.t.Helper()
	if w.h.Reopen == nil {
		w.t.Skip("needs Harness.Reopen (a store shared between handles)")
	}
	b := w.h.Reopen(w.t, w.e.Backend())
	require.NotNil(w.t, b, "conformance: Harness.Reopen returned a nil backend")
	e := engine.New(b, w.opts...)
	w.t.Cleanup(func() { _ = e.Close() })
	return e
}

// record appends one step (the error envelope when err is set, else v) and
// hands the envelope to the hygiene recorder.
func (w *sigWorld) record(step string, v any, err error) {
	w.steps.add(step, v, err)
	w.rec.call(v, err)
}

// note appends a step computed by the scenario rather than returned by a call
// (a count), so the golden file shows it too.
func (w *sigWorld) note(step string, v any) { w.steps.add(step, v, nil) }

// aside runs checks that are not part of the scenario's golden history: the
// calls f makes through w still reach the secret hygiene recorder, but the
// steps they record are dropped.
func (w *sigWorld) aside(f func()) {
	n := len(w.steps)
	f()
	w.steps = w.steps[:n]
}

// golden compares the recorded steps with testdata/<name>.json.
func (w *sigWorld) golden(name string) {
	w.t.Helper()
	checkGolden(w.t, name, []ksStep(w.steps))
}

func (w *sigWorld) suspend(step string, a contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	out, err := w.e.Suspend(ctx(), a)
	w.record(step, out, err)
	return out, err
}

func (w *sigWorld) deliver(step string, a contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	w.rec.forbidInErrors(macOf(a.Token))
	out, err := w.e.DeliverSignal(ctx(), a)
	w.record(step, out, err)
	return out, err
}

func (w *sigWorld) observe(step, executionID string) (contracts.ObserveSignalsResult, error) {
	return w.observePage(step, contracts.ObserveSignalsArgs{ExecutionID: executionID})
}

// observePage observes one page: a's Limit (0: the Engine's default) from
// a's Cursor (empty: the first signal).
func (w *sigWorld) observePage(step string, a contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	out, err := w.e.ObserveSignals(ctx(), a)
	w.record(step, out, err)
	return out, err
}

func (w *sigWorld) list(step string, a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	out, err := w.e.ListSuspended(ctx(), a)
	w.record(step, out, err)
	return out, err
}

func (w *sigWorld) claim(step, worker string, leaseMs int64) (contracts.ClaimOutcome, error) {
	out, err := w.e.ClaimResumedExecution(ctx(), contracts.ClaimArgs{WorkerID: worker, LeaseMs: leaseMs})
	w.record(step, out, err)
	return out, err
}

func (w *sigWorld) complete(step, executionID, leaseID string) (contracts.CompleteOutcome, error) {
	out, err := w.e.CompleteExecution(ctx(), contracts.CompleteArgs{ExecutionID: executionID, LeaseID: leaseID})
	w.record(step, out, err)
	return out, err
}

// mustSuspend suspends and fails the test on error.
func (w *sigWorld) mustSuspend(step string, a contracts.SuspendArgs) contracts.SuspendOutcome {
	w.t.Helper()
	out, err := w.suspend(step, a)
	require.NoError(w.t, err, "%s: suspend %s", step, a.ExecutionID)
	checkSuspended(w.t, step, a, out)
	return out
}

// mustDeliver delivers and fails the test unless the signal is accepted.
func (w *sigWorld) mustDeliver(step string, a contracts.DeliverSignalArgs) contracts.DeliverSignalOutcome {
	w.t.Helper()
	out, err := w.deliver(step, a)
	require.NoError(w.t, err, "%s: deliver to %s", step, a.ExecutionID)
	require.Equal(w.t, contracts.OutcomeAccepted, out.Outcome, "%s: want an accepted signal, got %+v", step, out)
	require.NoError(w.t, contracts.ValidateUUID("signal_id", out.SignalID), "%s: signal_id", step)
	return out
}

// mustClaim claims and fails the test unless an execution is claimed.
func (w *sigWorld) mustClaim(step, worker string, leaseMs int64) contracts.ClaimOutcome {
	w.t.Helper()
	out, err := w.claim(step, worker, leaseMs)
	require.NoError(w.t, err, "%s: claim", step)
	require.Equal(w.t, contracts.OutcomeClaimed, out.Outcome, "%s: outcome", step)
	require.NoError(w.t, contracts.ValidateUUID("lease_id", out.LeaseID), "%s: lease_id", step)
	return out
}

// mustObserve observes and fails the test on error.
func (w *sigWorld) mustObserve(step, executionID string) contracts.ObserveSignalsResult {
	w.t.Helper()
	out, err := w.observe(step, executionID)
	require.NoError(w.t, err, "%s: observe %s", step, executionID)
	return out
}

// mustList lists and fails the test on error.
func (w *sigWorld) mustList(step string, a contracts.ListSuspendedArgs) contracts.ListSuspendedResult {
	w.t.Helper()
	out, err := w.list(step, a)
	require.NoError(w.t, err, "%s: list_suspended", step)
	return out
}

// pass lets d of backend time pass: the manual clock moves, or the test
// sleeps (real-time backends; callers add their own margins to d).
func (w *sigWorld) pass(d time.Duration) {
	if w.clock != nil {
		w.clock.Advance(d)
		return
	}
	time.Sleep(d)
}

// manual reports whether the scenario runs on the manual clock.
func (w *sigWorld) manual() bool { return w.clock != nil }

// nowMs is the manual clock's time; it must only be called when manual().
func (w *sigWorld) nowMs() int64 { return w.clock.NowMs() }

// ---- argument builders ----

// suspendArgs opens one waitpoint per key with condition cond and no timeout.
func suspendArgs(executionID, cond string, keys ...string) contracts.SuspendArgs {
	wps := make([]contracts.WaitpointSpec, len(keys))
	for i, k := range keys {
		wps[i] = contracts.WaitpointSpec{Key: k}
	}
	return contracts.SuspendArgs{ExecutionID: executionID, Waitpoints: wps, Condition: cond}
}

// signalTo delivers a signal named name to the waitpoint of s with key
// wpKey, presenting that waitpoint's token.
func signalTo(s contracts.SuspendOutcome, wpKey, name, idempotencyKey string) contracts.DeliverSignalArgs {
	wp := waitpointOf(s, wpKey)
	return contracts.DeliverSignalArgs{
		ExecutionID: s.ExecutionID, WaitpointID: wp.WaitpointID, Token: wp.Token,
		Name: name, IdempotencyKey: idempotencyKey,
	}
}

// waitpointOf returns the waitpoint of s with key, or a zero value.
func waitpointOf(s contracts.SuspendOutcome, key string) contracts.WaitpointOutcome {
	for _, wp := range s.Waitpoints {
		if wp.WaitpointKey == key {
			return wp
		}
	}
	return contracts.WaitpointOutcome{}
}

func sigPtr[T any](v T) *T { return &v }

// ---- assertions ----

// sigWantErr fails unless err matches the sentinel with errors.Is and is a
// *contracts.Error (errors.As), returning it.
func sigWantErr(t testing.TB, step string, err error, sentinel contracts.Sentinel) *contracts.Error {
	t.Helper()
	require.ErrorIs(t, err, sentinel, step)
	var ce *contracts.Error
	require.ErrorAs(t, err, &ce, "%s: error %T is not a *contracts.Error", step, err)
	return ce
}

// sigWantInvalid fails unless err is validation / invalid_input whose detail
// names field ("field: rule").
func sigWantInvalid(t testing.TB, step string, err error, field string) {
	t.Helper()
	ce := sigWantErr(t, step, err, contracts.ErrInvalidInput)
	require.True(t, strings.HasPrefix(ce.Detail, field+":"), "%s: detail %q does not name field %q", step, ce.Detail, field)
}

// checkSuspended checks the shape of a suspend outcome against its
// arguments (docs/spec.md §5) beyond what the golden file fixes: fresh UUIDs,
// one per waitpoint, the condition (any when none was given), created_at_ms
// == suspended_at_ms, timeout_at_ms = suspended_at_ms + timeout_ms, and
// tokens signed by some kid.
func checkSuspended(t testing.TB, step string, a contracts.SuspendArgs, out contracts.SuspendOutcome) {
	t.Helper()
	require.Equal(t, contracts.OutcomeSuspended, out.Outcome, "%s: outcome", step)
	require.Equal(t, a.ExecutionID, out.ExecutionID, "%s: execution_id", step)
	cond := a.Condition
	if cond == "" {
		cond = contracts.ConditionAny
	}
	require.Equal(t, cond, out.Condition, "%s: condition", step)
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	require.Equal(t, tags, out.Tags, "%s: tags echoed", step)
	require.NoError(t, contracts.ValidateUUID("suspension_id", out.SuspensionID), "%s: suspension_id", step)
	if a.TimeoutMs == nil {
		require.Nil(t, out.TimeoutAtMs, "%s: timeout_at_ms without timeout_ms", step)
	} else {
		require.NotNil(t, out.TimeoutAtMs, "%s: timeout_at_ms missing with timeout_ms %d", step, *a.TimeoutMs)
		require.Equal(t, out.SuspendedAtMs+*a.TimeoutMs, *out.TimeoutAtMs, "%s: timeout_at_ms must be suspended_at_ms + timeout_ms", step)
	}
	require.Len(t, out.Waitpoints, len(a.Waitpoints), "%s: waitpoints", step)
	ids := map[string]bool{}
	for i, wp := range out.Waitpoints {
		if pending := a.Waitpoints[i].Pending; pending != "" {
			// A pending waitpoint keeps its id, key and created_at_ms (docs/spec.md §8.1).
			require.Equal(t, pending, wp.WaitpointID, "%s: waitpoint %d: the pending waitpoint's id, in argument order", step, i)
			require.LessOrEqual(t, wp.CreatedAtMs, out.SuspendedAtMs, "%s: waitpoint %d: created before the suspend", step, i)
		} else {
			require.Equal(t, a.Waitpoints[i].Key, wp.WaitpointKey, "%s: waitpoint %d: keys in argument order", step, i)
			require.Equal(t, out.SuspendedAtMs, wp.CreatedAtMs, "%s: waitpoint %d: created_at_ms == suspended_at_ms", step, i)
		}
		require.NoError(t, contracts.ValidateUUID("waitpoint_id", wp.WaitpointID), "%s: waitpoint %d", step, i)
		require.False(t, ids[wp.WaitpointID], "%s: waitpoint %d: waitpoint_id %s given twice", step, i, wp.WaitpointID)
		ids[wp.WaitpointID] = true
		_, err := contracts.ParseToken("token", wp.Token)
		require.NoError(t, err, "%s: waitpoint %s", step, wp.WaitpointKey)
	}
}

// checkWaitpointToken checks that a waitpoint's token is the one fixture f signs for
// it: the same secret, kid and message give the same token on every backend.
func checkWaitpointToken(t testing.TB, step string, f fixture, executionID string, wp contracts.WaitpointOutcome) {
	t.Helper()
	want := expectedWaitpointToken(f, executionID, wp)
	require.Equal(t, want, wp.Token, "%s: waitpoint %s: token is not the waitpoint token of docs/spec.md §3 under %s", step, wp.WaitpointKey, f.Kid)
}

// sigMarshal is json.Marshal that fails the test on error.
func sigMarshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err, "marshal %T", v)
	return string(b)
}

// errorBytes is the envelope bytes of err as the CLI would print them.
func errorBytes(t testing.TB, err error) string {
	t.Helper()
	return sigMarshal(t, errorEnvelope(err))
}
