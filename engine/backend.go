package engine

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Keystore is the signing-secret part of a driver (docs/spec.md §3–§4).
//
// Drivers receive only arguments that passed the contract's validation: the
// Engine validates once, before any I/O. Every method is atomic per
// partition and returns *contracts.Error values (or errors the Engine maps
// with contracts.AsError).
type Keystore interface {
	// Seed installs args.Kid as the current kid of every partition when no
	// partition has one; otherwise it reports already_seeded or
	// already_initialized and writes nothing (but repairs a partition left
	// without a current kid by an interrupted seed).
	Seed(ctx context.Context, args contracts.SeedArgs) (contracts.SeedOutcome, error)
	// RotateAll rotates every partition, each atomically. Per-partition
	// failures are reported in their entries; the error return is for
	// failures of the call as a whole.
	RotateAll(ctx context.Context, args contracts.RotateArgs) (contracts.RotateAllResult, error)
	// ListKids lists each partition's current kid and unexpired verifying kids.
	ListKids(ctx context.Context, args contracts.ListKidsArgs) (contracts.ListKidsResult, error)
	// Sign signs args.Message with the current kid of the scope's partition.
	Sign(ctx context.Context, args contracts.SignArgs) (contracts.SignResult, error)
	// Verify checks a token against the scope's partition at the backend's clock.
	Verify(ctx context.Context, args contracts.VerifyArgs) (contracts.VerifyResult, error)
}

// Suspensions is the suspension and signal part of a driver (docs/spec.md §5).
// Every method is one atomic step of the backend (one transaction or one
// script call per partition), evaluated at the backend's clock.
type Suspensions interface {
	Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error)
	DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error)
	ObserveSignals(ctx context.Context, args contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error)
	ListSuspended(ctx context.Context, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error)
	ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error)
	CompleteExecution(ctx context.Context, args contracts.CompleteArgs) (contracts.CompleteOutcome, error)
}

// Backend is a storage driver: what a scheme's Opener returns. Extras that
// only some backends have (change notifications, cluster topology) are
// optional interfaces found by type assertion, never members of Backend.
type Backend interface {
	Keystore
	Suspensions
	// Capabilities declares, as data, how this backend differs from others.
	Capabilities() Capabilities
	// Ping checks that the backend is reachable.
	Ping(ctx context.Context) error
	// Close releases the backend's resources. Calls after Close fail.
	Close() error
}

// Capabilities declares a backend's differences as data, so that callers and
// the conformance suite never branch on a driver's name.
type Capabilities struct {
	// Partitions is the number of keystore partitions P (docs/spec.md §4), ≥ 1.
	Partitions int
	// Persistent reports that state survives Close and a new Open of the same URL.
	Persistent bool
	// SharedAcrossProcesses reports that several processes may open the same
	// store at once (SQLite file, Postgres, Valkey; not memory).
	SharedAcrossProcesses bool
}
