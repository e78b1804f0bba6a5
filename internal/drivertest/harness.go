package drivertest

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Harness tells the scenarios how to make and inspect backends of the driver
// under test.
type Harness struct {
	// Open returns a fresh, isolated, empty backend for one test that reads
	// its time from clock. The fixture closes it when the test ends, so Close
	// must also accept a second call from a test that closed it itself.
	Open func(t testing.TB, clock *conformance.Clock) driver.Backend

	// Leftover counts what b still stores of executionID (rows, map entries,
	// keys): the scenario that completes an execution requires zero. b is a
	// backend Open returned, so the driver may type-assert it and look
	// inside.
	Leftover func(t testing.TB, b driver.Backend, executionID string) int

	// Slow reports that the driver writes slowly enough (a file, a server)
	// that the long scenarios, such as filling a suspension with
	// contracts.SignalLimit signals, are skipped under go test -short.
	Slow bool
}

// scenario is one former top-level test of the drivers (TestX), run as a
// subtest named X by the function testX.
type scenario struct {
	name string
	run  func(t *testing.T, h Harness)
}

// suspensionScenarios are the scenarios RunSuspensionTests runs, in order.
var suspensionScenarios = []scenario{
	{"SuspendOutcome", testSuspendOutcome},
	{"SuspendSignsWithTheCurrentKid", testSuspendSignsWithTheCurrentKid},
	{"SuspendChecks", testSuspendChecks},
	{"SuspendAfterClaimDropsLease", testSuspendAfterClaimDropsLease},
	{"SuspendWithoutKeystore", testSuspendWithoutKeystore},
	{"SuspendIdempotency", testSuspendIdempotency},
	{"DeliverAnyResumesOnFirstSignal", testDeliverAnyResumesOnFirstSignal},
	{"DeliverAllCountsWaitpointsNotSignals", testDeliverAllCountsWaitpointsNotSignals},
	{"DeliverTokenChecks", testDeliverTokenChecks},
	{"DeliverIdempotency", testDeliverIdempotency},
	{"DeliverTimeoutBoundary", testDeliverTimeoutBoundary},
	{"DeliverSignalLimit", testDeliverSignalLimit},
	{"DeliverConcurrentSameKey", testDeliverConcurrentSameKey},
	{"ObserveSignals", testObserveSignals},
	{"ListSuspended", testListSuspended},
	{"Claim", testClaim},
	{"Complete", testComplete},
}

// RunSuspensionTests runs every suspension scenario against the driver h
// opens, each as a subtest named after the scenario. Open and Leftover are
// required.
func RunSuspensionTests(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil || h.Leftover == nil {
		t.Fatal("drivertest.Harness: Open and Leftover are required")
	}
	for _, sc := range suspensionScenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, h) })
	}
}

// skipIfSlow skips a long scenario under -short for a slow driver.
func (h Harness) skipIfSlow(t *testing.T, what string) {
	t.Helper()
	if h.Slow && testing.Short() {
		t.Skip(what + "; skipped with -short")
	}
}
