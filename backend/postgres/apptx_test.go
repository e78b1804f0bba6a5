package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// appStore is an application's pool on a fresh schema, with an orders
// table of its own, and an Engine built on that pool (postgres.New).
func appStore(t *testing.T) (*pgxpool.Pool, *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, schemaURL(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(ctx, `CREATE TABLE orders (id text PRIMARY KEY, status text NOT NULL)`)
	require.NoError(t, err)
	b, err := postgres.New(ctx, pool, postgres.WithMigrate())
	require.NoError(t, err)
	e := engine.New(b)
	t.Cleanup(func() { _ = e.Close() })
	seed(t, e, "kid-a", 0x01)
	return pool, e
}

// Given an application transaction that writes its own row and suspends
// in it (Engine.SuspendTx), when it rolls back, then neither the row nor
// the suspension is left and the returned token opens nothing; when it
// commits, both are there, the token delivers and the execution is
// claimable.
func TestSuspendTxCommitsOrRollsBackWithTheApplication(t *testing.T) {
	ctx := context.Background()
	pool, e := appStore(t)

	run := func(id string, commit bool) contracts.SuspendOutcome {
		t.Helper()
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
		_, err = tx.Exec(ctx, `INSERT INTO orders VALUES ($1, 'awaiting approval')`, id)
		require.NoError(t, err)
		s, err := e.SuspendTx(ctx, tx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}}})
		require.NoError(t, err)
		// Not visible outside the transaction before it commits.
		_, err = e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: id, WaitpointID: s.Waitpoints[0].WaitpointID})
		require.True(t, errors.Is(err, contracts.ErrExecutionNotFound) || errors.Is(err, contracts.ErrWaitpointNotFound), "before commit: %v", err)
		if commit {
			require.NoError(t, tx.Commit(ctx))
		} else {
			require.NoError(t, tx.Rollback(ctx))
		}
		return s
	}
	deliver := func(s contracts.SuspendOutcome) (contracts.DeliverSignalOutcome, error) {
		w := s.Waitpoints[0]
		return e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: s.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: "ok"})
	}

	rolled := run("order-rolled-back", false)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&n))
	require.Zero(t, n, "the application's row after rollback")
	_, err := deliver(rolled)
	require.ErrorIs(t, err, contracts.ErrSignatureMismatch, "the rolled-back suspension's token opens nothing (no existence oracle)")
	l, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{})
	require.NoError(t, err)
	require.Empty(t, l.Executions, "suspended after rollback")

	committed := run("order-committed", true)
	out, err := deliver(committed)
	require.NoError(t, err)
	require.True(t, out.Resumed)
	c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w"})
	require.NoError(t, err)
	require.Equal(t, "order-committed", c.ExecutionID)
}

// A refusal inside the application's transaction (already_suspended)
// undoes only the call's own writes: the transaction goes on and commits
// its other work. A transaction of another kind is invalid_input naming tx.
func TestSuspendTxRefusalLeavesTheTransactionUsable(t *testing.T) {
	ctx := context.Background()
	pool, e := appStore(t)
	_, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "order-1", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	require.NoError(t, err)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = e.SuspendTx(ctx, tx, contracts.SuspendArgs{ExecutionID: "order-1", Waitpoints: []contracts.WaitpointSpec{{Key: "b"}}})
	require.ErrorIs(t, err, contracts.ErrAlreadySuspended)
	_, err = e.CreateWaitpointTx(ctx, tx, contracts.CreateWaitpointArgs{ExecutionID: "order-2", Key: "pre", ExpiresInMs: 60_000})
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO orders VALUES ('order-2', 'waiting')`)
	require.NoError(t, err, "the transaction after a refusal")
	require.NoError(t, tx.Commit(ctx))

	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "order-2", Waitpoints: []contracts.WaitpointSpec{{Key: "x"}}})
	require.NoError(t, err, "the execution the committed transaction remembered")
	require.Equal(t, contracts.OutcomeSuspended, s.Outcome)

	_, err = e.SuspendTx(ctx, "not a transaction", contracts.SuspendArgs{ExecutionID: "order-3", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	require.ErrorIs(t, err, contracts.ErrInvalidInput)
	require.ErrorContains(t, err, "tx: must be a pgx.Tx")
}

// New leaves the application's pool open when the Backend closes.
func TestNewLeavesTheApplicationsPoolOpen(t *testing.T) {
	ctx := context.Background()
	pool, e := appStore(t)
	require.NoError(t, e.Close())
	require.NoError(t, pool.Ping(ctx))
	_, err := postgres.New(ctx, nil)
	require.ErrorIs(t, err, contracts.ErrInvalidInput)
}
