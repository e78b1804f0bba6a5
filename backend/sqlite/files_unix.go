//go:build unix

package sqlite

import (
	"io/fs"
	"os"
	"syscall"
)

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
