package conformance_test

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/driver"
)

// A driver runs the whole suite from one test function in its own module.
// This one runs it on the memory backend; put yours in Open. With
// ClockControl the backend reads the suite's manual clock, so exact time
// boundaries are tested; Reopen, Raw and Leftover are optional.
func Example() {
	TestConformance := func(t *testing.T) {
		conformance.Run(t, conformance.Harness{
			Open: func(t testing.TB, clock *conformance.Clock) driver.Backend {
				return memory.New(memory.WithClock(clock.Now))
			},
			ClockControl: true,
		})
	}
	_ = TestConformance // a _test.go file declares it as func TestConformance(t *testing.T)
}
