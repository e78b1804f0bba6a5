package engine

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// DescribeExecution answers an operator's view of one execution: its state,
// whether a claim could take it now and with which reason, its latest
// suspension, its lease expiry and its waitpoints, never a token or a
// lease id (docs/spec.md §8.9). It writes nothing.
func (e *Engine) DescribeExecution(ctx context.Context, a contracts.DescribeExecutionArgs) (contracts.ExecutionInfo, error) {
	in, err := e.inspector("describe_execution")
	if err != nil {
		return contracts.ExecutionInfo{}, err
	}
	return call(ctx, a.Validate, in.DescribeExecution, a)
}

// CountExecutions counts the remembered executions by state: suspended,
// timed out, resumed, claimed and lease expired (docs/spec.md §8.9). Its
// cost grows with the store on the SQL backends; it is meant for
// dashboards. It writes nothing.
func (e *Engine) CountExecutions(ctx context.Context, a contracts.CountExecutionsArgs) (contracts.ExecutionCounts, error) {
	in, err := e.inspector("count_executions")
	if err != nil {
		return contracts.ExecutionCounts{}, err
	}
	return call(ctx, a.Validate, in.CountExecutions, a)
}

// inspector returns the backend's driver.Inspector, or unsupported naming op.
func (e *Engine) inspector(op string) (driver.Inspector, error) {
	if in, ok := e.b.(driver.Inspector); ok {
		return in, nil
	}
	return nil, unsupported(op)
}
