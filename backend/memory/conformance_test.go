package memory_test

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/driver"
)

// TestConformance runs the shared suite against the reference driver on the
// suite's manual clock; the secrets-at-rest scenarios read the store around
// the driver through memory.Raw, and the lifecycle scenarios count what a
// completed execution left through memory.Leftover (export_test.go).
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		Open: func(_ testing.TB, clock *conformance.Clock) driver.Backend {
			return memory.New(memory.WithClock(clock.Now))
		},
		ClockControl: true,
		Raw:          memory.Raw,
		Leftover:     memory.Leftover,
	})
}
