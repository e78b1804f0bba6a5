// Package boltstore is a third-party FlowFabric-Go driver that keeps the
// whole contract (docs/spec.md §3–§5, and version 2 of the waitpoint
// lifecycle, §8) in one go.etcd.io/bbolt file. It lives
// in its own Go module and uses only the exported API of
// github.com/flowfabric/flowfabric-go: engine for the SPI and the scheme
// registry, contracts for every decision and envelope.
//
// Importing the package registers the scheme "bolt":
//
//	bolt:///abs/path/ff.bolt   absolute path
//	bolt://./rel/ff.bolt       relative to the working directory
//	bolt://ff.bolt             the same, without "./"
//	bolt://ff.bolt?lock_timeout=10s   wait up to 10s for another process (default 5s)
//
// The keystore has one partition (P = 1). Every operation is one bbolt
// transaction: writes run in db.Update, which bbolt serializes, reads in
// db.View, which sees a consistent snapshot and never blocks writers. The
// clock is read once per operation, inside the transaction. The context is
// checked before a transaction starts; a started transaction (short: no
// I/O but the file) runs to its end.
//
// bbolt holds an exclusive lock on the file for as long as it is open, so
// one process at a time uses a store (Capabilities.SharedAcrossProcesses is
// false). Processes that open, operate and close — every `ff` command —
// take turns; an opener waits for the lock up to the lock timeout and then
// fails with the retryable transport error backend_unreachable. Within one
// process, every Backend opened on the same file shares one bbolt handle, so
// an application may open bolt://PATH as often as it likes.
package boltstore

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Scheme is the URL scheme this driver registers: bolt://PATH.
const Scheme = "bolt"

// DefaultLockTimeout is how long Open waits for another process to release
// the file before it fails.
const DefaultLockTimeout = 5 * time.Second

func init() { engine.Register(Scheme, openURL) }

var _ driver.Backend = (*Backend)(nil)

// Backend is the bbolt driver. It is safe for concurrent use within one
// process; the zero value is not usable, call Open.
type Backend struct {
	h      *handle
	db     *bolt.DB
	path   string
	now    func() time.Time
	closed atomic.Bool
	ring   atomic.Pointer[kek.Keyring] // nil: secrets stored in plain (sealing.go)
}

// Option configures Open.
type Option func(*config)

type config struct {
	now         func() time.Time
	lockTimeout time.Duration
	noSync      bool
}

func newConfig(opts []Option) config {
	c := config{now: time.Now, lockTimeout: DefaultLockTimeout}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithClock replaces the backend's clock (default time.Now). Every operation
// reads it exactly once, inside its transaction; tests inject a manual clock.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithLockTimeout sets how long Open waits for the file lock held by another
// process (default DefaultLockTimeout).
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) { c.lockTimeout = d }
}

// WithoutSync makes commits skip fsync: a crash of the machine (not of the
// process) may lose the last commits, while every commit stays atomic and
// isolated. For tests and throwaway stores only. It applies when this Open
// opens the file; a Backend that shares a handle this process already has
// open inherits that handle's setting.
func WithoutSync() Option {
	return func(c *config) { c.noSync = true }
}

// Open opens (creating it if missing) the store at path. It fails with
// conflict / partition_count_mismatch when the file records another
// partition count, and with transport / backend_unreachable when another
// process holds the file past the lock timeout.
func Open(ctx context.Context, path string, opts ...Option) (*Backend, error) {
	if path == "" {
		return nil, contracts.Invalid("path", "must name a bolt file")
	}
	if err := ctx.Err(); err != nil {
		return nil, contracts.AsError(err)
	}
	cfg := newConfig(opts)
	// The freelist is not written on each commit (bbolt rebuilds it when it
	// opens the file), as etcd runs bbolt: commits write less.
	h, err := acquire(path, &bolt.Options{
		Timeout: cfg.lockTimeout, NoSync: cfg.noSync, NoFreelistSync: true, FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, interpretError(err)
	}
	return &Backend{h: h, db: h.db, path: path, now: cfg.now}, nil
}

// Path returns the file the backend stores its state in.
func (b *Backend) Path() string { return b.path }

// Capabilities declares one partition, persistence, and no sharing between
// processes (bbolt locks the file exclusively).
func (b *Backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{Partitions: partitions, Persistent: true}
}

// Ping succeeds while the backend is open.
func (b *Backend) Ping(ctx context.Context) error {
	_, err := read(ctx, b, func(*bolt.Tx, int64) (struct{}, error) { return struct{}{}, nil })
	return err
}

// Close releases the file, and its lock when no other Backend of this
// process has it open. Later calls fail with unavailable / backend_closed;
// closing twice is harmless.
func (b *Backend) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	return interpretError(b.h.release())
}

// write runs op in one read-write transaction at the backend's clock, read
// once after bbolt granted the writer lock, so that time never runs
// backwards between serialized writes. An error from op rolls everything
// back; the result is op's only when the transaction committed.
func write[T any](ctx context.Context, b *Backend, op func(tx *bolt.Tx, nowMs int64) (T, error)) (T, error) {
	return run(ctx, b, b.db.Update, op)
}

// read runs op in one read-only transaction (a consistent snapshot) at the
// backend's clock.
func read[T any](ctx context.Context, b *Backend, op func(tx *bolt.Tx, nowMs int64) (T, error)) (T, error) {
	return run(ctx, b, b.db.View, op)
}

func run[T any](ctx context.Context, b *Backend, tx func(func(*bolt.Tx) error) error, op func(*bolt.Tx, int64) (T, error)) (T, error) {
	var res, zero T
	if err := b.usable(ctx); err != nil {
		return zero, err
	}
	err := tx(func(tx *bolt.Tx) error {
		var err error
		res, err = op(tx, b.nowMs())
		return err
	})
	if err != nil {
		return zero, interpretError(err)
	}
	return res, nil
}

func (b *Backend) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return contracts.AsError(err)
	}
	if b.closed.Load() {
		return errClosed()
	}
	return nil
}

func errClosed() error { return contracts.ErrBackendClosed.With("the bolt backend is closed") }

// interpretError maps every error a call returns onto the contract's
// taxonomy, keeping the native error reachable through errors.Unwrap:
// contract and context errors pass through contracts.AsError; a closed
// database is unavailable / backend_closed; a file lock held by another
// process past the timeout is the retryable transport / backend_unreachable;
// anything else is unavailable / internal_error. Details never quote the
// native error's text.
func interpretError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return contracts.ErrBackendClosed.With("the bolt backend is closed").Wrapping(err)
	case errors.Is(err, berrors.ErrTimeout):
		return contracts.ErrBackendUnreachable.With("bolt: another process holds the file's lock; retry when it is done").Wrapping(err)
	}
	var ce *contracts.Error
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return contracts.AsError(err)
	}
	return contracts.ErrInternal.With("bolt: unexpected storage error").Wrapping(err)
}

// PathFromURL returns the file a bolt:// URL names: bolt:///abs/x.bolt →
// /abs/x.bolt, bolt://./x.bolt → ./x.bolt, bolt://x.bolt → x.bolt. User
// info and fragments are refused; the query is read by OptionsFromURL.
func PathFromURL(u *url.URL) (string, error) {
	usage := "must be bolt:///abs/path.bolt, bolt://./rel.bolt or bolt://rel.bolt"
	if u.User != nil || u.Fragment != "" {
		return "", contracts.Invalid("backend_url", "takes no user or fragment; "+usage)
	}
	p := u.Opaque
	if p == "" {
		p = u.Host + u.Path
	}
	if p == "" || p[len(p)-1] == '/' {
		return "", contracts.Invalid("backend_url", usage)
	}
	return p, nil
}

// OptionsFromURL reads the one query parameter a bolt:// URL takes:
// lock_timeout, a Go duration such as 500ms or 10s (WithLockTimeout).
func OptionsFromURL(u *url.URL) ([]Option, error) {
	var opts []Option
	for name, values := range u.Query() {
		if name != "lock_timeout" || len(values) != 1 {
			return nil, contracts.Invalid("backend_url", "the only query parameter is lock_timeout, given once (e.g. ?lock_timeout=10s)")
		}
		d, err := time.ParseDuration(values[0])
		if err != nil || d < 0 {
			return nil, contracts.Invalid("backend_url", "lock_timeout must be a non-negative Go duration such as 500ms or 10s")
		}
		opts = append(opts, WithLockTimeout(d))
	}
	return opts, nil
}

func openURL(ctx context.Context, u *url.URL) (driver.Backend, error) {
	p, err := PathFromURL(u)
	if err != nil {
		return nil, err
	}
	opts, err := OptionsFromURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, p, opts...)
}
