package valkey

import (
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// The budgets bound what one suspension costs its readers (docs/spec.md
// §8.3): see drivertest.ReadsStayBounded. The servers run one after the
// other, and no other test runs meanwhile (the test is not parallel), so
// that the process measures these readers alone.
func TestConcurrentReadsOfAFullSuspensionStayBounded(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			_, b := seededEngine(t, s, 16, nil)
			drivertest.ReadsStayBounded(t, engine.New(b), "full", time.Sleep)
		})
	}
}
