package boltstore

import (
	"slices"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Given an execution that suspended, was resumed and claimed, made two
// pending waitpoints under its lease (one of which expired) and suspended
// again, when it is described, then it shows the new suspension's waitpoint
// and the live pending one only: neither the earlier suspension's waitpoint,
// which its document still lists, nor the expired pending one. And it
// counts as suspended.
func TestDescribeShowsTheLatestSuspensionOnly(t *testing.T) {
	e, _, skew := openLifecycle(t)
	first := must[contracts.SuspendOutcome](t, "suspend")(e.Suspend(lctx, contracts.SuspendArgs{
		ExecutionID: "x", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}},
	}))
	must[contracts.DeliverSignalOutcome](t, "deliver")(e.DeliverSignal(lctx, deliverArgs(first, 0, "go")))
	c := must[contracts.ClaimOutcome](t, "claim")(e.ClaimResumedExecution(lctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000}))
	live := must[contracts.CreateWaitpointOutcome](t, "create live")(e.CreateWaitpoint(lctx, contracts.CreateWaitpointArgs{
		ExecutionID: "x", Key: "live", ExpiresInMs: 60_000, LeaseID: &c.LeaseID,
	}))
	must[contracts.CreateWaitpointOutcome](t, "create short")(e.CreateWaitpoint(lctx, contracts.CreateWaitpointArgs{
		ExecutionID: "x", Key: "short", ExpiresInMs: 1, LeaseID: &c.LeaseID,
	}))
	skew.Add(int64(10 * time.Millisecond))
	second := must[contracts.SuspendOutcome](t, "suspend again")(e.Suspend(lctx, contracts.SuspendArgs{
		ExecutionID: "x", Waitpoints: []contracts.WaitpointSpec{{Key: "b"}}, LeaseID: &c.LeaseID, Tags: []string{"t"},
	}))

	info := must[contracts.ExecutionInfo](t, "describe")(e.DescribeExecution(lctx, contracts.DescribeExecutionArgs{ExecutionID: "x"}))
	if info.State != contracts.StateSuspended || info.SuspensionID == nil || *info.SuspensionID != second.SuspensionID {
		t.Fatalf("describe: state %q, suspension %v; want suspended on %s", info.State, info.SuspensionID, second.SuspensionID)
	}
	if !slices.Equal(info.Tags, []string{"t"}) || info.LeaseExpiresAtMs != nil {
		t.Fatalf("describe: tags %q, lease %v; want [t] and no lease", info.Tags, info.LeaseExpiresAtMs)
	}
	var got []string
	for _, w := range info.Waitpoints {
		got = append(got, w.WaitpointID+" "+w.WaitpointKey+" "+w.Status)
	}
	want := []string{
		live.WaitpointID + " live " + contracts.WaitpointPending,
		second.Waitpoints[0].WaitpointID + " b " + contracts.WaitpointOpen,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("describe: waitpoints %q, want %q", got, want)
	}

	counts := must[contracts.ExecutionCounts](t, "count")(e.CountExecutions(lctx, contracts.CountExecutionsArgs{}))
	if counts != (contracts.ExecutionCounts{Suspended: 1}) {
		t.Fatalf("count: %+v, want one suspended", counts)
	}
}
