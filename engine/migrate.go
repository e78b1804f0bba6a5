package engine

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Migrator applies a backend's pending schema migrations for u and returns
// the names of those it applied (empty when the schema was current). It must
// be safe to run from several processes at once.
type Migrator func(ctx context.Context, u *url.URL) (applied []string, err error)

var migrators = map[string]Migrator{} // guarded by registryMu

// RegisterMigrator registers the schema migrator of a scheme, for backends
// with a versioned schema (Postgres, SQLite). It panics on a nil migrator or
// a duplicate scheme.
func RegisterMigrator(scheme string, m Migrator) {
	if m == nil {
		panic("engine: RegisterMigrator migrator is nil")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := migrators[scheme]; dup {
		panic(fmt.Sprintf("engine: RegisterMigrator called twice for scheme %q", scheme))
	}
	migrators[scheme] = m
}

// Migrate applies the pending schema migrations of the backend at rawURL.
// Backends without a versioned schema (memory, Valkey) have nothing to
// apply and return an empty list.
func Migrate(ctx context.Context, rawURL string) ([]string, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	// Migrations never read secrets: the KEK parameters are not the driver's.
	if _, err := keyringFromURL(u); err != nil {
		return nil, err
	}
	scheme := strings.ToLower(u.Scheme)
	registryMu.RLock()
	m, hasMigrator := migrators[scheme]
	_, hasOpener := registry[scheme]
	registryMu.RUnlock()
	switch {
	case hasMigrator:
		applied, err := m(ctx, u)
		if err != nil {
			return nil, contracts.AsError(err)
		}
		if applied == nil {
			applied = []string{}
		}
		return applied, nil
	case hasOpener:
		return []string{}, nil
	default:
		return nil, unknownScheme(u)
	}
}
