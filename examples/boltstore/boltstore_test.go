package boltstore_test

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/examples/boltstore"
)

var ctx = context.Background()

func wantErr(t *testing.T, what string, err error, want contracts.Sentinel) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

var fx = contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret("0123456789abcdef0123456789abcdef")}

// Given a store seeded through engine.Open("bolt://…"), when it is closed
// and opened again, then the keystore is still there.
func TestOpenThroughRegistryPersists(t *testing.T) {
	u := "bolt://" + filepath.Join(t.TempDir(), "ff.bolt")
	e, err := engine.Open(ctx, u)
	if err != nil {
		t.Fatalf("engine.Open(%s): %v", u, err)
	}
	if caps := e.Capabilities(); caps != (driver.Capabilities{Partitions: 1, Persistent: true}) {
		t.Fatalf("capabilities %+v", caps)
	}
	if _, err := e.Seed(ctx, fx); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = engine.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	out, err := e.Seed(ctx, fx)
	if err != nil || out.Outcome != contracts.SeedAlreadySeeded {
		t.Fatalf("seed after reopen: %+v, %v; want already_seeded", out, err)
	}
}

// Given two Backends of this process on one file, when one closes, then it
// answers backend_closed while the other keeps working on the shared file.
func TestCloseReleasesOnlyItsHandle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.bolt")
	a, err := boltstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := boltstore.Open(ctx, filepath.Join(filepath.Dir(path), ".", "ff.bolt")) // same file, another spelling
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = engine.New(a).ListKids(ctx)
	wantErr(t, "ListKids after Close", err, contracts.ErrBackendClosed)
	if _, err := engine.New(b).Seed(ctx, fx); err != nil {
		t.Fatalf("the other handle after the first closed: %v", err)
	}
}

// Given a file that records another partition count or another layout,
// Open refuses it.
func TestOpenRefusesAnotherPartitionCountOrLayout(t *testing.T) {
	for key, want := range map[string]contracts.Sentinel{
		"partitions": contracts.ErrPartitionCountMismatch,
		"layout":     contracts.ErrSchemaMismatch,
	} {
		path := filepath.Join(t.TempDir(), "ff.bolt")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists([]byte("meta"))
			if err != nil {
				return err
			}
			return meta.Put([]byte(key), []byte("256"))
		})
		if cerr := db.Close(); err != nil || cerr != nil {
			t.Fatal(err, cerr)
		}
		_, err = boltstore.Open(ctx, path)
		wantErr(t, "Open with another "+key, err, want)
	}
}

func TestURLForms(t *testing.T) {
	for raw, want := range map[string]string{
		"bolt:///abs/ff.bolt":               "/abs/ff.bolt",
		"bolt://./rel/ff.bolt":              "./rel/ff.bolt",
		"bolt://ff.bolt":                    "ff.bolt",
		"bolt:ff.bolt":                      "ff.bolt",
		"bolt://ff.bolt?lock_timeout=250ms": "ff.bolt",
	} {
		u, _ := url.Parse(raw)
		got, err := boltstore.PathFromURL(u)
		if err != nil || got != want {
			t.Errorf("PathFromURL(%s) = %q, %v; want %q", raw, got, err, want)
		}
		if _, err := boltstore.OptionsFromURL(u); err != nil {
			t.Errorf("OptionsFromURL(%s): %v", raw, err)
		}
	}
	for _, raw := range []string{"bolt://", "bolt:///dir/", "bolt://user:pw@ff.bolt", "bolt://ff.bolt#x"} {
		u, _ := url.Parse(raw)
		_, err := boltstore.PathFromURL(u)
		wantErr(t, "PathFromURL("+raw+")", err, contracts.ErrInvalidInput)
	}
	for _, raw := range []string{"bolt://ff.bolt?sync=off", "bolt://ff.bolt?lock_timeout=soon", "bolt://ff.bolt?lock_timeout=1s&lock_timeout=2s"} {
		u, _ := url.Parse(raw)
		_, err := boltstore.OptionsFromURL(u)
		wantErr(t, "OptionsFromURL("+raw+")", err, contracts.ErrInvalidInput)
	}
	_, err := engine.Open(ctx, "bolt://user:secret@ff.bolt")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("engine.Open with user info: %v; want invalid_input not quoting the password", err)
	}
}
