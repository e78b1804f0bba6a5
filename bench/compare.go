package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/flowfabric/flowfabric-go/cli/bench"
	"github.com/flowfabric/flowfabric-go/engine"
)

// compareConfig is the settings of `bench compare`.
type compareConfig struct {
	Duration        time.Duration // of each measurement
	SQLiteClients   int
	PostgresClients int
	ValkeyClients   int
	River           riverSettings
	Repo            string // the repository root, for scripts/test-servers.sh
}

// runCompare measures our operations and their references back to back,
// on the same servers, and prints one markdown table of ratios and the
// machine line. It returns the exit code: 0 when every row was measured
// (met or not), 1 when a row failed or ctx was cancelled.
func runCompare(ctx context.Context, cfg compareConfig, stdout, stderr io.Writer) int {
	m := newMachine()
	var cl cleanups
	srv, err := resolveServers(cfg.Repo, true, true, &cl, stderr)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		cl.run(ctx, stderr)
		return 1
	}
	id := runID()
	var rows []row
	rows = append(rows, compareSQLite(ctx, cfg, stderr)...)
	rows = append(rows, comparePostgres(ctx, cfg, srv.Postgres, id, &m, stderr)...)
	rows = append(rows, compareValkey(ctx, cfg, srv.Valkey, id, &m, stderr)...)
	m.LoadAfter = loadAverage()
	failed := cl.run(ctx, stderr) > 0 || ctx.Err() != nil

	fmt.Fprintf(stdout, "## FlowFabric-Go compared with references on the same servers\n\n")
	if err := writeTable(stdout, rows); err != nil {
		fmt.Fprintf(stderr, "bench: writing the table: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nRates are successful operations per second over %s closed loops (a client starts its next operation when the previous one returns); latencies are p50 / p99.\n\n%s\n", cfg.Duration, m)
	for _, r := range rows {
		failed = failed || r.Ours.Err != nil || r.Ref.Err != nil
	}
	if failed {
		return 1
	}
	return 0
}

// progress tells on stderr what is measured now.
func progress(stderr io.Writer, format string, args ...any) {
	fmt.Fprintf(stderr, "bench: "+format+"\n", args...)
}

// failedRows returns rows with both measurements failed with err, for a
// section that could not be set up.
func failedRows(err error, rows ...row) []row {
	for i := range rows {
		rows[i].Ours, rows[i].Ref = measure{Err: err}, measure{Err: err}
	}
	return rows
}

// compareSQLite measures rows 1 and 2 on files of a temporary directory:
// our deliver_signal and cycle against the raw SQLite transaction.
func compareSQLite(ctx context.Context, cfg compareConfig, stderr io.Writer) []row {
	n, d := cfg.SQLiteClients, cfg.Duration
	rows := []row{
		{Name: fmt.Sprintf("SQLite deliver_signal, %d clients", n), RefName: fmt.Sprintf("raw SQLite tx (INSERT + UPDATE + SELECT, our pragmas), %d clients", n), Target: 0.8},
		{Name: fmt.Sprintf("SQLite cycle (suspend, deliver over HTTP, claim, complete), %d clients", n), RefName: "¼ × the raw SQLite tx rate", Target: 0.8},
	}
	var sc cleanups
	defer sc.run(ctx, stderr)
	dir, err := os.MkdirTemp("", "ff-bench-sqlite-")
	if err != nil {
		return failedRows(err, rows...)
	}
	sc.add("removing "+dir, func(context.Context) error { return os.RemoveAll(dir) })
	e, err := openEngine(ctx, "sqlite://"+filepath.Join(dir, "ff.db"), &sc)
	if err != nil {
		return failedRows(err, rows...)
	}
	progress(stderr, "SQLite: deliver_signal (ours), %d clients, %s", n, d)
	rows[0].Ours = measureOurs(ctx, e, bench.OpDeliver, n, d)
	progress(stderr, "SQLite: raw transaction (reference), %d clients, %s", n, d)
	rows[0].Ref = measureRawSQLite(ctx, filepath.Join(dir, "raw.db"), n, d)
	progress(stderr, "SQLite: cycle (ours), %d clients, %s", n, d)
	rows[1].Ours = measureOurs(ctx, e, bench.OpCycle, n, d)
	rows[1].Ref = rows[0].Ref.scaled(0.25)
	return rows
}

// measureRawSQLite measures the raw SQLite transaction on a new file at
// path.
func measureRawSQLite(ctx context.Context, path string, clients int, d time.Duration) measure {
	raw, err := openRawSQLite(ctx, path, clients)
	if err != nil {
		return measure{Err: err}
	}
	defer raw.Close()
	return measureOf(runFor(ctx, clients, d, raw.op))
}

// comparePostgres measures rows 3 to 5 in a fresh database of the server
// of admin, dropped afterwards: our deliver_signal against pgbench's
// simple-update, our cycle in River's shape (producers and one worker:
// bench.OpCycleWorker) against River, and the cycle of closed-loop
// clients (bench.OpCycle) against the same River figure, for information.
func comparePostgres(ctx context.Context, cfg compareConfig, admin *url.URL, id string, m *machine, stderr io.Writer) []row {
	n, d := cfg.PostgresClients, cfg.Duration
	rows := []row{
		{Name: fmt.Sprintf("Postgres deliver_signal, %d clients", n), RefName: fmt.Sprintf("pgbench simple-update through pgx, %d clients", n), Target: 0.5},
		{Name: fmt.Sprintf("Postgres cycle, %d producers (suspend, deliver over HTTP) and one worker (%d slots, batch claims, complete)", n, workerSlots), RefName: fmt.Sprintf("River v0.51.2 insert → work → complete, %d producers", n), Target: 0.5},
		{Name: fmt.Sprintf("Postgres cycle (suspend, deliver over HTTP, claim, complete), %d clients", n), RefName: "River, as in the row above", Target: 0.5, Informational: true},
	}
	var sc cleanups
	defer sc.run(ctx, stderr)
	name := "ffbench_" + id
	if err := createDatabase(ctx, admin, name, &sc); err != nil {
		return failedRows(err, rows...)
	}
	if v, err := postgresVersion(ctx, admin); err == nil {
		m.Servers = append(m.Servers, v)
	}
	db := withDatabase(admin, name, nil)
	engineURL := withDatabase(admin, name, url.Values{"ff_migrate": {"auto"}, "pool_max_conns": {fmt.Sprint(n)}})
	e, err := openEngine(ctx, engineURL.String(), &sc)
	if err != nil {
		return failedRows(err, rows...)
	}
	progress(stderr, "Postgres: deliver_signal (ours), %d clients, %s", n, d)
	rows[0].Ours = measureOurs(ctx, e, bench.OpDeliver, n, d)
	progress(stderr, "Postgres: pgbench simple-update (reference), %d clients, %s", n, d)
	rows[0].Ref = measurePgbench(ctx, db, n, d)
	progress(stderr, "Postgres: cycle-worker (ours), %d producers, one worker, %s", n, d)
	rows[1].Ours = measureOurs(ctx, e, bench.OpCycleWorker, n, d)
	progress(stderr, "Postgres: River (reference), %d producers, %s", n, d)
	if rows[1].Ref, err = measureRiver(ctx, db, n, d, cfg.River); err != nil {
		rows[1].Ref = measure{Err: err}
	}
	progress(stderr, "Postgres: cycle (ours), %d clients, %s", n, d)
	rows[2].Ours, rows[2].Ref = measureOurs(ctx, e, bench.OpCycle, n, d), rows[1].Ref
	return rows
}

// measurePgbench measures pgbench's simple-update in the database of u.
func measurePgbench(ctx context.Context, u *url.URL, clients int, d time.Duration) measure {
	p, err := openPgbench(ctx, u, clients)
	if err != nil {
		return measure{Err: err}
	}
	defer p.Close()
	return measureOf(runFor(ctx, clients, d, p.op))
}

// compareValkey measures rows 6 to 8 on the server of u under a key
// prefix of this run, whose keys are deleted afterwards: our deliver_signal
// against SET, our uncached verify against PING.
func compareValkey(ctx context.Context, cfg compareConfig, u *url.URL, id string, m *machine, stderr io.Writer) []row {
	n, d := cfg.ValkeyClients, cfg.Duration
	rows := []row{
		{Name: fmt.Sprintf("Valkey deliver_signal, %d clients", n), RefName: fmt.Sprintf("go-redis SET, %d clients", n), Target: 0.5},
		{Name: "Valkey verify (keystore cache off), 1 client", RefName: "go-redis PING, 1 client", Target: 0.7, Informational: true},
		{Name: fmt.Sprintf("Valkey verify (keystore cache off), %d clients", n), RefName: fmt.Sprintf("go-redis PING, %d clients", n), Target: 0.7, Informational: true},
	}
	var sc cleanups
	defer sc.run(ctx, stderr)
	prefix := "ffbench-" + id + ":"
	rc, err := newRedisClient(u)
	if err != nil {
		return failedRows(err, rows...)
	}
	sc.add("closing the go-redis client", func(context.Context) error { return rc.Close() })
	sc.add("deleting the keys "+prefix+"*", func(ctx context.Context) error {
		_, err := deletePrefix(ctx, rc, prefix)
		return err
	})
	if v, err := valkeyVersion(ctx, rc); err == nil {
		m.Servers = append(m.Servers, v)
	}
	e, err := openEngine(ctx, valkeyEngineURL(u, prefix), &sc)
	if err != nil {
		return failedRows(err, rows...)
	}
	uncached, err := openEngine(ctx, valkeyEngineURL(u, prefix), &sc, engine.WithKeystoreCache(0))
	if err != nil {
		return failedRows(err, rows...)
	}
	progress(stderr, "Valkey: deliver_signal (ours), %d clients, %s", n, d)
	rows[0].Ours = measureOurs(ctx, e, bench.OpDeliver, n, d)
	progress(stderr, "Valkey: SET (reference), %d clients, %s", n, d)
	rows[0].Ref = measureOf(runFor(ctx, n, d, redisSet(rc, prefix)))
	for i, clients := range []int{1, n} {
		progress(stderr, "Valkey: verify, keystore cache off (ours), clients: %d, %s", clients, d)
		rows[1+i].Ours = measureOurs(ctx, uncached, bench.OpVerify, clients, d)
		progress(stderr, "Valkey: PING (reference), clients: %d, %s", clients, d)
		rows[1+i].Ref = measureOf(runFor(ctx, clients, d, redisPing(rc)))
	}
	return rows
}
