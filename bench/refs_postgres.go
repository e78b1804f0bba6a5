package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pgbenchAccounts is the number of accounts of pgbench's scale 1, the
// size of the reference's schema.
const pgbenchAccounts = 100_000

// pgbenchSchema is pgbench's schema at scale 1 (pgbench -i -s 1): one
// branch, ten tellers, 100,000 accounts, an empty history, then VACUUM
// ANALYZE as pgbench -i does (run apart: it cannot run in a transaction).
const pgbenchSchema = `
CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88)) WITH (fillfactor = 100);
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100);
CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84)) WITH (fillfactor = 100);
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
INSERT INTO pgbench_branches (bid, bbalance) VALUES (1, 0);
INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT t, 1, 0 FROM generate_series(1, 10) t;
INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT a, 1, 0, '' FROM generate_series(1, 100000) a;
`

// pgbench is the reference of the Postgres deliver_signal row: pgbench's
// built-in "simple-update" transaction (pgbench -b simple-update) through
// pgx, one pool connection per client:
//
//	BEGIN;
//	UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
//	SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
//	INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
//	END;
type pgbench struct {
	pool *pgxpool.Pool
}

// openPgbench creates pgbench's tables in the database of u (bench's own)
// and opens a pool of clients connections. Close it after use.
func openPgbench(ctx context.Context, u *url.URL, clients int) (*pgbench, error) {
	pu := withQuery(u, url.Values{"pool_max_conns": {fmt.Sprint(clients)}, "pool_min_conns": {fmt.Sprint(clients)}})
	pool, err := pgxpool.New(ctx, pu.String())
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", u.Redacted(), err)
	}
	if _, err := pool.Exec(ctx, pgbenchSchema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("creating pgbench's tables in %s: %w", u.Redacted(), err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history"); err != nil {
		pool.Close()
		return nil, fmt.Errorf("vacuuming pgbench's tables in %s: %w", u.Redacted(), err)
	}
	return &pgbench{pool: pool}, nil
}

// op is one simple-update transaction with pgbench's random choices.
func (p *pgbench) op(ctx context.Context, _, _ int) error {
	aid := rand.IntN(pgbenchAccounts) + 1
	tid := rand.IntN(10) + 1
	delta := rand.IntN(10001) - 5000
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(ctx, "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2", delta, aid); err != nil {
		return err
	}
	var balance int
	if err := tx.QueryRow(ctx, "SELECT abalance FROM pgbench_accounts WHERE aid = $1", aid).Scan(&balance); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)", tid, 1, aid, delta); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Close closes the pool.
func (p *pgbench) Close() { p.pool.Close() }
