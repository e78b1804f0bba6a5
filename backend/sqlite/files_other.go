//go:build !unix

package sqlite

import "io/fs"

// chownLike does nothing where files have no unix owner.
func chownLike(string, fs.FileInfo) {}
