package boltstore_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/examples/boltstore"
)

// TestConformance runs the whole shared suite — keystore, suspension,
// concurrency and secrets-at-rest scenarios — against a fresh bolt file per
// scenario, on the suite's manual clock. The secrets-at-rest scenarios scan
// the file's bytes (rawFile) for the secrets they stored; the lifecycle
// scenarios count the keys a completed execution left (boltstore.Leftover,
// conformance_leftover_test.go).
func TestConformance(t *testing.T) {
	conformance.Run(t, harness())
}

// TestConformanceKeystoreUncached runs the keystore scenarios once more with
// the driver's driver.KeystoreSnapshotter hidden, so that sign and verify go
// through the driver's own Sign and Verify instead of the Engine's cache.
func TestConformanceKeystoreUncached(t *testing.T) {
	h := harness()
	open, reopen := h.Open, h.Reopen
	h.Open = func(t testing.TB, clock *conformance.Clock) driver.Backend { return uncached{open(t, clock)} }
	h.Reopen = func(t testing.TB, b driver.Backend) driver.Backend { return uncached{reopen(t, b.(uncached).Backend)} }
	conformance.RunKeystore(t, h)
}

// uncached hides every optional interface of the backend it wraps but
// driver.KidRevoker, so that the Keystore/Revoke scenarios run here too and
// check the driver's own Verify against revoked kids.
type uncached struct{ driver.Backend }

// RevokeKid is the wrapped backend's.
func (u uncached) RevokeKid(ctx context.Context, a contracts.RevokeKidArgs) (contracts.RevokeKidResult, error) {
	return u.Backend.(driver.KidRevoker).RevokeKid(ctx, a)
}

// harness opens each scenario's store in its own temporary directory.
//
// Reopen opens the same file again while b stays open: a second Backend of
// this process on the file, sharing its bbolt handle (bbolt locks a file to
// one process, so a second process's view does not exist; TestCLI covers
// processes taking turns). The second Backend reads the same clock.
func harness() conformance.Harness {
	var mu sync.Mutex
	clocks := map[*boltstore.Backend]*conformance.Clock{}
	open := func(t testing.TB, path string, clock *conformance.Clock) driver.Backend {
		t.Helper()
		// Without fsync: SignalLimit alone commits 10,000 deliveries. What the
		// suite checks (atomicity, isolation, envelopes) does not depend on
		// it; TestCLI runs with fsync on.
		opts := []boltstore.Option{boltstore.WithoutSync()}
		if clock != nil {
			opts = append(opts, boltstore.WithClock(clock.Now))
		}
		b, err := boltstore.Open(context.Background(), path, opts...)
		if err != nil {
			t.Fatalf("boltstore.Open(%s): %v", path, err)
		}
		mu.Lock()
		clocks[b] = clock
		mu.Unlock()
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	return conformance.Harness{
		Open: func(t testing.TB, clock *conformance.Clock) driver.Backend {
			return open(t, filepath.Join(t.TempDir(), "ff.bolt"), clock)
		},
		ClockControl: true,
		Raw:          rawFile,
		Leftover:     boltstore.Leftover,
		Reopen: func(t testing.TB, b driver.Backend) driver.Backend {
			bb := b.(*boltstore.Backend)
			mu.Lock()
			clock := clocks[bb]
			mu.Unlock()
			return open(t, bb.Path(), clock)
		},
	}
}

// rawFile returns the bytes of b's bolt file, read around the driver: every
// page, free pages included. bbolt's lock is advisory and its commits are
// written to the file (fsync or not), so the read sees every committed
// transaction.
func rawFile(t testing.TB, b driver.Backend) []byte {
	t.Helper()
	data, err := os.ReadFile(b.(*boltstore.Backend).Path())
	if err != nil {
		t.Fatalf("reading the bolt file: %v", err)
	}
	return data
}
