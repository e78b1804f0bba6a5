package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
)

// blockTheSuspends occupies both group slots of the suspends with
// suspends of executions whose locks another session holds; the suspends
// made until the returned release runs queue, and then run as one group.
// It returns the answers of the two blocked suspends.
func (f *groupFixture) blockTheSuspends(t *testing.T, blockers ...string) (release func(), answers <-chan error) {
	t.Helper()
	return f.blockWith(t, "the suspend of", blockers, func(id string) error {
		_, err := f.b.Suspend(context.Background(), anySuspend(id, ""))
		return err
	})
}

// anySuspend suspends execution id on one new waitpoint under condition
// any, with idempotency key idem.
func anySuspend(id, idem string) contracts.SuspendArgs {
	return contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Condition: contracts.ConditionAny, IdempotencyKey: idem}
}

type suspended struct {
	i   int
	out contracts.SuspendOutcome
	err error
}

// suspendAll makes the suspends calls at once and waits until every one
// is queued (a short pause); then it collects their answers once release
// ran, indexed as the calls.
func (f *groupFixture) suspendAll(t *testing.T, release func(), calls ...contracts.SuspendArgs) []suspended {
	t.Helper()
	ch := make(chan suspended, len(calls))
	for i, c := range calls {
		go func() {
			out, err := f.b.Suspend(context.Background(), c)
			ch <- suspended{i, out, err}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	release()
	out := make([]suspended, len(calls))
	for range calls {
		select {
		case a := <-ch:
			out[a.i] = a
		case <-time.After(30 * time.Second):
			t.Fatal("a suspend did not answer")
		}
	}
	return out
}

// Given suspends of distinct executions queued while both group slots
// are busy, then they commit as one group, in one transaction, and each
// execution is suspended with tokens that deliver.
func TestSuspendGroupCommitsOnce(t *testing.T) {
	f := newGroupFixture(t)
	ids := []string{"s-b", "s-c", "s-d", "s-e"}
	var calls []contracts.SuspendArgs
	for i, id := range ids {
		calls = append(calls, anySuspend(id, []string{"", "k"}[i%2]))
	}
	release, blocked := f.blockTheSuspends(t, "s-a1", "s-a2")
	groups, stats := postgres.SuspendGroups(f.b), f.b.Stats()
	got := f.suspendAll(t, release, calls...)
	drain(t, blocked, 2)
	require.Equal(t, groups+1, postgres.SuspendGroups(f.b), "one group of four")
	require.Equal(t, stats.Transactions+3, f.b.Stats().Transactions, "two suspends alone and one group")
	for i, id := range ids {
		require.NoError(t, got[i].err, id)
		require.Equal(t, contracts.OutcomeSuspended, got[i].out.Outcome, id)
		require.Equal(t, contracts.StateSuspended, f.state(t, id), id)
		out, err := f.b.DeliverSignal(context.Background(), signal(id, got[i].out.Waitpoints[0], ""))
		require.NoError(t, err, id)
		require.True(t, out.Resumed, id)
	}
	// The keyed one replays its outcome.
	again, err := f.b.Suspend(context.Background(), calls[1])
	require.NoError(t, err)
	require.Equal(t, got[1].out.SuspensionID, again.SuspensionID)
}

// Given a group holding a refused suspend (already suspended), a replay,
// and a suspend that names a pending waitpoint (which reads more than its
// load, so it runs alone after the group), then each answers as alone
// and the refused one changes nothing.
func TestSuspendGroupMixed(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	first, err := f.b.Suspend(ctx, anySuspend("m-refused", ""))
	require.NoError(t, err)
	replayed, err := f.b.Suspend(ctx, anySuspend("m-replay", "k"))
	require.NoError(t, err)
	p, err := f.e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "m-pending", Key: "p", ExpiresInMs: 60_000})
	require.NoError(t, err)
	pending := contracts.SuspendArgs{ExecutionID: "m-pending", Waitpoints: []contracts.WaitpointSpec{{Pending: p.WaitpointID}}, Condition: contracts.ConditionAny}
	calls := []contracts.SuspendArgs{anySuspend("m-fresh", ""), anySuspend("m-refused", ""), anySuspend("m-replay", "k"), pending}
	release, blocked := f.blockTheSuspends(t, "m-a1", "m-a2")
	groups := postgres.SuspendGroups(f.b)
	got := f.suspendAll(t, release, calls...)
	drain(t, blocked, 2)
	require.Equal(t, groups+1, postgres.SuspendGroups(f.b))
	require.NoError(t, got[0].err)
	require.ErrorIs(t, got[1].err, contracts.ErrAlreadySuspended)
	require.NoError(t, got[2].err)
	require.Equal(t, replayed.SuspensionID, got[2].out.SuspensionID)
	require.Equal(t, replayed.Waitpoints, got[2].out.Waitpoints)
	require.NoError(t, got[3].err)
	require.Equal(t, p.WaitpointID, got[3].out.Waitpoints[0].WaitpointID)
	d, err := f.e.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: "m-refused"})
	require.NoError(t, err)
	require.Equal(t, first.SuspensionID, *d.SuspensionID)
	out, err := f.b.DeliverSignal(ctx, signal("m-pending", got[3].out.Waitpoints[0], ""))
	require.NoError(t, err)
	require.True(t, out.Resumed)
}

// Given two suspends of one execution with one idempotency key in one
// burst, then a group takes one of them and the other runs after it and
// replays it: one group that commits, one suspend alone, no rollback.
func TestSuspendGroupOnePerExecution(t *testing.T) {
	f := newGroupFixture(t)
	calls := []contracts.SuspendArgs{anySuspend("p-x", "k"), anySuspend("p-x", "k"), anySuspend("p-y", "")}
	release, blocked := f.blockTheSuspends(t, "p-a1", "p-a2")
	groups, stats := postgres.SuspendGroups(f.b), f.b.Stats()
	got := f.suspendAll(t, release, calls...)
	drain(t, blocked, 2)
	for _, a := range got {
		require.NoError(t, a.err)
	}
	require.Equal(t, got[0].out.SuspensionID, got[1].out.SuspensionID)
	require.Equal(t, groups+1, postgres.SuspendGroups(f.b))
	after := f.b.Stats()
	require.Equal(t, stats.Transactions+4, after.Transactions, "the blocked two, the group, and p-x's second alone")
	require.Equal(t, stats.Retries, after.Retries)
}

// Given a group of suspends whose lock wait outlasts the group's lock
// timeout, then its suspends run again one by one and each suspends.
func TestSuspendGroupFailureRerunsOneByOne(t *testing.T) {
	f := newGroupFixture(t)
	ids := []string{"q-b", "q-c", "q-d"}
	var calls []contracts.SuspendArgs
	for _, id := range ids {
		calls = append(calls, anySuspend(id, ""))
	}
	release, blocked := f.blockTheSuspends(t, "q-a1", "q-a2")
	groups := postgres.SuspendGroups(f.b)
	endC := f.holdLock(t, "q-c")
	go func() {
		time.Sleep(1700 * time.Millisecond)
		endC()
	}()
	got := f.suspendAll(t, release, calls...)
	drain(t, blocked, 2)
	require.Equal(t, groups+1, postgres.SuspendGroups(f.b), "one group, rolled back")
	for i, id := range ids {
		require.NoError(t, got[i].err, id)
		require.Equal(t, contracts.StateSuspended, f.state(t, id), id)
	}
}
