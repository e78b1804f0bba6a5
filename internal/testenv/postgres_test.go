package testenv

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func connect(t *testing.T, connURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), connURL)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(connURL), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	var exists bool
	err := connect(t, PostgresURL(t)).QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	return exists
}

func databaseName(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}

func TestNewPostgresDatabase(t *testing.T) {
	t.Run("TwoDatabasesAreIsolated", func(t *testing.T) {
		first, second := NewPostgresDatabase(t), NewPostgresDatabase(t)
		if first == second {
			t.Fatalf("both calls returned %s", first)
		}
		exec(t, connect(t, first), "CREATE TABLE only_in_first (id int)")
		_, err := connect(t, second).Exec(context.Background(), "SELECT * FROM only_in_first")
		if !isUndefinedTable(err) {
			t.Fatalf("table of the first database seen from the second: err = %v", err)
		}
	})

	t.Run("DroppedWhenTheTestEnds", func(t *testing.T) {
		var name string
		t.Run("Owner", func(t *testing.T) {
			dbURL := NewPostgresDatabase(t)
			name = databaseName(t, dbURL)
			if !databaseExists(t, name) {
				t.Fatalf("database %s not created", name)
			}
			connect(t, dbURL) // an open connection must not stop the drop
		})
		if databaseExists(t, name) {
			t.Fatalf("database %s still exists after its test ended", name)
		}
	})
}

func TestNewPostgresSchema(t *testing.T) {
	dbURL := PackageDatabase(t)

	t.Run("UnqualifiedNamesResolveToTheSchema", func(t *testing.T) {
		schemaURL := NewPostgresSchema(t, dbURL)
		schema, _ := url.Parse(schemaURL)
		name := schema.Query().Get("search_path")
		conn := connect(t, schemaURL)
		exec(t, conn, "CREATE TABLE items (id int)")
		var got string
		err := conn.QueryRow(context.Background(),
			"SELECT table_schema FROM information_schema.tables WHERE table_name = 'items'").Scan(&got)
		if err != nil || got != name {
			t.Fatalf("table created in schema %q (err %v), want %q", got, err, name)
		}
	})

	t.Run("TwoSchemasAreIsolated", func(t *testing.T) {
		first, second := NewPostgresSchema(t, dbURL), NewPostgresSchema(t, dbURL)
		exec(t, connect(t, first), "CREATE TABLE only_in_first (id int)")
		_, err := connect(t, second).Exec(context.Background(), "SELECT * FROM only_in_first")
		if !isUndefinedTable(err) {
			t.Fatalf("table of the first schema seen from the second: err = %v", err)
		}
	})

	t.Run("DroppedWhenTheTestEnds", func(t *testing.T) {
		var name string
		t.Run("Owner", func(t *testing.T) {
			u, _ := url.Parse(NewPostgresSchema(t, dbURL))
			name = u.Query().Get("search_path")
		})
		var exists bool
		err := connect(t, dbURL).QueryRow(context.Background(),
			"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&exists)
		if err != nil || exists {
			t.Fatalf("schema %s exists = %v (err %v) after its test ended", name, exists, err)
		}
	})
}

func TestPackageDatabase(t *testing.T) {
	first := PackageDatabase(t)
	if second := PackageDatabase(t); second != first {
		t.Fatalf("PackageDatabase returned %s, then %s", first, second)
	}
	if name := databaseName(t, first); !strings.HasPrefix(name, "fft_pkg_testenv_") || !databaseExists(t, name) {
		t.Fatalf("package database %s: unexpected name or missing", name)
	}
}

func TestIdentifier(t *testing.T) {
	long := strings.Repeat("Sub/Test-", 20)
	id := identifier("fft_", long)
	if len(id) > 63 {
		t.Errorf("identifier is %d bytes, PostgreSQL keeps 63", len(id))
	}
	if strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		t.Errorf("identifier %q holds characters outside [a-z0-9_]", id)
	}
	if identifier("fft_", long) == id {
		t.Error("two identifiers for the same hint are equal")
	}
}

func TestThroughPoolerKeepsTheDatabaseAndTakesThePooler(t *testing.T) {
	got, err := throughPooler("postgres://app:secret@10.0.0.1:5432/fft_x_1?sslmode=disable&search_path=s",
		"postgres://pgb:pw@127.0.0.1:6433/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	want := "postgres://pgb:pw@127.0.0.1:6433/fft_x_1?ff_pooler=transaction&sslmode=disable"
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if _, err := throughPooler("postgres://a@h/db", "mysql://x"); err == nil {
		t.Fatal("a pooler URL that is not postgres:// was accepted")
	}
}
