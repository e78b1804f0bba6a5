package sqlite

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// The database file holds the signing secrets (sealed or not), and its
// -wal and -shm files hold page images of it. The backend creates a new
// database file with mode 0600 (less the umask), and refuses to open an
// existing one that the group or others may read or write (mode bits
// 0o077, on systems with unix permissions), naming the file and the fix
// (chmod 600). The driver's Go VFS would create files 0666 less the umask;
// SQLite's own unix VFS gives a -wal or -shm file exactly the database
// file's permission bits, whatever the umask, and (in a process running as
// root) its owner. prepareFiles and matchFileModes do the same, so that a
// private database never gets a world-readable write-ahead log.

// DatabaseFileMode is the mode a new database file is created with (less
// the umask); its -wal and -shm files get the database file's mode.
const DatabaseFileMode fs.FileMode = 0o600

// companions are the files SQLite keeps beside a database in WAL mode.
var companions = []string{"-wal", "-shm"}

// prepareFiles runs before the first connection. It creates the database
// file, empty, with DatabaseFileMode when it is missing (an empty file is a
// new database), and refuses one the group or others can access
// (checkPrivate). It creates each missing -wal and -shm file, empty, with
// the database file's mode (an empty log, a shared-memory index to rebuild),
// and takes from an existing one any permission the database file does not
// have; it never changes their content, which another connection may be
// using. SQLite deletes the -wal and -shm files when the last connection to
// the database closes, so every Open comes here again.
//
// It fails, naming path and the cause, when the database file cannot be
// created (its directory is missing, say) or is not private; other
// failures are left for SQLite to report when it opens the file.
func prepareFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, DatabaseFileMode)
	switch {
	case err == nil:
		_ = f.Close()
	case errors.Is(err, fs.ErrExist):
	default:
		return createError(path, err)
	}
	real, db, ok := resolve(path)
	if !ok {
		return nil
	}
	if err := checkPrivate(path, db); err != nil {
		return err
	}
	// A database not yet in WAL mode (a new one) deletes an empty -wal at
	// its first open, racing any other process that opens it too: then no
	// companion is made here, and matchFileModes narrows the files SQLite
	// creates right after the first connection, before anything but the
	// schema is written to them.
	create := inWALMode(real)
	for _, suffix := range companions {
		if !create {
			tighten(real+suffix, db)
			continue
		}
		f, err := os.OpenFile(real+suffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, db.Mode().Perm())
		if err != nil {
			tighten(real+suffix, db) // exists already, or cannot be made
			continue
		}
		_ = f.Chmod(db.Mode().Perm()) // the umask does not apply, as in SQLite
		chownLike(real+suffix, db)
		_ = f.Close()
	}
	return nil
}

// tighten removes from an existing companion file the permission bits the
// database file does not have: a -wal left world-readable by an older
// version, or by a database since restricted, holds page images of it.
func tighten(path string, db fs.FileInfo) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	if extra := fi.Mode().Perm() &^ db.Mode().Perm(); extra != 0 {
		_ = os.Chmod(path, fi.Mode().Perm()&^extra)
	}
}

// createError reports that the database file at path cannot be created,
// naming the path and the cause: a missing directory, a permission, or the
// OS's reason. It is transport / backend_unreachable, as a database server
// that cannot be reached.
func createError(path string, err error) error {
	dir := filepath.Dir(path)
	var cause string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cause = fmt.Sprintf("the directory %s does not exist (create it, or fix the path)", dir)
	case errors.Is(err, fs.ErrPermission):
		cause = fmt.Sprintf("permission denied: this process may not create files in %s", dir)
	default:
		cause = osReason(err)
	}
	return contracts.ErrBackendUnreachable.With("sqlite: cannot create the database file %s: %s", path, cause).Wrapping(err)
}

// osReason is the OS's reason of a file error ("no such file or
// directory"), without the path the error repeats.
func osReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// privateError reports a database file the group or others can access.
func privateError(path string, perm fs.FileMode) error {
	return contracts.Invalid("backend_url", fmt.Sprintf(
		"sqlite: the database file %s has mode %04o: the group or others may read it, and it holds the signing secrets; "+
			"run `chmod 600 %s` (the backend gives its -wal and -shm files the same mode) and open it again", path, perm, path))
}

// matchFileModes runs once the first connection has put the database in
// WAL mode (after the migrations): on a new database, where prepareFiles
// makes no companion file, the driver creates them with its own mode, and
// this narrows them before anything but the schema is written. It gives each companion file the database file's
// permission bits (and owner, as root) where they differ; best effort.
func matchFileModes(path string) {
	path, db, ok := resolve(path)
	if !ok {
		return
	}
	for _, suffix := range companions {
		fi, err := os.Lstat(path + suffix)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if fi.Mode().Perm() != db.Mode().Perm() {
			_ = os.Chmod(path+suffix, db.Mode().Perm())
		}
		chownLike(path+suffix, db)
	}
}

// resolve follows symbolic links to the database file, as SQLite does
// before naming the files beside it, and stats it.
func resolve(path string) (string, fs.FileInfo, bool) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", nil, false
	}
	db, err := os.Stat(real)
	if err != nil || !db.Mode().IsRegular() {
		return "", nil, false
	}
	return real, db, true
}

// inWALMode reports whether the database file at path is in WAL mode: its
// header's read and write versions (bytes 18 and 19) are 2.
func inWALMode(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var h [20]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return false
	}
	return h[18] == 2 && h[19] == 2
}
