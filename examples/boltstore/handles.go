package boltstore

import (
	"path/filepath"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// bbolt locks a file for as long as a *bolt.DB has it open, and the lock
// belongs to that open file: a second bolt.Open of the same file in the same
// process would wait for a lock its own process holds. So the Backends of
// one process that open the same file share one *bolt.DB, counted by
// reference and closed with the last of them. This is the only state the
// package keeps beyond its Backends; across processes, openers take turns.
var shared = struct {
	sync.Mutex
	byFile map[string]*handle
}{byFile: map[string]*handle{}}

// handle is one open bbolt file and the number of Backends using it.
type handle struct {
	db   *bolt.DB
	file string
	refs int
}

// acquire returns the process's handle on path, opening the file (and
// creating or checking its buckets) when no Backend of this process has it
// open with opts. Another process holding the file makes it wait up to
// opts.Timeout.
func acquire(path string, opts *bolt.Options) (*handle, error) {
	file := canonicalFile(path)
	shared.Lock()
	defer shared.Unlock()
	if h := shared.byFile[file]; h != nil {
		h.refs++
		return h, nil
	}
	db, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		return nil, err
	}
	if err := db.Update(initStore); err != nil {
		_ = db.Close()
		return nil, err
	}
	h := &handle{db: db, file: file, refs: 1}
	shared.byFile[file] = h
	return h, nil
}

// release gives up one reference and closes the file with the last one.
func (h *handle) release() error {
	shared.Lock()
	defer shared.Unlock()
	h.refs--
	if h.refs > 0 {
		return nil
	}
	delete(shared.byFile, h.file)
	return h.db.Close()
}

// canonicalFile names a file independently of how a path spells it: the
// absolute path with symbolic links resolved (as far as they exist yet).
func canonicalFile(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}
