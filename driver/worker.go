package driver

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// BatchClaimer is an optional driver interface, found by type assertion: it
// claims up to args.Max executions in one call (docs/spec.md §8.8), each
// exactly as ClaimResumedExecution would, oldest first. Without it the
// Engine makes successive claims. The Engine validates args and defaults
// LeaseMs first.
type BatchClaimer interface {
	ClaimResumedExecutions(ctx context.Context, args contracts.ClaimBatchArgs) (contracts.ClaimBatchOutcome, error)
}

// ClaimableWatcher is an optional driver interface, found by type
// assertion: a backend that can push (Postgres LISTEN/NOTIFY, Valkey
// pub/sub) tells workers of every process that an execution became
// claimable, so that they claim at once instead of at their next poll.
//
// WatchClaimable blocks until ctx ends or the backend is closed, and calls
// wake (never concurrently) after every committed change, by any process,
// that made an execution claimable at once: a delivery that resumed it, a
// cancel, a release (docs/spec.md §8.8); and once after each
// (re)connection of its listener, since changes made meanwhile were not
// pushed. Calls may be spurious. A listener that fails retries with
// backoff; WatchClaimable returns an error only when the backend cannot
// watch at all (closed, or configured without push: unsupported), and nil
// when ctx ends. Wake-ups shorten a worker's wait; polling stays its bound.
type ClaimableWatcher interface {
	WatchClaimable(ctx context.Context, wake func()) error
}

// TxSuspender is an optional driver interface, found by type assertion: it
// runs suspend and create_waitpoint inside a transaction the application
// already holds (tx is the driver's transaction type: a pgx.Tx for
// PostgreSQL), so that the application's own writes and the suspension
// commit or roll back together, as River's InsertTx does for jobs. The
// outcome's tokens open their waitpoints only once tx commits; after a
// rollback nothing of the call is left and its tokens open nothing. A
// contract refusal leaves tx usable (the driver undoes its own writes, e.g.
// with a savepoint). A tx of another type answers invalid_input naming tx.
// The Engine validates and defaults args first, as for Suspend.
type TxSuspender interface {
	SuspendTx(ctx context.Context, tx any, args contracts.SuspendArgs) (contracts.SuspendOutcome, error)
	CreateWaitpointTx(ctx context.Context, tx any, args contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error)
}
