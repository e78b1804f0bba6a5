package sqlite

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// groupProbe is a table of the tests' own in the store's file: each probe
// write inserts its name, so the table shows which writes committed.
const groupProbe = `CREATE TABLE group_probe (name TEXT NOT NULL PRIMARY KEY)`

// plugWriter occupies b's writer with a write that waits until the
// returned function is called (which then checks that it committed), so
// that the writes submitted meanwhile queue up and run as one group.
func plugWriter(t *testing.T, b *Backend) (release func()) {
	t.Helper()
	running, unplug := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- b.write(context.Background(), func(txn, int64) error {
			close(running)
			<-unplug
			return nil
		})
	}()
	<-running
	return func() {
		close(unplug)
		require.NoError(t, <-done)
	}
}

// queue submits fn as a write of b and returns once the write waits in
// b's queue (so that writes queue in the order of the calls); the channel
// gives its answer.
func queue(t *testing.T, b *Backend, ctx context.Context, fn func(q txn, nowMs int64) error) <-chan error {
	t.Helper()
	n := b.w.queued()
	out := make(chan error, 1)
	go func() { out <- b.write(ctx, fn) }()
	for deadline := time.Now().Add(10 * time.Second); b.w.queued() <= n; time.Sleep(time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the write never reached the queue")
	}
	return out
}

// probe is a write that inserts name into group_probe, remembers its
// transaction in *tx, and then returns fail (nil: it succeeds).
func probe(name string, tx **sql.Tx, fail error) func(q txn, nowMs int64) error {
	return func(q txn, _ int64) error {
		*tx = q.tx
		if _, err := q.exec(`INSERT INTO group_probe (name) VALUES (?)`, name); err != nil {
			return err
		}
		return fail
	}
}

// committed lists the names in group_probe.
func committed(t *testing.T, b *Backend) []string {
	t.Helper()
	rows, err := b.db.Query(`SELECT name FROM group_probe ORDER BY name`)
	require.NoError(t, err)
	defer rows.Close()
	names := []string{}
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, rows.Err())
	return names
}

func openGrouped(t *testing.T, path string) *Backend {
	t.Helper()
	var b *Backend
	if path == MemoryPath {
		var err error
		b, err = Open(context.Background(), MemoryPath)
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
	} else {
		b, _ = openFile(t)
	}
	_, err := b.db.Exec(groupProbe)
	require.NoError(t, err)
	return b
}

// Writes that queue while the writer is busy run in one transaction;
// one rejected with a decision leaves no trace while the others commit;
// one whose caller gave up before its turn never runs; one whose context
// ends after its turn came commits with the group and answers its outcome.
func TestGroupRollsBackARejectedWriteAlone(t *testing.T) {
	for _, path := range []string{"file", MemoryPath} {
		t.Run(path, func(t *testing.T) {
			// given a writer busy with another write
			b := openGrouped(t, path)
			release := plugWriter(t, b)
			ctx := context.Background()
			rejection := contracts.ErrAlreadySuspended.With("rejected after writing")
			var txA, txB, txC, txD, txE *sql.Tx

			// when five writes queue: a success, a rejection, a success, one
			// whose caller gives up while it waits, one whose context ends
			// while it runs
			a := queue(t, b, ctx, probe("a", &txA, nil))
			rejected := queue(t, b, ctx, probe("b", &txB, rejection))
			c := queue(t, b, ctx, probe("c", &txC, nil))
			dctx, cancelD := context.WithCancel(ctx)
			d := queue(t, b, dctx, probe("d", &txD, nil))
			cancelD()
			require.ErrorIs(t, <-d, contracts.ErrCanceled, "a caller that gave up before its turn")
			ectx, cancelE := context.WithCancel(ctx)
			defer cancelE()
			e := queue(t, b, ectx, func(q txn, nowMs int64) error {
				cancelE()
				return probe("e", &txE, nil)(q, nowMs)
			})
			release()

			// then they ran in one transaction, and only the rejection and
			// the abandoned write left nothing
			require.NoError(t, <-a)
			require.ErrorIs(t, <-rejected, contracts.ErrAlreadySuspended)
			require.NoError(t, <-c)
			require.NoError(t, <-e, "a write whose context ended after its turn came answers its committed outcome")
			require.NotNil(t, txA)
			require.Same(t, txA, txB)
			require.Same(t, txA, txC)
			require.Same(t, txA, txE)
			require.Nil(t, txD, "the abandoned write ran")
			require.Equal(t, []string{"a", "c", "e"}, committed(t, b))
		})
	}
}

// A write of a group that fails with something other than a decision (a
// constraint the store enforces, here) may have lost the transaction: the
// group is run again one write per transaction, so the others commit and
// the failing one answers its error and leaves nothing.
func TestGroupRetriesOneByOneAfterAStorageFailure(t *testing.T) {
	// given a writer busy with another write, and a row the failing write
	// collides with
	b := openGrouped(t, MemoryPath)
	_, err := b.db.Exec(`INSERT INTO group_probe (name) VALUES ('taken')`)
	require.NoError(t, err)
	release := plugWriter(t, b)
	ctx := context.Background()
	var txA, txB, txC *sql.Tx

	// when three writes queue, the second inserting a row and then
	// breaking the primary key
	a := queue(t, b, ctx, probe("a", &txA, nil))
	failing := queue(t, b, ctx, func(q txn, nowMs int64) error {
		if err := probe("b", &txB, nil)(q, nowMs); err != nil {
			return err
		}
		_, err := q.exec(`INSERT INTO group_probe (name) VALUES ('taken')`)
		return err
	})
	c := queue(t, b, ctx, probe("c", &txC, nil))
	release()

	// then the others committed, each alone, and the failing one left
	// nothing
	require.NoError(t, <-a)
	require.ErrorIs(t, <-failing, contracts.ErrInternal)
	require.NoError(t, <-c)
	require.NotSame(t, txA, txC, "after the failure each write runs in a transaction of its own")
	require.Equal(t, []string{"a", "c", "taken"}, committed(t, b))
}

// A write that panics on the writer goroutine panics in its caller's
// goroutine, as it did before writes were grouped, and its group goes on
// without it.
func TestGroupHandsAPanicBackToItsCaller(t *testing.T) {
	// given a writer busy with another write
	b := openGrouped(t, MemoryPath)
	release := plugWriter(t, b)
	ctx := context.Background()
	var txA, txB, txC *sql.Tx

	// when three writes queue, the second panicking after it wrote
	a := queue(t, b, ctx, probe("a", &txA, nil))
	panicked := make(chan any, 1)
	n := b.w.queued()
	go func() {
		defer func() { panicked <- recover() }()
		_ = b.write(ctx, func(q txn, nowMs int64) error {
			_ = probe("b", &txB, nil)(q, nowMs)
			panic("write b failed")
		})
	}()
	for deadline := time.Now().Add(10 * time.Second); b.w.queued() <= n; time.Sleep(time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the write never reached the queue")
	}
	c := queue(t, b, ctx, probe("c", &txC, nil))
	release()

	// then its caller panics with its value, the others commit and the
	// writer keeps serving
	require.Equal(t, "write b failed", <-panicked)
	require.NoError(t, <-a)
	require.NoError(t, <-c)
	require.Equal(t, []string{"a", "c"}, committed(t, b))
	var tx *sql.Tx
	require.NoError(t, b.write(ctx, probe("d", &tx, nil)))
	require.Equal(t, []string{"a", "c", "d"}, committed(t, b))
}

// Operations of one group see each other's writes in queue order, as
// successive transactions would: a claim sees the delivery queued before
// it, a second suspend of an execution is refused and changes nothing.
func TestGroupedOperationsSeeEarlierWritesOfTheGroup(t *testing.T) {
	// given a suspended execution and a busy writer
	f := harness.Seeded(t)
	b := f.B.(*Backend)
	s0 := f.Suspend(drivertest.SuspendArgs("e0", "a"))
	release := plugWriter(t, b)
	results := make(chan func(), 2)

	// when a delivery, a claim and two suspends of one execution queue
	deliver := make(chan contracts.DeliverSignalOutcome, 1)
	claim := make(chan contracts.ClaimOutcome, 1)
	suspends := make(chan error, 2)
	enqueue := func(op func()) {
		n := b.w.queued()
		go op()
		for deadline := time.Now().Add(10 * time.Second); b.w.queued() <= n; time.Sleep(time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "the write never reached the queue")
		}
	}
	enqueue(func() {
		out, err := f.Eng.DeliverSignal(f.Ctx, drivertest.DeliverArgs(s0, 0, "d"))
		results <- func() { require.NoError(t, err) }
		deliver <- out
	})
	enqueue(func() {
		out, err := f.Eng.ClaimResumedExecution(f.Ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
		results <- func() { require.NoError(t, err) }
		claim <- out
	})
	for range 2 {
		enqueue(func() {
			_, err := f.Eng.Suspend(f.Ctx, drivertest.SuspendArgs("e1", "a", "b"))
			suspends <- err
		})
	}
	release()

	// then each saw the writes queued before it
	require.True(t, (<-deliver).Resumed)
	c := <-claim
	require.Equal(t, "e0", c.ExecutionID, "the claim saw the delivery of its group")
	require.Len(t, c.Signals, 1)
	first, second := <-suspends, <-suspends // in the order they answered
	if first != nil {
		first, second = second, first
	}
	require.NoError(t, first)
	require.ErrorIs(t, second, contracts.ErrAlreadySuspended)
	for range 2 {
		(<-results)()
	}
	got := f.List(10, "")
	require.Len(t, got.Executions, 1)
	require.Equal(t, "e1", got.Executions[0].ExecutionID)
	require.Equal(t, 2, got.Executions[0].Waitpoints)
	var waitpoints int
	require.NoError(t, b.db.QueryRow(`SELECT count(*) FROM waitpoints WHERE execution_id = 'e1'`).Scan(&waitpoints))
	require.Equal(t, 2, waitpoints, "the refused suspend left no waitpoint")
}
