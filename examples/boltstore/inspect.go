package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// The optional interface of the operators' views (docs/spec.md §8.9),
// adopted as driver.Lifecycle was: one assertion and two methods, each one
// read transaction (db.View, a snapshot that never blocks the writer) at
// one reading of the clock, the envelopes built by the kit.
var _ driver.Inspector = (*Backend)(nil)

// DescribeExecution answers an operator's view of one execution
// (driver.DescribeExecution): its state, its latest suspension, its lease
// expiry (never its lease id) and, each as GetWaitpoint describes it, the
// waitpoints of that suspension and its unused pending ones (the kit leaves
// out those past their expiry), never a token. execution_not_found when
// the store does not remember it. It reads the execution's document and
// every waitpoint document it lists (those of earlier suspensions too,
// which are left out: the document does not say which ids its latest
// suspension holds).
func (b *Backend) DescribeExecution(ctx context.Context, args contracts.DescribeExecutionArgs) (contracts.ExecutionInfo, error) {
	return read(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.ExecutionInfo, error) {
		e, err := loadExec(tx, args.ExecutionID)
		if err != nil {
			return contracts.ExecutionInfo{}, err
		}
		if e == nil {
			return contracts.ExecutionInfo{}, driver.ExecutionNotFound(args.ExecutionID)
		}
		rec := driver.ExecutionRecord{
			ExecutionState: *e.decisionState(), SuspensionID: e.Suspension.ID,
			SuspendedAtMs: e.Suspension.SuspendedAtMs, Tags: e.Suspension.Tags,
		}
		var wps []driver.WaitpointRecord
		for _, id := range e.Waitpoints {
			w, err := loadWaitpoint(tx, id)
			if err != nil {
				return contracts.ExecutionInfo{}, err
			}
			if w == nil {
				continue
			}
			if w.SuspensionID == "" || w.SuspensionID == e.Suspension.ID { // unused pending, or the latest suspension's
				wps = append(wps, w.record(id, e))
			}
		}
		return driver.DescribeExecution(rec, wps, nowMs), nil
	})
}

// CountExecutions counts the remembered executions by the field of
// count_executions they fall in at the backend's clock
// (driver.CountBucket), in one read transaction. It walks the order
// bucket, which holds every execution not in state none with its state:
// a resumed one counts from its entry alone, a suspended or claimed one
// needs its document (timeout, lease expiry). Its cost grows with the
// number of such executions; it is meant for dashboards.
func (b *Backend) CountExecutions(ctx context.Context, _ contracts.CountExecutionsArgs) (contracts.ExecutionCounts, error) {
	return read(ctx, b, func(tx *bolt.Tx, nowMs int64) (contracts.ExecutionCounts, error) {
		var c contracts.ExecutionCounts
		execs := tx.Bucket(bucketExecutions)
		err := tx.Bucket(bucketOrder).ForEach(func(k, v []byte) error {
			if string(v) == contracts.StateResumed {
				c.Resumed++
				return nil
			}
			e, err := loadDoc[execDoc](execs, orderID(k))
			if err != nil || e == nil {
				return err
			}
			driver.CountBucket(&c, *e.decisionState(), nowMs)
			return nil
		})
		return c, err
	})
}
