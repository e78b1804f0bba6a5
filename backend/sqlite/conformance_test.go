package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/sqlite"
	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/driver"
)

// clocks remembers the clock each backend was opened with, so that Reopen
// gives the second handle the same clock (as two processes would share the
// wall clock).
var clocks sync.Map // *sqlite.Backend -> *conformance.Clock

// TestConformance runs the shared suite against a fresh database file per
// test on the suite's manual clock; Reopen opens the same file again, Raw
// reads the file, and Leftover counts the rows a completed execution left
// (sqlite.RowsLeft, export_test.go).
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		Open: func(t testing.TB, clock *conformance.Clock) driver.Backend {
			return open(t, filepath.Join(t.TempDir(), "ff.db"), clock)
		},
		ClockControl: true,
		Reopen: func(t testing.TB, b driver.Backend) driver.Backend {
			first := b.(*sqlite.Backend)
			c, _ := clocks.Load(first)
			return open(t, first.Path(), c.(*conformance.Clock))
		},
		Raw:      rawFile,
		Leftover: sqlite.RowsLeft,
	})
}

// TestConformanceInMemory runs the suite against sqlite://:memory:.
func TestConformanceInMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("the file-backed run covers the same code")
	}
	conformance.Run(t, conformance.Harness{
		Open: func(t testing.TB, clock *conformance.Clock) driver.Backend {
			return open(t, sqlite.MemoryPath, clock)
		},
		ClockControl: true,
		Leftover:     sqlite.RowsLeft,
	})
}

// rawFile returns the bytes of b's database file and of its -wal and -shm
// files, read around the driver (a missing -wal or -shm is empty).
func rawFile(t testing.TB, b driver.Backend) []byte {
	t.Helper()
	path := b.(*sqlite.Backend).Path()
	var raw []byte
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("read %s: %v", p, err)
		}
		raw = append(raw, data...)
	}
	return raw
}

func open(t testing.TB, path string, clock *conformance.Clock) *sqlite.Backend {
	t.Helper()
	b, err := sqlite.Open(context.Background(), path, sqlite.WithClock(clock.Now))
	if err != nil {
		t.Fatalf("sqlite.Open(%s): %v", path, err)
	}
	clocks.Store(b, clock)
	return b
}
