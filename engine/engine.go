package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Engine is the facade applications call. It validates every argument once,
// before any I/O, so a rejected call changes nothing; it fills defaults;
// and it maps every driver error onto the contract's *contracts.Error.
// An Engine is safe for concurrent use.
type Engine struct {
	b        driver.Backend
	cacheTTL time.Duration
	ks       *keystoreCache // nil when the keystore cache is off
	watch    *watcher       // nil unless the cache is on and b is a KeystoreWatcher
	wake     wakers         // WatchClaimable's watchers
	limits   contracts.SignalLimits
}

// Option configures an Engine.
type Option func(*Engine)

// WithSignalLimits sets the budgets every delivery is checked against
// (docs/spec.md §8.3): signals per waitpoint, signals per suspension and
// payload bytes per suspension. Zero fields keep the defaults
// (contracts.DefaultSignalLimits). A limit may be lowered at will and raised
// to at most ten times its default; WithSignalLimits panics on any other
// value, as a programming error. All Engines on one store should use the
// same limits: the budgets are checked where the signal is recorded.
func WithSignalLimits(l contracts.SignalLimits) Option {
	if err := l.Validate(); err != nil {
		panic("engine: WithSignalLimits: " + err.Error())
	}
	return func(e *Engine) { e.limits = l.OrDefaults() }
}

// New returns an Engine over an already opened backend, bypassing the scheme
// registry. The keystore cache (WithKeystoreCache) is on with
// DefaultKeystoreCacheTTL when the backend implements KeystoreSnapshotter;
// when the backend also implements KeystoreWatcher, the Engine watches the
// store in the background (until Close) and the cache sees keystore changes
// made elsewhere as soon as they are pushed.
func New(b driver.Backend, opts ...Option) *Engine {
	e := &Engine{b: b, cacheTTL: DefaultKeystoreCacheTTL, limits: contracts.DefaultSignalLimits()}
	for _, o := range opts {
		o(e)
	}
	if src, ok := b.(driver.KeystoreSnapshotter); ok && e.cacheTTL > 0 {
		if p := b.Capabilities().Partitions; p >= 1 {
			e.ks = newKeystoreCache(src, p, e.cacheTTL)
		}
	}
	e.watch = startWatch(b, e.ks)
	return e
}

// keystoreCache returns the cache while it is usable, else nil.
func (e *Engine) keystoreCache() *keystoreCache {
	if e.ks == nil || e.ks.disabled.Load() {
		return nil
	}
	return e.ks
}

// Backend returns the driver, for optional interfaces found by type assertion.
func (e *Engine) Backend() driver.Backend { return e.b }

// Capabilities returns the backend's declared capabilities.
func (e *Engine) Capabilities() driver.Capabilities { return e.b.Capabilities() }

// Ping checks that the backend is reachable.
func (e *Engine) Ping(ctx context.Context) error { return asErr(e.b.Ping(ctx)) }

// Close stops watching the keystore (waiting until the driver has released
// its listener) and closes the backend. Later calls fail with the driver's
// error (backend_closed), the keystore cache included.
func (e *Engine) Close() error {
	if e.ks != nil {
		e.ks.disabled.Store(true)
	}
	e.watch.stop()
	return asErr(e.b.Close())
}

// call runs one driver operation after validation, mapping its error.
func call[A any, R any](ctx context.Context, validate func() error, op func(context.Context, A) (R, error), args A) (R, error) {
	var zero R
	if err := validate(); err != nil {
		return zero, err
	}
	if err := ctx.Err(); err != nil {
		return zero, contracts.AsError(err)
	}
	r, err := op(ctx, args)
	if err != nil {
		return zero, contracts.AsError(err)
	}
	return r, nil
}

func asErr(err error) error {
	if err == nil {
		return nil
	}
	return contracts.AsError(err)
}

// Seed installs the first signing secret, idempotently: call it on every
// start. See docs/spec.md §4 for its outcomes.
func (e *Engine) Seed(ctx context.Context, a contracts.SeedArgs) (contracts.SeedOutcome, error) {
	if e.ks != nil {
		defer e.ks.invalidate()
	}
	return call(ctx, a.Validate, e.b.Seed, a)
}

// RotateAll makes NewKid current on every partition, keeping the outgoing
// kid valid for GraceMs. Re-running the same rotation is safe and repairs a
// partial one. Per-partition failures are reported in the result's entries.
func (e *Engine) RotateAll(ctx context.Context, a contracts.RotateArgs) (contracts.RotateAllResult, error) {
	if e.ks != nil {
		defer e.ks.invalidate()
	}
	return call(ctx, a.Validate, e.b.RotateAll, a)
}

// RevokeKid makes a verifying kid stop verifying at once on every
// partition, for a leaked secret (docs/spec.md §8.7): its tokens answer
// token_expired through this Engine at once and through other Engines
// within the keystore cache's push latency (its TTL where the backend
// pushes nothing). The current kid cannot be revoked (kid_is_current in
// the entries): rotate first.
func (e *Engine) RevokeKid(ctx context.Context, a contracts.RevokeKidArgs) (contracts.RevokeKidResult, error) {
	r, ok := e.b.(driver.KidRevoker)
	if !ok {
		return contracts.RevokeKidResult{}, unsupported("revoke_kid")
	}
	if e.ks != nil {
		defer e.ks.invalidate()
	}
	return call(ctx, a.Validate, r.RevokeKid, a)
}

// AdoptStore makes the Engine work on its store as it is now, after calls
// answered unavailable / store_reset (docs/spec.md §6.1): the backend takes
// the emptied (or re-created) store as its own again and the keystore cache
// is dropped. Seed it next. It answers unavailable / unsupported when the
// backend cannot detect a reset (driver.StoreAdopter). An operator's
// decision: see driver.StoreAdopter.
func (e *Engine) AdoptStore(ctx context.Context) error {
	a, ok := e.b.(driver.StoreAdopter)
	if !ok {
		return unsupported("adopt_store")
	}
	if e.ks != nil {
		defer e.ks.invalidate()
	}
	if err := ctx.Err(); err != nil {
		return contracts.AsError(err)
	}
	return asErr(a.AdoptStore(ctx))
}

// ListKids lists every partition's current kid and unexpired verifying kids.
func (e *Engine) ListKids(ctx context.Context) (contracts.ListKidsResult, error) {
	return call(ctx, func() error { return nil }, e.b.ListKids, contracts.ListKidsArgs{})
}

// Sign signs a message with the current kid of the scope's partition,
// from the keystore cache when it is on.
func (e *Engine) Sign(ctx context.Context, a contracts.SignArgs) (contracts.SignResult, error) {
	if c := e.keystoreCache(); c != nil {
		if err := a.Validate(); err != nil {
			return contracts.SignResult{}, err
		}
		if err := ctx.Err(); err != nil {
			return contracts.SignResult{}, contracts.AsError(err)
		}
		if r, err := c.sign(ctx, a); err != errCacheUnusable {
			return r, err
		}
	}
	return call(ctx, a.Validate, e.b.Sign, a)
}

// Verify checks a token for a message, from the keystore cache when it is
// on. A rejected token is a validation error with code invalid_token
// (reason malformed, unknown_kid or signature_mismatch) or token_expired.
func (e *Engine) Verify(ctx context.Context, a contracts.VerifyArgs) (contracts.VerifyResult, error) {
	if c := e.keystoreCache(); c != nil {
		// VerifyArgs.Validate, keeping the parsed token.
		if err := (contracts.SignArgs{Scope: a.Scope, Message: a.Message}).Validate(); err != nil {
			return contracts.VerifyResult{}, err
		}
		t, err := contracts.ParseToken("token", a.Token)
		if err != nil {
			return contracts.VerifyResult{}, err
		}
		if err := ctx.Err(); err != nil {
			return contracts.VerifyResult{}, contracts.AsError(err)
		}
		if r, err := c.verify(ctx, a, t); err != errCacheUnusable {
			return r, err
		}
	}
	return call(ctx, a.Validate, e.b.Verify, a)
}

// Suspend suspends an execution on 1–16 waitpoints and returns their tokens.
// An empty Condition means "any".
//
// Waitpoints may be new ({Key}) or pending ones made by CreateWaitpoint
// ({Pending}); when the signals those already hold satisfy the condition,
// the outcome is already_satisfied and the execution does not wait
// (docs/spec.md §8.1). Pending items, count conditions and tags need a
// backend implementing driver.Lifecycle.
func (e *Engine) Suspend(ctx context.Context, a contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	a, validate := e.suspendArgs(a)
	return call(ctx, validate, e.b.Suspend, a)
}

// SuspendTx is Suspend inside tx, a transaction the application holds on
// the same store (a pgx.Tx for PostgreSQL), so that its own writes and the
// suspension commit or roll back together — River's InsertTx for waits.
// The tokens returned open their waitpoints once tx commits; after a
// rollback nothing of the call is left. A refusal leaves tx usable. It
// answers unavailable / unsupported when the backend cannot join an
// application's transaction (driver.TxSuspender), and invalid_input naming
// tx for a transaction of another kind.
func (e *Engine) SuspendTx(ctx context.Context, tx any, a contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	ts, ok := e.b.(driver.TxSuspender)
	if !ok {
		return contracts.SuspendOutcome{}, unsupported("suspend in the application's transaction")
	}
	a, validate := e.suspendArgs(a)
	return call(ctx, validate, func(ctx context.Context, a contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
		return ts.SuspendTx(ctx, tx, a)
	}, a)
}

// suspendArgs defaults a's condition and returns its validation.
func (e *Engine) suspendArgs(a contracts.SuspendArgs) (contracts.SuspendArgs, func() error) {
	if a.Condition == "" {
		a.Condition = contracts.ConditionAny
	}
	return a, func() error {
		if err := a.Validate(); err != nil {
			return err
		}
		if _, ok := e.b.(driver.Lifecycle); !ok && a.UsesVersion2() {
			return unsupported("suspend with pending waitpoints, a count condition or tags")
		}
		return nil
	}
}

// DeliverSignal records a signal on a waitpoint, exactly once per
// (waitpoint_id, idempotency_key), and resumes the execution when its
// condition holds. A JSON payload is stored in compact form.
func (e *Engine) DeliverSignal(ctx context.Context, a contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	validate := func() error {
		if err := a.Validate(); err != nil {
			return err
		}
		if len(a.Payload) > 0 {
			var buf bytes.Buffer
			_ = json.Compact(&buf, a.Payload) // valid: checked above
			a.Payload = buf.Bytes()
		}
		return nil
	}
	if err := validate(); err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	a.Limits = e.limits // the Engine's, whatever the caller set
	out, err := call(ctx, func() error { return nil }, e.b.DeliverSignal, a)
	if err == nil && out.Resumed {
		e.wake.wake()
	}
	return out, err
}

// ObserveSignals returns a page of the signals of the execution's latest
// suspension, in delivery order. A zero Limit means 1000.
func (e *Engine) ObserveSignals(ctx context.Context, a contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	if a.Limit == 0 {
		a.Limit = contracts.DefaultObserveLimit
	}
	return call(ctx, a.Validate, e.b.ObserveSignals, a)
}

// ListSuspended pages through suspended executions ordered by
// (suspended_at_ms, execution_id). A zero Limit means 100.
// A non-empty Tag lists only executions whose suspension carries it.
func (e *Engine) ListSuspended(ctx context.Context, a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	if a.Limit == 0 {
		a.Limit = contracts.DefaultListLimit
	}
	validate := func() error {
		if err := a.Validate(); err != nil {
			return err
		}
		if _, ok := e.b.(driver.Lifecycle); !ok && a.Tag != "" {
			return unsupported("list_suspended by tag")
		}
		return nil
	}
	return call(ctx, validate, e.b.ListSuspended, a)
}

// ClaimResumedExecution leases the oldest claimable execution to a worker, or
// answers outcome "none".
func (e *Engine) ClaimResumedExecution(ctx context.Context, a contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	if a.LeaseMs == 0 {
		a.LeaseMs = contracts.DefaultLeaseMs
	}
	return call(ctx, a.Validate, e.b.ClaimResumedExecution, a)
}

// CompleteExecution forgets a claimed execution and everything recorded for it.
func (e *Engine) CompleteExecution(ctx context.Context, a contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	return call(ctx, a.Validate, e.b.CompleteExecution, a)
}

// CreateWaitpoint opens a pending waitpoint for an execution that is not
// suspended yet and returns its token, so that a signal delivered before
// the execution suspends is kept (docs/spec.md §8.1). A later Suspend uses
// it with a WaitpointSpec{Pending: waitpoint_id}.
func (e *Engine) CreateWaitpoint(ctx context.Context, a contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	l, err := e.lifecycle("create_waitpoint")
	if err != nil {
		return contracts.CreateWaitpointOutcome{}, err
	}
	return call(ctx, a.Validate, l.CreateWaitpoint, a)
}

// CreateWaitpointTx is CreateWaitpoint inside tx, a transaction the
// application holds on the same store; see SuspendTx.
func (e *Engine) CreateWaitpointTx(ctx context.Context, tx any, a contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	ts, ok := e.b.(driver.TxSuspender)
	if !ok {
		return contracts.CreateWaitpointOutcome{}, unsupported("create_waitpoint in the application's transaction")
	}
	return call(ctx, a.Validate, func(ctx context.Context, a contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
		return ts.CreateWaitpointTx(ctx, tx, a)
	}, a)
}

// GetWaitpoint describes one waitpoint of an execution: its status, signal
// count, tags and token fingerprint, never its token (docs/spec.md §8.6).
// It is an operator's call: the signal route keeps no existence oracle.
func (e *Engine) GetWaitpoint(ctx context.Context, a contracts.GetWaitpointArgs) (contracts.WaitpointInfo, error) {
	l, err := e.lifecycle("get_waitpoint")
	if err != nil {
		return contracts.WaitpointInfo{}, err
	}
	return call(ctx, a.Validate, l.GetWaitpoint, a)
}

// ExtendLease moves a claimed execution's lease to expire LeaseMs from now:
// a worker's heartbeat (docs/spec.md §8.4). A zero LeaseMs means
// contracts.DefaultLeaseMs.
func (e *Engine) ExtendLease(ctx context.Context, a contracts.ExtendLeaseArgs) (contracts.ExtendLeaseOutcome, error) {
	if a.LeaseMs == 0 {
		a.LeaseMs = contracts.DefaultLeaseMs
	}
	l, err := e.lifecycle("extend_lease")
	if err != nil {
		return contracts.ExtendLeaseOutcome{}, err
	}
	return call(ctx, a.Validate, l.ExtendLease, a)
}

// ReleaseExecution gives a claimed execution back so another worker may
// claim it at once, with the same claim reason (docs/spec.md §8.4): what a
// worker shutting down does with work it will not finish.
func (e *Engine) ReleaseExecution(ctx context.Context, a contracts.ReleaseArgs) (contracts.ReleaseOutcome, error) {
	l, err := e.lifecycle("release_execution")
	if err != nil {
		return contracts.ReleaseOutcome{}, err
	}
	out, err := call(ctx, a.Validate, l.ReleaseExecution, a)
	if err == nil {
		e.wake.wake()
	}
	return out, err
}

// CancelSuspension stops a suspended execution's wait: its waitpoints close
// and it becomes claimable with reason "cancelled" (docs/spec.md §8.5).
func (e *Engine) CancelSuspension(ctx context.Context, a contracts.CancelArgs) (contracts.CancelOutcome, error) {
	l, err := e.lifecycle("cancel_suspension")
	if err != nil {
		return contracts.CancelOutcome{}, err
	}
	out, err := call(ctx, a.Validate, l.CancelSuspension, a)
	if err == nil {
		e.wake.wake()
	}
	return out, err
}

// lifecycle returns the backend's driver.Lifecycle, or unsupported naming op.
func (e *Engine) lifecycle(op string) (driver.Lifecycle, error) {
	if l, ok := e.b.(driver.Lifecycle); ok {
		return l, nil
	}
	return nil, unsupported(op)
}

// unsupported answers an operation or argument the backend does not
// implement: a driver written before docs/spec.md §8.
func unsupported(what string) *contracts.Error {
	return contracts.ErrUnsupported.With("%s: this backend does not implement it (a driver written before docs/spec.md §8)", what)
}
