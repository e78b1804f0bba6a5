package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"time"

	sqlitedriver "github.com/ncruces/go-sqlite3/driver"
)

// sqliteDSN is the data source name backend/sqlite opens a file with
// (openDB in backend/sqlite/sqlite.go), with exactly its settings: BEGIN
// IMMEDIATE for read-write transactions, a 5 s busy timeout, foreign keys
// off, WAL, synchronous=FULL and secure_delete. Keep it in step with that
// file. path is absolute (bench's files live in a temporary directory).
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "foreign_keys(OFF)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "secure_delete(ON)")
	return "file://" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// rawSQLiteSchema is the reference's schema: a signal table with the
// idempotency index a signal row needs, and one counter row per client.
const rawSQLiteSchema = `
CREATE TABLE signals (
	id INTEGER PRIMARY KEY,
	waitpoint_id TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	name TEXT NOT NULL,
	created_at_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX signals_idempotency ON signals (waitpoint_id, idempotency_key);
CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
`

// rawSQLite is the reference of the SQLite rows: a transaction of three
// statements (INSERT a signal row, UPDATE a counter row, SELECT it back)
// through database/sql, on the driver and settings backend/sqlite uses.
// Like the backend, it writes through one connection, so that writers
// queue in database/sql instead of polling SQLite's lock.
type rawSQLite struct {
	db               *sql.DB
	insert, add, get *sql.Stmt
}

// openRawSQLite creates the reference's database at path, with one
// counter row for each of clients. Close it after use.
func openRawSQLite(ctx context.Context, path string, clients int) (*rawSQLite, error) {
	db, err := sqlitedriver.Open(sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	r := &rawSQLite{db: db}
	if err := r.setUp(ctx, clients); err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("setting up %s: %w", path, err)
	}
	return r, nil
}

func (r *rawSQLite) setUp(ctx context.Context, clients int) error {
	if _, err := r.db.ExecContext(ctx, rawSQLiteSchema); err != nil {
		return err
	}
	for w := range clients {
		if _, err := r.db.ExecContext(ctx, "INSERT INTO counters (id, n) VALUES (?, 0)", w); err != nil {
			return err
		}
	}
	var err error
	if r.insert, err = r.db.PrepareContext(ctx, "INSERT INTO signals (waitpoint_id, idempotency_key, name, created_at_ms) VALUES (?, ?, ?, ?)"); err != nil {
		return err
	}
	if r.add, err = r.db.PrepareContext(ctx, "UPDATE counters SET n = n + 1 WHERE id = ?"); err != nil {
		return err
	}
	r.get, err = r.db.PrepareContext(ctx, "SELECT n FROM counters WHERE id = ?")
	return err
}

// op is one transaction of client w: its seq-th signal.
func (r *rawSQLite) op(ctx context.Context, w, seq int) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	wp := "wp-" + strconv.Itoa(w)
	if _, err := tx.StmtContext(ctx, r.insert).ExecContext(ctx, wp, strconv.Itoa(seq), "bench", time.Now().UnixMilli()); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, r.add).ExecContext(ctx, w); err != nil {
		return err
	}
	var n int64
	if err := tx.StmtContext(ctx, r.get).QueryRowContext(ctx, w).Scan(&n); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the statements and the database.
func (r *rawSQLite) Close() error {
	for _, s := range []*sql.Stmt{r.insert, r.add, r.get} {
		if s != nil {
			_ = s.Close()
		}
	}
	return r.db.Close()
}
