package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// workerScenarios cover claim_resumed_executions (docs/spec.md §8.8), on
// drivers with and without driver.BatchClaimer alike.
func workerScenarios(t *testing.T, s sigSuite) {
	s.scenario(t, "BatchClaimOldestFirst", batchClaimOldestFirst)
}

func (w *sigWorld) claimBatch(step, worker string, leaseMs int64, max int) (contracts.ClaimBatchOutcome, error) {
	out, err := w.e.ClaimResumedExecutions(ctx(), contracts.ClaimBatchArgs{WorkerID: worker, LeaseMs: leaseMs, Max: max})
	w.record(step, out, err)
	return out, err
}

// batchClaimOldestFirst: five executions resumed one after another; a batch
// of 3 claims the three oldest in order, each with its own lease and its
// signals, and a second batch of 3 the remaining two; then nothing is
// claimable ([]), and every claimed lease completes. max outside 1–100 is
// invalid_input naming max, changing nothing.
func batchClaimOldestFirst(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	for i := range 5 {
		id := fmt.Sprintf("batch-%d", i)
		s := w.mustSuspend("suspend_"+id, suspendArgs(id, contracts.ConditionAny, "a"))
		w.mustDeliver("deliver_"+id, signalTo(s, "a", "go", ""))
		w.pass(time.Millisecond)
	}
	for _, max := range []int{0, contracts.MaxClaimBatch + 1} {
		_, err := w.claimBatch(fmt.Sprintf("batch_max_%d", max), "worker-1", 60_000, max)
		sigWantInvalid(t, "batch_max", err, "max")
	}
	first, err := w.claimBatch("batch_first", "worker-1", 60_000, 3)
	require.NoError(t, err, "batch_first")
	second, err := w.claimBatch("batch_second", "worker-2", 60_000, 3)
	require.NoError(t, err, "batch_second")
	none, err := w.claimBatch("batch_none", "worker-3", 60_000, 3)
	require.NoError(t, err, "batch_none")
	require.Empty(t, none.Claims, "batch_none")

	var got []string
	leases := map[string]bool{}
	for _, c := range append(first.Claims, second.Claims...) {
		require.Equal(t, contracts.OutcomeClaimed, c.Outcome, "claim of %s", c.ExecutionID)
		require.Equal(t, contracts.ReasonSignal, c.Reason, "claim of %s", c.ExecutionID)
		require.Len(t, c.Signals, 1, "claim of %s: its signal", c.ExecutionID)
		require.False(t, leases[c.LeaseID], "lease %s handed out twice", c.LeaseID)
		leases[c.LeaseID] = true
		got = append(got, c.ExecutionID)
	}
	require.Equal(t, []string{"batch-0", "batch-1", "batch-2", "batch-3", "batch-4"}, got, "oldest first, each once")
	require.Len(t, first.Claims, 3, "batch_first")
	for _, c := range append(first.Claims, second.Claims...) {
		_, err := w.complete("complete_"+c.ExecutionID, c.ExecutionID, c.LeaseID)
		require.NoError(t, err, "complete %s", c.ExecutionID)
	}
	w.golden("worker_batch_claim")
}
