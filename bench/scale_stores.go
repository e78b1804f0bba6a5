package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	sqlitedriver "github.com/ncruces/go-sqlite3/driver"
	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/engine"
)

// The backends scale measures.
const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres"
	backendValkey   = "valkey"
)

// The passes of scale: one per store. Postgres has two stores, one whose
// planner statistics are those of the empty store, and one analysed
// before each measurement.
const (
	passOnly     = "—"
	passStale    = "stale statistics"
	passAnalyzed = "after ANALYZE"
)

// scaleStore is one store under scale's measurements: a fresh store of
// its own, filled and measured at every N in one pass, the way to read how
// many bytes our data takes in it, and how the fill writes to it.
type scaleStore struct {
	e       *engine.Engine
	pass    string                               // passOnly, passStale or passAnalyzed
	before  func(context.Context) error          // run before each measurement; nil: nothing
	size    func(context.Context) (int64, error) // bytes of our data in the store
	slowlog *slowlog                             // Valkey only
	note    string                               // how the size and the pass are measured, for the output
	// settle runs before each measurement, after before, so that the
	// timing does not overlap the fill's after-effects; nil: nothing.
	settle func(context.Context) error
	// beginTx begins a transaction of the application on the store, for
	// Engine.SuspendTx (the batched fill); nil where the backend has none.
	beginTx func(context.Context) (appTx, error)
	// fillClients is the fill's default number of clients.
	fillClients int
	filled      int // suspended executions added by the fill so far
}

// appTx is a transaction of the application that Engine.SuspendTx joins.
type appTx struct {
	tx       any // pgx.Tx or *sql.Tx
	commit   func(context.Context) error
	rollback func(context.Context)
}

// label names the store in progress lines: "postgres, stale statistics".
func (st *scaleStore) label(backend string) string {
	if st.pass == passOnly {
		return backend
	}
	return backend + ", " + st.pass
}

// openScaleSQLite opens an Engine on a new file of a temporary directory,
// removed afterwards. The size is the pages in use (page_count less
// freelist_count, times page_size) after a checkpoint that truncates the
// log, so that pages freed by earlier passes and reused by a fill do not
// hide its growth. The fill suspends in transactions begun on the
// backend's DB() (its one writer connection).
func openScaleSQLite(ctx context.Context, cl *cleanups) (*scaleStore, error) {
	dir, err := os.MkdirTemp("", "ff-bench-scale-")
	if err != nil {
		return nil, err
	}
	cl.add("removing "+dir, func(context.Context) error { return os.RemoveAll(dir) })
	path := filepath.Join(dir, "ff.db")
	e, err := openEngine(ctx, "sqlite://"+path, cl)
	if err != nil {
		return nil, err
	}
	st := &scaleStore{e: e, pass: passOnly, fillClients: 1,
		size: func(ctx context.Context) (int64, error) { return sqliteSize(ctx, path) },
		note: "SQLite: bytes are the database's pages in use ((page_count − freelist_count) × page_size) after a checkpoint (TRUNCATE)."}
	if h, ok := e.Backend().(interface{ DB() *sql.DB }); ok {
		db := h.DB()
		st.beginTx = func(ctx context.Context) (appTx, error) {
			tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the backend's DSN says _txlock=immediate
			if err != nil {
				return appTx{}, err
			}
			return appTx{tx: tx, commit: func(context.Context) error { return tx.Commit() }, rollback: func(context.Context) { _ = tx.Rollback() }}, nil
		}
	}
	return st, nil
}

// sqliteSize checkpoints the database at path into its main file, through
// a connection of its own, and returns the bytes of its pages in use.
func sqliteSize(ctx context.Context, path string) (int64, error) {
	db, err := sqlitedriver.Open(sqliteDSN(path))
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return 0, fmt.Errorf("checkpointing %s: %w", path, err)
	}
	var pages, free, pageSize int64
	for _, q := range []struct {
		pragma string
		v      *int64
	}{{"page_count", &pages}, {"freelist_count", &free}, {"page_size", &pageSize}} {
		if err := db.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.v); err != nil {
			return 0, fmt.Errorf("PRAGMA %s on %s: %w", q.pragma, path, err)
		}
	}
	return (pages - free) * pageSize, nil
}

// openScalePostgres creates the two fresh databases of the Postgres passes
// (dropped afterwards): "stale statistics", analysed once while empty and
// never again, and "after ANALYZE", analysed before each measurement.
// Autovacuum (and so auto-analyze) is off on our tables in both, so that
// only those ANALYZEs set the planner's statistics: a single store would
// measure its stale pass on the statistics of the previous N's ANALYZE,
// nearly fresh at the larger N.
func openScalePostgres(ctx context.Context, admin *url.URL, name string, poolSize int, cl *cleanups) ([]*scaleStore, error) {
	stale, err := openPostgresStore(ctx, admin, name+"_stale", poolSize, cl)
	if err != nil {
		return nil, err
	}
	if err := stale.before(ctx); err != nil { // the statistics of the empty store, for good
		return nil, fmt.Errorf("analysing the empty store: %w", err)
	}
	stale.pass, stale.before = passStale, nil
	fresh, err := openPostgresStore(ctx, admin, name+"_analyzed", poolSize, cl)
	if err != nil {
		return nil, err
	}
	fresh.pass = passAnalyzed
	stale.note = "Postgres: two databases, filled alike; autovacuum is off on our tables in both. \"stale statistics\" was analysed once, empty (before the first fill), " +
		"and never again; \"after ANALYZE\" is analysed right before each measurement. Each measurement starts after a CHECKPOINT (when the role may run one). Bytes are pg_total_relation_size of our tables (ff_*), indexes and TOAST included. " +
		"The fill suspends in transactions of the bench's own pool on the same database (Engine.SuspendTx)."
	return []*scaleStore{stale, fresh}, nil
}

// openPostgresStore creates database name on the server of admin (dropped
// afterwards), opens an Engine on it with poolSize connections, and turns
// autovacuum off on our tables there. before is an ANALYZE of our tables;
// the size is their pg_total_relation_size (ff_*).
func openPostgresStore(ctx context.Context, admin *url.URL, name string, poolSize int, cl *cleanups) (*scaleStore, error) {
	if err := createDatabase(ctx, admin, name, cl); err != nil {
		return nil, err
	}
	e, err := openEngine(ctx, withDatabase(admin, name, url.Values{"ff_migrate": {"auto"}, "pool_max_conns": {fmt.Sprint(poolSize)}}).String(), cl)
	if err != nil {
		return nil, err
	}
	db := withDatabase(admin, name, url.Values{"pool_max_conns": {fmt.Sprint(poolSize + 2)}})
	pool, err := pgxpool.New(ctx, db.String())
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", db.Redacted(), err)
	}
	cl.add("closing the pool on "+db.Redacted(), func(context.Context) error { pool.Close(); return nil })
	tables, err := ourTables(ctx, pool)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if _, err := pool.Exec(ctx, "ALTER TABLE "+t+" SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)"); err != nil {
			return nil, fmt.Errorf("turning autovacuum off on %s: %w", t, err)
		}
	}
	analyze := func(ctx context.Context) error {
		_, err := pool.Exec(ctx, "ANALYZE "+strings.Join(tables, ", "))
		return err
	}
	size := func(ctx context.Context) (int64, error) {
		var n int64
		err := pool.QueryRow(ctx, "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE c.relkind = 'r' AND s.nspname = current_schema() AND c.relname LIKE 'ff\\_%'").Scan(&n)
		return n, err
	}
	beginTx := func(ctx context.Context) (appTx, error) {
		tx, err := pool.Begin(ctx) // READ COMMITTED, as SuspendTx expects of an application's transaction
		if err != nil {
			return appTx{}, err
		}
		return appTx{tx: tx, commit: func(ctx context.Context) error { return tx.Commit(ctx) },
			rollback: func(ctx context.Context) { _ = tx.Rollback(context.WithoutCancel(ctx)) }}, nil
	}
	// A CHECKPOINT writes out what the fill left dirty, so that the
	// checkpointer does not write it during the timed operations (a
	// fill of 1M leaves gigabytes of WAL behind it). It needs superuser
	// or pg_checkpoint; without them the pass is timed unsettled.
	settle := func(ctx context.Context) error {
		if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege
				return nil
			}
			return fmt.Errorf("CHECKPOINT: %w", err)
		}
		return nil
	}
	return &scaleStore{e: e, pass: passAnalyzed, before: analyze, settle: settle, size: size, beginTx: beginTx, fillClients: poolSize}, nil
}

// ourTables lists our tables (ff_*) in the database of pool.
func ourTables(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	rows, err := pool.Query(ctx, "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'ff\\_%' ORDER BY 1")
	if err != nil {
		return nil, fmt.Errorf("listing our tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("no table ff_* found after the migrations")
	}
	return tables, nil
}

// openScaleValkey opens an Engine on the server of u under prefix, whose
// keys are deleted afterwards. The size is the sum of MEMORY USAGE … SAMPLES
// 0 (every element, not an estimate from five) over the prefix's keys. On
// a server this run started (owned), the slowlog threshold is set to 5 ms
// and its length to slowlogDepth; on another it is only read.
func openScaleValkey(ctx context.Context, u *url.URL, owned bool, prefix string, fillClients int, cl *cleanups) (*scaleStore, error) {
	rc, err := newRedisClient(u)
	if err != nil {
		return nil, err
	}
	cl.add("closing the go-redis client", func(context.Context) error { return rc.Close() })
	cl.add("deleting the keys "+prefix+"*", func(ctx context.Context) error {
		_, err := deletePrefix(ctx, rc, prefix)
		return err
	})
	note := "Valkey: bytes are the sum of MEMORY USAGE (SAMPLES 0) over this run's keys; slowlog counts the entries over 5 ms that name this run's keys"
	if owned {
		if err := rc.ConfigSet(ctx, "slowlog-log-slower-than", "5000").Err(); err != nil {
			return nil, fmt.Errorf("setting the slowlog threshold of the server bench started: %w", err)
		}
		if err := rc.ConfigSet(ctx, "slowlog-max-len", fmt.Sprint(slowlogDepth)).Err(); err != nil {
			return nil, fmt.Errorf("setting the slowlog length of the server bench started: %w", err)
		}
		note += " (bench started the server and set its threshold to 5 ms)."
	} else {
		th, err := rc.ConfigGet(ctx, "slowlog-log-slower-than").Result()
		if v := th["slowlog-log-slower-than"]; err == nil && v != "" {
			note += fmt.Sprintf(" (bench did not start the server: it only reads SLOWLOG GET, whose threshold there is %s µs).", v)
		} else {
			note += " (bench did not start the server: it only reads SLOWLOG GET, under the server's own threshold, 10 ms by default)."
		}
	}
	e, err := openEngine(ctx, valkeyEngineURL(u, prefix), cl)
	if err != nil {
		return nil, err
	}
	size := func(ctx context.Context) (int64, error) { return memoryUsage(ctx, rc, prefix) }
	return &scaleStore{e: e, pass: passOnly, size: size, slowlog: &slowlog{c: rc, prefix: prefix}, note: note, fillClients: fillClients}, nil
}

// memoryUsage sums MEMORY USAGE … SAMPLES 0 over the keys starting with
// prefix, a thousand keys a round trip.
func memoryUsage(ctx context.Context, c *redis.Client, prefix string) (int64, error) {
	var total int64
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return 0, fmt.Errorf("scanning keys %s*: %w", prefix, err)
		}
		pipe := c.Pipeline()
		cmds := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.MemoryUsage(ctx, k, 0)
		}
		if len(keys) > 0 {
			if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
				return 0, fmt.Errorf("MEMORY USAGE: %w", err)
			}
		}
		for _, cmd := range cmds {
			total += cmd.Val() // 0 for a key deleted since the scan
		}
		if cursor = next; cursor == 0 {
			return total, nil
		}
	}
}
