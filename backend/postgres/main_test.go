package postgres_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// One database per test package (testenv.PackageDatabase), one schema per
// test (testenv.NewPostgresSchema).
func TestMain(m *testing.M) {
	if helperProcess() {
		return
	}
	testenv.Main(m)
}

// schemaURL returns the URL of a fresh, empty schema of the package
// database (search_path=<schema>), without ff_migrate.
func schemaURL(t testing.TB) string {
	t.Helper()
	return testenv.NewPostgresSchema(t, testenv.PackageDatabase(t))
}

// withParam returns rawURL with query parameter key set to value.
func withParam(t testing.TB, rawURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// openURL opens a backend on rawURL through the registry; it is closed when
// t ends.
func openURL(t testing.TB, rawURL string) *postgres.Backend {
	t.Helper()
	b, err := engine.OpenBackend(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.(*postgres.Backend)
}

// newEngine returns an Engine over a fresh, migrated schema, and the
// schema's plain URL (without ff_migrate, so pgx.Connect accepts it).
func newEngine(t testing.TB) (*engine.Engine, string) {
	t.Helper()
	plain := schemaURL(t)
	return engine.New(openURL(t, withParam(t, plain, postgres.ParamMigrate, postgres.MigrateAuto))), plain
}

// connect opens a plain pgx connection, closed when t ends.
func connect(t testing.TB, rawURL string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// opened records the backends a harness opened, for their Stats.
type opened struct {
	mu   sync.Mutex
	urls map[driver.Backend]string
}

// stats sums the transaction counters of every backend opened.
func (o *opened) stats() postgres.Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	var sum postgres.Stats
	for b := range o.urls {
		s := b.(*postgres.Backend).Stats()
		sum.Transactions += s.Transactions
		sum.Retries += s.Retries
		sum.Exhausted += s.Exhausted
	}
	return sum
}

// harness runs the conformance suite on fresh schemas. Postgres reads the
// server's clock, so ClockControl is false; Reopen opens the same URL; Raw
// reads every row of the schema around the driver.
func harness() (conformance.Harness, *opened) {
	return harnessOn(func(t testing.TB) (string, string) {
		u := schemaURL(t)
		return withParam(t, u, postgres.ParamMigrate, postgres.MigrateAuto), u
	})
}

// harnessOn is harness with each store made by newStore, which returns the
// URL the driver opens and a plain URL of the same store for Raw's own
// connection.
func harnessOn(newStore func(t testing.TB) (open, raw string)) (conformance.Harness, *opened) {
	o := &opened{urls: map[driver.Backend]string{}}
	mu, urls, raws := &o.mu, o.urls, map[string]string{}
	return conformance.Harness{
		Open: func(t testing.TB, _ *conformance.Clock) driver.Backend {
			u, raw := newStore(t)
			b, err := engine.OpenBackend(context.Background(), u)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			mu.Lock()
			urls[b], raws[u] = u, raw
			mu.Unlock()
			return b
		},
		Reopen: func(t testing.TB, b driver.Backend) driver.Backend {
			mu.Lock()
			u := urls[b]
			mu.Unlock()
			r, err := engine.OpenBackend(context.Background(), u)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			mu.Lock()
			urls[r] = u
			mu.Unlock()
			return r
		},
		Raw: func(t testing.TB, b driver.Backend) []byte {
			mu.Lock()
			raw := raws[urls[b]]
			mu.Unlock()
			return rawSchema(t, raw)
		},
	}, o
}

// rawSchema returns every row of every table of the schema of rawURL (its
// search_path) as JSON text, one row a line, read on a connection of its
// own: what the store holds, as someone reading the database around the
// driver sees it. bytea columns render as \x and lowercase hex.
func rawSchema(t testing.TB, rawURL string) []byte {
	t.Helper()
	ctx := context.Background()
	c := connect(t, rawURL)
	rows, err := c.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatalf("raw: list tables: %v", err)
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgx.Identifier, error) {
		var schema, name string
		err := r.Scan(&schema, &name)
		return pgx.Identifier{schema, name}, err
	})
	if err != nil {
		t.Fatalf("raw: list tables: %v", err)
	}
	if len(tables) == 0 {
		t.Fatalf("raw: the schema of the backend holds no table")
	}
	var out []byte
	for _, tbl := range tables {
		var text string
		if err := c.QueryRow(ctx, `SELECT coalesce(string_agg(row_to_json(t)::text, E'\n'), '') FROM `+tbl.Sanitize()+` t`).Scan(&text); err != nil {
			t.Fatalf("raw: read %s: %v", tbl.Sanitize(), err)
		}
		out = append(out, tbl.Sanitize()...)
		out = append(out, '\n')
		out = append(out, text...)
		out = append(out, '\n')
	}
	return out
}

// seed seeds kid with a secret of 32 fill bytes.
func seed(t testing.TB, e *engine.Engine, kid string, fill byte) {
	t.Helper()
	if _, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: kid, Secret: secret(fill)}); err != nil {
		t.Fatalf("seed %s: %v", kid, err)
	}
}

func secret(fill byte) contracts.Secret {
	s := make(contracts.Secret, 32)
	for i := range s {
		s[i] = fill
	}
	return s
}

// eventually polls cond every 10ms until it holds or 10s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
