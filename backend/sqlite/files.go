package sqlite

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// The driver's Go VFS creates files with mode 0666 less the umask. SQLite's
// own unix VFS (the one of the C library, and of the driver this backend
// used before) creates a new database file 0644 less the umask, and a -wal
// or -shm file with exactly the database file's permission bits, whatever
// the umask, and (in a process running as root) its owner. prepareFiles and
// matchFileModes keep SQLite's modes, so that a database the operator
// restricted to 0600 never gets a world-readable write-ahead log, which
// holds page images with the stored secrets.

// companions are the files SQLite keeps beside a database in WAL mode.
var companions = []string{"-wal", "-shm"}

// prepareFiles runs before the first connection: it creates each missing
// file, empty, with SQLite's mode (an empty file is a new database, an empty
// log, a shared-memory index to rebuild) and never touches an existing one,
// which another connection may be using. SQLite deletes the -wal and -shm
// files when the last connection to the database closes, so every Open
// comes here again. It is best effort: a failure is left for SQLite to
// report when it opens the file.
func prepareFiles(path string) {
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
		_ = f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return
	}
	path, db, ok := resolve(path)
	if !ok {
		return
	}
	for _, suffix := range companions {
		f, err := os.OpenFile(path+suffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, db.Mode().Perm())
		if err != nil {
			continue // exists already, or cannot be made
		}
		_ = f.Chmod(db.Mode().Perm()) // the umask does not apply, as in SQLite
		chownLike(path+suffix, db)
		_ = f.Close()
	}
}

// matchFileModes runs once the first connection has put the database in
// WAL mode (after the migrations): on a new database SQLite deletes the
// empty -wal that prepareFiles made, since the file is not yet in WAL mode,
// and the driver creates it again with its own mode, before anything but
// the schema is written. It gives each companion file the database file's
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
