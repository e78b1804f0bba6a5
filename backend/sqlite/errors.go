package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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
//   - SQLITE_FULL (the disk or the quota is full, or max_page_count is
//     reached), and an I/O error whose cause is ENOSPC or EDQUOT, become
//     the retryable unavailable / storage_full: the call changed nothing,
//     and succeeds again once space is freed;
//   - SQLITE_CANTOPEN (the file, its directory or its -wal or -shm file
//     cannot be opened) becomes the retryable transport /
//     backend_unreachable, as a database server that cannot be reached
//     (openError names the file and the cause where the path is known);
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
	var primary sqlite3.ErrorCode
	if errors.As(err, &primary) {
		if primary == sqlite3.IOERR && isNoSpace(err) {
			// The driver's VFS reports a write that found the disk full
			// as SQLITE_IOERR_WRITE, the OS's ENOSPC reachable beneath.
			primary = sqlite3.FULL
		}
		switch primary {
		case sqlite3.FULL:
			return contracts.ErrStorageFull.With(
				"sqlite: the disk is full (or the quota is reached): nothing was written; free space and retry").Wrapping(err)
		case sqlite3.CANTOPEN:
			return contracts.ErrBackendUnreachable.With(
				"sqlite: cannot open the database file or its -wal or -shm file").Wrapping(err)
		}
	}
	var code sqlite3.ExtendedErrorCode // from *sqlite3.Error or a bare code
	if errors.As(err, &code) {
		return contracts.ErrInternal.With("sqlite: unexpected error (code %d)", int(code)).Wrapping(err)
	}
	return contracts.ErrInternal.With("sqlite: unexpected error").Wrapping(err)
}

// lowSpaceBytes is the free space below which an I/O error of a write is
// taken for a full disk: a write needs at least a page (4 KiB) and its
// frame header in the write-ahead log, a transaction usually several.
const lowSpaceBytes = 1 << 20

// writeError interprets an error of a write (or of the write probe of
// Ping). Besides what interpretError does, it reports an I/O error as the
// retryable storage_full when the file system holding the database has
// less than lowSpaceBytes free (for this process: root may use the blocks
// reserved for it): the driver's VFS reports a write that met ENOSPC as
// SQLITE_IOERR_WRITE, without the OS's error.
func (b *Backend) writeError(err error) error {
	var code sqlite3.ErrorCode
	if err != nil && !b.memory && errors.As(err, &code) && code == sqlite3.IOERR {
		if free, ok := freeBytes(filepath.Dir(b.path)); ok && free < lowSpaceBytes {
			return contracts.ErrStorageFull.With(
				"sqlite: the disk holding the database is full (%d bytes free): nothing was written; free space and retry", free).Wrapping(err)
		}
	}
	return interpretError(err)
}

// openError interprets an error of opening or probing the database at
// path (interpretError), and names path and the cause when SQLite could
// not open a file (SQLITE_CANTOPEN): a missing directory, a directory where
// the file should be, a permission, or the file itself. The path comes from
// the backend URL, which holds no user info nor query (PathFromURL).
func openError(path string, err error) error {
	if err == nil {
		return nil
	}
	var code sqlite3.ErrorCode
	if path == MemoryPath || !errors.As(err, &code) || code != sqlite3.CANTOPEN {
		return interpretError(err)
	}
	return contracts.ErrBackendUnreachable.With("sqlite: cannot open the database file %s: %s", path, cantOpenCause(path)).Wrapping(err)
}

// cantOpenCause says why the database file at path (or a file beside it)
// cannot be opened, as far as the file system tells.
func cantOpenCause(path string) string {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("the directory %s does not exist (create it, or fix the path)", dir)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("permission denied on %s", dir)
	case err == nil && fi.IsDir():
		return "it is a directory"
	case err != nil:
		return osReason(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return osReason(err) + " (opening it for reading and writing)"
	}
	_ = f.Close()
	if d, err := os.Stat(dir); err == nil && d.Mode().Perm()&0o200 == 0 {
		return fmt.Sprintf("its directory %s is not writable, and SQLite creates the -wal and -shm files there", dir)
	}
	return "SQLite could not open it or its -wal or -shm file (SQLITE_CANTOPEN)"
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
