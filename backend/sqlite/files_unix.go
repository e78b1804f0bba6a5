//go:build unix

package sqlite

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// isNoSpace reports whether err is caused by a full disk or an exhausted
// quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// checkPrivate refuses a database file that the group or others may read
// or write (any of the mode bits 0o077): it holds the signing secrets.
func checkPrivate(path string, db fs.FileInfo) error {
	if perm := db.Mode().Perm(); perm&0o077 != 0 {
		return privateError(path, perm)
	}
	return nil
}

// chownLike gives the file at path the owner of the database file db when
// the process runs as root, as SQLite does for the files it creates beside a
// database, so that a root process does not leave files the database's
// owner cannot open.
func chownLike(path string, db fs.FileInfo) {
	st, ok := db.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return
	}
	if fi, err := os.Lstat(path); err == nil {
		if own, ok := fi.Sys().(*syscall.Stat_t); ok && own.Uid == st.Uid && own.Gid == st.Gid {
			return
		}
	}
	_ = os.Lchown(path, int(st.Uid), int(st.Gid))
}
