package cli_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/kek"
)

// writeKEK writes a KEK file of 32 fill bytes in hex and returns its path
// and fingerprint.
func writeKEK(t *testing.T, dir string, fill byte) (path, fingerprint string) {
	t.Helper()
	raw := bytes.Repeat([]byte{fill}, kek.Size)
	path = filepath.Join(dir, "kek-"+hex.EncodeToString([]byte{fill}))
	if err := os.WriteFile(path, []byte(hex.EncodeToString(raw)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := kek.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	return path, k.Fingerprint()
}

// sqliteFiles returns the bytes of a SQLite store: the file and its journal.
func sqliteFiles(t *testing.T, db string) []byte {
	t.Helper()
	var all []byte
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		b, err := os.ReadFile(db + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestKEKFromEnvAndRewrap walks the operator's path on a SQLite file: seed
// under FF_KEK_FILE (the file holds no secret), every command needs the KEK
// (kek_mismatch without it), `ff rewrap` moves the store to a new KEK with
// the old one as kek_previous_file, and --to-plain turns sealing off.
func TestKEKFromEnvAndRewrap(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "ff.db")
	backend := "sqlite://" + db
	kekA, fpA := writeKEK(t, dir, 0x11)
	kekB, fpB := writeKEK(t, dir, 0x22)
	secret := strings.Repeat("5e", 32)
	rememberSecret(secret)

	t.Setenv(cli.KEKFileEnv, kekA)
	run(t, secret, "--backend", backend, "seed", "--kid", "k1", "--secret-file", "-").ok(t)
	tok := str(t, run(t, "", "--backend", backend, "sign", "--scope", "s", "--message", "m").ok(t), "token")
	if files := sqliteFiles(t, db); bytes.Contains(files, []byte(secret)) || bytes.Contains(files, bytes.Repeat([]byte{0x5e}, 16)) {
		t.Fatal("the SQLite file holds the secret although FF_KEK_FILE is set")
	}

	t.Setenv(cli.KEKFileEnv, "")
	e := run(t, "", "--backend", backend, "verify", "--scope", "s", "--message", "m", "--token", tok).contractErr(t, contracts.KindUnavailable, contracts.CodeKEKMismatch)
	if !strings.Contains(e.Detail, fpA) || !strings.Contains(e.Detail, "no kek_file") {
		t.Fatalf("kek_mismatch detail %q does not name the sealing KEK", e.Detail)
	}
	// A kek_file in the URL is read like FF_KEK_FILE.
	run(t, "", "--backend", backend+"?kek_file="+kekA, "verify", "--scope", "s", "--message", "m", "--token", tok).ok(t)

	t.Setenv(cli.KEKFileEnv, kekA)
	out := run(t, "", "--backend", backend, "rewrap", "--new-kek-file", kekB).ok(t)
	if out["rewrapped"] != float64(1) || out["unchanged"] != float64(0) || out["kek_fingerprint"] != fpB {
		t.Fatalf("rewrap to B: %v", out)
	}
	run(t, "", "--backend", backend, "verify", "--scope", "s", "--message", "m", "--token", tok).contractErr(t, contracts.KindUnavailable, contracts.CodeKEKMismatch)
	t.Setenv(cli.KEKFileEnv, kekB)
	v := run(t, "", "--backend", backend, "verify", "--scope", "s", "--message", "m", "--token", tok).ok(t)
	if v["valid"] != true || v["kid"] != "k1" {
		t.Fatalf("verify after rewrap: %v", v)
	}
	// The URL's kek_file wins over FF_KEK_FILE; kek_previous_file opens.
	run(t, "", "--backend", backend+"?kek_file="+kekA+"&kek_previous_file="+kekB, "verify", "--scope", "s", "--message", "m", "--token", tok).ok(t)

	out = run(t, "", "--backend", backend, "rewrap", "--to-plain").ok(t)
	if out["rewrapped"] != float64(1) || out["kek_fingerprint"] != nil {
		t.Fatalf("rewrap to plain: %v", out)
	}
	t.Setenv(cli.KEKFileEnv, "")
	run(t, "", "--backend", backend, "verify", "--scope", "s", "--message", "m", "--token", tok).ok(t)
}

func TestKEKUsageAndInputErrors(t *testing.T) {
	dir := t.TempDir()
	backend := "sqlite://" + filepath.Join(dir, "ff.db")
	run(t, "", "--backend", backend, "rewrap").usage(t, "exactly one of --new-kek-file, --to-plain")
	kekA, _ := writeKEK(t, dir, 0x11)
	run(t, "", "--backend", backend, "rewrap", "--to-plain", "--new-kek-file", kekA).usage(t, "exactly one of")

	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("hunter2-not-a-key"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := run(t, "", "--backend", backend, "rewrap", "--new-kek-file", bad).contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
	if !strings.Contains(e.Detail, "new_kek_file") || strings.Contains(e.Detail, "hunter2") {
		t.Fatalf("detail %q: want the field named and the content never quoted", e.Detail)
	}
	t.Setenv(cli.KEKFileEnv, bad)
	e = run(t, "", "--backend", backend, "kids").contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
	if !strings.Contains(e.Detail, "kek_file") || strings.Contains(e.Detail, "hunter2") {
		t.Fatalf("detail %q: want kek_file named and the content never quoted", e.Detail)
	}
	t.Setenv(cli.KEKFileEnv, filepath.Join(dir, "missing"))
	run(t, "", "--backend", backend, "kids").contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
}
