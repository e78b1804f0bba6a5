package driver

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Inspector is the optional part of a driver for operators' views
// (docs/spec.md §8.9). Both methods write nothing; the Engine answers
// unavailable / unsupported for them on a backend without it.
type Inspector interface {
	// DescribeExecution reads one execution in one atomic step (a
	// transaction, or one script call on its partition) and answers
	// DescribeExecution's envelope; execution_not_found
	// (ExecutionNotFound) when the store does not remember it.
	DescribeExecution(ctx context.Context, args contracts.DescribeExecutionArgs) (contracts.ExecutionInfo, error)
	// CountExecutions counts the remembered executions by CountBucket at
	// the backend's clock: one consistent count per partition (one
	// transaction or script call each), summed with ExecutionCounts.Add.
	CountExecutions(ctx context.Context, args contracts.CountExecutionsArgs) (contracts.ExecutionCounts, error)
}

// ExecutionRecord is what describe_execution reads of a remembered
// execution besides its waitpoints.
type ExecutionRecord struct {
	ExecutionState
	// Of its latest suspension; SuspensionID "" before the first.
	SuspensionID  string
	SuspendedAtMs int64
	Tags          []string
}

// DescribeExecution builds the describe_execution envelope at nowMs from
// the execution and the waitpoints the driver found: those of its latest
// suspension and its unused pending ones. Pending waitpoints past their
// expiry are left out here, so drivers may pass every unused one; the rest
// are sorted by (created_at_ms, waitpoint_key, waitpoint_id).
func DescribeExecution(e ExecutionRecord, waitpoints []WaitpointRecord, nowMs int64) contracts.ExecutionInfo {
	info := contracts.ExecutionInfo{
		ExecutionID: e.ID, State: e.State, Tags: slices.Clone(nonNilTags(e.Tags)),
		Waitpoints: make([]contracts.WaitpointInfo, 0, len(waitpoints)),
	}
	if info.State == "" {
		info.State = contracts.StateNone
	}
	reason, ok := e.Claimable(nowMs)
	info.Claimable = ok
	if ok || e.State == contracts.StateClaimed {
		info.Reason = &reason
	}
	if e.SuspensionID != "" {
		id, at := e.SuspensionID, e.SuspendedAtMs
		info.SuspensionID, info.SuspendedAtMs = &id, &at
		if e.TimeoutAtMs != nil {
			t := *e.TimeoutAtMs
			info.TimeoutAtMs = &t
		}
	}
	if e.State == contracts.StateClaimed {
		exp := e.LeaseExpiresAtMs
		info.LeaseExpiresAtMs = &exp
	}
	for _, w := range waitpoints {
		if w.Pending && nowMs > w.PendingExpiresAtMs {
			continue
		}
		info.Waitpoints = append(info.Waitpoints, DescribeWaitpoint(w, nowMs))
	}
	slices.SortFunc(info.Waitpoints, func(a, b contracts.WaitpointInfo) int {
		return cmp.Or(cmp.Compare(a.CreatedAtMs, b.CreatedAtMs),
			strings.Compare(a.WaitpointKey, b.WaitpointKey), strings.Compare(a.WaitpointID, b.WaitpointID))
	})
	return info
}

// CountBucket adds e, at nowMs, to the field of c that count_executions
// counts it in; an execution in state none counts nowhere.
func CountBucket(c *contracts.ExecutionCounts, e ExecutionState, nowMs int64) {
	switch e.State {
	case contracts.StateSuspended:
		if TimedOut(e.TimeoutAtMs, nowMs) {
			c.TimedOut++
		} else {
			c.Suspended++
		}
	case contracts.StateResumed:
		c.Resumed++
	case contracts.StateClaimed:
		if nowMs > e.LeaseExpiresAtMs {
			c.LeaseExpired++
		} else {
			c.Claimed++
		}
	}
}
