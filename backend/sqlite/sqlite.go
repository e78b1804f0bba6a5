// Package sqlite is the embedded, persistent default backend of FlowFabric-Go,
// built on github.com/ncruces/go-sqlite3 (pure Go, no cgo: SQLite translated
// from WebAssembly to Go). Importing it registers the
// scheme "sqlite" with engine.Register and its schema migrator with
// engine.RegisterMigrator:
//
//	sqlite:///abs/path/ff.db   absolute path
//	sqlite://./rel/ff.db       path relative to the working directory
//	sqlite://ff.db             the same, without "./"
//	sqlite://:memory:          a private in-memory database (not persistent)
//
// The keystore has one partition (P = 1). Every write runs in one
// BEGIN IMMEDIATE transaction, so writers (in this process or in others that
// open the same file) serialize on SQLite's write lock and wait for it up to
// the busy timeout (5 s by default, WithBusyTimeout); reads run in deferred
// transactions and, in WAL mode, neither block nor wait for writers. Within
// one process, writes run on a single writer connection, by group commit
// (group.go): the writes waiting when the writer is free run in one
// transaction, each in a savepoint (a rejected one is rolled back alone and
// changes nothing), and each answers only once that transaction committed,
// so several writers share one fsync; a write that finds the writer idle
// runs at once, alone. A write that still
// finds the lock busy after three busy timeouts fails with the retryable
// contention error contracts.ErrSerializationRetryExhausted (wrapping the
// native SQLITE_BUSY), never with "database is locked".
//
// Durability: WAL with synchronous=FULL (SQLite's default), so a committed
// call survives a crash of the process and of the machine.
//
// Secrets at rest: with a keyring installed (SetKeyring, from the URL's
// kek_file through engine.OpenBackend) every HMAC secret is stored sealed
// (package kek) and opened only when a decision reads it. The file runs with
// secure_delete, and RewrapSecrets truncates the write-ahead log after
// re-sealing, so a secret's previous form is not left in free pages or in
// old WAL frames.
//
// Version 2 of the waitpoint lifecycle (docs/spec.md §8): the backend
// implements driver.Lifecycle (lifecycle.go) and the version 2 arguments of
// suspend and list_suspended, on schema version 3
// (migrations/sqlite/0003_lifecycle_v2.up.sql), which upgrades a version 2
// file in place when it is opened.
//
// revoke_kid (docs/spec.md §8.7): the backend implements driver.KidRevoker
// (revoke.go) on schema version 4 (migrations/sqlite/0004_revoke_kid.up.sql),
// where a revoked kid's row keeps its name, a revoked flag and its expiry,
// and no secret; the revocation truncates the write-ahead log as a rewrap
// does. The backend pushes no keystore change: other Engines see a
// revocation within their keystore cache's TTL.
//
// describe_execution and count_executions (docs/spec.md §8.9): the backend
// implements driver.Inspector (inspect.go) without a schema change;
// count_executions reads only the indexes of the executions table.
//
// Claims (docs/spec.md §5.5) on schema version 5
// (migrations/sqlite/0005_claim_overdue.up.sql): a claim first marks
// overdue the suspensions past their timeout and the leases past their
// expiry that no claim marked yet (each is read and marked once), then
// takes the oldest claimable as the first entry of two indexes in claim
// order, resumed and overdue, so its cost does not grow with the backlog of
// timed-out suspensions or expired leases, nor with the suspensions whose
// timeout is still ahead.
//
// Ids on schema version 6 (migrations/sqlite/0006_binary_ids.up.sql): the
// suspension, waitpoint, signal and lease ids the backend makes (canonical
// UUIDs) are stored as their 16 bytes, any other id as its text (ids.go);
// callers see the same text either way. Opening a version 5 file converts
// it in place, rebuilding the executions, waitpoints and signals tables in
// one transaction.
//
// Time is the process clock (time.Now unless WithClock replaces it): several
// processes sharing one file must have synchronized clocks, since grace
// windows, timeouts and leases are compared against whichever process runs
// the operation.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	sqlitedriver "github.com/ncruces/go-sqlite3/driver" // also registers the database/sql driver "sqlite3"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// MemoryPath is the path that opens a private in-memory database.
const MemoryPath = ":memory:"

// DefaultBusyTimeout is how long a write waits for another writer's lock
// before it fails with retryable contention.
const DefaultBusyTimeout = 5 * time.Second

// writeAttempts is how many times a write transaction that could not take the
// write lock within the busy timeout is attempted before the call fails with
// contracts.ErrSerializationRetryExhausted.
const writeAttempts = 3

var _ driver.Backend = (*Backend)(nil)

func init() {
	engine.Register("sqlite", openURL)
	engine.RegisterMigrator("sqlite", migrateURL)
}

// Backend is the SQLite driver. It is safe for concurrent use, and several
// processes may open the same file at once.
type Backend struct {
	db     *sql.DB // writes: one connection, used by w (and by applications' transactions, DB())
	rdb    *sql.DB // reads: a pool of connections reading WAL snapshots (db itself for :memory:)
	w      *writer // runs the writes, in groups (group.go)
	wstmts map[string]*sql.Stmt
	rstmts map[string]*sql.Stmt
	path   string
	memory bool
	now    func() time.Time
	closed atomic.Bool
	ring   atomic.Pointer[kek.Keyring] // seals stored secrets; nil: stored in plain (SetKeyring)
}

// Option configures Open.
type Option func(*config)

type config struct {
	now         func() time.Time
	busyTimeout time.Duration
}

// WithClock replaces the backend's clock (default time.Now). The SQLite
// backend has no clock of its own: every timestamp and every comparison with
// "now" (grace windows, timeouts, leases) uses this process clock, read once
// per operation. Tests inject a manual clock; processes sharing one file must
// keep their clocks synchronized.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithBusyTimeout sets how long a write waits for another process's write
// lock (default DefaultBusyTimeout) before the attempt fails; after
// writeAttempts (3) such attempts the call fails with retryable contention.
// Zero makes a busy lock fail the attempt at once.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// Open opens (creating it if missing) the SQLite database at path, or a
// private in-memory database when path is ":memory:", and applies the pending
// schema migrations. It fails with a clear error when the file's schema was
// written by a newer binary or a recorded migration's checksum differs.
func Open(ctx context.Context, path string, opts ...Option) (*Backend, error) {
	cfg := config{now: time.Now, busyTimeout: DefaultBusyTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" {
		return nil, contracts.Invalid("path", "must name a database file or :memory:")
	}
	b, err := openBackend(path, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := b.migrate(ctx); err != nil {
		_ = b.Close()
		return nil, openError(path, err)
	}
	if err := b.prepare(ctx); err != nil {
		_ = b.Close()
		return nil, openError(path, err)
	}
	return b, nil
}

// prepare prepares the backend's statements on both handles.
func (b *Backend) prepare(ctx context.Context) error {
	var err error
	if b.wstmts, err = prepare(ctx, b.db); err != nil {
		return interpretError(err)
	}
	b.rstmts = b.wstmts
	if b.rdb != b.db {
		if b.rstmts, err = prepare(ctx, b.rdb); err != nil {
			return interpretError(err)
		}
	}
	return nil
}

// openBackend opens the writer and reader handles without touching the
// schema.
func openBackend(path string, cfg config) (*Backend, error) {
	if path != MemoryPath {
		if err := prepareFiles(path); err != nil {
			return nil, err
		}
	}
	db, err := openDB(path, cfg.busyTimeout)
	if err != nil {
		return nil, openError(path, err)
	}
	b := &Backend{db: db, rdb: db, path: path, memory: path == MemoryPath, now: cfg.now}
	b.w = newWriter(b)
	if b.memory {
		return b, nil
	}
	// One writer connection per process: writers of this process wait in
	// the writer's queue (honouring their contexts, group.go) instead of
	// polling SQLite's lock in the busy handler; only other processes'
	// writers meet the busy timeout.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if b.rdb, err = openDB(path, cfg.busyTimeout); err != nil {
		b.w.close()
		_ = db.Close()
		return nil, openError(path, err)
	}
	b.rdb.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	return b, nil
}

// openDB opens the database/sql handle. Every connection runs BEGIN IMMEDIATE
// for read-write transactions (_txlock), waits busyTimeout for locks, and uses
// WAL. An in-memory database lives in exactly one connection, kept open for
// the life of the handle, so that every call sees the same database.
func openDB(path string, busyTimeout time.Duration) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_txlock", "immediate")
	// The busy timeout comes first (the driver's advice); without any
	// _pragma the driver would set one of a minute.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	// This build of SQLite enforces foreign keys by default; SQLite's own
	// default (and the schema's assumption) is not to.
	q.Add("_pragma", "foreign_keys(OFF)")
	if path != MemoryPath {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		// Freed space is zeroed, so a rewrapped (or deleted) secret's
		// previous form does not linger in the file's free space: measured
		// by TestRewrapLeavesNoPreviousForm, without it 1 secret in 10 is
		// still readable after a rewrap and a checkpoint.
		q.Add("_pragma", "secure_delete(ON)")
	}
	db, err := sqlitedriver.Open(fileDSN(path) + "?" + q.Encode())
	if err != nil {
		return nil, err
	}
	if path == MemoryPath {
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	}
	return db, nil
}

// fileDSN turns a path into a SQLite URI ("file:" form), percent-encoding
// every byte but unreserved ones and "/", so that any file name works (SQLite
// decodes the escapes; the driver parses the URI with net/url, which must
// not fail on it, or the pragmas would be lost).
func fileDSN(path string) string {
	if path == MemoryPath {
		return "file::memory:"
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString("file:")
	if strings.HasPrefix(path, "/") {
		b.WriteString("//") // empty authority: "//x" stays a path
	}
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// PathFromURL returns the database path a sqlite:// URL names:
// sqlite:///abs/x.db → /abs/x.db, sqlite://./x.db → ./x.db, sqlite://x.db →
// x.db, sqlite://:memory: → :memory: (url.Parse puts "." and ":memory:" in the
// host). Query parameters, user info and fragments are refused.
func PathFromURL(u *url.URL) (string, error) {
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", contracts.Invalid("backend_url", "sqlite URLs take no user, query or fragment: sqlite:///abs/path.db, sqlite://./rel.db or sqlite://:memory:")
	}
	var p string
	switch {
	case u.Opaque != "":
		p = u.Opaque // sqlite:rel.db, sqlite::memory:
	case u.Host != "":
		p = u.Host + u.Path // sqlite://./rel.db, sqlite://rel.db, sqlite://:memory:
	default:
		p = u.Path // sqlite:///abs/path.db
	}
	if p == "" || strings.HasSuffix(p, "/") {
		return "", contracts.Invalid("backend_url", "must name a database file: sqlite:///abs/path.db, sqlite://./rel.db or sqlite://:memory:")
	}
	return p, nil
}

func openURL(ctx context.Context, u *url.URL) (driver.Backend, error) {
	p, err := PathFromURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, p)
}

// migrateURL is the engine.Migrator of the scheme: it opens the database,
// which applies the pending migrations, and reports their names.
func migrateURL(ctx context.Context, u *url.URL) ([]string, error) {
	p, err := PathFromURL(u)
	if err != nil {
		return nil, err
	}
	b, err := openBackend(p, config{now: time.Now, busyTimeout: DefaultBusyTimeout})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	applied, err := b.migrate(ctx)
	return applied, openError(p, err)
}

// Capabilities declares one partition; a file is persistent and shared across
// processes, :memory: is neither.
func (b *Backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{Partitions: 1, Persistent: !b.memory, SharedAcrossProcesses: !b.memory}
}

// Ping checks that the database answers and can write, so that a
// readiness probe (GET /readyz) fails while writes would: it takes the write
// lock (BEGIN IMMEDIATE) and commits a write of the database header's
// user_version, set to the value it holds, which reaches the disk (the
// write-ahead log, synced) as any write does. A full disk fails it with the
// retryable unavailable / storage_full; a file that cannot be opened, with
// transport / backend_unreachable. A write lock that another process holds
// past the busy timeout is not a failure: that process writes. The probe
// changes nothing any call reads.
func (b *Backend) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return errClosed()
	}
	err := b.probeWrite(ctx)
	if isBusy(err) && ctx.Err() == nil {
		return nil
	}
	if err = b.writeError(contextFirst(ctx, err)); errors.Is(err, contracts.ErrStorageFull) {
		return err
	}
	return openError(b.path, err)
}

// probeWrite commits one write that changes nothing: user_version set to
// its own value. The page it dirties is written to the log at commit.
func (b *Backend) probeWrite(ctx context.Context) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	var v int64
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		_ = tx.Rollback()
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Close closes the database. Calls after Close fail with
// unavailable / backend_closed, and so do writes still waiting for their
// turn; a group of writes already running finishes. An in-memory database
// is gone after Close.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.w.close()
	closeStmts(b.wstmts)
	closeStmts(b.rstmts)
	err := b.db.Close()
	if b.rdb != b.db {
		err = errors.Join(err, b.rdb.Close())
	}
	return interpretError(err)
}

// Path returns the database path the backend was opened on.
func (b *Backend) Path() string { return b.path }

func errClosed() error {
	return contracts.ErrBackendClosed.With("the sqlite backend is closed")
}

func (b *Backend) nowMs() int64 { return b.now().UnixMilli() }

// write runs fn as one write: in a BEGIN IMMEDIATE transaction, alone or
// together with other writes of this process (group commit, group.go),
// and answers once that transaction committed. fn's writes are applied
// only when it returns nil, and never when the call answers an error.
// The clock is read once, when fn's turn comes, after the write lock is
// held, so that timestamps of successive writes never go backwards
// relative to the lock order. A transaction that could not take the lock
// within the busy timeout is retried, writeAttempts in all.
func (b *Backend) write(ctx context.Context, fn func(q txn, nowMs int64) error) error {
	if b.closed.Load() {
		return errClosed()
	}
	return b.writeError(contextFirst(ctx, b.w.do(ctx, fn)))
}

// read runs fn in one deferred (read-only) transaction: a consistent snapshot.
func (b *Backend) read(ctx context.Context, fn func(q txn, nowMs int64) error) error {
	if b.closed.Load() {
		return errClosed()
	}
	return interpretError(contextFirst(ctx, b.runTx(ctx, b.rdb, b.rstmts, &sql.TxOptions{ReadOnly: true}, fn)))
}

// contextFirst reports a storage failure that happened after ctx ended as
// the context's error (database/sql then answers sql.ErrTxDone or an
// interrupted statement), keeping the native error reachable. Contract
// errors are decisions and pass unchanged.
func contextFirst(ctx context.Context, err error) error {
	var ce *contracts.Error
	if err == nil || ctx.Err() == nil || errors.As(err, &ce) || errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("%w (%w)", ctx.Err(), err)
}

func (b *Backend) runTx(ctx context.Context, db *sql.DB, stmts map[string]*sql.Stmt, opts *sql.TxOptions, fn func(q txn, nowMs int64) error) error {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	// The keyring is read once per transaction, so that a concurrent
	// SetKeyring never mixes two keyrings in one operation.
	if err := fn(txn{ctx: ctx, tx: tx, stmts: stmts, ring: b.ring.Load()}, b.nowMs()); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// writing is write for an operation that answers a value: fn's result
// once its transaction committed, the zero value with the error otherwise.
func writing[T any](ctx context.Context, b *Backend, fn func(q txn, nowMs int64) (T, error)) (T, error) {
	var out T
	err := b.write(ctx, func(q txn, nowMs int64) error {
		var err error
		out, err = fn(q, nowMs)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}
