//go:build !(linux || darwin || freebsd || dragonfly)

package sqlite

// freeBytes reports that the free space is unknown where package syscall
// has no Statfs with these fields; a full disk is then reported as
// storage_full only when the driver says SQLITE_FULL or keeps the OS's
// ENOSPC.
func freeBytes(string) (uint64, bool) { return 0, false }
