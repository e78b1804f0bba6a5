package sqlite

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// openFile opens a fresh database file in a temporary directory.
func openFile(t testing.TB, opts ...Option) (*Backend, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ff.db")
	b, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, path
}

// newSecret returns a random 32-byte secret.
func newSecret(t testing.TB) contracts.Secret {
	t.Helper()
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// eng wraps b in an Engine, so that tests call it as users do.
func eng(b driver.Backend) *engine.Engine { return engine.New(b) }
