//go:build !unix

package sqlite

import "io/fs"

// checkPrivate accepts every file where files have no unix permission bits
// (Windows reports a synthetic mode; access is governed by ACLs).
func checkPrivate(string, fs.FileInfo) error { return nil }

// isNoSpace reports false: the driver's VFS reports a full disk as
// SQLITE_FULL itself on these systems.
func isNoSpace(error) bool { return false }

// chownLike does nothing where files have no unix owner.
func chownLike(string, fs.FileInfo) {}
