package postgres_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// testKEK returns a KEK of 32 fill bytes; it protects nothing.
func testKEK(t testing.TB, fill byte) *kek.Key {
	t.Helper()
	k, err := kek.New(bytes.Repeat([]byte{fill}, kek.Size))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// storedSecret reads kid's secret column around the driver.
func storedSecret(t testing.TB, plainURL, kid string) []byte {
	t.Helper()
	var b []byte
	if err := connect(t, plainURL).QueryRow(context.Background(), `SELECT secret FROM ff_keys WHERE kid = $1`, kid).Scan(&b); err != nil {
		t.Fatalf("read the stored secret of %s: %v", kid, err)
	}
	return b
}

// sealedEngine returns an Engine without keystore cache over a fresh,
// migrated schema, its backend with r installed, and the schema's plain URL.
func sealedEngine(t testing.TB, r *kek.Keyring) (*engine.Engine, *postgres.Backend, string) {
	t.Helper()
	plain := schemaURL(t)
	b := openURL(t, withParam(t, plain, postgres.ParamMigrate, postgres.MigrateAuto))
	b.SetKeyring(r)
	return engine.New(b, engine.WithKeystoreCache(0)), b, plain
}

// wantCode requires err to be the contract error want, and its text to
// quote no byte of any of secrets (raw or hex).
func wantCode(t testing.TB, what string, err error, want contracts.Sentinel, secrets ...contracts.Secret) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v; want %s", what, err, want.Code())
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), string(s)) || strings.Contains(err.Error(), hex.EncodeToString(s)) {
			t.Fatalf("%s: the error quotes a secret", what)
		}
	}
}

// Given a keyring whose primary is KEK A, when a kid is seeded, then the
// row holds the secret sealed under A (not the secret, in no encoding),
// tokens are those of the plain secret, and an Engine opened with
// kek_file reads it.
func TestSealedSecretIsStoredSealed(t *testing.T) {
	kA := testKEK(t, 0x5a)
	e, _, plain := sealedEngine(t, kek.NewKeyring(kA))
	seed(t, e, "kid-1", 0x11)

	stored := storedSecret(t, plain, "kid-1")
	if !kek.IsSealed(stored) || kek.SealedFingerprint(stored) != kA.Fingerprint() {
		t.Fatalf("stored secret (%d bytes) is not sealed under kek %s", len(stored), kA.Fingerprint())
	}
	raw := rawSchema(t, plain)
	for _, form := range [][]byte{secret(0x11), []byte(hex.EncodeToString(secret(0x11)))} {
		if bytes.Contains(raw, form) {
			t.Fatal("the raw schema holds the secret")
		}
	}
	if !bytes.Contains(raw, []byte(hex.EncodeToString(stored))) {
		t.Fatal("the raw schema does not hold the sealed secret: rawSchema misses rows")
	}

	msg := []byte("m")
	got, err := e.Sign(context.Background(), contracts.SignArgs{Message: msg})
	if err != nil || got.Token != driver.SignToken("kid-1", secret(0x11), driver.SignatureInput("kid-1", "", msg)) {
		t.Fatalf("sign under a KEK: %+v, %v; want the plain secret's token", got, err)
	}

	// The same store through OpenBackend's kek_file.
	file := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(file, []byte(strings.Repeat("5a", kek.Size)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	viaURL := engine.New(openURL(t, withParam(t, plain, engine.ParamKEKFile, file)))
	if _, err := viaURL.Verify(context.Background(), contracts.VerifyArgs{Message: msg, Token: got.Token}); err != nil {
		t.Fatalf("verify through kek_file: %v", err)
	}
}

// Given a store sealed under KEK A, when it is read with no KEK or with KEK
// B, then sign, verify, suspend and the keystore snapshot fail with
// kek_mismatch quoting no secret, list_kids answers, and re-running the
// seed under B with A previous is still already_seeded with the same
// secret.
func TestSealedStoreNeedsItsKEK(t *testing.T) {
	kA, kB := testKEK(t, 0x5a), testKEK(t, 0xa5)
	e, b, _ := sealedEngine(t, kek.NewKeyring(kA))
	seed(t, e, "kid-1", 0x11)
	msg := []byte("m")
	tok := driver.SignToken("kid-1", secret(0x11), driver.SignatureInput("kid-1", "", msg))
	ctx := context.Background()
	for _, r := range []*kek.Keyring{nil, kek.NewKeyring(kB)} {
		b.SetKeyring(r)
		_, err := e.Sign(ctx, contracts.SignArgs{Message: msg})
		wantCode(t, r.String()+": sign", err, contracts.ErrKEKMismatch, secret(0x11))
		_, err = e.Verify(ctx, contracts.VerifyArgs{Message: msg, Token: tok})
		wantCode(t, r.String()+": verify", err, contracts.ErrKEKMismatch, secret(0x11))
		_, err = e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Waitpoints: []contracts.WaitpointSpec{{Key: "wp"}}})
		wantCode(t, r.String()+": suspend", err, contracts.ErrKEKMismatch, secret(0x11))
		_, err = b.KeystoreSnapshot(ctx, 0)
		wantCode(t, r.String()+": keystore snapshot", err, contracts.ErrKEKMismatch, secret(0x11))
		if l, err := e.ListKids(ctx); err != nil || *l.Partitions[0].CurrentKid != "kid-1" {
			t.Fatalf("%v: list_kids: %+v, %v", r, l, err)
		}
	}
	b.SetKeyring(kek.NewKeyring(kB, kA))
	out, err := e.Seed(ctx, contracts.SeedArgs{Kid: "kid-1", Secret: secret(0x11)})
	if err != nil || out.Outcome != contracts.SeedAlreadySeeded || out.SameSecret == nil || !*out.SameSecret {
		t.Fatalf("re-seed under B with A previous: %+v, %v; want already_seeded, same secret", out, err)
	}
	if _, err := e.Verify(ctx, contracts.VerifyArgs{Message: msg, Token: tok}); err != nil {
		t.Fatalf("verify under B with A previous: %v", err)
	}
}

// Given a verifying kid past its grace window, sealed under a KEK no
// longer configured, then verifying its token answers token_expired: the
// answer needs no secret, so it needs no KEK.
func TestExpiredKidNeedsNoKEK(t *testing.T) {
	kA, kB := testKEK(t, 0x5a), testKEK(t, 0xa5)
	e, b, _ := sealedEngine(t, kek.NewKeyring(kA))
	seed(t, e, "kid-1", 0x11)
	ctx := context.Background()
	if _, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-2", NewSecret: secret(0x22), GraceMs: 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	b.SetKeyring(kek.NewKeyring(kB))
	msg := []byte("m")
	_, err := e.Verify(ctx, contracts.VerifyArgs{Message: msg, Token: driver.SignToken("kid-1", secret(0x11), driver.SignatureInput("kid-1", "", msg))})
	wantCode(t, "verify an expired kid's token", err, contracts.ErrTokenExpired)
}

// Given a store with a plain kid and a kid sealed under KEK A, then
// RewrapSecrets to B re-seals both (1 partition, 2 rewrapped), a re-run
// changes nothing (2 unchanged), neither installs B, and rewrapping to no
// KEK stores the plain secrets again, byte for byte as before any KEK.
func TestRewrapSecrets(t *testing.T) {
	kA, kB := testKEK(t, 0x5a), testKEK(t, 0xa5)
	e, b, plain := sealedEngine(t, nil)
	seed(t, e, "kid-1", 0x11)
	b.SetKeyring(kek.NewKeyring(kA))
	ctx := context.Background()
	if _, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-2", NewSecret: secret(0x22), GraceMs: 3_600_000}); err != nil {
		t.Fatal(err)
	}
	before, err := e.ListKids(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rewrap := func(to *kek.Keyring, want contracts.RewrapResult) {
		t.Helper()
		got, err := b.RewrapSecrets(ctx, to)
		if err != nil || got != want {
			t.Fatalf("RewrapSecrets(%v) = %+v, %v; want %+v", to, got, err, want)
		}
	}
	rewrap(kek.NewKeyring(kB), contracts.RewrapResult{Partitions: 1, Rewrapped: 2})
	for _, kid := range []string{"kid-1", "kid-2"} {
		if fp := kek.SealedFingerprint(storedSecret(t, plain, kid)); fp != kB.Fingerprint() {
			t.Fatalf("%s after the rewrap to B: sealed under %q", kid, fp)
		}
	}
	// B is not installed: A no longer opens the store.
	_, err = e.Sign(ctx, contracts.SignArgs{Message: []byte("m")})
	wantCode(t, "sign under A after the rewrap to B", err, contracts.ErrKEKMismatch)

	b.SetKeyring(kek.NewKeyring(kB))
	rewrap(kek.NewKeyring(kB), contracts.RewrapResult{Partitions: 1, Unchanged: 2})
	after, err := e.ListKids(ctx)
	if err != nil || !sameKids(before, after) {
		t.Fatalf("list_kids after the rewrap: %+v, %v; before %+v", after, err, before)
	}

	rewrap(nil, contracts.RewrapResult{Partitions: 1, Rewrapped: 2})
	if !bytes.Equal(storedSecret(t, plain, "kid-1"), secret(0x11)) || !bytes.Equal(storedSecret(t, plain, "kid-2"), secret(0x22)) {
		t.Fatal("after the rewrap to no KEK the rows do not hold the plain secrets")
	}
	b.SetKeyring(nil)
	rewrap(nil, contracts.RewrapResult{Partitions: 1, Unchanged: 2})

	// A store sealed under a KEK the installed keyring lacks is refused,
	// and nothing changes.
	b.SetKeyring(kek.NewKeyring(kA))
	rewrap(kek.NewKeyring(kA), contracts.RewrapResult{Partitions: 1, Rewrapped: 2})
	b.SetKeyring(kek.NewKeyring(kB))
	if _, err := b.RewrapSecrets(ctx, nil); !errors.Is(err, contracts.ErrKEKMismatch) {
		t.Fatalf("RewrapSecrets with the wrong KEK installed: %v; want kek_mismatch", err)
	}
	if fp := kek.SealedFingerprint(storedSecret(t, plain, "kid-1")); fp != kA.Fingerprint() {
		t.Fatalf("a refused rewrap changed the store: kid-1 sealed under %q", fp)
	}
}

func sameKids(a, b contracts.ListKidsResult) bool {
	pa, pb := a.Partitions[0], b.Partitions[0]
	if (pa.CurrentKid == nil) != (pb.CurrentKid == nil) || pa.CurrentKid != nil && *pa.CurrentKid != *pb.CurrentKid || len(pa.Verifying) != len(pb.Verifying) {
		return false
	}
	for i := range pa.Verifying {
		if pa.Verifying[i] != pb.Verifying[i] {
			return false
		}
	}
	return true
}

// Given rotations running while a rewrap from A to B runs, then no rotation
// is lost: every kid a rotation installed is in the store, and every
// stored secret opens under B with A previous (rotations that committed
// after the rewrap sealed under A, the keyring they ran with).
func TestRewrapAlongsideRotations(t *testing.T) {
	kA, kB := testKEK(t, 0x5a), testKEK(t, 0xa5)
	e, b, plain := sealedEngine(t, kek.NewKeyring(kA))
	seed(t, e, "kid-0", 0x01)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-r" + string(rune('a'+i)), NewSecret: secret(byte(0x30 + i)), GraceMs: 3_600_000})
		})
	}
	wg.Go(func() { _, errs[n] = b.RewrapSecrets(ctx, kek.NewKeyring(kB)) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	both := kek.NewKeyring(kB, kA)
	kids := []string{"kid-0"}
	for i := range n {
		kids = append(kids, "kid-r"+string(rune('a'+i)))
	}
	for i, kid := range kids {
		got, err := both.Open(kid, 0, storedSecret(t, plain, kid))
		want := secret(0x01)
		if i > 0 {
			want = secret(byte(0x30 + i - 1))
		}
		if err != nil || !got.Equal(want) {
			t.Fatalf("%s after the rewrap: %v, same secret %v", kid, err, got.Equal(want))
		}
	}
}
