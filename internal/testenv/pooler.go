package testenv

import (
	"fmt"
	"net/url"
	"os"
	"testing"
)

// PooledDatabase is a fresh database reached through the transaction pooler
// of EnvPostgresPoolerURL.
type PooledDatabase struct {
	// URL goes through the pooler and carries ff_pooler=transaction, for
	// the driver.
	URL string
	// Direct goes to the server itself, for the test's own reads (a pgx
	// connection with its statement cache does not work through a
	// transaction pooler).
	Direct string
}

// NewPooledPostgresDatabase creates a fresh, uniquely named database on the
// server of PostgresURL and returns URLs to it through the pooler of
// EnvPostgresPoolerURL and directly. A database per store rather than a
// schema: a pooler does not pass search_path on. The database is dropped
// WITH (FORCE) when t and its subtests finish. Without EnvPostgresPoolerURL
// it skips t, or fails it under CI=true.
func NewPooledPostgresDatabase(t testing.TB) PooledDatabase {
	t.Helper()
	pooler := os.Getenv(EnvPostgresPoolerURL)
	if pooler == "" {
		reportMissingServer(t, EnvPostgresPoolerURL, errNoDockerFallback)
	}
	direct := NewPostgresDatabase(t)
	pooled, err := throughPooler(direct, pooler)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return PooledDatabase{URL: pooled, Direct: direct}
}

// throughPooler returns the URL of database direct as reached through the
// pooler at pooler: the pooler's user, password, host and options, the
// database's name, and ff_pooler=transaction.
func throughPooler(direct, pooler string) (string, error) {
	d, err := url.Parse(direct)
	if err != nil {
		return "", fmt.Errorf("parse database URL %q: %w", redact(direct), err)
	}
	p, err := url.Parse(pooler)
	if err != nil || (p.Scheme != "postgres" && p.Scheme != "postgresql") {
		return "", fmt.Errorf("%s must be a postgres:// URL, got %q", EnvPostgresPoolerURL, redact(pooler))
	}
	p.Path, p.RawPath = d.Path, d.RawPath
	q := p.Query()
	q.Set("ff_pooler", "transaction")
	p.RawQuery = q.Encode()
	return p.String(), nil
}
