// Package driver is what storage-driver authors program against, as
// database/sql/driver is for database/sql: the service-provider interface
// (Backend, made of Keystore and Suspensions, plus Capabilities, Ping and
// Close), the optional interfaces a driver may add (KeystoreSnapshotter,
// KeystoreWatcher, SecretSealer), and the driver kit: the pure decisions of
// docs/spec.md that a driver loads its state into, so that no driver words
// the contract on its own.
//
// Applications do not import this package: they use engine.Engine and the
// types of package contracts. A driver registers its URL scheme with
// engine.Register and passes the conformance suite (package conformance).
//
// # The driver kit
//
// Drivers that hold state as rows or documents load it, let a kit function
// decide, and write the result back in one atomic step:
//
//   - keystore: PlanSeed, PlanRotate (or RotatePartition), ListPartition,
//     SignWith, VerifyWith, DiffKeys;
//   - suspensions: CheckSuspendReplay, CheckSuspend, NewSuspension,
//     AuthorizeSignal, CheckDeliverable, NewSignal, ConditionHolds,
//     ExecutionState.Claimable, PageSuspended, CheckComplete;
//   - tokens and routing: WaitpointInput, SignatureInput, SignToken, CheckToken, TokenFingerprint,
//     PartitionOf, CRC16, NewID, FormatID;
//   - errors whose detail text the goldens fix: NotInitialized,
//     SignatureMismatch, AlreadySuspended, and the others in errors.go;
//   - secrets at rest (with a *kek.Keyring; nil means plain): OpenRecord,
//     OpenForCheck, OpenKeys, OpenKid, SealNew, RewrapSecret, RewrapKeys.
//
// # Evolving the interface
//
// A new core operation reaches drivers as an optional interface first: the
// Engine finds it by type assertion and answers unavailable / unsupported
// for a driver without it, so third-party drivers keep compiling. It joins
// Backend only at a major version. Every method documents what is atomic,
// what is idempotent and which error answers which case; arguments always
// arrive validated. CONTRIBUTING.md lists the files an operation touches.
package driver
