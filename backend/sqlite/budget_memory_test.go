package sqlite

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// The budgets bound what one suspension costs its readers (docs/spec.md
// §8.3): see drivertest.ReadsStayBounded.
func TestConcurrentReadsOfAFullSuspensionStayBounded(t *testing.T) {
	clock := conformance.NewClock(startMs)
	b, _ := openFile(t, WithClock(clock.Now))
	// Commits skip fsync while the test fills the file (what it measures
	// does not depend on durability); the writer is a single connection.
	_, err := b.db.Exec(`PRAGMA synchronous = OFF`)
	require.NoError(t, err)
	e := eng(b)
	drivertest.Try(e.Seed(context.Background(), contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')})).Must(t)
	drivertest.ReadsStayBounded(t, e, "full", clock.Advance)
}
