package sqlite

import (
	"context"
	"fmt"

	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/migrations"
)

// createMigrationsTable records applied migrations. It runs inside the
// migration transaction, so a first Open that fails leaves no trace.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version       INTEGER NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    checksum      TEXT    NOT NULL,
    applied_at_ms INTEGER NOT NULL
) STRICT`

const selectApplied = `SELECT version, checksum FROM schema_migrations ORDER BY version`

const insertApplied = `INSERT INTO schema_migrations (version, name, checksum, applied_at_ms) VALUES (?, ?, ?, ?)`

// migrate applies the pending migrations in one BEGIN IMMEDIATE transaction:
// two processes opening a fresh file at once serialize on the write lock, and
// the second finds nothing pending. It returns the names ("0001_init") of the
// migrations it applied. A recorded checksum that differs from the binary's,
// or a recorded version the binary does not know, fails the call and changes
// nothing.
func (b *Backend) migrate(ctx context.Context) ([]string, error) {
	all, err := migrations.SQLite()
	if err != nil {
		return nil, schemaError(err)
	}
	var applied []string
	err = b.write(ctx, func(q txn, nowMs int64) error {
		applied = nil
		pending, err := pendingMigrations(q, all)
		if err != nil {
			return err
		}
		for _, m := range pending {
			if _, err := q.exec(m.SQL); err != nil {
				return err
			}
			if _, err := q.exec(insertApplied, m.Version, m.Name, m.Checksum, nowMs); err != nil {
				return err
			}
			applied = append(applied, fmt.Sprintf("%04d_%s", m.Version, m.Name))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !b.memory {
		matchFileModes(b.path)
	}
	if applied == nil {
		applied = []string{}
	}
	return applied, nil
}

func pendingMigrations(q txn, all []migrations.Migration) ([]migrations.Migration, error) {
	if _, err := q.exec(createMigrationsTable); err != nil {
		return nil, err
	}
	rows, err := q.query(selectApplied)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var done []migrations.Applied
	for rows.Next() {
		var a migrations.Applied
		if err := rows.Scan(&a.Version, &a.Checksum); err != nil {
			return nil, err
		}
		done = append(done, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	pending, err := migrations.Pending(all, done)
	if err != nil {
		return nil, schemaError(err)
	}
	return pending, nil
}

// schemaError reports a schema the binary cannot use as
// unavailable / schema_mismatch, with the migration package's explanation
// as detail (it names versions and checksums, never data).
func schemaError(err error) error {
	return driver.SchemaMismatch(err)
}
