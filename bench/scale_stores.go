package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

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

// scaleStore is one backend under scale's measurements: a fresh store of
// its own, the way to read how many bytes our data takes in it, and the
// passes each N is measured in.
type scaleStore struct {
	e       *engine.Engine
	size    func(context.Context) (int64, error) // bytes of our data in the store
	passes  []scalePass
	slowlog *slowlog // Valkey only
	note    string   // how the size and passes are measured, for the output
}

// scalePass is one measurement of every operation at an N, after before
// (nil: nothing to do first).
type scalePass struct {
	name   string
	before func(context.Context) error
}

// onePass is the only pass of the backends without one to choose.
var onePass = []scalePass{{name: "—"}}

// openScaleSQLite opens an Engine on a new file of a temporary directory,
// removed afterwards. The size is the file's, with its write-ahead log,
// after a checkpoint that truncates the log.
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
	size := func(ctx context.Context) (int64, error) { return sqliteSize(ctx, path) }
	return &scaleStore{e: e, size: size, passes: onePass,
		note: "SQLite: bytes are the database file plus its write-ahead log, after a checkpoint (TRUNCATE)."}, nil
}

// sqliteSize checkpoints the database at path into its main file, through
// a connection of its own, and returns the size of the file and its log.
func sqliteSize(ctx context.Context, path string) (int64, error) {
	db, err := sqlitedriver.Open(sqliteDSN(path))
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return 0, fmt.Errorf("checkpointing %s: %w", path, err)
	}
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil && !os.IsNotExist(err) {
			return 0, err
		}
		if err == nil {
			total += fi.Size()
		}
	}
	return total, nil
}

// openScalePostgres creates a fresh database on the server of admin
// (dropped afterwards), opens an Engine on it with poolSize connections,
// and turns autovacuum off on our tables there, so that the first pass at
// each N sees the statistics of before the fill (stale) and the second
// those of an ANALYZE (fresh). The size is pg_total_relation_size of our
// tables (ff_*).
func openScalePostgres(ctx context.Context, admin *url.URL, name string, poolSize int, cl *cleanups) (*scaleStore, error) {
	if err := createDatabase(ctx, admin, name, cl); err != nil {
		return nil, err
	}
	e, err := openEngine(ctx, withDatabase(admin, name, url.Values{"ff_migrate": {"auto"}, "pool_max_conns": {fmt.Sprint(poolSize)}}).String(), cl)
	if err != nil {
		return nil, err
	}
	db := withDatabase(admin, name, url.Values{"pool_max_conns": {"2"}})
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
	return &scaleStore{e: e, size: size,
		passes: []scalePass{{name: "stale statistics"}, {name: "after ANALYZE", before: analyze}},
		note: "Postgres: autovacuum is off on our tables (in bench's own database); \"stale statistics\" is measured right after the fill, " +
			"\"after ANALYZE\" after an ANALYZE of our tables; bytes are pg_total_relation_size of our tables (ff_*), indexes and TOAST included."}, nil
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
// keys are deleted afterwards. The size is the sum of MEMORY USAGE over
// the prefix's keys. On a server this run started (owned), the slowlog
// threshold is set to 5 ms; on another it is only read.
func openScaleValkey(ctx context.Context, u *url.URL, owned bool, prefix string, cl *cleanups) (*scaleStore, error) {
	rc, err := newRedisClient(u)
	if err != nil {
		return nil, err
	}
	cl.add("closing the go-redis client", func(context.Context) error { return rc.Close() })
	cl.add("deleting the keys "+prefix+"*", func(ctx context.Context) error {
		_, err := deletePrefix(ctx, rc, prefix)
		return err
	})
	note := "Valkey: bytes are the sum of MEMORY USAGE over this run's keys; slowlog counts the entries over 5 ms that name this run's keys"
	if owned {
		if err := rc.ConfigSet(ctx, "slowlog-log-slower-than", "5000").Err(); err != nil {
			return nil, fmt.Errorf("setting the slowlog threshold of the server bench started: %w", err)
		}
		note += " (bench started the server and set its threshold to 5 ms)."
	} else {
		note += " (bench did not start the server: it only reads SLOWLOG GET, under the server's own threshold, 10 ms by default)."
	}
	e, err := openEngine(ctx, valkeyEngineURL(u, prefix), cl)
	if err != nil {
		return nil, err
	}
	size := func(ctx context.Context) (int64, error) { return memoryUsage(ctx, rc, prefix) }
	return &scaleStore{e: e, size: size, passes: onePass, slowlog: &slowlog{c: rc, prefix: prefix}, note: note}, nil
}

// memoryUsage sums MEMORY USAGE over the keys starting with prefix, a
// thousand keys a round trip.
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
			cmds[i] = pipe.MemoryUsage(ctx, k)
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
