package reliability

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "github.com/flowfabric/flowfabric-go/backend/memory"
	_ "github.com/flowfabric/flowfabric-go/backend/postgres"
	_ "github.com/flowfabric/flowfabric-go/backend/sqlite"
	_ "github.com/flowfabric/flowfabric-go/backend/valkey"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

func TestMain(m *testing.M) {
	if crashChild() {
		return
	}
	testenv.Main(m)
}

// long reports whether the long versions run: FF_RELIABILITY=long, which
// `make reliability` sets.
func long() bool { return os.Getenv("FF_RELIABILITY") == "long" }

// sized returns short under `make test` and long under FF_RELIABILITY=long.
func sized[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

// target is one real backend: how to get the URL of a fresh, isolated store.
type target struct {
	name       string
	partitions int
	network    bool // reached over TCP (fault tests apply)
	url        func(t testing.TB) string
}

// valkeyPartitions is P for the Valkey targets: more than one, so that
// rotate_all and list_kids span partitions, few enough to keep the
// histories of each partition long.
const valkeyPartitions = 4

var targets = []target{
	{name: "memory", partitions: 1, url: func(testing.TB) string { return "memory://" }},
	{name: "sqlite", partitions: 1, url: sqliteURL},
	{name: "postgres", partitions: 1, network: true, url: postgresURL},
	{name: "valkey", partitions: valkeyPartitions, network: true, url: func(t testing.TB) string {
		return valkeyURL(t, testenv.ValkeyURL(t), valkeyPartitions)
	}},
	{name: "valkey-cluster", partitions: valkeyPartitions, network: true, url: func(t testing.TB) string {
		return valkeyURL(t, testenv.ValkeyClusterURL(t), valkeyPartitions)
	}},
}

func sqliteURL(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "ff.db")
}

// postgresURL is a fresh schema of the package database, migrated at Open.
func postgresURL(t testing.TB) string {
	return withParams(t, testenv.NewPostgresSchema(t, testenv.PackageDatabase(t)), "ff_migrate", "auto")
}

func valkeyURL(t testing.TB, server string, partitions int) string {
	return withParams(t, server, "partitions", strconv.Itoa(partitions), "prefix", testenv.KeyPrefix(t))
}

// withParams returns rawURL with the query parameters kv (key, value, ...) set.
func withParams(t testing.TB, rawURL string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// openEngine opens rawURL through the registry; closed when t ends.
func openEngine(t testing.TB, rawURL string, opts ...engine.Option) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := engine.OpenBackend(ctx, rawURL)
	if err != nil {
		t.Fatalf("open %s: %v", redacted(rawURL), err)
	}
	e := engine.New(b, opts...)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<url>"
	}
	return u.Redacted()
}

// secretOf is the secret of kid in variant v: variant 0 is the kid's
// canonical secret, other variants are "the wrong secret".
func secretOf(kid string, variant int) contracts.Secret {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%d", kid, variant)))
	return contracts.Secret(sum[:])
}

// errCode is "code" or "code/reason" of a contract error, "" for nil.
func errCode(err error) string {
	if err == nil {
		return ""
	}
	var ce *contracts.Error
	if !errors.As(err, &ce) {
		return "non-contract: " + err.Error()
	}
	if ce.Reason != "" {
		return ce.Code + "/" + ce.Reason
	}
	return ce.Code
}

// isKind reports whether err is a contract error of kind k.
func isKind(err error, k contracts.Kind) bool {
	var ce *contracts.Error
	return errors.As(err, &ce) && ce.Kind == k
}

// retryable reports whether err is a contract error marked retryable.
func retryable(err error) bool {
	var ce *contracts.Error
	return errors.As(err, &ce) && ce.Retryable
}

// seedOnce seeds kid with its canonical secret.
func seedOnce(t testing.TB, e *engine.Engine, kid string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: kid, Secret: secretOf(kid, 0)}); err != nil {
		t.Fatalf("seed %s: %v", kid, err)
	}
}

// scopeFor returns a scope that routes to partition p of P.
func scopeFor(p, partitions, salt int) string {
	for i := salt; ; i++ {
		s := "scope-" + strconv.Itoa(i)
		if driver.PartitionOf(s, partitions) == p {
			return s
		}
	}
}
