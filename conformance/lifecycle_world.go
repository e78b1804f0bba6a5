package conformance

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// lifecycleScenarios run the scenarios of version 2 of the waitpoint
// lifecycle (docs/spec.md §8.1, §8.2, §8.4–§8.6): pending waitpoints,
// quorum conditions, lease heartbeat and release, cancel, introspection and
// tags. A driver that does not implement driver.Lifecycle skips them,
// naming the interface.
func lifecycleScenarios(t *testing.T, s sigSuite) {
	t.Run("Pending", func(t *testing.T) { pendingScenarios(t, s) })
	t.Run("Quorum", func(t *testing.T) { quorumScenarios(t, s) })
	t.Run("Leases", func(t *testing.T) { leaseV2Scenarios(t, s) })
	t.Run("Cancel", func(t *testing.T) { cancelScenarios(t, s) })
	t.Run("Introspection", func(t *testing.T) { introspectionScenarios(t, s) })
	t.Run("Inspect", func(t *testing.T) { inspectScenarios(t, s) })
}

// lifecycleRaceScenarios race the version 2 operations against each other
// and against deliveries and claims, across handles where the driver
// shares a store.
func lifecycleRaceScenarios(t *testing.T, h Harness) {
	s := sigSuite{h: h, rec: newRecorder()}
	s.v2scenario(t, "QuorumResumesOnce", raceQuorum)
	s.v2scenario(t, "CancelOrDeliver", raceCancelDeliver)
	s.v2scenario(t, "ExtendOrReclaim", raceExtendReclaim)
	s.v2scenario(t, "ReleaseOrReclaim", raceReleaseReclaim)
	s.v2scenario(t, "PendingSuspendOrDeliver", racePendingSuspendDeliver)
}

// v2scenario is scenario for a version 2 scenario: it skips when the
// driver does not implement driver.Lifecycle.
func (s sigSuite) v2scenario(t *testing.T, name string, run func(t *testing.T, s sigSuite)) {
	s.scenario(t, name, func(t *testing.T, s sigSuite) {
		s.needLifecycle(t)
		run(t, s)
	})
}

// v2clockScenario is clockScenario for a version 2 scenario.
func (s sigSuite) v2clockScenario(t *testing.T, name, needs string, run func(t *testing.T, s sigSuite)) {
	s.clockScenario(t, name, needs, func(t *testing.T, s sigSuite) {
		s.needLifecycle(t)
		run(t, s)
	})
}

// needLifecycle skips t when the driver does not implement driver.Lifecycle.
func (s sigSuite) needLifecycle(t *testing.T) {
	t.Helper()
	e, _ := newEngine(t, s.h)
	if _, ok := e.Backend().(driver.Lifecycle); !ok {
		t.Skip("needs driver.Lifecycle (version 2 of the waitpoint lifecycle, docs/spec.md §8)")
	}
}

// ---- operations ----

func (w *sigWorld) create(step string, a contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	out, err := w.e.CreateWaitpoint(ctx(), a)
	w.record(step, out, err)
	return out, err
}

// mustCreate creates a pending waitpoint and checks its outcome against
// the arguments: a fresh id, expires_at_ms = created_at_ms + expires_in_ms,
// the tags echoed, and the token docs/spec.md §3 gives under the fixture kid.
func (w *sigWorld) mustCreate(step string, a contracts.CreateWaitpointArgs) contracts.CreateWaitpointOutcome {
	w.t.Helper()
	out, err := w.create(step, a)
	require.NoError(w.t, err, "%s: create_waitpoint %s", step, a.ExecutionID)
	require.Equal(w.t, contracts.OutcomeCreated, out.Outcome, "%s: outcome", step)
	require.Equal(w.t, a.ExecutionID, out.ExecutionID, "%s: execution_id", step)
	require.Equal(w.t, a.Key, out.WaitpointKey, "%s: waitpoint_key", step)
	require.NoError(w.t, contracts.ValidateUUID("waitpoint_id", out.WaitpointID), "%s: waitpoint_id", step)
	require.Equal(w.t, out.CreatedAtMs+a.ExpiresInMs, out.ExpiresAtMs, "%s: expires_at_ms = created_at_ms + expires_in_ms", step)
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	require.Equal(w.t, tags, out.Tags, "%s: tags echoed", step)
	checkWaitpointToken(w.t, step, fxA, a.ExecutionID, pendingOutcome(out))
	return out
}

func (w *sigWorld) get(step, executionID, waitpointID string) (contracts.WaitpointInfo, error) {
	out, err := w.e.GetWaitpoint(ctx(), contracts.GetWaitpointArgs{ExecutionID: executionID, WaitpointID: waitpointID})
	w.record(step, out, err)
	return out, err
}

// mustGet describes a waitpoint, failing the test on error or when its
// status is not status.
func (w *sigWorld) mustGet(step, executionID, waitpointID, status string) contracts.WaitpointInfo {
	w.t.Helper()
	out, err := w.get(step, executionID, waitpointID)
	require.NoError(w.t, err, "%s: get_waitpoint", step)
	require.Equal(w.t, status, out.Status, "%s: status", step)
	require.Equal(w.t, waitpointID, out.WaitpointID, "%s: waitpoint_id", step)
	return out
}

func (w *sigWorld) extend(step, executionID, leaseID string, leaseMs int64) (contracts.ExtendLeaseOutcome, error) {
	out, err := w.e.ExtendLease(ctx(), contracts.ExtendLeaseArgs{ExecutionID: executionID, LeaseID: leaseID, LeaseMs: leaseMs})
	w.record(step, out, err)
	return out, err
}

func (w *sigWorld) release(step, executionID, leaseID string) (contracts.ReleaseOutcome, error) {
	out, err := w.e.ReleaseExecution(ctx(), contracts.ReleaseArgs{ExecutionID: executionID, LeaseID: leaseID})
	w.record(step, out, err)
	return out, err
}

func (w *sigWorld) cancel(step, executionID string) (contracts.CancelOutcome, error) {
	out, err := w.e.CancelSuspension(ctx(), contracts.CancelArgs{ExecutionID: executionID})
	w.record(step, out, err)
	return out, err
}

// ---- argument builders ----

// pendingArgs creates a pending waitpoint key for executionID that expires
// after expiresInMs.
func pendingArgs(executionID, key string, expiresInMs int64, tags ...string) contracts.CreateWaitpointArgs {
	return contracts.CreateWaitpointArgs{ExecutionID: executionID, Key: key, ExpiresInMs: expiresInMs, Tags: tags}
}

// signalPending delivers a signal to a pending waitpoint with its token.
func signalPending(p contracts.CreateWaitpointOutcome, name, idempotencyKey string) contracts.DeliverSignalArgs {
	return contracts.DeliverSignalArgs{
		ExecutionID: p.ExecutionID, WaitpointID: p.WaitpointID, Token: p.Token, Name: name, IdempotencyKey: idempotencyKey,
	}
}

// pendingOutcome is p as the waitpoint a suspend outcome lists for it.
func pendingOutcome(p contracts.CreateWaitpointOutcome) contracts.WaitpointOutcome {
	return contracts.WaitpointOutcome{WaitpointID: p.WaitpointID, WaitpointKey: p.WaitpointKey, CreatedAtMs: p.CreatedAtMs, Token: p.Token}
}

// usingPending builds suspend arguments for executionID with condition cond
// over items: each either a pending waitpoint (its outcome) or a new key
// (a string).
func usingPending(executionID, cond string, items ...any) contracts.SuspendArgs {
	a := contracts.SuspendArgs{ExecutionID: executionID, Condition: cond}
	for _, it := range items {
		switch x := it.(type) {
		case contracts.CreateWaitpointOutcome:
			a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Pending: x.WaitpointID})
		case string:
			a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: x})
		}
	}
	return a
}

// ---- assertions ----

// checkFingerprint checks that get_waitpoint shows the fingerprint of the
// token the caller was handed (docs/spec.md §8.6), and never the token.
func checkFingerprint(t testing.TB, step string, info contracts.WaitpointInfo, token string) {
	t.Helper()
	require.NotNil(t, info.TokenFingerprint, "%s: token_fingerprint", step)
	require.Equal(t, driver.TokenFingerprint(token), *info.TokenFingerprint, "%s: token_fingerprint is not TokenFingerprint of the waitpoint's token", step)
	require.NotContains(t, sigMarshal(t, info), macOf(token), "%s: get_waitpoint shows the token's MAC", step)
}

// checkSatisfied checks an already_satisfied outcome: the execution, a
// fresh suspension id, and the signals with the given signal ids in
// delivery order.
func checkSatisfied(t testing.TB, step string, a contracts.SuspendArgs, out contracts.SuspendOutcome, signalIDs ...string) {
	t.Helper()
	require.Equal(t, contracts.OutcomeAlreadySatisfied, out.Outcome, "%s: outcome", step)
	require.Equal(t, a.ExecutionID, out.ExecutionID, "%s: execution_id", step)
	require.NoError(t, contracts.ValidateUUID("suspension_id", out.SuspensionID), "%s: suspension_id", step)
	got := make([]string, len(out.Signals))
	for i, s := range out.Signals {
		got[i] = s.SignalID
	}
	require.Equal(t, signalIDs, got, "%s: the signals of the pending waitpoints, in delivery order", step)
}
