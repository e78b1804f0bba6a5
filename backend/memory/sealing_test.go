package memory

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Test KEKs: fixed, so that failures reproduce; they protect nothing.
var (
	testKEKA = testKEK(0x11)
	testKEKB = testKEK(0x22)
	testKEKC = testKEK(0x33)
)

func testKEK(fill byte) *kek.Key {
	k, err := kek.New(bytes.Repeat([]byte{fill}, kek.Size))
	if err != nil {
		panic(err)
	}
	return k
}

// storedSecrets returns each kid's stored form, read around the methods.
func storedSecrets(b *Backend) map[string][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]byte{}
	if b.keys.Current != nil {
		out[b.keys.Current.Kid] = bytes.Clone(b.keys.Current.Secret)
	}
	for _, v := range b.keys.Verifying {
		out[v.Kid] = bytes.Clone(v.Secret)
	}
	return out
}

// sameStored requires two reads of storedSecrets to be equal.
func sameStored(t *testing.T, what string, before, after map[string][]byte) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("%s: %d kids stored, want %d", what, len(after), len(before))
	}
	for kid, s := range before {
		if !bytes.Equal(after[kid], s) {
			t.Fatalf("%s: the stored form of %s changed", what, kid)
		}
	}
}

// wantKEKMismatch requires err to be kek_mismatch that quotes no secret.
func wantKEKMismatch(t *testing.T, what string, err error, secrets ...contracts.Secret) {
	t.Helper()
	drivertest.WantErr(t, err, contracts.ErrKEKMismatch)
	for _, s := range secrets {
		if strings.Contains(err.Error(), string(s)) || strings.Contains(err.Error(), hex.EncodeToString(s)) {
			t.Fatalf("%s: the error quotes a secret", what)
		}
	}
}

// sealedFixture is a fixture whose backend seals under ring, with k1
// (Secret('a')) rotated out for an hour and k2 (Secret('b')) current.
func sealedFixture(t *testing.T, ring *kek.Keyring) (*drivertest.Fixture, *Backend) {
	f := harness.NewFixture(t)
	b := f.B.(*Backend)
	b.SetKeyring(ring)
	f.Eng = engine.New(b, engine.WithKeystoreCache(0))
	f.Must(f.Eng.Seed(f.Ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')}))
	f.Rotate("k2", time.Hour)
	return f, b
}

func TestSealedStoreHoldsSealedForms(t *testing.T) {
	_, b := sealedFixture(t, kek.NewKeyring(testKEKA))
	for kid, s := range storedSecrets(b) {
		if !kek.IsSealed(s) || kek.SealedFingerprint(s) != testKEKA.Fingerprint() {
			t.Fatalf("%s is not stored sealed under KEK A", kid)
		}
		for _, secret := range []contracts.Secret{drivertest.Secret('a'), drivertest.Secret('b')} {
			if bytes.Contains(s, secret) {
				t.Fatalf("%s's stored form holds a secret", kid)
			}
		}
	}
}

func TestPlainStoreHoldsSecretsAsBefore(t *testing.T) {
	_, b := sealedFixture(t, nil)
	got := storedSecrets(b)
	if !bytes.Equal(got["k1"], drivertest.Secret('a')) || !bytes.Equal(got["k2"], drivertest.Secret('b')) {
		t.Fatal("without a keyring the stored secrets are not the secrets themselves")
	}
}

func TestRotationKeepsStoredFormsOfKeptKids(t *testing.T) {
	f, b := sealedFixture(t, kek.NewKeyring(testKEKA))
	before := storedSecrets(b)
	b.SetKeyring(kek.NewKeyring(testKEKB, testKEKA))
	f.Rotate("k3", time.Hour)
	after := storedSecrets(b)
	for _, kid := range []string{"k1", "k2"} {
		if !bytes.Equal(after[kid], before[kid]) {
			t.Fatalf("rotation re-sealed %s: only RewrapSecrets changes a stored form", kid)
		}
	}
	if kek.SealedFingerprint(after["k3"]) != testKEKB.Fingerprint() {
		t.Fatal("the inserted kid is not sealed under the primary KEK")
	}
}

func TestWrongKEKFailsOnlyCallsThatNeedASecret(t *testing.T) {
	f, b := sealedFixture(t, kek.NewKeyring(testKEKA))
	msg := []byte("m")
	tokK1 := driver.SignToken("k1", drivertest.Secret('a'), driver.SignatureInput("k1", "", msg))
	sus := f.Suspend(drivertest.SuspendArgs("exec-1", "wp"))
	before := storedSecrets(b)
	secrets := []contracts.Secret{drivertest.Secret('a'), drivertest.Secret('b')}

	b.SetKeyring(kek.NewKeyring(testKEKB))
	_, err := b.Sign(f.Ctx, contracts.SignArgs{Message: msg})
	wantKEKMismatch(t, "sign", err, secrets...)
	_, err = b.Verify(f.Ctx, contracts.VerifyArgs{Message: msg, Token: tokK1})
	wantKEKMismatch(t, "verify", err, secrets...)
	_, err = b.KeystoreSnapshot(f.Ctx, 0)
	wantKEKMismatch(t, "keystore snapshot", err, secrets...)
	_, err = b.Suspend(f.Ctx, drivertest.SuspendArgs("exec-2", "wp"))
	wantKEKMismatch(t, "suspend", err, secrets...)
	if n := Leftover(t, b, "exec-2"); n != 0 {
		t.Fatalf("a refused suspend left %d entries", n)
	}
	_, err = b.DeliverSignal(f.Ctx, drivertest.DeliverArgs(sus, 0, "once"))
	wantKEKMismatch(t, "deliver", err, secrets...)
	_, err = b.Seed(f.Ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')})
	wantKEKMismatch(t, "re-seed (same_secret needs the secret)", err, secrets...)
	r, err := b.RotateAll(f.Ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: drivertest.Secret('b'), GraceMs: 1})
	wantKEKMismatch(t, "re-run rotation (noop needs the secret)", err, secrets...)
	if len(r.Entries) != 0 {
		t.Fatalf("a refused rotation reported entries: %s", drivertest.JSONOf(t, r))
	}

	// Calls that answer without a secret still answer.
	if _, err := b.ListKids(f.Ctx, contracts.ListKidsArgs{}); err != nil {
		t.Fatalf("list_kids reads no secret: %v", err)
	}
	_, err = b.Verify(f.Ctx, contracts.VerifyArgs{Message: msg, Token: driver.SignToken("k9", drivertest.Secret('a'), driver.SignatureInput("k9", "", msg))})
	drivertest.WantErr(t, err, contracts.ErrUnknownKid)
	f.Clock.Advance(time.Hour + time.Millisecond)
	_, err = b.Verify(f.Ctx, contracts.VerifyArgs{Message: msg, Token: tokK1})
	drivertest.WantErr(t, err, contracts.ErrTokenExpired)
	sameStored(t, "the refused calls", before, storedSecrets(b))

	// Under A again, the waitpoint takes its signal: nothing was recorded.
	b.SetKeyring(kek.NewKeyring(testKEKA))
	if out := f.Deliver(sus, 0, "once"); out.Outcome != contracts.OutcomeAccepted {
		t.Fatalf("deliver under A: %s", drivertest.JSONOf(t, out))
	}
}

func TestRewrapSecrets(t *testing.T) {
	f, b := sealedFixture(t, kek.NewKeyring(testKEKA))
	msg := []byte("m")
	rewrap := func(to *kek.Keyring, want contracts.RewrapResult) {
		t.Helper()
		got, err := b.RewrapSecrets(f.Ctx, to)
		if err != nil || got != want {
			t.Fatalf("RewrapSecrets(%v) = %+v, %v; want %+v", to, got, err, want)
		}
	}
	rewrap(kek.NewKeyring(testKEKB), contracts.RewrapResult{Partitions: 1, Rewrapped: 2})
	for kid, s := range storedSecrets(b) {
		if kek.SealedFingerprint(s) != testKEKB.Fingerprint() {
			t.Fatalf("%s is not sealed under B after the rewrap", kid)
		}
	}
	// RewrapSecrets does not install the keyring it rewrapped to.
	_, err := b.Sign(f.Ctx, contracts.SignArgs{Message: msg})
	wantKEKMismatch(t, "sign under A after the rewrap to B", err)
	b.SetKeyring(kek.NewKeyring(testKEKB))
	rewrap(kek.NewKeyring(testKEKB), contracts.RewrapResult{Partitions: 1, Unchanged: 2})
	if got := drivertest.Try(b.Sign(f.Ctx, contracts.SignArgs{Message: msg})).Must(t); got.Token != driver.SignToken("k2", drivertest.Secret('b'), driver.SignatureInput("k2", "", msg)) {
		t.Fatal("sign after the rewrap: another token")
	}
	rewrap(nil, contracts.RewrapResult{Partitions: 1, Rewrapped: 2})
	got := storedSecrets(b)
	if !bytes.Equal(got["k1"], drivertest.Secret('a')) || !bytes.Equal(got["k2"], drivertest.Secret('b')) {
		t.Fatal("the rewrap to no KEK did not store the secrets in plain")
	}
}

func TestRewrapIsAllOrNothing(t *testing.T) {
	// k1 sealed under A, k2 under B: a keyring holding only B opens k2 but
	// not k1, so a rewrap to C writes nothing.
	f := harness.NewFixture(t)
	b := f.B.(*Backend)
	b.SetKeyring(kek.NewKeyring(testKEKA))
	f.Must(b.Seed(f.Ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')}))
	b.SetKeyring(kek.NewKeyring(testKEKB, testKEKA))
	f.Must(b.RotateAll(f.Ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: drivertest.Secret('b'), GraceMs: time.Hour.Milliseconds()}))
	before := storedSecrets(b)
	b.SetKeyring(kek.NewKeyring(testKEKB))
	_, err := b.RewrapSecrets(f.Ctx, kek.NewKeyring(testKEKC))
	wantKEKMismatch(t, "rewrap with a KEK missing", err, drivertest.Secret('a'), drivertest.Secret('b'))
	sameStored(t, "the failed rewrap", before, storedSecrets(b))

	b.SetKeyring(kek.NewKeyring(testKEKB, testKEKA))
	got, err := b.RewrapSecrets(f.Ctx, kek.NewKeyring(testKEKB))
	if want := (contracts.RewrapResult{Partitions: 1, Rewrapped: 1, Unchanged: 1}); err != nil || got != want {
		t.Fatalf("RewrapSecrets of a mixed store = %+v, %v; want %+v", got, err, want)
	}
}

func TestRewrapEmptyAndClosed(t *testing.T) {
	b := New()
	got, err := b.RewrapSecrets(context.Background(), kek.NewKeyring(testKEKA))
	if want := (contracts.RewrapResult{Partitions: 1}); err != nil || got != want {
		t.Fatalf("RewrapSecrets of an empty store = %+v, %v; want %+v", got, err, want)
	}
	_ = b.Close()
	_, err = b.RewrapSecrets(context.Background(), kek.NewKeyring(testKEKA))
	drivertest.WantErr(t, err, contracts.ErrBackendClosed)
}
