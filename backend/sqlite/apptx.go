package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

var _ driver.TxSuspender = (*Backend)(nil)

// DB returns the backend's write handle on its file. An application may
// keep tables of its own in the same file and begin its transactions on
// this handle (BEGIN IMMEDIATE: they hold the file's write lock), then
// suspend or create waitpoints inside them with engine.Engine.SuspendTx and
// CreateWaitpointTx, so that its writes and the wait commit together.
// The handle has one connection: while such a transaction is open, every
// other write of this process waits for it — keep it short, and make no
// other Engine call from inside it. Do not close the handle; Close does.
func (b *Backend) DB() *sql.DB { return b.db }

// SuspendTx is Suspend inside tx, a *sql.Tx begun on DB(), in a savepoint:
// a refusal undoes only its own writes and leaves tx usable; the outcome's
// tokens open their waitpoints once tx commits.
func (b *Backend) SuspendTx(ctx context.Context, tx any, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	return inAppTx(ctx, b, tx, func(q txn, nowMs int64) (contracts.SuspendOutcome, error) { return suspend(q, args, nowMs) })
}

// CreateWaitpointTx is CreateWaitpoint inside tx, a *sql.Tx begun on DB();
// see SuspendTx.
func (b *Backend) CreateWaitpointTx(ctx context.Context, tx any, args contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	return inAppTx(ctx, b, tx, func(q txn, nowMs int64) (contracts.CreateWaitpointOutcome, error) {
		return createWaitpoint(q, args, nowMs)
	})
}

// savepoint names the savepoint the calls inside an application's
// transaction run in.
const savepoint = "ff_call"

// inAppTx runs fn once in a savepoint of the application's transaction.
func inAppTx[T any](ctx context.Context, b *Backend, appTx any, fn func(q txn, nowMs int64) (T, error)) (T, error) {
	var zero T
	if b.closed.Load() {
		return zero, errClosed()
	}
	tx, ok := appTx.(*sql.Tx)
	if !ok || tx == nil {
		return zero, contracts.Invalid("tx", fmt.Sprintf("must be a *sql.Tx begun on this backend's DB(), not %T", appTx))
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
		return zero, interpretError(contextFirst(ctx, err))
	}
	out, err := fn(txn{ctx: ctx, tx: tx, stmts: b.wstmts, ring: b.ring.Load()}, b.nowMs())
	if err != nil {
		_, _ = tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO "+savepoint+"; RELEASE "+savepoint)
		if strings.Contains(err.Error(), "statement from different database") {
			return zero, contracts.Invalid("tx", "must be begun on this backend's DB(), not on another handle")
		}
		return zero, interpretError(contextFirst(ctx, err))
	}
	if _, err := tx.ExecContext(ctx, "RELEASE "+savepoint); err != nil {
		return zero, interpretError(contextFirst(ctx, err))
	}
	return out, nil
}
