package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/migrations"
)

// migrateLockSQL takes a transaction-scoped advisory lock private to
// FlowFabric's migrations of the current schema (the first schema of the
// search_path, where the tables are created). A second migrator of the same
// schema waits here until the first commits or rolls back; migrators of
// other schemas do not wait. The lock is released with the transaction, so a
// migrator that dies cannot leave it held.
const migrateLockSQL = `SELECT pg_advisory_xact_lock(hashtext('flowfabric.migrate'), hashtext(coalesce(current_schema(), '')))`

// createMigrationsTableSQL creates the table that records applied
// migrations; it runs under the migration lock, so concurrent migrators
// cannot race on its creation.
const createMigrationsTableSQL = `CREATE TABLE IF NOT EXISTS ff_schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
)`

// hasMigrationsTableSQL reports whether the migrations table exists in the
// search_path; a database never migrated has none.
const hasMigrationsTableSQL = `SELECT to_regclass('ff_schema_migrations') IS NOT NULL`

// appliedSQL lists the recorded migrations.
const appliedSQL = `SELECT version, checksum FROM ff_schema_migrations ORDER BY version`

// recordSQL records one applied migration, in the transaction that applied it.
const recordSQL = `INSERT INTO ff_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`

// migrate applies the pending migrations in one READ COMMITTED transaction
// under migrateLockSQL: each statement after the lock sees what an earlier
// migrator committed, so the second of two concurrent migrators applies
// nothing. Either every pending migration is applied and recorded, or none.
func migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	all, err := migrations.Postgres()
	if err != nil {
		return nil, contracts.ErrInternal.With("%v", err)
	}
	applied := []string{}
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, migrateLockSQL); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, createMigrationsTableSQL); err != nil {
			return err
		}
		done, err := readApplied(ctx, tx)
		if err != nil {
			return err
		}
		pending, err := migrations.Pending(all, done)
		if err != nil {
			return driver.SchemaMismatch(err)
		}
		for _, m := range pending {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, recordSQL, m.Version, m.Name, m.Checksum); err != nil {
				return err
			}
			applied = append(applied, fmt.Sprintf("%04d_%s", m.Version, m.Name))
		}
		return nil
	})
	if err != nil {
		return nil, interpretError(err)
	}
	return applied, nil
}

// checkSchema compares the database's recorded migrations with the
// binary's, without writing: pending migrations, a schema newer than the
// binary and a changed checksum are each a clear error.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, redactedURL string) error {
	all, err := migrations.Postgres()
	if err != nil {
		return contracts.ErrInternal.With("%v", err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, hasMigrationsTableSQL).Scan(&exists); err != nil {
		return interpretError(err)
	}
	var done []migrations.Applied
	if exists {
		if done, err = readApplied(ctx, pool); err != nil {
			return interpretError(err)
		}
	}
	pending, err := migrations.Pending(all, done)
	if err != nil {
		return driver.SchemaMismatch(err)
	}
	if len(pending) > 0 {
		return errSchema("the database schema at %s is at version %04d but this binary needs %04d (%d pending migrations): "+
			"run `ff migrate` with this URL first, or add the query parameter %s=%s to migrate at open",
			redactedURL, len(done), len(all), len(pending), ParamMigrate, MigrateAuto)
	}
	return nil
}

// errSchema is the error of a schema behind the binary.
func errSchema(format string, args ...any) error {
	return contracts.ErrSchemaMismatch.With("postgres: "+format, args...)
}

// querier is what readApplied needs of a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readApplied(ctx context.Context, q querier) ([]migrations.Applied, error) {
	rows, err := q.Query(ctx, appliedSQL)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (migrations.Applied, error) {
		var a migrations.Applied
		err := r.Scan(&a.Version, &a.Checksum)
		return a, err
	})
}
