package postgres_test

import (
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// The budgets bound what one suspension costs its readers (docs/spec.md
// §8.3) on Postgres too: see drivertest.ReadsStayBounded. Not parallel, so
// that the process measures these readers alone.
func TestConcurrentReadsOfAFullSuspensionStayBounded(t *testing.T) {
	e, _ := newEngine(t)
	seed(t, e, "k1", 'a')
	drivertest.ReadsStayBounded(t, e, "full", time.Sleep)
}
