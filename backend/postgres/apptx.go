package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

var _ driver.TxSuspender = (*Backend)(nil)

// SuspendTx is Suspend inside the application's transaction tx (a pgx.Tx
// on this backend's database), so that the application's writes and the
// suspension commit or roll back together (engine.Engine.SuspendTx). It
// takes the same locks as Suspend, held until tx ends: keep tx short, since
// other writers of the execution, claims that reach its row, and keystore
// changes (seed, rotate_all, revoke_kid, rewrap: they wait for every
// execution writer in flight) wait for it; in particular, do not make a
// keystore change and wait for it while holding tx open. It runs once, at
// tx's isolation level (READ COMMITTED serves: the locks order it after
// every other writer of the execution), inside a savepoint, so that a
// refusal undoes its own writes and leaves tx usable; a serialization
// failure of a REPEATABLE READ or SERIALIZABLE tx (or a unique violation
// only a concurrent writer causes, answered as contention) is the
// application's to retry, like any other of its statements.
func (b *Backend) SuspendTx(ctx context.Context, tx any, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	ring := b.keyring.Load()
	err := b.inAppTx(ctx, tx, args.ExecutionID, func(tx dbtx) error {
		var err error
		out, err = suspendIn(ctx, tx, ring, args)
		return err
	})
	if err != nil {
		return contracts.SuspendOutcome{}, err
	}
	return out, nil
}

// CreateWaitpointTx is CreateWaitpoint inside the application's transaction
// tx; see SuspendTx.
func (b *Backend) CreateWaitpointTx(ctx context.Context, tx any, args contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	var out contracts.CreateWaitpointOutcome
	ring := b.keyring.Load()
	err := b.inAppTx(ctx, tx, args.ExecutionID, func(tx dbtx) error {
		var err error
		out, err = createWaitpoint(ctx, tx, ring, args)
		return err
	})
	if err != nil {
		return contracts.CreateWaitpointOutcome{}, err
	}
	return out, nil
}

// inAppTx runs fn once in a savepoint of the application's transaction,
// behind the gate, the execution's transaction-scoped lock and the lock of
// its row (the locks of inExecTx); errors come back interpreted.
func (b *Backend) inAppTx(ctx context.Context, appTx any, executionID string, fn func(dbtx) error) error {
	if err := b.usable(); err != nil {
		return err
	}
	tx, ok := appTx.(pgx.Tx)
	if !ok || tx == nil {
		return contracts.Invalid("tx", fmt.Sprintf("must be a pgx.Tx on this backend's database, not %T", appTx))
	}
	sp, err := tx.Begin(ctx) // a savepoint
	if err != nil {
		return interpretError(err)
	}
	defer func() { _ = sp.Rollback(context.WithoutCancel(ctx)) }() // after Commit: a no-op
	if _, err := sp.Exec(ctx, execGateSQL); err != nil {
		return interpretError(err)
	}
	if _, err := sp.Exec(ctx, execXactLockSQL, executionID); err != nil {
		return interpretError(err)
	}
	if _, err := sp.Exec(ctx, lockExecutionRowSQL, executionID); err != nil {
		return interpretError(err)
	}
	if err := fn(sp); err != nil {
		return interpretError(err)
	}
	return interpretError(sp.Commit(ctx))
}
