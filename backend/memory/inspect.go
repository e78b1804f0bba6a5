package memory

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// DescribeExecution answers an operator's view of one execution
// (docs/spec.md §8.9): its state, its latest suspension, its lease expiry
// and the waitpoints of that suspension and its unused pending ones.
func (b *Backend) DescribeExecution(ctx context.Context, args contracts.DescribeExecutionArgs) (contracts.ExecutionInfo, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.ExecutionInfo{}, err
	}
	defer unlock()
	e := b.execs[args.ExecutionID]
	if e == nil {
		return contracts.ExecutionInfo{}, driver.ExecutionNotFound(args.ExecutionID)
	}
	rec := driver.ExecutionRecord{ExecutionState: *e.view()}
	var wps []driver.WaitpointRecord
	if s := e.latest; s != nil {
		rec.SuspensionID, rec.SuspendedAtMs, rec.Tags = s.id, s.suspendedAtMs, s.tags
		for _, w := range s.waitpoints {
			wps = append(wps, w.record())
		}
	}
	for _, w := range e.pending {
		if w.susp == nil {
			wps = append(wps, w.record())
		}
	}
	return driver.DescribeExecution(rec, wps, nowMs), nil
}

// CountExecutions counts the remembered executions by state at one instant.
func (b *Backend) CountExecutions(ctx context.Context, _ contracts.CountExecutionsArgs) (contracts.ExecutionCounts, error) {
	nowMs, unlock, err := b.begin(ctx)
	if err != nil {
		return contracts.ExecutionCounts{}, err
	}
	defer unlock()
	var c contracts.ExecutionCounts
	for _, e := range b.execs {
		driver.CountBucket(&c, *e.view(), nowMs)
	}
	return c, nil
}
