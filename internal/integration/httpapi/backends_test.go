package httpapi_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/backend/sqlite"
	"github.com/flowfabric/flowfabric-go/backend/valkey"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// One Postgres database for the package, a schema per test.
func TestMain(m *testing.M) { testenv.Main(m) }

// backendCase opens a fresh engine of one backend kind for a test.
type backendCase struct {
	name string
	open func(t *testing.T) *engine.Engine
}

// backends lists every backend the HTTP tests run against: each test gets a
// fresh, isolated store on a real server (internal/testenv).
var backends = []backendCase{
	{"memory", func(t *testing.T) *engine.Engine { return engine.New(memory.New()) }},
	{"sqlite", func(t *testing.T) *engine.Engine {
		b, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ff.db"))
		if err != nil {
			t.Fatal(err)
		}
		return engine.New(b)
	}},
	{"postgres", func(t *testing.T) *engine.Engine {
		raw := withQuery(t, testenv.NewPostgresSchema(t, testenv.PackageDatabase(t)), "ff_migrate", "auto")
		return openURL(t, raw)
	}},
	{"valkey", func(t *testing.T) *engine.Engine {
		raw := withQuery(t, testenv.ValkeyURL(t), valkey.OptionPrefix, testenv.KeyPrefix(t))
		return openURL(t, raw)
	}},
}

var _ = postgres.Open // the postgres scheme is registered by this import

func openURL(t testing.TB, raw string) *engine.Engine {
	t.Helper()
	e, err := engine.Open(context.Background(), raw)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return e
}

func withQuery(t testing.TB, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
