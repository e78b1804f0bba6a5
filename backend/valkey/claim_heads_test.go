package valkey

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// The claim heads (ff_head in lua/prelude.lua) take over from a claim hint
// the previous version wrote, where a partition with ready executions was
// scored 0 and no heads were kept: a store whose hint that version
// completed ('all') is asked in full once, and a partition the previous
// version's scripts made ready later (score 0 again, no head) is promoted
// like a partition with due timers, one pipeline when more than
// HINTED_MAX (32) partitions are named, as are many partitions whose
// timeouts passed. Claims stay oldest first throughout, single and
// batched.
func TestClaimHeadsFollowOldHints(t *testing.T) {
	_, b := seededEngine(t, servers[0], 256, nil)
	require.NotEmpty(t, b.hint)
	claimOne := func() contracts.ClaimOutcome {
		t.Helper()
		c, err := b.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
		require.NoError(t, err)
		return c
	}
	claimIDs := func(n int) []string {
		t.Helper()
		var ids []string
		for range n {
			c := claimOne()
			require.Equal(t, contracts.OutcomeClaimed, c.Outcome, "claim %d of %d", len(ids)+1, n)
			ids = append(ids, c.ExecutionID)
		}
		return ids
	}
	oldSuspend := func(ids []string) []contracts.SuspendOutcome {
		t.Helper()
		var out []contracts.SuspendOutcome
		for _, id := range ids {
			out = append(out, suspendLayout1(t, b, using(id, contracts.ConditionAny, "a")))
			time.Sleep(2 * time.Millisecond) // distinct suspended_at_ms
		}
		return out
	}
	oldDeliver := func(sus []contracts.SuspendOutcome) {
		t.Helper()
		for i := len(sus) - 1; i >= 0; i-- { // resumed newest first
			require.True(t, deliverLayout1(t, b, tokenOf(sus[i], "a")).Resumed)
		}
	}

	// Suspended first (the oldest of all), resumed by the previous version
	// after this version completed the hint.
	older := spreadIDs("older", 40, 256)
	olderSus := oldSuspend(older)

	// A store the previous version wrote and completed the hint of.
	ids := spreadIDs("old", 40, 256)
	oldDeliver(oldSuspend(ids))
	require.NoError(t, b.client.ZAdd(bg, b.hint, redisZ(1e308, "all")).Err())
	require.Equal(t, ids[:20], claimIDs(20), "asked in full once")
	_, err := b.client.ZScore(bg, b.hint, "complete").Result()
	require.NoError(t, err, "the hint is complete")

	// The previous version resumes 40 executions older than the rest: each
	// partition scored 0, no head.
	oldDeliver(olderSus)
	require.Equal(t, older, claimIDs(40))
	require.Equal(t, ids[20:], claimIDs(20))
	require.Equal(t, contracts.OutcomeNone, claimOne().Outcome)

	// Timeouts passed on 40 partitions, before a newer resumed execution.
	ms := int64(1)
	timed := spreadIDs("timed", 40, 256)
	for _, id := range timed {
		a := using(id, contracts.ConditionAny, "a")
		a.TimeoutMs = &ms
		_, err := b.Suspend(bg, a)
		require.NoError(t, err)
		time.Sleep(2 * time.Millisecond)
	}
	fresh := suspend(t, b, "fresh", "a")
	deliver(t, b, fresh, 0, contracts.DeliverSignalArgs{})
	time.Sleep(5 * time.Millisecond)
	out, err := b.ClaimResumedExecutions(bg, contracts.ClaimBatchArgs{WorkerID: "w", LeaseMs: 60_000, Max: 100})
	require.NoError(t, err)
	var got []string
	for _, c := range out.Claims {
		got = append(got, c.ExecutionID)
		want := contracts.ReasonTimeout
		if c.ExecutionID == "fresh" {
			want = contracts.ReasonSignal
		}
		require.Equal(t, want, c.Reason, c.ExecutionID)
	}
	require.Equal(t, append(timed, "fresh"), got)
	require.Equal(t, contracts.OutcomeNone, claimOne().Outcome)
	heads, err := b.client.ZCard(bg, b.prefix+"ff:claim-heads").Result()
	require.NoError(t, err)
	require.Zero(t, heads, "no head left once nothing is ready")
}

// redisZ is a sorted set entry.
func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
