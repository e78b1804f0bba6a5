package sqlite

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// harness opens a fresh database file per test on the test's manual clock,
// for the shared driver scenarios and for this package's own tests.
var harness = drivertest.Harness{
	Open: func(t testing.TB, clock *conformance.Clock) driver.Backend {
		b, _ := openFile(t, WithClock(clock.Now))
		return b
	},
	Leftover: rowsLeft,
	Slow:     true, // every write is a WAL commit
}

// TestSuspensions runs the scenarios shared by the in-repo drivers.
func TestSuspensions(t *testing.T) {
	drivertest.RunSuspensionTests(t, harness)
}

// rowsLeft counts the rows executionID left in every table that names it.
func rowsLeft(t testing.TB, eb driver.Backend, executionID string) int {
	t.Helper()
	b := eb.(*Backend)
	n := 0
	for _, table := range []string{"executions", "waitpoints", "signals", "suspend_idempotency"} {
		var c int
		if err := b.db.QueryRow(`SELECT count(*) FROM `+table+` WHERE execution_id = ?`, executionID).Scan(&c); err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}
