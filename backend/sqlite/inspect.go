package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Operators' views (docs/spec.md §8.9): describe_execution and
// count_executions. Each is one read transaction (a consistent snapshot
// that neither blocks nor waits for writers) at one reading of the clock,
// and writes nothing; the kit builds the envelopes (driver/inspect.go).

var _ driver.Inspector = (*Backend)(nil)

// --- describe_execution ----------------------------------------------------

// selectDescribedExec reads the execution's row with the tags of its latest
// suspension.
const selectDescribedExec = `SELECT ` + execColumns + `, tags FROM executions WHERE execution_id = ?`

// selectDescribedWaitpoints reads, as get_waitpoint does, the waitpoints of
// the execution's latest suspension (?1, NULL before the first: none) and
// its pending waitpoints no suspension used that have not expired at ?3:
// the first branch is a range of the (suspension_id, waitpoint_key)
// unique index, the second one of waitpoints_pending, so no waitpoint of an
// earlier suspension is read. The kit sorts them.
const selectDescribedWaitpoints = `SELECT ` + waitpointInfoColumns + ` FROM waitpoints
    WHERE suspension_id = ?1
UNION ALL
SELECT ` + waitpointInfoColumns + ` FROM waitpoints
    WHERE execution_id = ?2 AND suspension_id IS NULL AND expires_at_ms >= ?3`

// DescribeExecution answers an operator's view of one execution from one
// read snapshot (driver.DescribeExecution): its state, its latest
// suspension, its lease expiry (never its lease id) and, each as
// get_waitpoint would describe it, the waitpoints of that suspension and
// its live pending ones (never a token). execution_not_found when the
// store does not remember it.
func (b *Backend) DescribeExecution(ctx context.Context, args contracts.DescribeExecutionArgs) (contracts.ExecutionInfo, error) {
	var info contracts.ExecutionInfo
	err := b.read(ctx, func(q txn, nowMs int64) error {
		var tags sql.NullString
		e, err := scanExec(q.queryRow(selectDescribedExec, args.ExecutionID), &tags)
		if errors.Is(err, sql.ErrNoRows) {
			return driver.ExecutionNotFound(args.ExecutionID)
		}
		if err != nil {
			return err
		}
		rec := driver.ExecutionRecord{ExecutionState: *e.decision(), SuspensionID: e.suspensionID, SuspendedAtMs: e.suspendedAtMs}
		if rec.Tags, err = scanTags(tags); err != nil {
			return err
		}
		// NULL before the first suspension: the first branch reads nothing.
		wps, err := scanWaitpointRecords(q.query(selectDescribedWaitpoints, optionalID(e.suspensionID), e.id, nowMs))
		if err != nil {
			return err
		}
		info = driver.DescribeExecution(rec, wps, nowMs)
		return nil
	})
	if err != nil {
		return contracts.ExecutionInfo{}, err
	}
	return info, nil
}

func scanWaitpointRecords(rows *sql.Rows, err error) ([]driver.WaitpointRecord, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []driver.WaitpointRecord
	for rows.Next() {
		rec, err := scanWaitpointRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *rec)
	}
	return out, rows.Err()
}

// --- count_executions ------------------------------------------------------

// countExecutions counts the executions in each field of count_executions
// at ?1 (now), with the rules of driver.CountBucket and of claim
// (selectClaimable): a suspension times out when timeout_at_ms < now, a
// lease expires when lease_expires_at_ms < now. Rows in state none match no
// branch. Each count reads an index only, never the table: the per-state
// totals are ranges of executions_by_state, and the timed-out suspensions
// and expired leases ranges of executions_by_timeout and
// executions_by_lease holding exactly the rows counted (two each, one per
// value of overdue, which precedes the deadline in their keys since schema
// version 5), so the time-dependent part costs what it counts. The answer
// is one statement over one snapshot: the five counts agree with each
// other.
const countExecutions = `SELECT
    (SELECT count(*) FROM executions WHERE state = 'suspended'),
    (SELECT count(*) FROM executions WHERE state = 'suspended' AND overdue IN (0, 1) AND timeout_at_ms < ?1),
    (SELECT count(*) FROM executions WHERE state = 'resumed'),
    (SELECT count(*) FROM executions WHERE state = 'claimed'),
    (SELECT count(*) FROM executions WHERE state = 'claimed' AND overdue IN (0, 1) AND lease_expires_at_ms < ?1)`

// CountExecutions counts the remembered executions by the field of
// count_executions they fall in at the backend's clock, read once, in one
// read transaction and one statement that loads no row into the process
// (docs/spec.md §8.9). Its cost grows with the number of executions (a
// scan of executions_by_state); it is meant for dashboards.
func (b *Backend) CountExecutions(ctx context.Context, _ contracts.CountExecutionsArgs) (contracts.ExecutionCounts, error) {
	var c contracts.ExecutionCounts
	err := b.read(ctx, func(q txn, nowMs int64) error {
		var suspended, claimed int64
		if err := q.queryRow(countExecutions, nowMs).Scan(&suspended, &c.TimedOut, &c.Resumed, &claimed, &c.LeaseExpired); err != nil {
			return err
		}
		c.Suspended, c.Claimed = suspended-c.TimedOut, claimed-c.LeaseExpired
		return nil
	})
	if err != nil {
		return contracts.ExecutionCounts{}, err
	}
	return c, nil
}
