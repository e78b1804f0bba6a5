package valkey

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// recount counts ids by describing each one, as count_executions would
// count them (the fields of contracts.ExecutionCounts).
func recount(t *testing.T, b *Backend, ids ...string) contracts.ExecutionCounts {
	t.Helper()
	var c contracts.ExecutionCounts
	for _, id := range ids {
		info, err := b.DescribeExecution(bg, contracts.DescribeExecutionArgs{ExecutionID: id})
		if errors.Is(err, contracts.ErrExecutionNotFound) {
			continue
		}
		require.NoError(t, err, "describe %s", id)
		switch {
		case info.State == contracts.StateSuspended && info.Claimable:
			c.TimedOut++
		case info.State == contracts.StateSuspended:
			c.Suspended++
		case info.State == contracts.StateResumed:
			c.Resumed++
		case info.State == contracts.StateClaimed && info.Claimable:
			c.LeaseExpired++
		case info.State == contracts.StateClaimed:
			c.Claimed++
		}
	}
	return c
}

// requireDescribedAsGot fails unless every waitpoint describe_execution
// lists of id is the one get_waitpoint describes.
func requireDescribedAsGot(t *testing.T, b *Backend, id string) {
	t.Helper()
	info, err := b.DescribeExecution(bg, contracts.DescribeExecutionArgs{ExecutionID: id})
	require.NoError(t, err)
	require.NotEmpty(t, info.Waitpoints)
	for _, w := range info.Waitpoints {
		got, err := b.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: id, WaitpointID: w.WaitpointID})
		require.NoError(t, err)
		require.Equal(t, got, w, "waitpoint %s", w.WaitpointKey)
	}
}

// The count indexes follow every script that changes an execution's
// state, timeout or lease: after each step count_executions answers what
// describing every execution finds, through a timeout claimed, a release,
// a re-claim, an already_satisfied suspend of a claimed execution (which
// stays claimed under a new suspension), an extend, a suspend of a claimed
// execution, cancel, complete, a pending waitpoint (state none counts
// nowhere) and a resuming delivery.
func TestCountIndexesFollowEveryWrite(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		ids := []string{"x-a", "x-t", "x-n"}
		step := func(name string, want contracts.ExecutionCounts) {
			t.Helper()
			got, err := b.CountExecutions(bg, contracts.CountExecutionsArgs{})
			require.NoError(t, err, "%s: count", name)
			require.Equal(t, want, got, "%s: counts", name)
			require.Equal(t, want, recount(t, b, ids...), "%s: what describe finds", name)
		}
		claim := func(name, want string, reason string) contracts.ClaimOutcome {
			t.Helper()
			c, err := b.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
			require.NoError(t, err, name)
			require.Equal(t, want, c.ExecutionID, name)
			require.Equal(t, reason, c.Reason, name)
			return c
		}
		step("empty", contracts.ExecutionCounts{})

		suspend(t, b, "x-a", "a")
		to := using("x-t", contracts.ConditionAny, "a")
		ms := int64(50)
		to.TimeoutMs = &ms
		_, err := b.Suspend(bg, to)
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond)
		step("timed out", contracts.ExecutionCounts{Suspended: 1, TimedOut: 1})

		c := claim("claim the timed-out one", "x-t", contracts.ReasonTimeout)
		step("claimed", contracts.ExecutionCounts{Suspended: 1, Claimed: 1})
		_, err = b.ReleaseExecution(bg, contracts.ReleaseArgs{ExecutionID: "x-t", LeaseID: c.LeaseID})
		require.NoError(t, err)
		step("released", contracts.ExecutionCounts{Suspended: 1, LeaseExpired: 1})
		c = claim("claim again", "x-t", contracts.ReasonTimeout)
		step("claimed again", contracts.ExecutionCounts{Suspended: 1, Claimed: 1})

		p, err := b.CreateWaitpoint(bg, contracts.CreateWaitpointArgs{ExecutionID: "x-t", Key: "early", ExpiresInMs: hourMs, LeaseID: &c.LeaseID})
		require.NoError(t, err)
		_, err = deliverPending(b, p, "", "", contracts.SignalLimits{})
		require.NoError(t, err)
		sat := using("x-t", contracts.ConditionAny, p)
		sat.LeaseID = &c.LeaseID
		out, err := b.Suspend(bg, sat)
		require.NoError(t, err)
		require.Equal(t, contracts.OutcomeAlreadySatisfied, out.Outcome)
		step("already satisfied while claimed", contracts.ExecutionCounts{Suspended: 1, Claimed: 1})
		info, err := b.DescribeExecution(bg, contracts.DescribeExecutionArgs{ExecutionID: "x-t"})
		require.NoError(t, err)
		require.Equal(t, out.SuspensionID, *info.SuspensionID, "the latest suspension")
		require.Equal(t, c.LeaseExpiresAtMs, *info.LeaseExpiresAtMs, "the lease kept")
		requireDescribedAsGot(t, b, "x-t")

		_, err = b.ExtendLease(bg, contracts.ExtendLeaseArgs{ExecutionID: "x-t", LeaseID: c.LeaseID, LeaseMs: 60_000})
		require.NoError(t, err)
		step("extended", contracts.ExecutionCounts{Suspended: 1, Claimed: 1})
		again := using("x-t", contracts.ConditionAny, "b")
		again.LeaseID = &c.LeaseID
		st, err := b.Suspend(bg, again)
		require.NoError(t, err)
		require.Equal(t, contracts.OutcomeSuspended, st.Outcome)
		step("suspended while claimed", contracts.ExecutionCounts{Suspended: 2})
		requireDescribedAsGot(t, b, "x-t")

		_, err = b.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: "x-a"})
		require.NoError(t, err)
		step("cancelled", contracts.ExecutionCounts{Suspended: 1, Resumed: 1})
		ca := claim("claim the cancelled one", "x-a", contracts.ReasonCancelled)
		step("claimed the cancelled one", contracts.ExecutionCounts{Suspended: 1, Claimed: 1})
		_, err = b.CompleteExecution(bg, contracts.CompleteArgs{ExecutionID: "x-a", LeaseID: ca.LeaseID})
		require.NoError(t, err)
		step("completed", contracts.ExecutionCounts{Suspended: 1})

		create(t, b, "x-n", "early", hourMs)
		step("pending only", contracts.ExecutionCounts{Suspended: 1})
		deliver(t, b, st, 0, contracts.DeliverSignalArgs{})
		step("resumed", contracts.ExecutionCounts{Resumed: 1})
	})
}

// describe_execution is one script call on the execution's partition;
// count_executions one pipeline per node and no single command, whatever
// the number of partitions.
func TestInspectRoundTrips(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		rt := newRoundTrips()
		_, b := seededEngine(t, s, 256, rt)
		masters := countMasters(t, b)
		warm(t, b)
		loadAllScripts(t, b)
		suspend(t, b, "rt-inspect", "a", "b")
		rt.start()
		_, err := b.DescribeExecution(bg, contracts.DescribeExecutionArgs{ExecutionID: "rt-inspect"})
		require.NoError(t, err)
		singles, pipelines, _, _ := rt.stop()
		require.Equal(t, [2]int{1, 0}, [2]int{singles, pipelines}, "describe_execution: singles and pipelines")
		rt.start()
		c, err := b.CountExecutions(bg, contracts.CountExecutionsArgs{})
		require.NoError(t, err)
		singles, pipelines, _, _ = rt.stop()
		require.Equal(t, [2]int{0, masters}, [2]int{singles, pipelines}, "count_executions: singles and pipelines")
		require.Equal(t, contracts.ExecutionCounts{Suspended: 1}, c)
	})
}
