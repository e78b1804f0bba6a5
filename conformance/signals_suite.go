package conformance

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// suspensionScenarios runs the suspension and signal scenarios
// (docs/spec.md §5), then checks that no envelope or error
// text they produced reveals a fixture secret or quotes a presented MAC.
//
// Each scenario opens its own backend with the fixture keystore seeded,
// runs in parallel with the other scenarios of its group, and compares its
// history of envelopes with testdata/signals_<scenario>.json. Scenarios that
// need exact time boundaries skip without Harness.ClockControl; the others
// wait on real time with margins.
//
// The clock-controlled group (the *_clock.go files, run through
// clockScenario) pins details on the manual clock: replays a second apart,
// several deliveries and suspensions within one millisecond, list pages at
// exact boundaries, and what the store keeps after complete
// (Harness.Leftover). Without Harness.ClockControl each of them skips,
// naming the missing capability.
func suspensionScenarios(t *testing.T, h Harness) {
	s := sigSuite{h: h, rec: newRecorder()}
	t.Run("Cycle", func(t *testing.T) { sigCycleScenarios(t, s) })
	t.Run("Suspend", func(t *testing.T) {
		sigSuspendScenarios(t, s)
		sigSuspendClockScenarios(t, s)
		sigSuspendReplayKidScenarios(t, s)
	})
	t.Run("Deliver", func(t *testing.T) { sigDeliverScenarios(t, s) })
	t.Run("Budget", func(t *testing.T) { sigBudgetScenarios(t, s) })
	t.Run("Observe", func(t *testing.T) {
		sigObserveClockScenarios(t, s)
		sigObservePagingScenarios(t, s)
	})
	t.Run("Lease", func(t *testing.T) { sigLeaseScenarios(t, s) })
	t.Run("List", func(t *testing.T) {
		sigListScenarios(t, s)
		sigListClockScenarios(t, s)
	})
	t.Run("Timeout", func(t *testing.T) { sigTimeoutScenarios(t, s) })
	t.Run("Lifecycle", func(t *testing.T) { sigLifecycleClockScenarios(t, s) })
	t.Run("Validation", func(t *testing.T) { sigValidationScenarios(t, s) })
	t.Run("V2", func(t *testing.T) { lifecycleScenarios(t, s) })
	t.Run("Worker", func(t *testing.T) { workerScenarios(t, s) })
	t.Run("Limits", func(t *testing.T) { s.scenario(t, "LargestValuesAccepted", limitsAccepted) })
	t.Run("SecretHygiene", func(t *testing.T) { s.rec.check(t) })
}

// sigSuite is what every suspension scenario needs: the harness and the
// recorder of the secret hygiene check.
type sigSuite struct {
	h   Harness
	rec *recorder
}

// open returns a fresh backend with the fixture keystore fxA seeded.
func (s sigSuite) open(t testing.TB) *sigWorld { return newSigWorld(t, s.h, s.rec) }

// openWithLimits is open with Engines whose deliveries are checked against
// the budgets l (engine.WithSignalLimits, docs/spec.md §8.3), so that a
// scenario reaches a lowered limit in a few calls.
func (s sigSuite) openWithLimits(t testing.TB, l contracts.SignalLimits) *sigWorld {
	return newSigWorld(t, s.h, s.rec, engine.WithSignalLimits(l))
}

// openUnseeded returns a fresh backend without a keystore.
func (s sigSuite) openUnseeded(t testing.TB) *sigWorld { return newUnseededSigWorld(t, s.h, s.rec) }

// clock reports whether the harness offers the manual clock.
func (s sigSuite) clock() bool { return s.h.ClockControl }

// scenario runs one scenario as a parallel subtest.
func (s sigSuite) scenario(t *testing.T, name string, run func(t *testing.T, s sigSuite)) {
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		run(t, s)
	})
}

// clockScenario runs one scenario of the clock-controlled group as a parallel
// subtest; without Harness.ClockControl it skips, saying what the scenario
// needs the manual clock for.
func (s sigSuite) clockScenario(t *testing.T, name, needs string, run func(t *testing.T, s sigSuite)) {
	t.Run(name, func(t *testing.T) {
		if !s.clock() {
			t.Skip("needs Harness.ClockControl (the manual clock): " + needs)
		}
		t.Parallel()
		run(t, s)
	})
}
