package conformance

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// RunKeystore runs the keystore scenarios (docs/spec.md §2–§4): seed,
// rotate_all, list_kids, sign and verify, input validation, and finally a
// check that nothing the scenarios produced reveals a secret.
func RunKeystore(t *testing.T, h Harness) {
	t.Helper()
	rec := newRecorder()
	t.Run("Keystore", func(t *testing.T) {
		runKeystoreScenarios(t, h, rec, "Seed", seedScenarios)
		runKeystoreScenarios(t, h, rec, "Rotate", rotateScenarios)
		runKeystoreScenarios(t, h, rec, "Revoke", revokeScenarios)
		runKeystoreScenarios(t, h, rec, "List", listScenarios)
		runKeystoreScenarios(t, h, rec, "SignVerify", signVerifyScenarios)
		runKeystoreScenarios(t, h, rec, "Validation", validationScenarios)
		runKeystoreScenarios(t, h, rec, "Shared", sharedScenarios)
	})
	// Runs after every parallel scenario above has finished.
	t.Run("KeystoreSecretHygiene", func(t *testing.T) { rec.check(t) })
}

// keystoreScenario is one behaviour, run on its own fresh backend.
type keystoreScenario struct {
	name string
	// clock: the scenario needs exact time boundaries (Harness.ClockControl).
	clock bool
	// realTime: the scenario is the real-time variant of a clock scenario,
	// run only without Harness.ClockControl.
	realTime bool
	run      func(t *testing.T, k *keystoreEnv)
}

// runKeystoreScenarios runs a group of scenarios as parallel subtests
// group/<name>, each with its own backend.
func runKeystoreScenarios(t *testing.T, h Harness, rec *recorder, group string, list []keystoreScenario) {
	t.Run(group, func(t *testing.T) {
		t.Parallel()
		for _, s := range list {
			t.Run(s.name, func(t *testing.T) {
				if s.clock && !h.ClockControl {
					t.Skip("needs Harness.ClockControl (exact time boundaries)")
				}
				if s.realTime && h.ClockControl {
					t.Skip("real-time variant; the manual-clock variant runs instead")
				}
				t.Parallel()
				s.run(t, openKeystore(t, h, rec))
			})
		}
	})
}

// keystoreEnv is one scenario's backend, seen through an Engine. Its methods
// call the Engine and record every envelope and error text for the secret
// hygiene check.
type keystoreEnv struct {
	t     *testing.T
	h     Harness
	e     *engine.Engine
	clock *Clock // nil without Harness.ClockControl
	rec   *recorder
	parts int
}

func openKeystore(t *testing.T, h Harness, rec *recorder) *keystoreEnv {
	t.Helper()
	e, clock := newEngine(t, h)
	k := &keystoreEnv{t: t, h: h, e: e, clock: clock, rec: rec, parts: e.Capabilities().Partitions}
	require.GreaterOrEqual(t, k.parts, 1, "Capabilities().Partitions")
	return k
}

// other opens a second, independent backend of the same driver.
func (k *keystoreEnv) other() *keystoreEnv {
	return openKeystore(k.t, k.h, k.rec)
}

func (k *keystoreEnv) seedArgs(a contracts.SeedArgs) (contracts.SeedOutcome, error) {
	out, err := k.e.Seed(ctx(), a)
	k.rec.call(out, err)
	return out, err
}

// seed seeds f's kid and secret.
func (k *keystoreEnv) seed(f fixture) (contracts.SeedOutcome, error) {
	return k.seedArgs(contracts.SeedArgs{Kid: f.Kid, Secret: f.Secret})
}

// mustSeed seeds f and requires outcome seeded.
func (k *keystoreEnv) mustSeed(f fixture) {
	k.t.Helper()
	out, err := k.seed(f)
	require.NoError(k.t, err, "given: seed %s", f.Kid)
	require.Equal(k.t, contracts.SeedSeeded, out.Outcome, "given: seed %s: outcome", f.Kid)
}

func (k *keystoreEnv) rotateArgs(a contracts.RotateArgs) (contracts.RotateAllResult, error) {
	out, err := k.e.RotateAll(ctx(), a)
	k.rec.call(out, err)
	return out, err
}

// rotate rotates every partition to f with graceMs.
func (k *keystoreEnv) rotate(f fixture, graceMs int64) (contracts.RotateAllResult, error) {
	return k.rotateArgs(contracts.RotateArgs{NewKid: f.Kid, NewSecret: f.Secret, GraceMs: graceMs})
}

// mustRotate rotates to f and requires every entry to be rotated; it
// returns the result.
func (k *keystoreEnv) mustRotate(f fixture, graceMs int64) contracts.RotateAllResult {
	k.t.Helper()
	r, err := k.rotate(f, graceMs)
	require.NoError(k.t, err, "given: rotate to %s", f.Kid)
	k.checkEntries(r)
	for _, e := range r.Entries {
		require.NotNil(k.t, e.Outcome, "given: rotate to %s: partition %d: got %s, want rotated", f.Kid, e.Partition, ksJSON(e))
		require.Equal(k.t, contracts.RotateRotated, e.Outcome.Outcome, "given: rotate to %s: partition %d: outcome", f.Kid, e.Partition)
	}
	return r
}

// checkEntries checks the per-partition shape of a rotate_all result: one
// entry per partition, in partition order, exactly one of outcome and error.
func (k *keystoreEnv) checkEntries(r contracts.RotateAllResult) {
	k.t.Helper()
	require.Len(k.t, r.Entries, k.parts, "rotate_all: want one entry per partition")
	for i, e := range r.Entries {
		assert.Equal(k.t, i, e.Partition, "rotate_all: entry %d: entries must be in partition order", i)
		assert.True(k.t, (e.Outcome == nil) != (e.Error == nil), "rotate_all: entry %d: exactly one of outcome and error must be set: %s", i, ksJSON(e))
	}
}

// list returns list_kids and checks its per-partition shape.
func (k *keystoreEnv) list() contracts.ListKidsResult {
	k.t.Helper()
	r, err := k.e.ListKids(ctx())
	k.rec.call(r, err)
	require.NoError(k.t, err, "list_kids")
	require.Len(k.t, r.Partitions, k.parts, "list_kids: want one entry per partition")
	for i, p := range r.Partitions {
		assert.Equal(k.t, i, p.Partition, "list_kids: entry %d: entries must be in partition order", i)
		assert.NotNil(k.t, p.Verifying, "list_kids: partition %d: verifying is nil, want [] (arrays are never null)", i)
	}
	return r
}

func (k *keystoreEnv) sign(scope string, msg []byte) (contracts.SignResult, error) {
	out, err := k.e.Sign(ctx(), contracts.SignArgs{Scope: scope, Message: msg})
	k.rec.call(out, err)
	return out, err
}

// mustSign signs and fails the test on error.
func (k *keystoreEnv) mustSign(scope string, msg []byte) contracts.SignResult {
	k.t.Helper()
	out, err := k.sign(scope, msg)
	require.NoError(k.t, err, "sign(%q)", scope)
	return out
}

func (k *keystoreEnv) verify(scope string, msg []byte, token string) (contracts.VerifyResult, error) {
	out, err := k.e.Verify(ctx(), contracts.VerifyArgs{Scope: scope, Message: msg, Token: token})
	k.rec.call(out, err)
	k.rec.forbidInErrors(macOf(token))
	return out, err
}

// mustVerify requires token to verify under kid.
func (k *keystoreEnv) mustVerify(scope string, msg []byte, token, kid string) contracts.VerifyResult {
	k.t.Helper()
	out, err := k.verify(scope, msg, token)
	require.NoError(k.t, err, "verify token of %s: want valid", kid)
	require.True(k.t, out.Valid, "verify token of %s: want valid", kid)
	require.Equal(k.t, kid, out.Kid, "verify: kid")
	return out
}

// pass lets d go by on the backend's clock: the manual clock moves, or the
// test sleeps d plus a margin.
func (k *keystoreEnv) pass(d time.Duration) {
	if k.clock != nil {
		k.clock.Advance(d)
		return
	}
	time.Sleep(d + 50*time.Millisecond)
}

// ksWantErr checks err against a contract sentinel with errors.Is and
// errors.As, and returns the *contracts.Error.
func ksWantErr(t *testing.T, what string, err error, sentinel contracts.Sentinel) *contracts.Error {
	t.Helper()
	require.ErrorIs(t, err, sentinel, what)
	var ce *contracts.Error
	require.ErrorAs(t, err, &ce, "%s: %T is not a *contracts.Error", what, err)
	assert.Equal(t, sentinel.Retryable(), ce.Retryable, "%s: retryable", what)
	assert.Equal(t, sentinel.Reason(), ce.Reason, "%s: reason", what)
	return ce
}

// wantEntryErr checks that every entry of a rotate_all result failed with sentinel.
func (k *keystoreEnv) wantEntryErr(what string, r contracts.RotateAllResult, err error, sentinel contracts.Sentinel) {
	k.t.Helper()
	require.NoError(k.t, err, "%s: the whole call failed; want per-partition errors %v", what, sentinel)
	k.checkEntries(r)
	require.True(k.t, r.Failed(), "%s: result %s reports no failure", what, ksJSON(r))
	for _, e := range r.Entries {
		require.Nil(k.t, e.Outcome, "%s: partition %d: want error %v and outcome null", what, e.Partition, sentinel)
		require.NotNil(k.t, e.Error, "%s: partition %d: no error, want %v", what, e.Partition, sentinel)
		ksWantErr(k.t, what, e.Error, sentinel)
	}
}

// wantOutcome checks that every entry carries the outcome want (compared as JSON).
func (k *keystoreEnv) wantOutcome(what string, r contracts.RotateAllResult, err error, want contracts.RotateOutcome) {
	k.t.Helper()
	require.NoError(k.t, err, what)
	k.checkEntries(r)
	for _, e := range r.Entries {
		require.Nil(k.t, e.Error, "%s: partition %d: want outcome %s", what, e.Partition, ksJSON(want))
		require.JSONEq(k.t, ksJSON(want), ksJSON(e.Outcome), "%s: partition %d: outcome", what, e.Partition)
	}
}

// sameKids requires two list_kids results to be identical.
func (k *keystoreEnv) sameKids(what string, before, after contracts.ListKidsResult) {
	k.t.Helper()
	require.JSONEq(k.t, ksJSON(before), ksJSON(after), "%s changed the keystore", what)
}

// ksJSON is the compact envelope of v (for messages and comparisons).
func ksJSON(v any) string {
	b, err := encodeEnvelope(v)
	if err != nil {
		return "<unencodable: " + err.Error() + ">"
	}
	return string(b[:len(b)-1])
}

// ksStep is one step of a scenario's golden file: what was done and the
// envelope it gave (the error envelope when it failed).
type ksStep struct {
	Step     string `json:"step"`
	Envelope any    `json:"envelope"`
}

// steps accumulates a scenario's golden steps.
type steps []ksStep

// add appends the envelope of (v, err) under name, encoded now: the golden
// file shows what the call answered even when the scenario later changes
// the value it was given (as the aliasing checks do).
func (s *steps) add(name string, v any, err error) {
	if err != nil {
		v = errorEnvelope(err)
	}
	if raw, encErr := encodeEnvelope(v); encErr == nil {
		v = json.RawMessage(bytes.TrimSuffix(raw, []byte("\n")))
	} // else goldenText reports the encoding error
	*s = append(*s, ksStep{name, v})
}

// withLongerGrace runs attempt with grace and, while the backend was too slow
// for a real-clock window of that length to be conclusive (attempt returns
// false), again on a fresh backend with a four times longer grace. what
// names the calls that must fit in the window, for the messages.
func withLongerGrace(t *testing.T, k *keystoreEnv, grace time.Duration, what string, attempt func(k *keystoreEnv, grace time.Duration) bool) {
	t.Helper()
	for ; ; grace *= 4 {
		if attempt(k, grace) {
			return
		}
		require.LessOrEqual(t, grace, 10*time.Second, "%s take longer than a %v grace: cannot test it in real time", what, grace)
		t.Logf("%s took longer than the %v grace; retrying with a longer grace", what, grace)
		k = k.other()
	}
}
