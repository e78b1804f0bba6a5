package sqlite

import (
	"testing"

	"github.com/flowfabric/flowfabric-go/driver"
)

// RowsLeft counts the rows executionID left in every table that names it,
// for conformance.Harness.Leftover; b must be a *Backend.
func RowsLeft(t testing.TB, eb driver.Backend, executionID string) int {
	t.Helper()
	b, ok := eb.(*Backend)
	if !ok {
		t.Fatalf("sqlite.RowsLeft: %T is not a *sqlite.Backend", eb)
	}
	n := 0
	for _, table := range []string{"executions", "waitpoints", "signals", "suspend_idempotency", "suspension_tags"} {
		var c int
		if err := b.db.QueryRow(`SELECT count(*) FROM `+table+` WHERE execution_id = ?`, executionID).Scan(&c); err != nil {
			t.Fatalf("sqlite.RowsLeft: count %s: %v", table, err)
		}
		n += c
	}
	return n
}
