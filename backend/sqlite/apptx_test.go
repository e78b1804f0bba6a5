package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/sqlite"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Given an application table in the store's file and a transaction begun
// on the backend's DB(), a suspend inside it rolls back with it (no row,
// no suspension, a token that opens nothing) or commits with it (both
// there, the token delivers, the execution is claimable); a refusal inside
// it leaves it usable; a transaction of another handle is invalid_input
// naming tx and changes nothing.
func TestSuspendTxCommitsOrRollsBackWithTheApplication(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	b, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	e := engine.New(b)
	t.Cleanup(func() { _ = e.Close() })
	_, err = e.Seed(ctx, contracts.SeedArgs{Kid: "k", Secret: make(contracts.Secret, 32)})
	require.NoError(t, err)
	_, err = b.DB().ExecContext(ctx, `CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT NOT NULL)`)
	require.NoError(t, err)
	countOrders := func() (n int) {
		require.NoError(t, b.DB().QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&n))
		return n
	}
	suspendIn := func(tx *sql.Tx, id string) contracts.SuspendOutcome {
		t.Helper()
		_, err := tx.ExecContext(ctx, `INSERT INTO orders VALUES (?, 'awaiting approval')`, id)
		require.NoError(t, err)
		s, err := e.SuspendTx(ctx, tx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}}})
		require.NoError(t, err)
		return s
	}
	deliver := func(s contracts.SuspendOutcome) (contracts.DeliverSignalOutcome, error) {
		w := s.Waitpoints[0]
		return e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: s.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: "ok"})
	}

	tx, err := b.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	rolled := suspendIn(tx, "order-1")
	require.NoError(t, tx.Rollback())
	require.Zero(t, countOrders())
	_, err = deliver(rolled)
	require.ErrorIs(t, err, contracts.ErrSignatureMismatch, "the rolled-back suspension's token opens nothing")

	tx, err = b.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	committed := suspendIn(tx, "order-2")
	_, err = e.SuspendTx(ctx, tx, contracts.SuspendArgs{ExecutionID: "order-2", Waitpoints: []contracts.WaitpointSpec{{Key: "other"}}})
	require.ErrorIs(t, err, contracts.ErrAlreadySuspended, "a second suspend in the same transaction")
	_, err = e.CreateWaitpointTx(ctx, tx, contracts.CreateWaitpointArgs{ExecutionID: "order-3", Key: "early", ExpiresInMs: 60_000})
	require.NoError(t, err, "the transaction after a refusal")
	require.NoError(t, tx.Commit())
	require.Equal(t, 1, countOrders())
	out, err := deliver(committed)
	require.NoError(t, err)
	require.True(t, out.Resumed)
	c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w"})
	require.NoError(t, err)
	require.Equal(t, "order-2", c.ExecutionID)

	other, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "other.db"))
	require.NoError(t, err)
	defer other.Close()
	otx, err := other.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer otx.Rollback() //nolint:errcheck
	_, err = e.SuspendTx(ctx, otx, contracts.SuspendArgs{ExecutionID: "order-4", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	require.ErrorIs(t, err, contracts.ErrInvalidInput)
	require.ErrorContains(t, err, "tx: must be begun on this backend's DB()")
	_, err = e.SuspendTx(ctx, "not a transaction", contracts.SuspendArgs{ExecutionID: "order-4", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	require.ErrorContains(t, err, "tx: must be a *sql.Tx")
}
