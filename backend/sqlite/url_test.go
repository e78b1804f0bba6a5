package sqlite

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

func TestPathFromURL(t *testing.T) {
	cases := map[string]string{
		"sqlite:///abs/path.db":       "/abs/path.db",
		"sqlite://./rel.db":           "./rel.db",
		"sqlite://./dir/sub.db":       "./dir/sub.db",
		"sqlite://../up.db":           "../up.db",
		"sqlite://rel.db":             "rel.db",
		"sqlite:rel.db":               "rel.db",
		"sqlite://:memory:":           ":memory:",
		"sqlite::memory:":             ":memory:",
		"sqlite:///tmp/a%20b%3Fc.db":  "/tmp/a b?c.db",
		"SQLITE:///abs/upper-case.db": "/abs/upper-case.db",
	}
	for raw, want := range cases {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", raw, err)
		}
		got, err := PathFromURL(u)
		if err != nil || got != want {
			t.Errorf("PathFromURL(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{"sqlite://", "sqlite:///", "sqlite://./", "sqlite:///x.db?mode=ro", "sqlite://user@/x.db", "sqlite:///x.db#f"} {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if _, err := PathFromURL(u); !errors.Is(err, contracts.ErrInvalidInput) {
			t.Errorf("PathFromURL(%q): err = %v, want invalid_input", raw, err)
		}
	}
}

// TestOpenEveryURLForm opens each URL form through the registered opener,
// writes through it, and checks that the file landed where the URL says.
func TestOpenEveryURLForm(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("sub", 0o755); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "abs dir", "a?b#c%d.db")
	if err := os.Mkdir(filepath.Dir(abs), 0o755); err != nil {
		t.Fatal(err)
	}
	forms := map[string]string{
		"sqlite://" + (&url.URL{Path: abs}).EscapedPath(): abs,
		"sqlite://./rel.db":     filepath.Join(dir, "rel.db"),
		"sqlite://bare.db":      filepath.Join(dir, "bare.db"),
		"sqlite:opaque.db":      filepath.Join(dir, "opaque.db"),
		"sqlite://./sub/in.db":  filepath.Join(dir, "sub", "in.db"),
		"sqlite://sub/../up.db": filepath.Join(dir, "up.db"),
	}
	ctx := context.Background()
	for raw, file := range forms {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", raw, err)
		}
		b, err := openURL(ctx, u)
		if err != nil {
			t.Fatalf("open %q: %v", raw, err)
		}
		if _, err := eng(b).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: newSecret(t)}); err != nil {
			t.Fatalf("seed through %q: %v", raw, err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(file); err != nil {
			t.Errorf("%q: database file %s missing: %v", raw, file, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n := e.Name(); n == "file:" || n[0] == '?' {
			t.Errorf("stray file %q in the working directory", n)
		}
	}

	u, _ := url.Parse("sqlite://:memory:")
	b, err := openURL(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Capabilities().Persistent {
		t.Fatal("sqlite://:memory: reports Persistent")
	}
	if _, err := os.Stat(filepath.Join(dir, ":memory:")); err == nil {
		t.Fatal("sqlite://:memory: created a file")
	}
}

// TestEngineOpenAndMigrate goes through the scheme registry: engine.Open and
// engine.Migrate reach this driver for sqlite:// URLs.
func TestEngineOpenAndMigrate(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx := context.Background()
	applied, err := engine.Migrate(ctx, "sqlite://./migrated.db")
	if err != nil || strings.Join(applied, ",") != "0001_init,0002_signal_budgets,0003_lifecycle_v2,0004_revoke_kid,0005_claim_overdue,0006_binary_ids" {
		t.Fatalf("engine.Migrate = %v, %v; want [0001_init 0002_signal_budgets 0003_lifecycle_v2 0004_revoke_kid 0005_claim_overdue 0006_binary_ids]", applied, err)
	}
	if again, err := engine.Migrate(ctx, "sqlite://./migrated.db"); err != nil || len(again) != 0 {
		t.Fatalf("second engine.Migrate = %v, %v; want []", again, err)
	}
	for _, raw := range []string{"sqlite://./migrated.db", "sqlite://:memory:"} {
		e, err := engine.Open(ctx, raw)
		if err != nil {
			t.Fatalf("engine.Open(%q): %v", raw, err)
		}
		if err := e.Ping(ctx); err != nil {
			t.Fatalf("ping %q: %v", raw, err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := engine.Open(ctx, "sqlite:///x.db?mode=ro"); !errors.Is(err, contracts.ErrInvalidInput) {
		t.Fatalf("engine.Open with a query: err = %v, want invalid_input", err)
	}
}
