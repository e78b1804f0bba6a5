package sqlite

import (
	"errors"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// TestInterpretErrorCodes checks the classification of the driver's native
// errors, which it returns as *sqlite3.Error or as bare result codes.
func TestInterpretErrorCodes(t *testing.T) {
	for _, native := range []error{sqlite3.BUSY, sqlite3.BUSY_SNAPSHOT, sqlite3.BUSY_TIMEOUT, sqlite3.LOCKED, sqlite3.LOCKED_SHAREDCACHE} {
		err := interpretError(native)
		drivertest.WantErr(t, err, contracts.ErrSerializationRetryExhausted)
		if !errors.Is(err, native) {
			t.Errorf("%v: native error not reachable from %v", native, err)
		}
	}

	// A real failure names SQLite's extended result code, never its text.
	b, _ := openFile(t)
	if _, err := b.db.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('secret-value')`); err != nil {
		t.Fatal(err)
	}
	_, native := b.db.Exec(`INSERT INTO t VALUES ('secret-value')`)
	var se *sqlite3.Error
	if !errors.As(native, &se) || se.ExtendedCode() != sqlite3.CONSTRAINT_PRIMARYKEY {
		t.Fatalf("duplicate key: %#v, want SQLITE_CONSTRAINT_PRIMARYKEY", native)
	}
	err := interpretError(native)
	drivertest.WantErr(t, err, contracts.ErrInternal)
	if !strings.Contains(err.Error(), "(code 1555)") || strings.Contains(err.Error(), "secret-value") {
		t.Fatalf("err = %v; want the extended code 1555 and no native text", err)
	}
	if !errors.Is(err, sqlite3.CONSTRAINT) {
		t.Fatalf("native error not reachable from %v", err)
	}
}
