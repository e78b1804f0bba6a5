package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
)

func TestMigrateRecordsAndIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.db")
	u := &url.URL{Scheme: "sqlite", Path: path}
	ctx := context.Background()
	first, err := migrateURL(ctx, u)
	if err != nil || strings.Join(first, ",") != "0001_init,0002_signal_budgets,0003_lifecycle_v2,0004_revoke_kid,0005_claim_overdue,0006_binary_ids" {
		t.Fatalf("first migrate = %v, %v; want [0001_init 0002_signal_budgets 0003_lifecycle_v2 0004_revoke_kid 0005_claim_overdue 0006_binary_ids]", first, err)
	}
	again, err := migrateURL(ctx, u)
	if err != nil || again == nil || len(again) != 0 {
		t.Fatalf("second migrate = %#v, %v; want []", again, err)
	}
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var name, sum string
	var at int64
	if err := b.db.QueryRow(`SELECT name, checksum, applied_at_ms FROM schema_migrations WHERE version = 1`).Scan(&name, &sum, &at); err != nil {
		t.Fatal(err)
	}
	if name != "init" || len(sum) != 64 || at <= 0 {
		t.Fatalf("recorded migration = %q %q %d", name, sum, at)
	}
	for _, db := range []*sql.DB{b.db, b.rdb} {
		var mode string
		var sync, busy int
		if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
		}
		if err := db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
			t.Fatalf("synchronous = %d, %v; want 2 (FULL)", sync, err)
		}
		if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != 5000 {
			t.Fatalf("busy_timeout = %d, %v; want 5000", busy, err)
		}
	}
}

// tamper opens a fresh, migrated file and runs stmt on it directly.
func tamper(t *testing.T, stmt string) string {
	t.Helper()
	b, path := openFile(t)
	if _, err := b.db.Exec(stmt); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenRefusesChangedChecksum(t *testing.T) {
	path := tamper(t, `UPDATE schema_migrations SET checksum = 'deadbeef' WHERE version = 1`)
	_, err := Open(context.Background(), path)
	if !errors.Is(err, contracts.ErrSchemaMismatch) || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("Open with a changed checksum: err = %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := tamper(t, `INSERT INTO schema_migrations (version, name, checksum, applied_at_ms) VALUES (99, 'future', 'x', 0)`)
	_, err := Open(context.Background(), path)
	if !errors.Is(err, contracts.ErrSchemaMismatch) || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("Open of a newer schema: err = %v", err)
	}
	// The refused Open wrote nothing.
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != 7 {
		t.Fatalf("schema_migrations rows = %d, %v; want 7 (six migrations and the future one)", n, err)
	}
}

func TestConcurrentFirstOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.db")
	ctx := context.Background()
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			b, err := Open(ctx, path)
			if err == nil {
				err = b.Close()
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent first Open: %v", err)
		}
	}
}
