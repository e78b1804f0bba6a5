package memory

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// harness opens memory backends on the test's manual clock, for this
// package's own tests. (The shared driver scenarios run in TestConformance,
// conformance_test.go.)
var harness = drivertest.Harness{
	Open: func(_ testing.TB, clock *conformance.Clock) driver.Backend {
		return New(WithClock(clock.Now))
	},
}

// startMs is where fixture clocks start.
const startMs = drivertest.StartMs
