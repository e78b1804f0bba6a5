//go:build linux || darwin || freebsd || dragonfly

package sqlite

import (
	"os"
	"syscall"
)

// freeBytes returns the free space of the file system holding dir, as
// this process may use it (root may use the blocks reserved for it).
func freeBytes(dir string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	blocks := uint64(st.Bavail)
	if os.Geteuid() == 0 {
		blocks = uint64(st.Bfree)
	}
	return blocks * uint64(st.Bsize), true
}
