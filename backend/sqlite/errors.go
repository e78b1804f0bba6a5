package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/ncruces/go-sqlite3"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// interpretError maps every error a call returns onto the contract's
// taxonomy, keeping the native error reachable through errors.Unwrap:
//   - contract errors pass through;
//   - context errors become transport / deadline_exceeded or canceled;
//   - SQLITE_BUSY and SQLITE_LOCKED (a lock held past the busy timeout)
//     become the retryable contention error serialization_retry_exhausted,
//     so "database is locked" never reaches a caller;
//   - a closed handle becomes unavailable / backend_closed;
//   - anything else is unavailable / internal_error naming the SQLite
//     (extended) result code.
//
// Details never quote the native error's text, which may echo arguments.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	var ce *contracts.Error
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return contracts.AsError(err)
	case isBusy(err):
		return contracts.ErrSerializationRetryExhausted.With(
			"sqlite: the database stayed locked by another writer past the busy timeout; retry").Wrapping(err)
	case errors.Is(err, sql.ErrConnDone) || err.Error() == "sql: database is closed":
		return contracts.ErrBackendClosed.With("the sqlite backend is closed").Wrapping(err)
	}
	var code sqlite3.ExtendedErrorCode // from *sqlite3.Error or a bare code
	if errors.As(err, &code) {
		return contracts.ErrInternal.With("sqlite: unexpected error (code %d)", int(code)).Wrapping(err)
	}
	return contracts.ErrInternal.With("sqlite: unexpected error").Wrapping(err)
}

// isBusy reports whether err is SQLITE_BUSY or SQLITE_LOCKED, with any
// extended code (BUSY_SNAPSHOT, BUSY_RECOVERY, LOCKED_SHAREDCACHE, ...).
// The driver returns a *sqlite3.Error or, for some calls, a bare
// sqlite3.ErrorCode / ExtendedErrorCode; errors.As reduces each to the
// primary code.
func isBusy(err error) bool {
	var code sqlite3.ErrorCode
	if !errors.As(err, &code) {
		return false
	}
	return code == sqlite3.BUSY || code == sqlite3.LOCKED
}
