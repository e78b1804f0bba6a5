package migrations

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadOrdersAndChecksums(t *testing.T) {
	fsys := fstest.MapFS{
		"d/0002_second.up.sql": {Data: []byte("B")},
		"d/0001_first.up.sql":  {Data: []byte("A")},
	}
	ms, err := Load(fsys, "d")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 1 || ms[1].Name != "second" || ms[0].Checksum == ms[1].Checksum {
		t.Fatalf("unexpected migrations: %+v", ms)
	}
}

func TestLoadRejectsBrokenSets(t *testing.T) {
	cases := map[string]fstest.MapFS{
		"gap":       {"d/0001_a.up.sql": {}, "d/0003_c.up.sql": {}},
		"duplicate": {"d/0001_a.up.sql": {}, "d/0001_b.up.sql": {}},
		"zero":      {"d/0000_a.up.sql": {}},
		"bad name":  {"d/1_a.sql": {}},
		"empty":     {"d/README": {Data: nil, Mode: 0o755 | 1<<31}},
	}
	for name, fsys := range cases {
		if _, err := Load(fsys, "d"); err == nil {
			t.Errorf("%s: Load succeeded, want an error", name)
		}
	}
}

func TestPending(t *testing.T) {
	all := []Migration{{Version: 1, Checksum: "a"}, {Version: 2, Checksum: "b"}}
	p, err := Pending(all, []Applied{{1, "a"}})
	if err != nil || len(p) != 1 || p[0].Version != 2 {
		t.Fatalf("Pending = %+v, %v; want version 2", p, err)
	}
	if _, err := Pending(all, []Applied{{1, "x"}}); err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("changed checksum: err = %v", err)
	}
	if _, err := Pending(all, []Applied{{1, "a"}, {2, "b"}, {3, "c"}}); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("newer schema: err = %v", err)
	}
}
