package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
)

// suspend suspends execution id on waitpoints keys under condition cond
// and returns its waitpoints.
func (f *groupFixture) suspend(t *testing.T, id, cond string, keys ...string) []contracts.WaitpointOutcome {
	t.Helper()
	specs := make([]contracts.WaitpointSpec, len(keys))
	for i, k := range keys {
		specs[i] = contracts.WaitpointSpec{Key: k}
	}
	s, err := f.e.Suspend(context.Background(), contracts.SuspendArgs{ExecutionID: id, Waitpoints: specs, Condition: cond})
	require.NoError(t, err)
	return s.Waitpoints
}

// signal is a delivery of a signal to waitpoint w of execution id.
func signal(id string, w contracts.WaitpointOutcome, idem string) contracts.DeliverSignalArgs {
	return contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go", IdempotencyKey: idem}
}

// blockTheDeliveries occupies both group slots of the deliveries with
// deliveries to executions whose locks another session holds; the
// deliveries made until the returned release runs queue, and then run as
// one group. It returns the answers of the two blocked deliveries.
func (f *groupFixture) blockTheDeliveries(t *testing.T, blockers ...string) (release func(), answers <-chan error) {
	t.Helper()
	ws := map[string]contracts.WaitpointOutcome{}
	for _, id := range blockers {
		ws[id] = f.suspend(t, id, contracts.ConditionAny, "a")[0]
	}
	return f.blockWith(t, "the delivery to", blockers, func(id string) error {
		_, err := f.b.DeliverSignal(context.Background(), signal(id, ws[id], ""))
		return err
	})
}

type delivered struct {
	i   int
	out contracts.DeliverSignalOutcome
	err error
}

// deliverAll makes the deliveries calls at once and waits until every one
// is queued (a short pause), returning the answers' channel.
func (f *groupFixture) deliverAll(ctx context.Context, calls ...contracts.DeliverSignalArgs) <-chan delivered {
	ch := make(chan delivered, len(calls))
	for i, c := range calls {
		go func() {
			out, err := f.b.DeliverSignal(ctx, c)
			ch <- delivered{i, out, err}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	return ch
}

// answers collects n answers of ch, indexed as the calls.
func answers(t *testing.T, ch <-chan delivered, n int) []delivered {
	t.Helper()
	out := make([]delivered, n)
	for range n {
		select {
		case a := <-ch:
			out[a.i] = a
		case <-time.After(30 * time.Second):
			t.Fatal("a delivery did not answer")
		}
	}
	return out
}

// state is the state of execution id.
func (f *groupFixture) state(t *testing.T, id string) string {
	t.Helper()
	d, err := f.e.DescribeExecution(context.Background(), contracts.DescribeExecutionArgs{ExecutionID: id})
	require.NoError(t, err)
	return d.State
}

// signals are the signals of execution id's latest suspension.
func (f *groupFixture) signals(t *testing.T, id string) []contracts.Signal {
	t.Helper()
	o, err := f.e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: id})
	require.NoError(t, err)
	return o.Signals
}

// drain waits for the blocked deliveries, which succeed.
func drain(t *testing.T, blocked <-chan error, n int) {
	t.Helper()
	for range n {
		require.NoError(t, <-blocked)
	}
}

// Given deliveries to distinct executions queued while both group slots
// are busy, then they commit as one group, in one transaction, and each
// records its signal and resumes its execution.
func TestDeliverGroupCommitsOnce(t *testing.T) {
	f := newGroupFixture(t)
	ids := []string{"d-b", "d-c", "d-d", "d-e"}
	var calls []contracts.DeliverSignalArgs
	for _, id := range ids {
		calls = append(calls, signal(id, f.suspend(t, id, contracts.ConditionAny, "a")[0], ""))
	}
	release, blocked := f.blockTheDeliveries(t, "d-a1", "d-a2")
	ch := f.deliverAll(context.Background(), calls...)
	groups, stats := postgres.DeliverGroups(f.b), f.b.Stats()
	release()
	got := answers(t, ch, len(calls))
	drain(t, blocked, 2)
	require.Equal(t, groups+1, postgres.DeliverGroups(f.b), "one group of four")
	require.Equal(t, stats.Transactions+3, f.b.Stats().Transactions, "two deliveries alone and one group")
	for i, id := range ids {
		require.NoError(t, got[i].err, id)
		require.Equal(t, contracts.OutcomeAccepted, got[i].out.Outcome, id)
		require.True(t, got[i].out.Resumed, id)
		require.Equal(t, contracts.StateResumed, f.state(t, id), id)
		sigs := f.signals(t, id)
		require.Len(t, sigs, 1, id)
		require.Equal(t, got[i].out.SignalID, sigs[0].SignalID, id)
	}
}

// Given concurrent deliveries of one idempotency key to one waitpoint,
// queued with deliveries to other executions, then exactly one is accepted
// and every other answers duplicate naming its signal.
func TestDeliverGroupIdempotencyKey(t *testing.T) {
	f := newGroupFixture(t)
	w := f.suspend(t, "i-x", contracts.ConditionAll, "a", "b")
	var calls []contracts.DeliverSignalArgs
	for range 5 {
		calls = append(calls, signal("i-x", w[0], "key-1"))
	}
	for _, id := range []string{"i-y", "i-z"} {
		calls = append(calls, signal(id, f.suspend(t, id, contracts.ConditionAny, "a")[0], "key-1"))
	}
	release, blocked := f.blockTheDeliveries(t, "i-a1", "i-a2")
	groups := postgres.DeliverGroups(f.b)
	ch := f.deliverAll(context.Background(), calls...)
	release()
	got := answers(t, ch, len(calls))
	drain(t, blocked, 2)
	require.Greater(t, postgres.DeliverGroups(f.b), groups)
	var accepted []string
	for _, a := range got[:5] {
		require.NoError(t, a.err)
		if a.out.Outcome == contracts.OutcomeAccepted {
			accepted = append(accepted, a.out.SignalID)
		}
	}
	require.Len(t, accepted, 1)
	for _, a := range got[:5] {
		require.Equal(t, accepted[0], a.out.SignalID)
		require.False(t, a.out.Resumed)
	}
	require.Len(t, f.signals(t, "i-x"), 1)
	for _, a := range got[5:] {
		require.NoError(t, a.err)
		require.Equal(t, contracts.OutcomeAccepted, a.out.Outcome)
	}
}

// Given concurrent deliveries that would each satisfy the condition (all
// waitpoints, or a count), then the execution resumes exactly once, and
// a delivery after the resume finds its waitpoint closed.
func TestDeliverGroupConditionResumesOnce(t *testing.T) {
	f := newGroupFixture(t)
	all := f.suspend(t, "c-all", contracts.ConditionAll, "a", "b", "c")
	count := f.suspend(t, "c-count", contracts.CountCondition(2), "a", "b", "c")
	var calls []contracts.DeliverSignalArgs
	for i := range 3 {
		calls = append(calls, signal("c-all", all[i], ""), signal("c-count", count[i], ""))
	}
	release, blocked := f.blockTheDeliveries(t, "c-a1", "c-a2")
	groups := postgres.DeliverGroups(f.b)
	ch := f.deliverAll(context.Background(), calls...)
	release()
	got := answers(t, ch, len(calls))
	drain(t, blocked, 2)
	require.Greater(t, postgres.DeliverGroups(f.b), groups)
	resumed := map[string]int{}
	closed := 0
	for _, a := range got {
		id := calls[a.i].ExecutionID
		if a.err != nil {
			require.ErrorIs(t, a.err, contracts.ErrWaitpointClosed, id)
			require.Equal(t, "c-count", id)
			closed++
			continue
		}
		require.Equal(t, contracts.OutcomeAccepted, a.out.Outcome)
		if a.out.Resumed {
			resumed[id]++
		}
	}
	require.Equal(t, map[string]int{"c-all": 1, "c-count": 1}, resumed)
	require.Equal(t, 1, closed)
	require.Len(t, f.signals(t, "c-all"), 3)
	require.Len(t, f.signals(t, "c-count"), 2)
	require.Equal(t, contracts.StateResumed, f.state(t, "c-all"))
	require.Equal(t, contracts.StateResumed, f.state(t, "c-count"))
}

// Given a group in which some deliveries are refused (a token of another
// waitpoint, a cancelled suspension, a spent budget) and one is a
// duplicate of a signal that closed its waitpoint, then each refused one
// answers its refusal and records nothing, the duplicate names the
// recorded signal, and the others commit.
func TestDeliverGroupRefusalTouchesNoOther(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	good := f.suspend(t, "r-good", contracts.ConditionAny, "a")
	token := f.suspend(t, "r-token", contracts.ConditionAny, "a")
	cancelled := f.suspend(t, "r-closed", contracts.ConditionAny, "a")
	_, err := f.e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: "r-closed"})
	require.NoError(t, err)
	budget := f.suspend(t, "r-budget", contracts.ConditionAll, "a", "b")
	_, err = f.b.DeliverSignal(ctx, signal("r-budget", budget[0], ""))
	require.NoError(t, err)
	dup := f.suspend(t, "r-dup", contracts.ConditionAny, "a")
	first, err := f.b.DeliverSignal(ctx, signal("r-dup", dup[0], "k"))
	require.NoError(t, err)
	good2 := f.suspend(t, "r-zgood", contracts.ConditionAny, "a")

	stolen := signal("r-token", token[0], "")
	stolen.Token = good[0].Token
	spent := signal("r-budget", budget[0], "")
	spent.Limits = contracts.SignalLimits{PerWaitpoint: 1}
	calls := []contracts.DeliverSignalArgs{
		signal("r-good", good[0], ""), stolen, signal("r-closed", cancelled[0], ""), spent,
		signal("r-dup", dup[0], "k"), signal("r-zgood", good2[0], ""),
	}
	release, blocked := f.blockTheDeliveries(t, "r-a1", "r-a2")
	groups := postgres.DeliverGroups(f.b)
	ch := f.deliverAll(ctx, calls...)
	release()
	got := answers(t, ch, len(calls))
	drain(t, blocked, 2)
	require.Equal(t, groups+1, postgres.DeliverGroups(f.b), "one group of six")

	require.NoError(t, got[0].err)
	require.True(t, got[0].out.Resumed)
	require.ErrorIs(t, got[1].err, contracts.ErrInvalidToken)
	require.ErrorIs(t, got[2].err, contracts.ErrWaitpointClosed)
	require.ErrorIs(t, got[3].err, contracts.ErrSignalLimitExceeded)
	require.NoError(t, got[4].err)
	require.Equal(t, contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: first.SignalID}, got[4].out)
	require.NoError(t, got[5].err)
	require.True(t, got[5].out.Resumed)

	require.Len(t, f.signals(t, "r-good"), 1)
	require.Empty(t, f.signals(t, "r-token"))
	require.Equal(t, contracts.StateSuspended, f.state(t, "r-token"))
	require.Len(t, f.signals(t, "r-budget"), 1)
	require.Equal(t, contracts.StateSuspended, f.state(t, "r-budget"))
	require.Len(t, f.signals(t, "r-dup"), 1)
	require.Len(t, f.signals(t, "r-zgood"), 1)
}

// Given a group whose lock wait outlasts the group's lock timeout (the
// server fails it), then its deliveries run again one by one and each
// answers what it decides alone.
func TestDeliverGroupFailureRerunsOneByOne(t *testing.T) {
	f := newGroupFixture(t)
	ids := []string{"f-b", "f-c", "f-d"}
	var calls []contracts.DeliverSignalArgs
	for _, id := range ids {
		calls = append(calls, signal(id, f.suspend(t, id, contracts.ConditionAny, "a")[0], ""))
	}
	calls[2].Token = calls[0].Token // refused, alone as in the group
	release, blocked := f.blockTheDeliveries(t, "f-a1", "f-a2")
	ch := f.deliverAll(context.Background(), calls...)
	endC := f.holdLock(t, "f-c") // the group waits for it past its lock timeout
	stats := f.b.Stats()
	release()
	drain(t, blocked, 2)
	time.Sleep(1500 * time.Millisecond)
	endC()
	got := answers(t, ch, len(calls))
	require.NoError(t, got[0].err)
	require.NoError(t, got[1].err)
	require.ErrorIs(t, got[2].err, contracts.ErrInvalidToken)
	require.Equal(t, stats.Transactions+4, f.b.Stats().Transactions, "the blocked two and two of the group alone")
	require.Len(t, f.signals(t, "f-b"), 1)
	require.Len(t, f.signals(t, "f-c"), 1)
	require.Empty(t, f.signals(t, "f-d"))
}

// Given a group whose connection is terminated while it waits for a lock
// (pg_terminate_backend from another session), before its COMMIT was
// sent, then every delivery runs again alone and answers, and an answer
// "accepted" means the signal is recorded.
func TestDeliverGroupConnectionKilled(t *testing.T) {
	f := newGroupFixture(t)
	ids := []string{"k-b", "k-c", "k-d"}
	var calls []contracts.DeliverSignalArgs
	for _, id := range ids {
		calls = append(calls, signal(id, f.suspend(t, id, contracts.ConditionAny, "a")[0], ""))
	}
	release, blocked := f.blockTheDeliveries(t, "k-a1", "k-a2")
	ch := f.deliverAll(context.Background(), calls...)
	endC := f.holdLock(t, "k-c")
	release()
	drain(t, blocked, 2)
	obs := connect(t, f.plain)
	eventually(t, "the group waiting for k-c", func() bool { return f.waiters(t, obs, "k-c") == 1 })
	var killed bool
	require.NoError(t, obs.QueryRow(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted AND objid::bigint = (hashtext('k-c')::bigint & 4294967295)`).Scan(&killed))
	require.True(t, killed)
	time.Sleep(100 * time.Millisecond)
	endC()
	got := answers(t, ch, len(calls))
	for i, id := range ids {
		require.NoError(t, got[i].err, id)
		sigs := f.signals(t, id)
		require.Len(t, sigs, 1, id)
		require.Equal(t, got[i].out.SignalID, sigs[0].SignalID, id)
	}
}

// Given a caller whose context ends while its delivery waits in the
// queue, then it answers the context's error and records nothing; the
// others of the queue are delivered.
func TestDeliverGroupCancelledCaller(t *testing.T) {
	f := newGroupFixture(t)
	b := signal("x-b", f.suspend(t, "x-b", contracts.ConditionAny, "a")[0], "")
	c := signal("x-c", f.suspend(t, "x-c", contracts.ConditionAny, "a")[0], "")
	release, blocked := f.blockTheDeliveries(t, "x-a1", "x-a2")
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := f.deliverAll(ctx, b)
	other := f.deliverAll(context.Background(), c)
	cancel()
	got := answers(t, cancelled, 1)[0]
	require.ErrorIs(t, got.err, contracts.ErrCanceled, fmt.Sprint(got.err))
	release()
	drain(t, blocked, 2)
	require.NoError(t, answers(t, other, 1)[0].err)
	require.Empty(t, f.signals(t, "x-b"))
	require.Equal(t, contracts.StateSuspended, f.state(t, "x-b"))
	require.Len(t, f.signals(t, "x-c"), 1)
}

// Given two deliveries to one execution in one burst with a delivery to
// another, then a group takes one delivery per execution and the second
// to the same execution runs after it (and sees its signal): one group
// that commits, then one delivery alone, with no rollback.
func TestDeliverGroupOnePerExecution(t *testing.T) {
	f := newGroupFixture(t)
	x := f.suspend(t, "o-x", contracts.ConditionAll, "a", "b")
	y := f.suspend(t, "o-y", contracts.ConditionAny, "a")
	calls := []contracts.DeliverSignalArgs{signal("o-x", x[0], ""), signal("o-x", x[1], ""), signal("o-y", y[0], "")}
	release, blocked := f.blockTheDeliveries(t, "o-a1", "o-a2")
	ch := f.deliverAll(context.Background(), calls...)
	groups, stats := postgres.DeliverGroups(f.b), f.b.Stats()
	release()
	got := answers(t, ch, len(calls))
	drain(t, blocked, 2)
	for _, a := range got {
		require.NoError(t, a.err)
		require.Equal(t, contracts.OutcomeAccepted, a.out.Outcome)
	}
	require.NotEqual(t, got[0].out.Resumed, got[1].out.Resumed, "the second delivery to o-x resumes it")
	require.True(t, got[2].out.Resumed)
	require.Equal(t, groups+1, postgres.DeliverGroups(f.b))
	after := f.b.Stats()
	require.Equal(t, stats.Transactions+4, after.Transactions, "the blocked two, the group, and o-x's second alone")
	require.Equal(t, stats.Retries, after.Retries)
	require.Len(t, f.signals(t, "o-x"), 2)
}
