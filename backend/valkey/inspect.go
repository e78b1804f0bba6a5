package valkey

import (
	"context"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Operators' views (docs/spec.md §8.9): describe_execution and
// count_executions, each read-only and answered from script calls that
// read the server's clock once per partition; the driver kit builds the
// envelopes (driver/inspect.go). Neither ever returns a lease id or a
// token: the scripts do not read them.

var _ driver.Inspector = (*Backend)(nil)

// DescribeExecution answers an operator's view of one execution from one
// read-only script call on its partition (describe.lua): its hash, its
// latest suspension and, each as get_waitpoint reads it, the waitpoints of
// that suspension and its live pending ones, at one server clock; the kit
// (driver.DescribeExecution) decides claimability, the reason and each
// waitpoint's status. execution_not_found when the store does not
// remember it.
func (b *Backend) DescribeExecution(ctx context.Context, args contracts.DescribeExecutionArgs) (contracts.ExecutionInfo, error) {
	v, err := b.run(ctx, scriptDescribe, driver.PartitionOf(args.ExecutionID, b.parts), args.ExecutionID)
	if err != nil {
		return contracts.ExecutionInfo{}, err
	}
	now, err := num(v, 0)
	if err != nil {
		return contracts.ExecutionInfo{}, interpretError(err)
	}
	if len(v) == 1 {
		return contracts.ExecutionInfo{}, driver.ExecutionNotFound(args.ExecutionID)
	}
	rec, wps, err := parseDescribe(args.ExecutionID, v)
	if err != nil {
		return contracts.ExecutionInfo{}, interpretError(err)
	}
	return driver.DescribeExecution(rec, wps, now), nil
}

// describeHead is how many values a describe reply of a remembered
// execution holds before its waitpoints.
const describeHead = 8

// parseDescribe decodes the describe reply of remembered execution id: the
// record, and its waitpoints decoded as get_waitpoint's replies
// (parseWaitpointRecord). A waitpoint gone or of another execution (which
// the scripts never leave behind) is skipped.
func parseDescribe(id string, v []any) (driver.ExecutionRecord, []driver.WaitpointRecord, error) {
	if len(v) < describeHead || (len(v)-describeHead)%2 != 0 {
		return driver.ExecutionRecord{}, nil, errMalformedReply
	}
	rec := driver.ExecutionRecord{
		ExecutionState: driver.ExecutionState{ID: id, State: str(v, 1), Reason: str(v, 3)},
		SuspensionID:   str(v, 5), Tags: strings.Fields(str(v, 7)),
	}
	var err error
	if rec.LeaseExpiresAtMs, err = optionalNum(v, 2); err != nil {
		return driver.ExecutionRecord{}, nil, err
	}
	if str(v, 4) != "" {
		t, err := num(v, 4)
		if err != nil {
			return driver.ExecutionRecord{}, nil, err
		}
		rec.TimeoutAtMs = &t
	}
	if rec.SuspendedAtMs, err = optionalNum(v, 6); err != nil {
		return driver.ExecutionRecord{}, nil, err
	}
	wps := make([]driver.WaitpointRecord, 0, (len(v)-describeHead)/2)
	for i := describeHead; i < len(v); i += 2 {
		view, ok := v[i+1].([]any)
		if !ok {
			return driver.ExecutionRecord{}, nil, errMalformedReply
		}
		if str(view, 1) != id {
			continue
		}
		w, err := parseWaitpointRecord(contracts.GetWaitpointArgs{ExecutionID: id, WaitpointID: str(v, i)}, view)
		if err != nil {
			return driver.ExecutionRecord{}, nil, err
		}
		wps = append(wps, w)
	}
	return rec, wps, nil
}

// optionalNum returns v[i] as an int64, 0 when it is "".
func optionalNum(v []any, i int) (int64, error) {
	if str(v, i) == "" {
		return 0, nil
	}
	return num(v, i)
}

// CountExecutions counts the remembered executions by the field of
// count_executions they fall in: one read-only script call per partition
// (count.lua), all in one pipeline (one round trip per node), each
// answering its five counts at its own server clock from its indexes alone
// (ZCARD and ZCOUNT: O(log N), never reading an execution), summed with
// ExecutionCounts.Add. Under concurrent writes the sum need not match the
// store at any single instant (docs/spec.md §8.9).
func (b *Backend) CountExecutions(ctx context.Context, _ contracts.CountExecutionsArgs) (contracts.ExecutionCounts, error) {
	replies, err := b.runAll(ctx, scriptCount, b.allPartitions(), func(int) []any { return nil })
	if err != nil {
		return contracts.ExecutionCounts{}, err
	}
	var total contracts.ExecutionCounts
	for _, r := range replies {
		if r.err != nil {
			return contracts.ExecutionCounts{}, r.err
		}
		c, err := parseCounts(r.values)
		if err != nil {
			return contracts.ExecutionCounts{}, interpretError(err)
		}
		total = total.Add(c)
	}
	return total, nil
}

// parseCounts decodes a count reply: {suspended, timed_out, resumed,
// claimed, lease_expired}, none negative.
func parseCounts(v []any) (contracts.ExecutionCounts, error) {
	if len(v) != 5 {
		return contracts.ExecutionCounts{}, errMalformedReply
	}
	var n [5]int64
	for i := range n {
		x, err := num(v, i)
		if err != nil || x < 0 {
			return contracts.ExecutionCounts{}, errMalformedReply
		}
		n[i] = x
	}
	return contracts.ExecutionCounts{Suspended: n[0], TimedOut: n[1], Resumed: n[2], Claimed: n[3], LeaseExpired: n[4]}, nil
}
