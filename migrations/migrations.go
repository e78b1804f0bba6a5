// Package migrations holds the versioned SQL schema of the SQL backends,
// embedded in the binary, and loads it in a checked form.
//
// Files are named <dialect>/NNNN_name.up.sql. Load fails on a malformed name,
// a duplicate version, a gap or a version below 1, so a broken set of
// migrations is caught at start-up, not half-applied. Each migration carries
// a SHA-256 checksum that drivers record when applying it; a recorded
// checksum that no longer matches, or a recorded version the binary does not
// know, is an error at Open.
package migrations

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
)

// Migration is one schema step.
type Migration struct {
	Version  int
	Name     string
	SQL      string
	Checksum string // hex SHA-256 of SQL
}

var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.up\.sql$`)

// Load reads the migrations of dir in fsys, checks their numbering and
// returns them in ascending version order.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations: read %s: %w", dir, err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrations: %s/%s: name must be NNNN_name.up.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s/%s: %w", dir, e.Name(), err)
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			if i > 0 && m.Version == out[i-1].Version {
				return nil, fmt.Errorf("migrations: %s: version %04d appears twice", dir, m.Version)
			}
			return nil, fmt.Errorf("migrations: %s: expected version %04d, found %04d (versions start at 0001 without gaps)", dir, i+1, m.Version)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("migrations: %s holds no migrations", dir)
	}
	return out, nil
}

// Applied is a migration as a database recorded it.
type Applied struct {
	Version  int
	Checksum string
}

// Pending compares what a database recorded with the binary's migrations and
// returns those still to apply. It fails when a recorded checksum differs
// from the binary's (a migration was edited after release) or when the
// database holds a version newer than the binary knows.
func Pending(all []Migration, applied []Applied) ([]Migration, error) {
	known := make(map[int]Migration, len(all))
	for _, m := range all {
		known[m.Version] = m
	}
	done := make(map[int]bool, len(applied))
	for _, a := range applied {
		m, ok := known[a.Version]
		if !ok {
			return nil, fmt.Errorf("migrations: the database schema is at version %04d, newer than this binary knows (%04d): upgrade the binary", a.Version, len(all))
		}
		if m.Checksum != a.Checksum {
			return nil, fmt.Errorf("migrations: version %04d (%s) was changed after it was applied: recorded checksum %s, binary has %s", a.Version, m.Name, a.Checksum, m.Checksum)
		}
		done[a.Version] = true
	}
	var pending []Migration
	for _, m := range all {
		if !done[m.Version] {
			pending = append(pending, m)
		}
	}
	return pending, nil
}
