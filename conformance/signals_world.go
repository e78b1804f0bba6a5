package conformance

import (
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
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
	e     *engine.Engine
	clock *Clock
	rec   *recorder
	steps steps
	// retries counts calls repeated after a retryable contention error
	// (concurrent scenarios only); logged when the scenario ends.
	retries atomic.Int64
}

// newSigWorld opens a fresh backend with the fixture keystore fxA seeded, so
// that every scenario starts from the state a deployment has after boot.
func newSigWorld(t testing.TB, h Harness, rec *recorder) *sigWorld {
	t.Helper()
	w := newUnseededSigWorld(t, h, rec)
	if _, err := w.e.Seed(ctx(), contracts.SeedArgs{Kid: fxA.Kid, Secret: fxA.Secret}); err != nil {
		t.Fatalf("given a seeded keystore: seed %s: %v", fxA.Kid, err)
	}
	return w
}

// newUnseededSigWorld opens a fresh backend without a keystore.
func newUnseededSigWorld(t testing.TB, h Harness, rec *recorder) *sigWorld {
	t.Helper()
	e, clock := newEngine(t, h)
	w := &sigWorld{t: t, h: h, e: e, clock: clock, rec: rec}
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
	if b == nil {
		w.t.Fatal("conformance: Harness.Reopen returned a nil backend")
	}
	e := engine.New(b)
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
	out, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: executionID})
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
	if err != nil {
		w.t.Fatalf("%s: suspend %s: %v", step, a.ExecutionID, err)
	}
	checkSuspended(w.t, step, a, out)
	return out
}

// mustDeliver delivers and fails the test unless the signal is accepted.
func (w *sigWorld) mustDeliver(step string, a contracts.DeliverSignalArgs) contracts.DeliverSignalOutcome {
	w.t.Helper()
	out, err := w.deliver(step, a)
	if err != nil {
		w.t.Fatalf("%s: deliver to %s: %v", step, a.ExecutionID, err)
	}
	if out.Outcome != contracts.OutcomeAccepted || contracts.ValidateUUID("signal_id", out.SignalID) != nil {
		w.t.Fatalf("%s: want an accepted signal with a UUID signal_id, got %+v", step, out)
	}
	return out
}

// mustClaim claims and fails the test unless an execution is claimed.
func (w *sigWorld) mustClaim(step, worker string, leaseMs int64) contracts.ClaimOutcome {
	w.t.Helper()
	out, err := w.claim(step, worker, leaseMs)
	if err != nil {
		w.t.Fatalf("%s: claim: %v", step, err)
	}
	if out.Outcome != contracts.OutcomeClaimed {
		w.t.Fatalf("%s: want outcome claimed, got %q", step, out.Outcome)
	}
	if contracts.ValidateUUID("lease_id", out.LeaseID) != nil {
		w.t.Fatalf("%s: lease_id %q is not a UUID", step, out.LeaseID)
	}
	return out
}

// mustObserve observes and fails the test on error.
func (w *sigWorld) mustObserve(step, executionID string) contracts.ObserveSignalsResult {
	w.t.Helper()
	out, err := w.observe(step, executionID)
	if err != nil {
		w.t.Fatalf("%s: observe %s: %v", step, executionID, err)
	}
	return out
}

// mustList lists and fails the test on error.
func (w *sigWorld) mustList(step string, a contracts.ListSuspendedArgs) contracts.ListSuspendedResult {
	w.t.Helper()
	out, err := w.list(step, a)
	if err != nil {
		w.t.Fatalf("%s: list_suspended: %v", step, err)
	}
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
func sigWantErr(t testing.TB, step string, err error, sentinel *contracts.Error) *contracts.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: want %v, got success", step, sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: want %v, got %v", step, sentinel, err)
	}
	var ce *contracts.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: error %T is not a *contracts.Error", step, err)
	}
	return ce
}

// sigWantInvalid fails unless err is validation / invalid_input whose detail
// names field ("field: rule").
func sigWantInvalid(t testing.TB, step string, err error, field string) {
	t.Helper()
	ce := sigWantErr(t, step, err, contracts.ErrInvalidInput)
	if !strings.HasPrefix(ce.Detail, field+":") {
		t.Fatalf("%s: detail %q does not name field %q", step, ce.Detail, field)
	}
}

// checkSuspended checks the shape of a suspend outcome against its
// arguments (docs/spec.md §5) beyond what the golden file fixes: fresh UUIDs,
// created_at_ms == suspended_at_ms, timeout_at_ms = suspended_at_ms +
// timeout_ms, and tokens signed by some kid.
func checkSuspended(t testing.TB, step string, a contracts.SuspendArgs, out contracts.SuspendOutcome) {
	t.Helper()
	if out.Outcome != contracts.OutcomeSuspended || out.ExecutionID != a.ExecutionID {
		t.Fatalf("%s: want outcome suspended for %s, got %q for %s", step, a.ExecutionID, out.Outcome, out.ExecutionID)
	}
	if contracts.ValidateUUID("suspension_id", out.SuspensionID) != nil {
		t.Fatalf("%s: suspension_id %q is not a UUID", step, out.SuspensionID)
	}
	switch {
	case a.TimeoutMs == nil && out.TimeoutAtMs != nil:
		t.Fatalf("%s: timeout_at_ms %d without timeout_ms", step, *out.TimeoutAtMs)
	case a.TimeoutMs != nil && (out.TimeoutAtMs == nil || *out.TimeoutAtMs != out.SuspendedAtMs+*a.TimeoutMs):
		t.Fatalf("%s: timeout_at_ms must be suspended_at_ms %d + timeout_ms %d, got %v", step, out.SuspendedAtMs, *a.TimeoutMs, out.TimeoutAtMs)
	}
	if len(out.Waitpoints) != len(a.Waitpoints) {
		t.Fatalf("%s: want %d waitpoints, got %d", step, len(a.Waitpoints), len(out.Waitpoints))
	}
	for i, wp := range out.Waitpoints {
		if wp.WaitpointKey != a.Waitpoints[i].Key {
			t.Fatalf("%s: waitpoint %d: want key %q in argument order, got %q", step, i, a.Waitpoints[i].Key, wp.WaitpointKey)
		}
		if contracts.ValidateUUID("waitpoint_id", wp.WaitpointID) != nil {
			t.Fatalf("%s: waitpoint_id %q is not a UUID", step, wp.WaitpointID)
		}
		if wp.CreatedAtMs != out.SuspendedAtMs {
			t.Fatalf("%s: created_at_ms %d != suspended_at_ms %d", step, wp.CreatedAtMs, out.SuspendedAtMs)
		}
		if _, err := contracts.ParseToken("token", wp.Token); err != nil {
			t.Fatalf("%s: waitpoint %s: %v", step, wp.WaitpointKey, err)
		}
	}
}

// checkWaitpointToken checks that a waitpoint's token is the one fixture f signs for
// it: the same secret, kid and message give the same token on every backend.
func checkWaitpointToken(t testing.TB, step string, f fixture, executionID string, wp contracts.WaitpointOutcome) {
	t.Helper()
	want := driver.SignToken(f.Kid, f.Secret, driver.WaitpointMessage(executionID, wp.WaitpointID, wp.WaitpointKey, wp.CreatedAtMs))
	if wp.Token != want {
		t.Fatalf("%s: waitpoint %s: token is not HMAC(%s, waitpoint message)", step, wp.WaitpointKey, f.Kid)
	}
}

// sigMarshal is json.Marshal that fails the test on error.
func sigMarshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return string(b)
}

// errorBytes is the envelope bytes of err as the CLI would print them.
func errorBytes(t testing.TB, err error) string {
	t.Helper()
	return sigMarshal(t, errorEnvelope(err))
}
