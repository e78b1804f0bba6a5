//go:build unix

package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

// A new database file is created 0600 whatever the umask allows, and its
// -wal and -shm files get the same mode: the file holds the secrets.
func TestNewDatabaseFileIsPrivate(t *testing.T) {
	b, path := openFile(t)
	if _, err := eng(b).Seed(context.Background(), contracts.SeedArgs{Kid: "k1", Secret: newSecret(t)}); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(path + suffix)
		if err != nil || fi.Mode().Perm() != DatabaseFileMode {
			t.Fatalf("ff.db%s: %v, mode %v; want %v", suffix, err, fi.Mode(), DatabaseFileMode)
		}
	}
}

// An existing database file that the group or others may read or write is
// refused, with an error naming the file and the fix; through the engine
// too. An owner-only file opens.
func TestRefusesADatabaseFileOthersCanRead(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o606, 0o666} {
		path := filepath.Join(t.TempDir(), "ff.db")
		b, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err = Open(ctx, path)
		if !errors.Is(err, contracts.ErrInvalidInput) {
			t.Fatalf("mode %04o: Open = %v, want invalid_input", mode, err)
		}
		msg := err.Error()
		for _, want := range []string{path, fmt.Sprintf("%04o", mode), "chmod 600 " + path} {
			if !strings.Contains(msg, want) {
				t.Errorf("mode %04o: error %q does not contain %q", mode, msg, want)
			}
		}
		if _, err := engine.Open(ctx, "sqlite://"+path); !errors.Is(err, contracts.ErrInvalidInput) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: engine.Open = %v", mode, err)
		}
		if _, err := engine.Migrate(ctx, "sqlite://"+path); !errors.Is(err, contracts.ErrInvalidInput) {
			t.Errorf("mode %04o: engine.Migrate = %v", mode, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("after chmod 600: %v", err)
		}
		_ = b.Close()
	}
}

// A -wal left more open than its database file is narrowed to the
// database file's mode before SQLite opens it.
func TestNarrowsAnOpenCompanionFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-wal", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path+"-wal", 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareFiles(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("-wal: %v, mode %v; want 0600", err, fi.Mode())
	}
}

// A database file that cannot be opened is reported naming the file and
// the cause, not as an internal error: a missing directory, a directory in
// its place.
func TestUnopenableFileNamesThePathAndTheCause(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "dir", "ff.db")
	for _, open := range []func() error{
		func() error { _, err := Open(ctx, missing); return err },
		func() error { _, err := engine.Open(ctx, "sqlite://"+missing); return err },
		func() error { _, err := engine.Migrate(ctx, "sqlite://"+missing); return err },
	} {
		err := open()
		if !errors.Is(err, contracts.ErrBackendUnreachable) || !strings.Contains(err.Error(), missing) ||
			!strings.Contains(err.Error(), filepath.Dir(missing)+" does not exist") {
			t.Fatalf("missing directory: %v; want backend_unreachable naming the file and its missing directory", err)
		}
	}
	asDir := filepath.Join(dir, "dir.db")
	if err := os.Mkdir(asDir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, asDir)
	if !errors.Is(err, contracts.ErrBackendUnreachable) || !strings.Contains(err.Error(), asDir) || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("directory: %v; want backend_unreachable naming the path and the cause", err)
	}
}

// interpretError classifies SQLITE_FULL as the retryable storage_full and
// SQLITE_CANTOPEN as backend_unreachable, keeping the native error.
func TestInterpretStorageErrors(t *testing.T) {
	full := interpretError(sqlite3.FULL)
	if !errors.Is(full, contracts.ErrStorageFull) || !contracts.AsError(full).Retryable || contracts.AsError(full).Kind != contracts.KindUnavailable {
		t.Fatalf("SQLITE_FULL: %v", full)
	}
	var code sqlite3.ErrorCode
	if !errors.As(full, &code) || code != sqlite3.FULL {
		t.Fatal("SQLITE_FULL: the native error is not reachable")
	}
	if err := interpretError(sqlite3.CANTOPEN); !errors.Is(err, contracts.ErrBackendUnreachable) {
		t.Fatalf("SQLITE_CANTOPEN: %v", err)
	}
}

// mountTiny mounts a tmpfs of size (e.g. "512k") on a new directory and
// unmounts it when the test ends. It needs root: it skips otherwise,
// saying why, except under CI=true (CI runs as root), where it fails.
func mountTiny(t *testing.T, size string) string {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if os.Geteuid() != 0 {
		fail("mounting a %s tmpfs to fill the disk needs root (euid %d)", size, os.Geteuid())
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		fail("mount -t tmpfs -o size=%s: %v: %s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full, and returns
// its path: removing it frees the space again.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 512)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			return path
		}
	}
}

// On a full disk a write fails with the retryable unavailable /
// storage_full, Ping (and so /readyz, 503 with an envelope) fails while
// the store cannot write, and both recover once space is freed. The disk
// is a real 512 KiB tmpfs.
func TestDiskFull(t *testing.T) {
	dir := mountTiny(t, "512k")
	ctx := context.Background()
	path := filepath.Join(dir, "ff.db")
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e := eng(b)
	if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: newSecret(t)}); err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(e, httpapi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz before the disk fills: %d %s", code, body)
	}

	filler := fill(t, dir)
	suspend := func(i int) error {
		wps := make([]contracts.WaitpointSpec, contracts.MaxWaitpoints)
		for k := range wps {
			wps[k] = contracts.WaitpointSpec{Key: fmt.Sprintf("key-%d-%s", k, strings.Repeat("x", 100))}
		}
		_, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: fmt.Sprintf("exec-%d", i), Waitpoints: wps, Condition: contracts.ConditionAny})
		return err
	}
	var werr error
	for i := 0; i < 10_000 && werr == nil; i++ {
		werr = suspend(i)
	}
	ce := contracts.AsError(werr)
	if !errors.Is(werr, contracts.ErrStorageFull) || !ce.Retryable || ce.Kind != contracts.KindUnavailable {
		t.Fatalf("write on a full disk: %v; want unavailable / storage_full, retryable", werr)
	}
	if err := b.Ping(ctx); !errors.Is(err, contracts.ErrStorageFull) {
		t.Fatalf("Ping on a full disk: %v; want storage_full", err)
	}
	code, body := readyz()
	var env contracts.ErrorEnvelope
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &env) != nil || env.Error == nil || env.Error.Code != contracts.CodeStorageFull {
		t.Fatalf("/readyz on a full disk: %d %s; want 503 with a storage_full envelope", code, body)
	}
	// Reads still work.
	if _, err := e.ListKids(ctx); err != nil {
		t.Fatalf("read on a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping once space is freed: %v", err)
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz once space is freed: %d %s", code, body)
	}
	if err := suspend(-1); err != nil {
		t.Fatalf("write once space is freed: %v", err)
	}
}

// Ping writes: each probe appends to the write-ahead log, as a write
// does, so that it fails where writes would.
func TestPingProbesAWrite(t *testing.T) {
	b, path := openFile(t)
	ctx := context.Background()
	if err := b.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path + "-wal")
	if err != nil || after.Size() <= before.Size() {
		t.Fatalf("the write-ahead log did not grow with Ping (%d -> %v, %v): the probe wrote nothing", before.Size(), after, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); !errors.Is(err, contracts.ErrBackendClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
}
