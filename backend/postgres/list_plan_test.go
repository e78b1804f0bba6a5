package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
)

// Given 20,000 suspended executions and fresh statistics, then every page
// of list_suspended runs the generic plan of its prepared statement: with
// LIMIT $3, the server prices a generic plan as if a tenth of the rows
// were read, above any custom plan, and would otherwise plan each call
// anew (listSettingsSQL).
func TestListSuspendedKeepsItsGenericPlan(t *testing.T) {
	ctx := context.Background()
	plain := schemaURL(t)
	b := openURL(t, withParam(t, withParam(t, plain, postgres.ParamMigrate, postgres.MigrateAuto), "pool_max_conns", "1"))
	c := connect(t, plain)
	_, err := c.Exec(ctx, `INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count)
		SELECT 'x-' || i, 'suspended', gen_random_uuid(), 1700000000000 + i, 'any', 1 FROM generate_series(1, 20000) i`)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `ANALYZE ff_executions`)
	require.NoError(t, err)

	cursor := ""
	for range 10 {
		page, err := b.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 100, Cursor: cursor})
		require.NoError(t, err)
		require.Len(t, page.Executions, 100)
		require.NotNil(t, page.NextCursor)
		cursor = *page.NextCursor
	}
	generic, custom, err := postgres.PreparedPlans(ctx, b, postgres.ListSuspendedSQL)
	require.NoError(t, err)
	require.Equal(t, int64(0), custom, "custom plans")
	require.Equal(t, int64(10), generic, "generic plans")
}
