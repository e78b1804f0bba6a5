package sqlite

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// harness opens a fresh database file per test on the test's manual clock,
// for this package's own tests. (The shared driver scenarios run in
// TestConformance, conformance_test.go.)
var harness = drivertest.Harness{
	Open: func(t testing.TB, clock *conformance.Clock) driver.Backend {
		b, _ := openFile(t, WithClock(clock.Now))
		return b
	},
}

// startMs is where fixture clocks start.
const startMs = drivertest.StartMs
