package sqlite

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// count_executions reads indexes only: the per-state totals from
// executions_by_state, the timed-out suspensions and expired leases from
// the partial indexes that hold exactly them (a range per value of
// overdue); no row of the table is read and nothing is sorted.
func TestCountExecutionsReadsIndexesOnly(t *testing.T) {
	b, _ := openFile(t)
	plan := queryPlan(t, b, countExecutions, int64(5))
	var searches []string
	for _, step := range plan {
		require.NotContains(t, step, "SCAN executions", "plan: %q", plan)
		require.NotContains(t, step, "TEMP B-TREE", "plan: %q", plan)
		if strings.HasPrefix(step, "SEARCH executions") {
			searches = append(searches, step)
		}
	}
	require.Equal(t, []string{
		"SEARCH executions USING COVERING INDEX executions_by_state (state=?)",
		"SEARCH executions USING COVERING INDEX executions_by_timeout (state=? AND overdue=? AND timeout_at_ms<?)",
		"SEARCH executions USING COVERING INDEX executions_by_state (state=?)",
		"SEARCH executions USING COVERING INDEX executions_by_state (state=?)",
		"SEARCH executions USING COVERING INDEX executions_by_lease (state=? AND overdue=? AND lease_expires_at_ms<?)",
	}, searches)
}

// describe_execution reads the latest suspension's waitpoints and the
// live pending ones as two index ranges, never the waitpoints of earlier
// suspensions.
func TestDescribedWaitpointsAreRanges(t *testing.T) {
	b, _ := openFile(t)
	plan := strings.Join(queryPlan(t, b, selectDescribedWaitpoints, "s", "e", int64(5)), "\n")
	require.Contains(t, plan, "SEARCH waitpoints USING INDEX sqlite_autoindex_waitpoints_2 (suspension_id=?)")
	require.Contains(t, plan, "SEARCH waitpoints USING INDEX waitpoints_pending (execution_id=? AND expires_at_ms>?)")
	require.NotContains(t, plan, "SCAN waitpoints")
}

// Given executions in every state, with timeouts and lease expiries on
// both sides of now and at now (every combination of the three moduli
// below, 10 times over), when count_executions runs, then each counts in
// the field driver.CountBucket puts it in, and state none nowhere.
func TestCountExecutionsAgreesWithTheKit(t *testing.T) {
	const nowMs, n = int64(1_000_000), 1_400
	b, _ := openFile(t, WithClock(func() time.Time { return time.UnixMilli(nowMs) }))
	ctx := context.Background()
	// x % 4 picks the state (none, suspended, resumed, claimed); x % 7 - 3
	// puts the timeout or lease expiry within 3 ms of now, and x % 5 == 0
	// leaves a suspension without a timeout.
	_, err := b.db.ExecContext(ctx, `WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE x < ?1 - 1)
INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms,
    reason, lease_id, lease_expires_at_ms)
SELECT 'exec-' || x, CASE x % 4 WHEN 0 THEN 'none' WHEN 1 THEN 'suspended' WHEN 2 THEN 'resumed' ELSE 'claimed' END,
    's-' || x, 'any', x, CASE WHEN x % 5 = 0 THEN NULL ELSE ?2 + x % 7 - 3 END,
    CASE x % 4 WHEN 3 THEN 'signal' END, CASE x % 4 WHEN 3 THEN 'l-' || x END,
    CASE x % 4 WHEN 3 THEN ?2 + x % 7 - 3 END
FROM i`, n, nowMs)
	require.NoError(t, err)

	got, err := eng(b).CountExecutions(ctx, contracts.CountExecutionsArgs{})
	require.NoError(t, err)

	var want contracts.ExecutionCounts
	rows, err := b.db.QueryContext(ctx, selectAllExecs)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		e, err := scanExec(rows)
		require.NoError(t, err)
		driver.CountBucket(&want, *e.decision(), nowMs)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, want, got)
	require.Equal(t, int64(n*3/4), got.Suspended+got.TimedOut+got.Resumed+got.Claimed+got.LeaseExpired, "state none counts nowhere")
	require.NotZero(t, got.TimedOut)
	require.NotZero(t, got.LeaseExpired)
}

const selectAllExecs = `SELECT ` + execColumns + ` FROM executions`

// Given an execution whose suspension answered already_satisfied, when it
// is described, then it is in state none with that suspension, its closed
// waitpoints and its tags.
func TestDescribeAlreadySatisfied(t *testing.T) {
	b, _ := openFile(t)
	ctx := context.Background()
	e := eng(b)
	_, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: newSecret(t)})
	require.NoError(t, err)
	p, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "x", Key: "early", ExpiresInMs: 60_000})
	require.NoError(t, err)
	_, err = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{
		ExecutionID: "x", WaitpointID: p.WaitpointID, Token: p.Token, Name: "go",
	})
	require.NoError(t, err)
	s, err := e.Suspend(ctx, contracts.SuspendArgs{
		ExecutionID: "x", Condition: contracts.ConditionAny, Tags: []string{"t"},
		Waitpoints: []contracts.WaitpointSpec{{Pending: p.WaitpointID}},
	})
	require.NoError(t, err)
	require.Equal(t, contracts.OutcomeAlreadySatisfied, s.Outcome)

	info, err := e.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: "x"})
	require.NoError(t, err)
	require.Equal(t, contracts.StateNone, info.State)
	require.False(t, info.Claimable)
	require.Equal(t, s.SuspensionID, *info.SuspensionID)
	require.Equal(t, []string{"t"}, info.Tags)
	require.Len(t, info.Waitpoints, 1)
	require.Equal(t, contracts.WaitpointClosed, info.Waitpoints[0].Status)
	require.Equal(t, 1, info.Waitpoints[0].Signals)
}

// Given an execution that suspended, was resumed and claimed, made two
// pending waitpoints under its lease (one of which expired) and suspended
// again, when it is described, then it shows the new suspension's waitpoint
// and the live pending one only: neither the earlier suspension's
// waitpoint, which the table still holds, nor the expired pending one.
func TestDescribeShowsTheLatestSuspensionOnly(t *testing.T) {
	var nowMs atomic.Int64
	nowMs.Store(startMs)
	b, _ := openFile(t, WithClock(func() time.Time { return time.UnixMilli(nowMs.Load()) }))
	ctx := context.Background()
	e := eng(b)
	_, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: newSecret(t)})
	require.NoError(t, err)
	first, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "x", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	require.NoError(t, err)
	w := first.Waitpoints[0]
	_, err = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "x", WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
	require.NoError(t, err)
	c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
	require.NoError(t, err)
	live, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "x", Key: "live", ExpiresInMs: 60_000, LeaseID: &c.LeaseID})
	require.NoError(t, err)
	_, err = e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "x", Key: "short", ExpiresInMs: 1, LeaseID: &c.LeaseID})
	require.NoError(t, err)
	nowMs.Add(10)
	second, err := e.Suspend(ctx, contracts.SuspendArgs{
		ExecutionID: "x", Waitpoints: []contracts.WaitpointSpec{{Key: "b"}}, LeaseID: &c.LeaseID, Tags: []string{"t"},
	})
	require.NoError(t, err)

	info, err := e.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: "x"})
	require.NoError(t, err)
	require.Equal(t, contracts.StateSuspended, info.State)
	require.Equal(t, second.SuspensionID, *info.SuspensionID)
	require.Equal(t, []string{"t"}, info.Tags)
	require.Nil(t, info.LeaseExpiresAtMs)
	var got [][3]string
	for _, wp := range info.Waitpoints {
		got = append(got, [3]string{wp.WaitpointID, wp.WaitpointKey, wp.Status})
	}
	require.Equal(t, [][3]string{
		{live.WaitpointID, "live", contracts.WaitpointPending},
		{second.Waitpoints[0].WaitpointID, "b", contracts.WaitpointOpen},
	}, got)
}

// After Close both answer backend_closed, as every call does.
func TestInspectAfterClose(t *testing.T) {
	b, _ := openFile(t)
	require.NoError(t, b.Close())
	_, err := b.DescribeExecution(context.Background(), contracts.DescribeExecutionArgs{ExecutionID: "x"})
	require.ErrorIs(t, err, contracts.ErrBackendClosed)
	_, err = b.CountExecutions(context.Background(), contracts.CountExecutionsArgs{})
	require.ErrorIs(t, err, contracts.ErrBackendClosed)
}
