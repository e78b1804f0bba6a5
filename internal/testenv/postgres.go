package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// postgresImage is the image used when PostgreSQL runs in a container.
const postgresImage = "postgres:16-alpine"

// cleanupTimeout bounds each statement run from a cleanup (t.Context() is
// already cancelled by then).
const cleanupTimeout = 30 * time.Second

// PostgresURL returns the base URL of a PostgreSQL server whose user may
// create databases: FF_TEST_POSTGRES_URL if set, else a container started
// once per process when a Docker engine answers. Otherwise it skips t, or
// fails it under CI=true. The URL must be in URL form (postgres://...), not a
// key=value DSN. Tests should not write to this database: use
// NewPostgresDatabase or PackageDatabase.
func PostgresURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvPostgresURL); u != "" {
		return u
	}
	if err := dockerAvailable(); err != nil {
		reportMissingServer(t, EnvPostgresURL, err)
	}
	u, err := postgresContainer()
	if err != nil {
		t.Fatalf("testenv: start PostgreSQL container: %v", err)
	}
	return u
}

// postgresContainer starts one PostgreSQL container per process.
var postgresContainer = sync.OnceValues(func() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := tcpostgres.Run(ctx, postgresImage,
		testcontainers.WithCmd("postgres", "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=200"),
		tcpostgres.BasicWaitStrategies(),
	)
	if c != nil {
		rememberContainer(c)
	}
	if err != nil {
		return "", err
	}
	return c.ConnectionString(ctx, "sslmode=disable")
})

// NewPostgresDatabase creates a fresh, uniquely named database on the server
// of PostgresURL and returns a URL to it. The database is dropped WITH (FORCE)
// when t and its subtests finish, closing connections still open to it.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	name := identifier("fft_", t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	dbURL, err := createDatabase(ctx, base, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := dropDatabase(ctx, base, name); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return dbURL
}

// NewPostgresSchema creates a fresh, uniquely named schema in the database
// that databaseURL names, and returns databaseURL with the query parameter
// search_path=<schema>, which pgx sends as a run-time parameter: unqualified
// names then resolve to the new schema. The schema is dropped CASCADE when t
// and its subtests finish. Typical use: one database per test package
// (PackageDatabase), one schema per test.
func NewPostgresSchema(t testing.TB, databaseURL string) string {
	t.Helper()
	name := identifier("s_", t.Name())
	schemaURL, err := withQueryParam(databaseURL, "search_path", name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := execOn(ctx, databaseURL, "CREATE SCHEMA "+quoteIdent(name)); err != nil {
		t.Fatalf("testenv: create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := execOn(ctx, databaseURL, "DROP SCHEMA IF EXISTS "+quoteIdent(name)+" CASCADE"); err != nil {
			t.Errorf("testenv: drop schema %s: %v", name, err)
		}
	})
	return schemaURL
}

// packageDB is the database PackageDatabase creates, once per process.
var packageDB struct {
	mu   sync.Mutex
	base string // server URL
	name string // database name
	url  string // URL of the database
}

// mainRunning is set by Main, so PackageDatabase can tell whether its
// database will be dropped at exit.
var mainRunning atomic.Bool

// PackageDatabase returns the URL of a database created once per test
// process (that is, once per test package) on the server of PostgresURL.
// Every caller in the process gets the same database, so tests sharing it
// should isolate themselves with NewPostgresSchema. The database is dropped
// when the process exits only if the package's TestMain calls Main;
// otherwise it is left behind (named fft_pkg_<package>_<random>) and
// vanishes with the ephemeral server that `make test` stops.
func PackageDatabase(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	packageDB.mu.Lock()
	defer packageDB.mu.Unlock()
	if packageDB.url != "" {
		return packageDB.url
	}
	name := identifier("fft_pkg_", strings.TrimSuffix(filepath.Base(os.Args[0]), ".test"))
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	dbURL, err := createDatabase(ctx, base, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	packageDB.base, packageDB.name, packageDB.url = base, name, dbURL
	if !mainRunning.Load() {
		t.Logf("testenv: database %s will not be dropped at exit: call testenv.Main from TestMain", name)
	}
	return dbURL
}

// dropPackageDatabase drops the database of PackageDatabase, if any.
func dropPackageDatabase() error {
	packageDB.mu.Lock()
	defer packageDB.mu.Unlock()
	if packageDB.url == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	err := dropDatabase(ctx, packageDB.base, packageDB.name)
	packageDB.base, packageDB.name, packageDB.url = "", "", ""
	return err
}

// createDatabase creates database name on the server of base and returns a
// URL naming it.
func createDatabase(ctx context.Context, base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("%s must be a postgres:// URL, got %q", EnvPostgresURL, redact(base))
	}
	if err := execOn(ctx, base, "CREATE DATABASE "+quoteIdent(name)); err != nil {
		return "", fmt.Errorf("create database %s on %s: %w", name, redact(base), err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// dropDatabase drops database name on the server of base, closing the
// connections still open to it.
func dropDatabase(ctx context.Context, base, name string) error {
	if err := execOn(ctx, base, "DROP DATABASE IF EXISTS "+quoteIdent(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// execOn runs one statement on a connection of its own.
func execOn(ctx context.Context, connURL, sql string) error {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withQueryParam returns rawURL with query parameter key set to value.
func withQueryParam(rawURL, key, value string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse database URL %q: %w", redact(rawURL), err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// identifier returns prefix + a lower-case, [a-z0-9_] form of hint, cut
// short, + "_" + 12 random hex digits: unique, readable and at most 63 bytes
// (PostgreSQL's NAMEDATALEN - 1).
func identifier(prefix, hint string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(hint) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	readable := b.String()
	if limit := 63 - len(prefix) - 13; len(readable) > limit {
		readable = readable[:limit]
	}
	return prefix + readable + "_" + randomHex(6)
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(name string) string { return pgx.Identifier{name}.Sanitize() }

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// redact hides the password of a URL for messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}
