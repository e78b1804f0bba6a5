package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
)

// Given a suspended execution whose history left 5,000 waitpoints of
// earlier suspensions and 2,000 expired unused pending waitpoints, and
// which holds one live unused pending waitpoint, among 50,000 other
// executions with two waitpoints each, describe_execution reads
// the waitpoints of its latest suspension and its live pending ones through
// their indexes, never the execution's whole history (the unique index on
// (execution_id, suspension_id, waitpoint_key) is read on both its leading
// columns), and shows exactly those, in order.
func TestDescribeReadsTheLatestSuspensionAndLivePendingOnly(t *testing.T) {
	// given
	e, plain := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	ctx := context.Background()
	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Tags: []string{"mail"}})
	require.NoError(t, err)
	c := connect(t, plain)
	_, err = c.Exec(ctx, `INSERT INTO ff_waitpoints (waitpoint_id, execution_id, suspension_id, waitpoint_key, created_at_ms)
		SELECT gen_random_uuid(), 'exec-1', s, 'k' || (j % 2), j
		FROM generate_series(1, 5000) j, LATERAL (SELECT md5('old-susp-' || (j / 2))::uuid AS s) o`)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `INSERT INTO ff_waitpoints (waitpoint_id, execution_id, waitpoint_key, created_at_ms, expires_at_ms)
		SELECT gen_random_uuid(), 'exec-1', 'e' || j, j, j FROM generate_series(1, 2000) j`)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `INSERT INTO ff_waitpoints (waitpoint_id, execution_id, waitpoint_key, created_at_ms, expires_at_ms)
		VALUES ('00000000-0000-4000-8000-00000000000a', 'exec-1', 'live', 1, 9000000000000)`)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `INSERT INTO ff_waitpoints (waitpoint_id, execution_id, suspension_id, waitpoint_key, created_at_ms)
		SELECT gen_random_uuid(), 'other-' || i, md5('other-susp-' || i)::uuid, 'k' || k, i FROM generate_series(1, 50000) i, generate_series(1, 2) k`)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `ANALYZE ff_waitpoints`)
	require.NoError(t, err)

	// when
	var plan strings.Builder
	rows, err := c.Query(ctx, `EXPLAIN `+postgres.DescribeSQL, "exec-1")
	require.NoError(t, err)
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan.WriteString(line + "\n")
	}
	require.NoError(t, rows.Err())
	info, err := e.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: "exec-1"})
	require.NoError(t, err)

	// then
	require.Contains(t, plan.String(), "Index Scan using ff_waitpoints_suspension", "plan:\n%s", plan.String())
	require.Contains(t, plan.String(), "Index Cond: ((execution_id = e.execution_id) AND (suspension_id = e.suspension_id))", "plan:\n%s", plan.String())
	require.Contains(t, plan.String(), "ff_waitpoints_pending", "plan:\n%s", plan.String())
	require.NotContains(t, plan.String(), "Seq Scan on ff_waitpoints", "plan:\n%s", plan.String())
	require.Equal(t, contracts.StateSuspended, info.State)
	require.Equal(t, s.SuspensionID, *info.SuspensionID)
	require.Equal(t, []string{"mail"}, info.Tags)
	var got [][3]string
	for _, w := range info.Waitpoints {
		got = append(got, [3]string{w.WaitpointID, w.WaitpointKey, w.Status})
	}
	require.Equal(t, [][3]string{
		{"00000000-0000-4000-8000-00000000000a", "live", contracts.WaitpointPending},
		{s.Waitpoints[0].WaitpointID, "a", contracts.WaitpointOpen},
	}, got)
}
