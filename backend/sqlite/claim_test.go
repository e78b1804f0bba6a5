package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	sqlitedriver "github.com/ncruces/go-sqlite3/driver"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// planStep is one step of EXPLAIN QUERY PLAN with the step it belongs to.
type planStep struct {
	detail, parent string
}

func queryPlanTree(t *testing.T, b *Backend, query string, args ...any) []planStep {
	t.Helper()
	rows, err := b.db.Query(`EXPLAIN QUERY PLAN `+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	details := map[int]string{}
	var plan []planStep
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		details[id] = detail
		plan = append(plan, planStep{detail: detail, parent: details[parent]})
	}
	require.NoError(t, rows.Err())
	return plan
}

// A claim reads each claimable kind in claim order and stops at its first
// row: resumed ones from executions_by_state, the timed-out suspensions
// and expired leases marked overdue from executions_overdue. Neither
// branch sorts (the one sort is of the two rows they yield), so a claim
// costs the same whatever the backlog of timed-out suspensions or expired
// leases; version 4 searched executions_by_timeout and executions_by_lease
// by deadline and sorted every row past it.
func TestClaimReadsEachKindInClaimOrder(t *testing.T) {
	b, _ := openFile(t)
	plan := queryPlanTree(t, b, selectClaimable, int64(5))
	var reads []string
	for _, s := range plan {
		if strings.Contains(s.detail, "TEMP B-TREE") {
			require.NotContains(t, s.parent, "CO-ROUTINE", "a branch sorts: %q", plan)
		}
		if strings.HasPrefix(s.detail, "SEARCH executions") || strings.HasPrefix(s.detail, "SCAN executions") {
			reads = append(reads, s.detail)
		}
	}
	require.Equal(t, []string{
		"SEARCH executions USING INDEX executions_by_state (state=?)",
		"SCAN executions USING INDEX executions_overdue",
	}, reads)
}

// Marking reads only the executions whose deadline passed since the last
// claim: the unmarked ranges (overdue = 0) of the deadline indexes, from
// the index alone.
func TestMarkOverdueReadsUnmarkedDeadlines(t *testing.T) {
	b, _ := openFile(t)
	var reads []string
	for _, s := range queryPlanTree(t, b, markOverdue, int64(5)) {
		require.NotContains(t, s.detail, "SCAN executions")
		if strings.HasPrefix(s.detail, "SEARCH executions USING COVERING") {
			reads = append(reads, s.detail)
		}
	}
	require.Equal(t, []string{
		"SEARCH executions USING COVERING INDEX executions_by_timeout (state=? AND overdue=? AND timeout_at_ms<?)",
		"SEARCH executions USING COVERING INDEX executions_by_lease (state=? AND overdue=? AND lease_expires_at_ms<?)",
	}, reads)
}

// vmSteps runs query once on the writer's connection and returns the
// virtual machine steps it took (SQLITE_STMTSTATUS_VM_STEP): the work of
// the statement, independent of the machine's speed.
func vmSteps(t *testing.T, b *Backend, query string, args ...int64) int {
	t.Helper()
	ctx := context.Background()
	conn, err := b.db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	var steps int
	require.NoError(t, conn.Raw(func(dc any) error {
		stmt, _, err := dc.(sqlitedriver.Conn).Raw().Prepare(query)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, a := range args {
			if err := stmt.BindInt64(i+1, a); err != nil {
				return err
			}
		}
		for stmt.Step() {
		}
		if err := stmt.Err(); err != nil {
			return err
		}
		steps = stmt.Status(sqlite3.STMTSTATUS_VM_STEP, false)
		return nil
	}))
	return steps
}

// insertSuspended inserts n suspended executions without waitpoints,
// prefix0, prefix1, …, suspended at first, first + 1, …, timing out at
// timeoutAtMs (nil: never).
func insertSuspended(t *testing.T, b *Backend, prefix string, n int, first int64, timeoutAtMs any) {
	t.Helper()
	_, err := b.db.Exec(`WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE x < ?1 - 1)
INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms, waitpoint_count)
SELECT ?2 || x, 'suspended', 's-' || ?2 || x, 'any', ?3 + x, ?4, 1 FROM i`, n, prefix, first, timeoutAtMs)
	require.NoError(t, err)
}

// Given n suspensions older than k timed-out ones, either without timeout
// (the shape of bench scale: the timed-out ones are the newest) or with
// timeouts still ahead (the adversarial shape for an index in claim order
// filtered by deadline), when claims run, then the first marks the k
// timed-out ones once, and every claim after it (the marking that finds
// nothing new, and the choice) takes as many steps as with 10 and 10: the
// work does not grow with n or k. The claims take the timed-out ones
// oldest first.
func TestClaimWorkDoesNotGrowWithTheBacklog(t *testing.T) {
	const nowMs = int64(1_000_000)
	type cost struct{ firstMark, mark, choose int }
	measure := func(t *testing.T, n, k int, older any) cost {
		b, _ := openFile(t, WithClock(func() time.Time { return time.UnixMilli(nowMs) }))
		insertSuspended(t, b, "old-", n, 0, older)
		insertSuspended(t, b, "late-", k, 500_000, nowMs-1)
		c := cost{firstMark: vmSteps(t, b, markOverdue, nowMs), mark: vmSteps(t, b, markOverdue, nowMs),
			choose: vmSteps(t, b, selectClaimable, nowMs)}
		e := eng(b)
		for i := range 3 {
			out := drivertest.Try(e.ClaimResumedExecution(context.Background(), contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})).Must(t)
			require.Equal(t, fmt.Sprintf("late-%d", i), out.ExecutionID)
			require.Equal(t, contracts.ReasonTimeout, out.Reason)
		}
		return c
	}
	for name, older := range map[string]any{"older without timeout": nil, "older with timeouts ahead": nowMs + 3_600_000} {
		t.Run(name, func(t *testing.T) {
			small := measure(t, 10, 10, older)
			large := measure(t, 20_000, 2_000, older)
			t.Logf("VM steps, 10+10: %+v; 20000+2000: %+v", small, large)
			require.Equal(t, small.mark, large.mark, "marking with nothing new to mark")
			require.Equal(t, small.choose, large.choose, "choosing the oldest claimable")
			require.Greater(t, large.firstMark, small.firstMark, "the first marking reads the newly timed-out ones")
		})
	}
}

// Given suspensions with long timeouts older than suspensions with short
// ones, a resumed execution and an expired lease between them, when claims
// run as time passes, then each takes the oldest claimable by
// (suspended_at_ms, execution_id) with its reason, never one whose
// timeout is still ahead.
func TestClaimOrderAcrossKinds(t *testing.T) {
	f := harness.Seeded(t)
	suspend := func(id string, timeoutMs int64) contracts.SuspendOutcome {
		a := drivertest.SuspendArgs(id, "a")
		if timeoutMs > 0 {
			a.TimeoutMs = &timeoutMs
		}
		s := f.Suspend(a)
		f.Clock.Advance(time.Millisecond)
		return s
	}
	claim := func() contracts.ClaimOutcome { return f.Claim(time.Second) }
	suspend("long-0", 3_600_000)
	suspend("long-1", 3_600_000)
	leased := suspend("leased", 0)
	f.Deliver(leased, 0, "")
	c := claim()
	require.Equal(t, "leased", c.ExecutionID) // its lease expires in 1 s
	suspend("short-0", 10)
	resumed := suspend("resumed", 0)
	f.Deliver(resumed, 0, "")
	suspend("short-1", 10)

	f.Clock.Advance(100 * time.Millisecond)
	for _, want := range [][2]string{{"short-0", contracts.ReasonTimeout}, {"resumed", contracts.ReasonSignal}, {"short-1", contracts.ReasonTimeout}} {
		c := claim()
		require.Equal(t, want, [2]string{c.ExecutionID, c.Reason})
	}
	require.Equal(t, contracts.OutcomeNone, claim().Outcome)

	f.Clock.Advance(2 * time.Second) // the first lease expired: re-claimed with its reason
	c = claim()
	require.Equal(t, [2]string{"leased", contracts.ReasonSignal}, [2]string{c.ExecutionID, c.Reason})
	f.Clock.Advance(time.Hour) // so did the long timeouts and the other leases
	for _, want := range []string{"long-0", "long-1", "leased", "short-0", "resumed", "short-1"} {
		require.Equal(t, want, claim().ExecutionID)
	}
}

// overdue reads the mark of an execution.
func overdue(t *testing.T, b *Backend, executionID string) bool {
	t.Helper()
	var marked bool
	require.NoError(t, b.db.QueryRow(`SELECT overdue FROM executions WHERE execution_id = ?`, executionID).Scan(&marked))
	return marked
}

// Given executions a claim marked overdue but did not take (an older one
// was claimable), when their deadline moves (extend_lease,
// release_execution) or their state changes (cancel_suspension), then the
// mark goes with it: an extended lease is not claimable, a released one
// is, a cancelled suspension is claimed as cancelled.
func TestOverdueMarkFollowsTheDeadline(t *testing.T) {
	f := harness.Seeded(t)
	b := f.B.(*Backend)
	for _, id := range []string{"a", "b"} {
		f.Deliver(f.Suspend(drivertest.SuspendArgs(id, "k")), 0, "")
		f.Clock.Advance(time.Millisecond)
	}
	require.Equal(t, "a", f.Claim(10*time.Millisecond).ExecutionID)
	second := f.Claim(10 * time.Millisecond)
	timeout := int64(5)
	f.Suspend(contracts.SuspendArgs{ExecutionID: "c", Condition: contracts.ConditionAny, TimeoutMs: &timeout,
		Waitpoints: []contracts.WaitpointSpec{{Key: "k"}}})

	f.Clock.Advance(20 * time.Millisecond)
	require.Equal(t, "a", f.Claim(time.Minute).ExecutionID) // marks b and c
	require.True(t, overdue(t, b, "b"))
	require.True(t, overdue(t, b, "c"))
	require.False(t, overdue(t, b, "a"), "a claim clears the mark")

	f.Must(f.Eng.ExtendLease(f.Ctx, contracts.ExtendLeaseArgs{ExecutionID: "b", LeaseID: second.LeaseID, LeaseMs: 60_000}))
	require.False(t, overdue(t, b, "b"))
	f.Must(f.Eng.CancelSuspension(f.Ctx, contracts.CancelArgs{ExecutionID: "c"}))
	require.False(t, overdue(t, b, "c"))
	c := f.Claim(time.Minute)
	require.Equal(t, [2]string{"c", contracts.ReasonCancelled}, [2]string{c.ExecutionID, c.Reason})
	require.Equal(t, contracts.OutcomeNone, f.Claim(time.Minute).Outcome, "b's lease was extended")

	f.Must(f.Eng.ReleaseExecution(f.Ctx, contracts.ReleaseArgs{ExecutionID: "b", LeaseID: second.LeaseID}))
	f.Clock.Advance(time.Millisecond)
	require.Equal(t, "b", f.Claim(time.Minute).ExecutionID)
}

// The mark is a cache of what a claim saw: a claim whose clock is behind
// the one that marked (processes sharing a file, or a clock set back) does
// not take an execution whose deadline is still ahead by its own clock.
func TestOverdueMarkIsCheckedAgainstTheClock(t *testing.T) {
	f := harness.Seeded(t)
	timeout := int64(10)
	f.Suspend(contracts.SuspendArgs{ExecutionID: "x", Condition: contracts.ConditionAny, TimeoutMs: &timeout,
		Waitpoints: []contracts.WaitpointSpec{{Key: "k"}}})
	f.Clock.Advance(20 * time.Millisecond)
	_, err := f.B.(*Backend).db.Exec(markOverdue, f.Clock.NowMs())
	require.NoError(t, err)
	f.Clock.Advance(-15 * time.Millisecond)
	require.Equal(t, contracts.OutcomeNone, f.Claim(time.Minute).Outcome)
	f.Clock.Advance(15 * time.Millisecond)
	require.Equal(t, "x", f.Claim(time.Minute).ExecutionID)
}

// A store written by schema version 4 upgrades in place: its timed-out
// suspensions and expired leases, unmarked, are claimed in order with the
// resumed executions by the first claims, and count_executions still
// counts them.
func TestUpgradeFromVersion4ClaimsInOrder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ff.db")
	db := createAtVersion(t, path, 4)
	for _, stmt := range []string{
		fmt.Sprintf(`INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms, waitpoint_count)
		    VALUES ('timed-out', 'suspended', 's1', 'any', %d, %d, 1)`, startMs-4000, startMs-1),
		fmt.Sprintf(`INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms, waitpoint_count)
		    VALUES ('waiting', 'suspended', 's2', 'any', %d, %d, 1)`, startMs-5000, startMs+60_000),
		fmt.Sprintf(`INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms, waitpoint_count, reason)
		    VALUES ('resumed', 'resumed', 's3', 'any', %d, 1, 'signal')`, startMs-3000),
		fmt.Sprintf(`INSERT INTO executions (execution_id, state, suspension_id, condition, suspended_at_ms, waitpoint_count,
		    reason, lease_id, lease_expires_at_ms) VALUES ('expired', 'claimed', 's4', 'any', %d, 1, 'timeout', 'l4', %d)`, startMs-6000, startMs-1),
	} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, db.Close())

	clock := conformance.NewClock(startMs)
	b, err := Open(ctx, path, WithClock(clock.Now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	e := eng(b)
	counts := drivertest.Try(e.CountExecutions(ctx, contracts.CountExecutionsArgs{})).Must(t)
	require.Equal(t, contracts.ExecutionCounts{Suspended: 1, TimedOut: 1, Resumed: 1, LeaseExpired: 1}, counts)
	var got [][2]string
	for range 4 {
		c := drivertest.Try(e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})).Must(t)
		got = append(got, [2]string{c.ExecutionID, c.Reason})
	}
	require.Equal(t, [][2]string{
		{"expired", contracts.ReasonTimeout}, {"timed-out", contracts.ReasonTimeout}, {"resumed", contracts.ReasonSignal}, {"", ""},
	}, got)
}
