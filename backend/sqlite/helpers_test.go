package sqlite

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
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

func newSecret(t testing.TB) contracts.Secret {
	t.Helper()
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func wantErr(t testing.TB, err error, want *contracts.Error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %s/%s", err, want.Kind, want.Code)
	}
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func eng(b engine.Backend) *engine.Engine { return engine.New(b) }

// clockStartMs is 2026-01-01T00:00:00Z, where the conformance suite's clocks start.
const clockStartMs = 1767225600000

// manualClock is a clock tests move by hand.
type manualClock struct{ ms atomic.Int64 }

func newClock(ms int64) *manualClock {
	c := &manualClock{}
	c.ms.Store(ms)
	return c
}

func (c *manualClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *manualClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
