package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// groupFixture is a backend over a fresh schema with executions claimed
// and a plain connection for holding their locks.
type groupFixture struct {
	b     *postgres.Backend
	e     *engine.Engine
	plain string
}

func newGroupFixture(t *testing.T) *groupFixture {
	t.Helper()
	return newGroupFixturePool(t, "")
}

// newGroupFixturePool is newGroupFixture with a pool of maxConns
// connections ("": the driver's default).
func newGroupFixturePool(t *testing.T, maxConns string) *groupFixture {
	t.Helper()
	plain := schemaURL(t)
	u := withParam(t, plain, postgres.ParamMigrate, postgres.MigrateAuto)
	if maxConns != "" {
		u = withParam(t, u, "pool_max_conns", maxConns)
	}
	b := openURL(t, u)
	e := engine.New(b)
	seed(t, e, "kid-a", 0x01)
	return &groupFixture{b: b, e: e, plain: plain}
}

// claimed suspends, resumes and claims the executions ids and returns
// their leases.
func (f *groupFixture) claimed(t *testing.T, ids ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	f.resumed(t, ids...)
	leases := map[string]string{}
	for len(leases) < len(ids) {
		out, err := f.e.ClaimResumedExecutions(ctx, contracts.ClaimBatchArgs{WorkerID: "w", LeaseMs: 60_000, Max: 100})
		require.NoError(t, err)
		require.NotEmpty(t, out.Claims, "claims")
		for _, c := range out.Claims {
			leases[c.ExecutionID] = c.LeaseID
		}
	}
	return leases
}

// exists reports whether the store still remembers execution id.
func (f *groupFixture) exists(t *testing.T, id string) bool {
	t.Helper()
	d, err := f.e.DescribeExecution(context.Background(), contracts.DescribeExecutionArgs{ExecutionID: id})
	if errors.Is(err, contracts.ErrExecutionNotFound) {
		return false
	}
	require.NoError(t, err)
	return d.ExecutionID == id
}

// holdLock takes the advisory lock of execution id in a transaction of
// its own connection and returns the function that ends it.
func (f *groupFixture) holdLock(t *testing.T, id string) func() {
	t.Helper()
	c := connect(t, f.plain)
	tx, err := c.Begin(context.Background())
	require.NoError(t, err)
	_, err = tx.Exec(context.Background(), `SELECT pg_advisory_xact_lock(hashtext('flowfabric.execution'), hashtext($1))`, id)
	require.NoError(t, err)
	var once sync.Once
	end := func() { once.Do(func() { _ = tx.Rollback(context.Background()) }) }
	t.Cleanup(end)
	return end
}

// waiters counts the sessions waiting for the advisory lock of id.
func (f *groupFixture) waiters(t *testing.T, c *pgx.Conn, id string) int {
	var n int
	require.NoError(t, c.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted AND objid::bigint = (hashtext($1)::bigint & 4294967295)`, id).Scan(&n))
	return n
}

// blockTheGroups occupies both group slots with completes of executions
// whose locks another session holds; the completes called until the
// returned release runs queue, and then run as one group. It returns the
// answers of the two blocked completes.
func (f *groupFixture) blockTheGroups(t *testing.T, leases map[string]string, blockers ...string) (release func(), answers <-chan error) {
	t.Helper()
	return f.blockWith(t, "the complete of", blockers, func(id string) error {
		_, err := f.e.CompleteExecution(context.Background(), contracts.CompleteArgs{ExecutionID: id, LeaseID: leases[id]})
		return err
	})
}

// blockWith occupies both group slots of one kind of call: for each
// execution of blockers it holds the execution's advisory lock in another
// session and starts call(id), which waits for it (what names the call in
// messages). The calls of that kind made until the returned release runs
// queue, and then run as one group. It returns the blocked calls' answers.
func (f *groupFixture) blockWith(t *testing.T, what string, blockers []string, call func(id string) error) (release func(), answers <-chan error) {
	t.Helper()
	obs := connect(t, f.plain)
	var ends []func()
	ch := make(chan error, len(blockers))
	for _, id := range blockers {
		ends = append(ends, f.holdLock(t, id))
		go func() { ch <- call(id) }()
		eventually(t, what+" "+id+" waiting for its lock", func() bool { return f.waiters(t, obs, id) == 1 })
	}
	return func() {
		for _, end := range ends {
			end()
		}
	}, ch
}

type answer struct {
	id  string
	err error
}

// completeAll calls complete for each (id, lease) at once and waits until
// every call is queued (a short pause), returning the answers' channel.
func (f *groupFixture) completeAll(ctx context.Context, calls [][2]string) <-chan answer {
	ch := make(chan answer, len(calls))
	for _, c := range calls {
		go func() {
			_, err := f.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: c[0], LeaseID: c[1]})
			ch <- answer{c[0], err}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	return ch
}

func collect(t *testing.T, ch <-chan answer, n int) map[string][]error {
	t.Helper()
	out := map[string][]error{}
	for range n {
		select {
		case a := <-ch:
			out[a.id] = append(out[a.id], a.err)
		case <-time.After(30 * time.Second):
			t.Fatal("a complete did not answer")
		}
	}
	return out
}

// Given completes that run as one group, when one of them holds the wrong
// lease, then it alone answers lease_mismatch and the others complete.
func TestCompleteGroupRejectionTouchesNoOther(t *testing.T) {
	f := newGroupFixture(t)
	ids := []string{"g-a1", "g-a2", "g-b", "g-c", "g-d"}
	leases := f.claimed(t, ids...)
	release, blocked := f.blockTheGroups(t, leases, "g-a1", "g-a2")
	ch := f.completeAll(context.Background(), [][2]string{{"g-b", leases["g-b"]}, {"g-c", "00000000-0000-4000-8000-000000000000"}, {"g-d", leases["g-d"]}})
	before := postgres.CompleteGroups(f.b)
	release()
	got := collect(t, ch, 3)
	require.NoError(t, <-blocked)
	require.NoError(t, <-blocked)
	require.Equal(t, before+1, postgres.CompleteGroups(f.b), "one group of three")
	require.NoError(t, got["g-b"][0])
	require.ErrorIs(t, got["g-c"][0], contracts.ErrLeaseMismatch)
	require.NoError(t, got["g-d"][0])
	require.False(t, f.exists(t, "g-b"))
	require.True(t, f.exists(t, "g-c"))
	require.False(t, f.exists(t, "g-d"))
}

// Given concurrent completes of one execution under its lease, then
// exactly one completes and the others answer execution_not_found, in a
// group as alone.
func TestCompleteGroupSameExecution(t *testing.T) {
	f := newGroupFixture(t)
	leases := f.claimed(t, "s-a1", "s-a2", "s-x")
	release, blocked := f.blockTheGroups(t, leases, "s-a1", "s-a2")
	calls := make([][2]string, 5)
	for i := range calls {
		calls[i] = [2]string{"s-x", leases["s-x"]}
	}
	ch := f.completeAll(context.Background(), calls)
	release()
	got := collect(t, ch, len(calls))["s-x"]
	<-blocked
	<-blocked
	completed := 0
	for _, err := range got {
		if err == nil {
			completed++
			continue
		}
		require.ErrorIs(t, err, contracts.ErrExecutionNotFound)
	}
	require.Equal(t, 1, completed)
	require.False(t, f.exists(t, "s-x"))
}

// Given a group whose lock wait outlasts the group's lock timeout (the
// server fails it), then its completes run again one by one and each
// answers what it decides alone.
func TestCompleteGroupFailureRerunsOneByOne(t *testing.T) {
	f := newGroupFixture(t)
	leases := f.claimed(t, "f-a1", "f-a2", "f-b", "f-c", "f-d")
	release, blocked := f.blockTheGroups(t, leases, "f-a1", "f-a2")
	ch := f.completeAll(context.Background(), [][2]string{{"f-b", leases["f-b"]}, {"f-c", leases["f-c"]}, {"f-d", "00000000-0000-4000-8000-000000000000"}})
	endC := f.holdLock(t, "f-c") // the group waits for it past its lock timeout
	release()
	<-blocked
	<-blocked
	time.Sleep(1500 * time.Millisecond)
	endC()
	got := collect(t, ch, 3)
	require.NoError(t, got["f-b"][0])
	require.NoError(t, got["f-c"][0])
	require.ErrorIs(t, got["f-d"][0], contracts.ErrLeaseMismatch)
	require.False(t, f.exists(t, "f-b"))
	require.False(t, f.exists(t, "f-c"))
	require.True(t, f.exists(t, "f-d"))
}

// Given a group whose connection is terminated while it waits for a lock
// (pg_terminate_backend from another session), then every caller answers,
// and an answer "completed" means the execution is gone, an error that it
// is still there.
func TestCompleteGroupConnectionKilled(t *testing.T) {
	f := newGroupFixture(t)
	leases := f.claimed(t, "k-a1", "k-a2", "k-b", "k-c", "k-d")
	release, blocked := f.blockTheGroups(t, leases, "k-a1", "k-a2")
	ch := f.completeAll(context.Background(), [][2]string{{"k-b", leases["k-b"]}, {"k-c", leases["k-c"]}, {"k-d", leases["k-d"]}})
	endC := f.holdLock(t, "k-c")
	release()
	<-blocked
	<-blocked
	obs := connect(t, f.plain)
	eventually(t, "the group waiting for k-c", func() bool { return f.waiters(t, obs, "k-c") == 1 })
	var killed bool
	require.NoError(t, obs.QueryRow(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted AND objid::bigint = (hashtext('k-c')::bigint & 4294967295)`).Scan(&killed))
	require.True(t, killed)
	time.Sleep(100 * time.Millisecond)
	endC()
	got := collect(t, ch, 3)
	for _, id := range []string{"k-b", "k-c", "k-d"} {
		err := got[id][0]
		require.Equal(t, err != nil, f.exists(t, id), "%s answered %v", id, err)
	}
}

// Given a caller whose context ends while its complete waits in the
// queue, then it answers the context's error and its execution stays;
// the others of the queue complete.
func TestCompleteGroupCancelledCaller(t *testing.T) {
	f := newGroupFixture(t)
	leases := f.claimed(t, "c-a1", "c-a2", "c-b", "c-c")
	release, blocked := f.blockTheGroups(t, leases, "c-a1", "c-a2")
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := f.completeAll(ctx, [][2]string{{"c-b", leases["c-b"]}})
	other := f.completeAll(context.Background(), [][2]string{{"c-c", leases["c-c"]}})
	cancel()
	b := collect(t, cancelled, 1)["c-b"][0]
	require.ErrorIs(t, b, contracts.ErrCanceled, fmt.Sprint(b))
	release()
	<-blocked
	<-blocked
	require.NoError(t, collect(t, other, 1)["c-c"][0])
	require.True(t, f.exists(t, "c-b"))
	require.False(t, f.exists(t, "c-c"))
}
