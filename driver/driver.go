package driver

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Keystore is the signing-secret part of a driver (docs/spec.md §3–§4).
//
// Every method receives arguments that already passed validation (the
// Engine validates once, before any I/O), is atomic per partition, decides
// time with the backend's clock (docs/spec.md §2.1), and returns
// *contracts.Error values; any other error is mapped by the Engine to
// unavailable / internal_error, so a driver maps its native errors itself
// (one interpretError per driver, wrapping the cause with Wrapping).
type Keystore interface {
	// Seed installs args.Kid as the current kid of every partition when no
	// partition has one (seeded). When args.Kid is already installed it
	// answers already_seeded with same_secret; when another kid is current
	// it answers already_initialized. Idempotent: it writes nothing in the
	// already_* cases, except to repair a partition that an interrupted
	// seed left without a current kid (docs/spec.md §4.1).
	Seed(ctx context.Context, args contracts.SeedArgs) (contracts.SeedOutcome, error)
	// RotateAll rotates every partition, each in one atomic step, and
	// answers one entry per partition in partition order (docs/spec.md
	// §4.2). A partition that fails carries its error in its entry
	// (rotation_conflict, or a transport error); the error return is for
	// failures of the call as a whole. Re-running the same rotation is a
	// noop on partitions already rotated, so it repairs a partial one.
	RotateAll(ctx context.Context, args contracts.RotateArgs) (contracts.RotateAllResult, error)
	// ListKids lists each partition's current kid and its verifying kids
	// that have not expired, sorted by expiry, then kid (docs/spec.md §4.3).
	// It reads no secret, so it answers even when a KEK is missing.
	ListKids(ctx context.Context, args contracts.ListKidsArgs) (contracts.ListKidsResult, error)
	// Sign signs args.Message with the current kid of the scope's partition
	// (docs/spec.md §4.4); hmac_secret_not_initialized when it has none.
	Sign(ctx context.Context, args contracts.SignArgs) (contracts.SignResult, error)
	// Verify checks args.Token against the scope's partition at the
	// backend's clock and compares the MAC in constant time (CheckToken
	// decides; docs/spec.md §3, §4.4).
	Verify(ctx context.Context, args contracts.VerifyArgs) (contracts.VerifyResult, error)
}

// KidRevoker is the optional part of a driver for revoke_kid (docs/spec.md
// §8.7); the Engine answers unavailable / unsupported without it.
type KidRevoker interface {
	// RevokeKid revokes args.Kid on every partition, each in one atomic
	// step, and answers one entry per partition in partition order
	// (RevokePartition decides): a verifying kid that still verifies stops
	// verifying at once (its tokens answer token_expired), its secret is
	// deleted and its name kept for good, so rotate never reuses it;
	// unknown, expired and revoked kids are noop; the current kid is
	// kid_is_current in its entry. Idempotent: re-running it repairs a
	// partial revocation. Drivers that push keystore changes
	// (KeystoreWatcher) push a revocation like a rotation.
	RevokeKid(ctx context.Context, args contracts.RevokeKidArgs) (contracts.RevokeKidResult, error)
}

// Suspensions is the suspension and signal part of a driver (docs/spec.md
// §5). Every method is one atomic step of the backend (one transaction, or
// one script call per partition), reads the backend's clock once and uses
// that instant for every decision and timestamp, receives validated
// arguments, and returns *contracts.Error values. Nothing is written when a
// method returns an error.
type Suspensions interface {
	// Suspend opens the waitpoints of args for args.ExecutionID and signs
	// their tokens with the current kid of the execution's partition
	// (docs/spec.md §5.1, which gives the order of checks). Idempotent per
	// (execution_id, idempotency_key): a replay with the same arguments
	// answers the first outcome byte for byte and writes nothing; other
	// arguments give idempotency_mismatch. Errors: hmac_secret_not_initialized,
	// already_suspended, lease_mismatch.
	Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error)
	// DeliverSignal records one signal on a waitpoint after the checks of
	// docs/spec.md §5.2, in that order. A missing waitpoint, another
	// execution's waitpoint and a wrong MAC give the same
	// invalid_token / signature_mismatch. Idempotent per (waitpoint_id,
	// idempotency_key): of concurrent deliveries with one key exactly one is
	// accepted and the others answer duplicate with its signal_id. Resuming
	// the execution closes every waitpoint of the suspension in the same step.
	DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error)
	// ObserveSignals returns the signals of the execution's latest
	// suspension in delivery order, in any state while the execution is
	// remembered; execution_not_found otherwise (docs/spec.md §5.3). It
	// writes nothing.
	ObserveSignals(ctx context.Context, args contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error)
	// ListSuspended pages the executions in state suspended, ordered by
	// (suspended_at_ms, execution_id), strictly after args.Cursor; drivers
	// fetch limit+1 rows and let PageSuspended build the page (docs/spec.md
	// §5.4). It writes nothing.
	ListSuspended(ctx context.Context, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error)
	// ClaimResumedExecution claims the oldest claimable execution (resumed,
	// timed out, or claimed with an expired lease) for args.WorkerID with a
	// new lease, or answers outcome none (docs/spec.md §5.5). Each
	// claimable execution goes to exactly one of any number of concurrent
	// callers.
	ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error)
	// CompleteExecution forgets a claimed execution and everything recorded
	// for it, when args.LeaseID is its lease, even an expired one nobody
	// re-claimed (docs/spec.md §5.6). Errors: execution_not_found,
	// lease_mismatch.
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
	// Persistent reports that state survives Close and a new Open of the
	// same URL, and a restart of the store's server where it has one: false
	// for in-process memory and for a Valkey server without AOF or RDB,
	// where a restart loses everything (docs/spec.md §6.1; ff serve warns).
	Persistent bool
	// SharedAcrossProcesses reports that several processes may open the same
	// store at once (SQLite file, Postgres, Valkey; not memory).
	SharedAcrossProcesses bool
}
