package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// TestCompanionFilesTakeTheDatabaseMode checks that the -wal and -shm files
// get the database file's permission bits, as SQLite's unix VFS gives them,
// both for a new (empty) database file the operator created 0600 and for an
// existing database reopened after its companions were removed.
func TestCompanionFilesTakeTheDatabaseMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			fi, err := os.Stat(path + suffix)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("%s: ff.db%s: %v, mode %v; want 0600", when, suffix, err, fi.Mode())
			}
		}
	}
	for i, when := range []string{"new file", "reopened"} {
		b, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng(b).Seed(ctx, contracts.SeedArgs{Kid: "k" + strconv.Itoa(i), Secret: newSecret(t)}); err != nil {
			t.Fatal(err)
		}
		check(when)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
			t.Fatalf("%s: -wal left after the last close: %v", when, err)
		}
	}
}

// TestNewDatabaseFileMode checks that a database file the backend creates
// gets SQLite's 0644 less the umask, never group or world write.
func TestNewDatabaseFileMode(t *testing.T) {
	_, path := openFile(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&^0o644 != 0 {
		t.Fatalf("ff.db: %v, mode %v; want at most 0644", err, fi.Mode())
	}
}
