package memory

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// harness opens memory backends on the test's manual clock, for the shared
// driver scenarios and for this package's own tests.
var harness = drivertest.Harness{
	Open: func(_ testing.TB, clock *conformance.Clock) driver.Backend {
		return New(WithClock(clock.Now))
	},
	Leftover: leftover,
}

// TestSuspensions runs the scenarios shared by the in-repo drivers.
func TestSuspensions(t *testing.T) {
	drivertest.RunSuspensionTests(t, harness)
}

// leftover counts the map entries that still name executionID: its
// execution and its remembered waitpoints.
func leftover(_ testing.TB, eb driver.Backend, executionID string) int {
	b := eb.(*Backend)
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	if _, ok := b.execs[executionID]; ok {
		n++
	}
	for _, w := range b.wps {
		if w.exec.id == executionID {
			n++
		}
	}
	return n
}
