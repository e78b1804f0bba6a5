package sqlite

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// TestLockedPastBusyTimeoutIsRetryableContention holds the write lock from one
// backend while another, with a short busy timeout, tries to write the same
// file: the writer waits, then fails with retryable contention that wraps the
// native SQLITE_BUSY and never says "database is locked".
func TestLockedPastBusyTimeoutIsRetryableContention(t *testing.T) {
	holder, path := openFile(t)
	ctx := context.Background()
	waiter, err := Open(ctx, path, WithBusyTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()

	tx, err := holder.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	start := time.Now()
	_, err = eng(waiter).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: newSecret(t)})
	waited := time.Since(start)
	drivertest.WantErr(t, err, contracts.ErrSerializationRetryExhausted)
	var ce *contracts.Error
	if !errors.As(err, &ce) || !ce.Retryable || ce.Kind != contracts.KindContention {
		t.Fatalf("err = %#v, want retryable contention", err)
	}
	if strings.Contains(err.Error(), "database is locked") {
		t.Fatalf("error text leaks the native message: %v", err)
	}
	// The Engine maps errors with contracts.AsError, which keeps the
	// driver's *contracts.Error (and its wrapped native error) as is.
	// The driver reports it as a *sqlite3.Error or a bare
	// sqlite3.ExtendedErrorCode; both match sqlite3.BUSY.
	if !errors.Is(ce, sqlite3.BUSY) {
		t.Fatalf("native SQLITE_BUSY not reachable from %v", err)
	}
	if waited < writeAttempts*50*time.Millisecond {
		t.Fatalf("gave up after %v, before %d busy timeouts of 50ms", waited, writeAttempts)
	}

	// Reads are not blocked by the writer (WAL).
	if _, err := eng(waiter).ListKids(ctx); err != nil {
		t.Fatalf("read during another's write: %v", err)
	}
}

func TestCanceledContextIsTransport(t *testing.T) {
	holder, path := openFile(t)
	waiter, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	tx, err := holder.db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = eng(waiter).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: newSecret(t)})
	drivertest.WantErr(t, err, contracts.ErrDeadlineExceeded)
}
