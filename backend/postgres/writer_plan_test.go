package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
)

// An execution writer's statements use the indexes once the tables grew,
// even on a connection that ran them while the tables were empty and with
// no ANALYZE since: a generic plan cached while ff_executions was empty
// would scan it whole for each row lock, as it grows, until its statistics
// change. The test runs cycles on one connection of an analyzed empty
// store (more than the five executions after which a generic plan may be
// cached), adds 20,000 executions behind the statistics' back, runs more
// cycles on the same connection, and counts the rows the server read by
// sequential scans of ff_executions: without enable_seqscan = off in
// execSettingsSQL each row lock reads all 20,000, and without it in
// claimSettingsSQL each claim's UPDATE does.
func TestWritersUseIndexesAsTheTablesGrow(t *testing.T) {
	ctx := context.Background()
	plain := schemaURL(t)
	c := connect(t, plain)
	var schema string
	require.NoError(t, c.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema))

	pool, err := pgxpool.New(ctx, withParam(t, plain, "pool_max_conns", "1"))
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			pool.Close()
		}
	})
	b, err := postgres.New(ctx, pool, postgres.WithMigrate())
	require.NoError(t, err)
	_, err = b.Seed(ctx, contracts.SeedArgs{Kid: "kid-a", Secret: secret(0x01)})
	require.NoError(t, err)
	_, err = c.Exec(ctx, `ANALYZE ff_executions, ff_waitpoints, ff_signals`)
	require.NoError(t, err)

	cycle := func(id string) {
		t.Helper()
		s, err := b.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Condition: contracts.ConditionAny})
		require.NoError(t, err)
		w := s.Waitpoints[0]
		_, err = b.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
		require.NoError(t, err)
		cl, err := b.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 30_000})
		require.NoError(t, err)
		require.Equal(t, id, cl.ExecutionID)
		_, err = b.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: id, LeaseID: cl.LeaseID})
		require.NoError(t, err)
	}
	const warm, probes, grown = 12, 10, 20_000
	for i := range warm {
		cycle(fmt.Sprintf("warm-%d", i))
	}
	_, err = c.Exec(ctx, `INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count)
		SELECT 'grown-' || i, 'suspended', gen_random_uuid(), $1::bigint + i, 'any', 1 FROM generate_series(1, $2::int) i`,
		time.Now().UnixMilli(), grown)
	require.NoError(t, err)
	for i := range probes {
		cycle(fmt.Sprintf("probe-%d", i))
	}

	// The server counts a session's reads when it ends: close the pool,
	// then wait until its inserts are counted, which come with its reads.
	pool.Close()
	closed = true
	var inserted, seqRead int64
	require.Eventually(t, func() bool {
		_, err := c.Exec(ctx, `SELECT pg_stat_clear_snapshot()`)
		require.NoError(t, err)
		require.NoError(t, c.QueryRow(ctx, `SELECT n_tup_ins, seq_tup_read FROM pg_stat_user_tables
			WHERE schemaname = $1 AND relname = 'ff_executions'`, schema).Scan(&inserted, &seqRead))
		return inserted >= grown+warm+probes
	}, 30*time.Second, 50*time.Millisecond, "the server never counted the sessions' inserts")
	require.Less(t, seqRead, int64(grown),
		"the writers read %d rows of ff_executions by sequential scans: a plan cached on the empty table scans it whole", seqRead)
}
