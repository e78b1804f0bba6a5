package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
)

// resumed suspends the executions ids, in this order (so oldest first),
// and resumes each with a signal.
func (f *groupFixture) resumed(t *testing.T, ids ...string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		s, err := f.e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Condition: contracts.ConditionAny})
		require.NoError(t, err)
		w := s.Waitpoints[0]
		_, err = f.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
		require.NoError(t, err)
	}
}

// holdRow locks the row of execution id FOR UPDATE in a transaction of its
// own connection, as a writer of it would, and returns that connection's
// backend pid and the function that ends the transaction.
func (f *groupFixture) holdRow(t *testing.T, id string) (uint32, func()) {
	t.Helper()
	c := connect(t, f.plain)
	tx, err := c.Begin(context.Background())
	require.NoError(t, err)
	var got string
	require.NoError(t, tx.QueryRow(context.Background(), `SELECT execution_id FROM ff_executions WHERE execution_id = $1 FOR UPDATE`, id).Scan(&got))
	var once sync.Once
	end := func() { once.Do(func() { _ = tx.Rollback(context.Background()) }) }
	t.Cleanup(end)
	return c.PgConn().PID(), end
}

// blockedBy counts the sessions waiting, directly or in the queue behind
// another waiter (a row's second waiter waits for the first), for a lock
// the session pid holds.
func blockedBy(t *testing.T, c *pgx.Conn, pid uint32) int {
	var n int
	require.NoError(t, c.QueryRow(context.Background(), `WITH RECURSIVE w(pid) AS (
		SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))
		UNION
		SELECT a.pid FROM pg_stat_activity a, w WHERE w.pid = ANY (pg_blocking_pids(a.pid)))
		SELECT count(*) FROM w`, int32(pid)).Scan(&n))
	return n
}

type claimAnswer struct {
	i   int
	out contracts.ClaimOutcome
	err error
	at  time.Time // when it answered
}

// claimAll starts one claim per lease duration, each with its index.
func (f *groupFixture) claimAll(leaseMs ...int64) <-chan claimAnswer {
	ch := make(chan claimAnswer, len(leaseMs))
	for i, ms := range leaseMs {
		go func() {
			out, err := f.e.ClaimResumedExecution(context.Background(), contracts.ClaimArgs{WorkerID: "w", LeaseMs: ms})
			ch <- claimAnswer{i, out, err, time.Now()}
		}()
	}
	return ch
}

func collectClaims(t *testing.T, ch <-chan claimAnswer, n int) []claimAnswer {
	t.Helper()
	var out []claimAnswer
	for range n {
		select {
		case a := <-ch:
			require.NoError(t, a.err, "claim %d", a.i)
			out = append(out, a)
		case <-time.After(30 * time.Second):
			t.Fatal("a claim did not answer")
		}
	}
	return out
}

// occupyClaimGroups starts two claims that wait for the row of execution
// held (the only claimable one, which another session holds), so that
// both group slots are busy: the claims called next queue and then run as
// one group once release runs.
func (f *groupFixture) occupyClaimGroups(t *testing.T, held string) (release func(), blocked <-chan claimAnswer) {
	t.Helper()
	obs := connect(t, f.plain)
	pid, end := f.holdRow(t, held)
	ch := f.claimAll(60_000, 60_000)
	eventually(t, "two claims waiting for "+held, func() bool { return blockedBy(t, obs, pid) == 2 })
	return end, ch
}

// Given claims queued behind two running ones, then they run as one
// group: every claimable execution is taken exactly once, the oldest
// first, each claim with a lease of its own duration, and the one claim
// left without an execution answers none.
func TestClaimGroupTakesEachExecutionOnce(t *testing.T) {
	f := newGroupFixture(t)
	f.resumed(t, "c-x")
	release, blocked := f.occupyClaimGroups(t, "c-x")
	f.resumed(t, "c-a", "c-b", "c-c", "c-d")
	leaseMs := []int64{1 * 3_600_000, 2 * 3_600_000, 3 * 3_600_000, 4 * 3_600_000}
	before := postgres.ClaimGroups(f.b)
	start := time.Now().UnixMilli()
	ch := f.claimAll(leaseMs...)
	time.Sleep(200 * time.Millisecond) // all four queued
	release()
	got := append(collectClaims(t, ch, len(leaseMs)), collectClaims(t, blocked, 2)...)
	require.Equal(t, before+1, postgres.ClaimGroups(f.b), "the four queued claims ran as one group")

	taken := map[string]int{}
	none := 0
	for _, a := range got {
		if a.out.Outcome == contracts.OutcomeNone {
			none++
			continue
		}
		require.Equal(t, contracts.OutcomeClaimed, a.out.Outcome)
		taken[a.out.ExecutionID]++
		require.NotEmpty(t, a.out.LeaseID)
		require.Len(t, a.out.Signals, 1, "claim of %s", a.out.ExecutionID)
	}
	require.Equal(t, map[string]int{"c-x": 1, "c-a": 1, "c-b": 1, "c-c": 1, "c-d": 1}, taken)
	require.Equal(t, 1, none)
	for _, a := range got[:len(leaseMs)] {
		if a.out.Outcome != contracts.OutcomeClaimed {
			continue
		}
		d := a.out.LeaseExpiresAtMs - start
		require.InDelta(t, leaseMs[a.i], d, 60_000, "claim %d's lease lasts its own lease_ms", a.i)
	}
}

// Given a group whose claims find fewer executions than they are, and a
// claimable one another transaction holds, then the claims left over wait
// for it, as a claim alone does, rather than answer none: exactly one of
// them takes it once it is released, and the others answer none only
// then.
func TestClaimGroupWaitsForHeldExecutions(t *testing.T) {
	f := newGroupFixturePool(t, "8") // the four claims that wait hold a connection each
	f.resumed(t, "h-x", "h-y")
	obs := connect(t, f.plain)
	pidY, endY := f.holdRow(t, "h-y")
	release, blocked := f.occupyClaimGroups(t, "h-x")
	before := postgres.ClaimGroups(f.b)
	ch := f.claimAll(60_000, 60_000, 60_000)
	time.Sleep(200 * time.Millisecond) // all three queued
	release()
	// h-x goes to one of the blocked claims; the other, and the group's
	// three claims run alone, wait for h-y.
	eventually(t, "every claim left waiting for h-y", func() bool { return blockedBy(t, obs, pidY) == 4 })
	require.Equal(t, before+1, postgres.ClaimGroups(f.b), "the three queued claims ran as one group")
	select {
	case a := <-ch:
		t.Fatalf("claim %d answered %+v while h-y was held", a.i, a.out)
	default:
	}
	endY()
	got := append(collectClaims(t, ch, 3), collectClaims(t, blocked, 2)...)
	taken := map[string]int{}
	for _, a := range got {
		if a.out.Outcome == contracts.OutcomeClaimed {
			taken[a.out.ExecutionID]++
		}
	}
	require.Equal(t, map[string]int{"h-x": 1, "h-y": 1}, taken)
}

// Given nothing claimable, then a group of claims answers none for each,
// in the group's one round trip.
func TestClaimGroupIdle(t *testing.T) {
	f := newGroupFixture(t)
	f.resumed(t, "i-x")
	release, blocked := f.occupyClaimGroups(t, "i-x")
	before := postgres.ClaimGroups(f.b)
	ch := f.claimAll(60_000, 60_000, 60_000)
	time.Sleep(200 * time.Millisecond)
	release()
	got := append(collectClaims(t, ch, 3), collectClaims(t, blocked, 2)...)
	require.Equal(t, before+1, postgres.ClaimGroups(f.b))
	claimed := 0
	for _, a := range got {
		if a.out.Outcome == contracts.OutcomeClaimed {
			claimed++
			require.Equal(t, "i-x", a.out.ExecutionID)
		}
	}
	require.Equal(t, 1, claimed)
}
