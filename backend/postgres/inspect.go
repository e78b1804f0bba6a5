package postgres

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Operators' views (docs/spec.md §8.9): describe_execution and
// count_executions are single statements, each at one reading of the
// server's clock and on one snapshot, with no session state (they work
// behind a transaction pooler as they are). They write nothing and take no
// lock, so they never wait for, nor make wait, the operations on an
// execution.
var _ driver.Inspector = (*Backend)(nil)

// describedWaitpointColumns are the ff_waitpoints columns describeSQL reads
// in each branch of its waitpoints, those waitpointColumnsSQL needs and the
// id.
const describedWaitpointColumns = `waitpoint_id, waitpoint_key, created_at_ms, suspension_id, expires_at_ms,
           timeout_at_ms, signal_count, token_fingerprint, tags`

// describeSQL reads, in one statement, the clock; execution $1 (NULLs:
// not remembered): its state, lease expiry, reason and latest suspension,
// never its lease id; and, one row each (NULLs: none), the waitpoints of
// its latest suspension (a range of the unique index on (suspension_id,
// waitpoint_key); suspension ids are unique, as observeSQL relies on too)
// and its unused pending waitpoints that have not expired (a range of
// ff_waitpoints_pending), each as get_waitpoint reads it
// (waitpointColumnsSQL). Waitpoints of earlier suspensions and expired
// pending ones, which an execution may pile up until it completes, are
// not read (nor is ff_waitpoints_execution, which indexes them all). The
// clock is a materialized CTE (it is volatile): read once, whatever the
// plan.
const describeSQL = `WITH n AS (SELECT ` + nowMsExpr + ` AS now_ms)
SELECT n.now_ms, e.execution_id IS NOT NULL, e.state, e.lease_expires_at_ms, e.reason, e.timeout_at_ms,
       e.suspension_id, e.suspended_at_ms, coalesce(e.tags, '{}'), w.waitpoint_id, ` + waitpointColumnsSQL + `
FROM n
LEFT JOIN ff_executions e ON e.execution_id = $1
LEFT JOIN LATERAL (
    SELECT ` + describedWaitpointColumns + ` FROM ff_waitpoints
    WHERE execution_id = e.execution_id AND suspension_id = e.suspension_id
    UNION ALL
    SELECT ` + describedWaitpointColumns + ` FROM ff_waitpoints
    WHERE execution_id = e.execution_id AND suspension_id IS NULL AND expires_at_ms >= n.now_ms
) w ON true`

// countSQL counts the executions by count_executions' fields
// (driver.CountBucket) at one reading of the clock, in one statement: one
// scan of ff_executions, no row leaving the server. Each pair of fields
// splits its state by complementary conditions, so every execution in a
// state other than none counts exactly once: suspended past timeout_at_ms
// (strictly) is timed_out, claimed past lease_expires_at_ms (strictly) is
// lease_expired.
const countSQL = `WITH n AS (SELECT ` + nowMsExpr + ` AS now_ms)
SELECT count(*) FILTER (WHERE e.state = 'suspended' AND (e.timeout_at_ms IS NULL OR e.timeout_at_ms >= n.now_ms)),
       count(*) FILTER (WHERE e.state = 'suspended' AND e.timeout_at_ms < n.now_ms),
       count(*) FILTER (WHERE e.state = 'resumed'),
       count(*) FILTER (WHERE e.state = 'claimed' AND e.lease_expires_at_ms >= n.now_ms),
       count(*) FILTER (WHERE e.state = 'claimed' AND coalesce(e.lease_expires_at_ms, 0) < n.now_ms)
FROM n CROSS JOIN ff_executions e`

// describedExecution is what describeSQL reads of the execution, the same
// on every row.
type describedExecution struct {
	exists                                       bool
	state, reason, suspensionID                  *string
	leaseExpiresAtMs, timeoutAtMs, suspendedAtMs *int64
	tags                                         []string
}

// record returns the execution as driver.DescribeExecution takes it.
func (x describedExecution) record(executionID string) driver.ExecutionRecord {
	rec := driver.ExecutionRecord{
		ExecutionState: driver.ExecutionState{
			ID: executionID, State: deref(x.state), TimeoutAtMs: x.timeoutAtMs, Reason: deref(x.reason),
		},
		SuspensionID: deref(x.suspensionID), Tags: x.tags,
	}
	if x.leaseExpiresAtMs != nil {
		rec.LeaseExpiresAtMs = *x.leaseExpiresAtMs
	}
	if x.suspendedAtMs != nil {
		rec.SuspendedAtMs = *x.suspendedAtMs
	}
	return rec
}

// DescribeExecution answers an operator's view of one execution
// (driver.DescribeExecution): its state, claimability and reason at the
// server's clock, its latest suspension, its lease expiry (never its lease
// id) and the waitpoints of that suspension and its live unused pending
// ones, each as GetWaitpoint describes it; execution_not_found when it is
// not remembered. One statement (describeSQL), so one round trip on one
// snapshot; it writes nothing.
func (b *Backend) DescribeExecution(ctx context.Context, args contracts.DescribeExecutionArgs) (contracts.ExecutionInfo, error) {
	if err := b.usable(); err != nil {
		return contracts.ExecutionInfo{}, err
	}
	rows, err := b.pool.Query(ctx, describeSQL, args.ExecutionID)
	if err != nil {
		return contracts.ExecutionInfo{}, interpretError(err)
	}
	defer rows.Close()
	var (
		nowMs int64
		x     describedExecution
		wps   []driver.WaitpointRecord
	)
	for rows.Next() {
		var (
			id *string
			w  waitpointRow
		)
		dest := append([]any{&nowMs, &x.exists, &x.state, &x.leaseExpiresAtMs, &x.reason, &x.timeoutAtMs,
			&x.suspensionID, &x.suspendedAtMs, &x.tags, &id}, w.dest()...)
		if err := rows.Scan(dest...); err != nil {
			return contracts.ExecutionInfo{}, interpretError(err)
		}
		if w.key != nil {
			wps = append(wps, w.record(args.ExecutionID, *id))
		}
	}
	if err := rows.Err(); err != nil {
		return contracts.ExecutionInfo{}, interpretError(err)
	}
	if !x.exists {
		return contracts.ExecutionInfo{}, driver.ExecutionNotFound(args.ExecutionID)
	}
	return driver.DescribeExecution(x.record(args.ExecutionID), wps, nowMs), nil
}

// CountExecutions counts the remembered executions by state at the
// server's clock (driver.CountBucket's fields): one statement (countSQL),
// one consistent count of the backend's one partition. Its cost grows with
// ff_executions (one scan of the table); it is meant for dashboards. It
// writes nothing.
func (b *Backend) CountExecutions(ctx context.Context, _ contracts.CountExecutionsArgs) (contracts.ExecutionCounts, error) {
	if err := b.usable(); err != nil {
		return contracts.ExecutionCounts{}, err
	}
	var c contracts.ExecutionCounts
	err := b.pool.QueryRow(ctx, countSQL).Scan(&c.Suspended, &c.TimedOut, &c.Resumed, &c.Claimed, &c.LeaseExpired)
	if err != nil {
		return contracts.ExecutionCounts{}, interpretError(err)
	}
	return c, nil
}
