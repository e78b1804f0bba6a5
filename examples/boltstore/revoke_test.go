package boltstore

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Driver-level tests of revoke_kid (docs/spec.md §8.7): what the shared
// Keystore/Revoke scenarios cannot see from outside the driver — the stored
// document of a revoked kid, its secret gone in plain and sealed stores,
// rewraps and reopens of a store holding one, and the upgrade of layout 2
// files.

var (
	revokeK1 = contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret("0123456789abcdef0123456789abcdef")}
	revokeK2 = contracts.RotateArgs{NewKid: "k2", NewSecret: contracts.Secret("fedcba9876543210fedcba9876543210"), GraceMs: time.Hour.Milliseconds()}
)

// openRevoke opens a store at path on a fixed clock, under ring (nil:
// secrets in plain), closed when the test ends.
func openRevoke(t *testing.T, path string, ring *kek.Keyring, nowMs int64) *Backend {
	t.Helper()
	b, err := Open(lctx, path, WithoutSync(), WithClock(func() time.Time { return time.UnixMilli(nowMs) }))
	if err != nil {
		t.Fatal(err)
	}
	b.SetKeyring(ring)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// keystoreDoc returns the stored keystore document, as bytes and decoded.
func keystoreDoc(t *testing.T, b *Backend) ([]byte, keysDoc) {
	t.Helper()
	var raw []byte
	var d keysDoc
	err := b.db.View(func(tx *bolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bucketKeys).Get(keyPartition0))
		return json.Unmarshal(raw, &d)
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw, d
}

// holdsForm reports whether raw holds stored as bytes, hex or base64 (the
// keystore document's encoding).
func holdsForm(raw, stored []byte) bool {
	for _, form := range []string{string(stored), hex.EncodeToString(stored), base64.StdEncoding.EncodeToString(stored)} {
		if bytes.Contains(raw, []byte(form)) {
			return true
		}
	}
	return false
}

// Given k1 rotated out with an hour of grace, in a plain store and in one
// sealed under a KEK, when k1 is revoked, then the keystore document keeps
// k1's name with "revoked" and an expiry of now − 1 and holds neither its
// secret nor its stored (sealed) form, while k2's stored form is untouched;
// a snapshot carries the revoked record without a secret; k1's signature
// answers token_expired; and a second revocation writes nothing.
func TestRevokeDropsTheStoredSecret(t *testing.T) {
	const nowMs = 1767225600000
	for name, ring := range map[string]*kek.Keyring{"plain": nil, "sealed": kek.NewKeyring(revokeKey(t))} {
		t.Run(name, func(t *testing.T) {
			b := openRevoke(t, filepath.Join(t.TempDir(), "ff.bolt"), ring, nowMs)
			e := engine.New(b)
			if _, err := e.Seed(lctx, revokeK1); err != nil {
				t.Fatal(err)
			}
			msg := []byte("leaked")
			old := must[contracts.SignResult](t, "sign with k1")(e.Sign(lctx, contracts.SignArgs{Message: msg}))
			if r, err := e.RotateAll(lctx, revokeK2); err != nil || r.Failed() {
				t.Fatalf("rotate: %+v, %v", r, err)
			}
			_, before := keystoreDoc(t, b)
			k1Stored, k2Stored := before.Verifying[0].Secret, before.Current.Secret

			r := must[contracts.RevokeKidResult](t, "revoke k1")(e.RevokeKid(lctx, contracts.RevokeKidArgs{Kid: "k1"}))
			want := contracts.RevokeOutcome{Outcome: contracts.RevokeRevoked, Kid: "k1"}
			if len(r.Entries) != 1 || r.Entries[0].Error != nil || *r.Entries[0].Outcome != want {
				t.Fatalf("revoke k1: %+v", r)
			}
			raw, after := keystoreDoc(t, b)
			revokedAt := int64(nowMs - 1)
			if got := after.Verifying[0]; got.Kid != "k1" || !got.Revoked || got.Secret != nil || got.ExpiresAtMs == nil || *got.ExpiresAtMs != revokedAt {
				t.Fatalf("k1's stored record after the revocation: %s", raw)
			}
			if holdsForm(raw, k1Stored) || holdsForm(raw, revokeK1.Secret) {
				t.Fatalf("the keystore document still holds k1's secret: %d bytes", len(raw))
			}
			if !bytes.Equal(after.Current.Secret, k2Stored) || after.Current.Revoked {
				t.Fatal("the revocation changed k2's stored record")
			}

			s := must[driver.KeystoreSnapshot](t, "snapshot")(b.KeystoreSnapshot(lctx, 0))
			if got := s.Keys.Find("k1"); got == nil || !got.Revoked || got.Secret != nil || *got.ExpiresAtMs != revokedAt {
				t.Fatalf("k1 in the snapshot: %+v", got)
			}
			args := contracts.VerifyArgs{Token: old.Token, Message: msg}
			_, err := e.Verify(lctx, args) // from the Engine's cache
			wantRevoked(t, err)
			_, err = b.Verify(lctx, args) // the driver's own
			wantRevoked(t, err)

			r = must[contracts.RevokeKidResult](t, "revoke k1 again")(e.RevokeKid(lctx, contracts.RevokeKidArgs{Kid: "k1"}))
			if *r.Entries[0].Outcome != (contracts.RevokeOutcome{Outcome: contracts.RevokeNoop, Kid: "k1"}) {
				t.Fatalf("revoke k1 again: %+v", r)
			}
			if again, _ := keystoreDoc(t, b); !bytes.Equal(again, raw) {
				t.Fatal("a noop revocation rewrote the keystore")
			}
		})
	}
}

// Given a store sealed under KEK A holding a revoked kid, then a rewrap to
// KEK B re-seals only the current kid (the revoked one has no secret), the
// revoked kid stays revoked across a reopen, and rotate_all refuses its
// name; revoke_kid itself needs no KEK.
func TestRevokedKidSurvivesRewrapAndReopen(t *testing.T) {
	const nowMs = 1767225600000
	path := filepath.Join(t.TempDir(), "ff.bolt")
	keyA := revokeKey(t)
	keyB, err := kek.New(bytes.Repeat([]byte{0x22}, kek.Size))
	if err != nil {
		t.Fatal(err)
	}
	b := openRevoke(t, path, kek.NewKeyring(keyA), nowMs)
	if _, err := b.Seed(lctx, revokeK1); err != nil {
		t.Fatal(err)
	}
	if r, err := b.RotateAll(lctx, revokeK2); err != nil || r.Failed() {
		t.Fatalf("rotate: %+v, %v", r, err)
	}
	b.SetKeyring(nil) // revoke_kid opens no secret
	r := must[contracts.RevokeKidResult](t, "revoke k1 without a KEK")(b.RevokeKid(lctx, contracts.RevokeKidArgs{Kid: "k1"}))
	if r.Entries[0].Outcome == nil || r.Entries[0].Outcome.Outcome != contracts.RevokeRevoked {
		t.Fatalf("revoke k1 without a KEK: %+v", r)
	}

	b.SetKeyring(kek.NewKeyring(keyA))
	rw := must[contracts.RewrapResult](t, "rewrap to B")(b.RewrapSecrets(lctx, kek.NewKeyring(keyB)))
	if want := (contracts.RewrapResult{Partitions: 1, Rewrapped: 1}); rw != want {
		t.Fatalf("rewrap to B: %+v, want %+v", rw, want)
	}
	_ = b.Close()

	b = openRevoke(t, path, kek.NewKeyring(keyB), nowMs+1)
	k := must[driver.KeystoreSnapshot](t, "snapshot after reopen")(b.KeystoreSnapshot(lctx, 0))
	if got := k.Keys.Find("k1"); got == nil || !got.Revoked || got.Secret != nil {
		t.Fatalf("k1 after rewrap and reopen: %+v", got)
	}
	_, err = b.Verify(lctx, contracts.VerifyArgs{Token: driver.SignToken("k1", revokeK1.Secret, driver.SignatureInput("k1", "", nil))})
	wantRevoked(t, err)
	rot := must[contracts.RotateAllResult](t, "rotate back to k1")(b.RotateAll(lctx, contracts.RotateArgs{NewKid: "k1", NewSecret: revokeK1.Secret}))
	if e := rot.Entries[0].Error; e == nil || !errors.Is(e, contracts.ErrRotationConflict) || !strings.Contains(e.Detail, "revoked") {
		t.Fatalf("rotate back to k1: %+v", rot)
	}
	if l := must[contracts.ListKidsResult](t, "list_kids")(b.ListKids(lctx, contracts.ListKidsArgs{})); len(l.Partitions[0].Verifying) != 0 {
		t.Fatalf("list_kids shows a revoked kid: %+v", l)
	}
}

// Given a file of layout 2 holding a keystore, when it is opened, then it is
// upgraded in place to layout 3 (the document reads as it is) and its kids
// sign and verify as before.
func TestLayoutTwoUpgrades(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.bolt")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp := int64(1767225600000) + time.Hour.Milliseconds()
	doc := `{"current":{"kid":"k2","secret":"` + base64.StdEncoding.EncodeToString(revokeK2.NewSecret) + `"},` +
		`"verifying":[{"kid":"k1","secret":"` + base64.StdEncoding.EncodeToString(revokeK1.Secret) + `","expires_at_ms":` + jsonInt(exp) + `}]}`
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyLayout, []byte("2")); err != nil {
			return err
		}
		if err := meta.Put(keyPartitions, []byte("1")); err != nil {
			return err
		}
		return tx.Bucket(bucketKeys).Put(keyPartition0, []byte(doc))
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	b := openRevoke(t, path, nil, 1767225600000)
	err = b.db.View(func(tx *bolt.Tx) error {
		if got := string(tx.Bucket(bucketMeta).Get(keyLayout)); got != "3" {
			t.Errorf("layout %q after open, want %q", got, "3")
		}
		if got := string(tx.Bucket(bucketKeys).Get(keyPartition0)); got != doc {
			t.Errorf("the upgrade rewrote the keystore document: %s", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := driver.SignToken("k1", revokeK1.Secret, driver.SignatureInput("k1", "", []byte("m")))
	if v, err := b.Verify(lctx, contracts.VerifyArgs{Token: tok, Message: []byte("m")}); err != nil || !v.Valid {
		t.Fatalf("verify a k1 token after the upgrade: %+v, %v", v, err)
	}
	r := must[contracts.RevokeKidResult](t, "revoke k1 after the upgrade")(b.RevokeKid(lctx, contracts.RevokeKidArgs{Kid: "k1"}))
	if r.Entries[0].Outcome == nil || r.Entries[0].Outcome.Outcome != contracts.RevokeRevoked {
		t.Fatalf("revoke k1 after the upgrade: %+v", r)
	}
}

// Given a plain store whose kid k1 was revoked, then bbolt's free pages may
// still hold k1's secret (bbolt does not erase the pages a commit frees;
// docs/spec.md §4.6 lists them among what the driver cannot erase, which
// this logs), and compacting the file, the remedy the README gives, drops
// it while keeping k2's.
func TestCompactionDropsARevokedSecret(t *testing.T) {
	dir := t.TempDir()
	path, compacted := filepath.Join(dir, "ff.bolt"), filepath.Join(dir, "compacted.bolt")
	b := openRevoke(t, path, nil, 1767225600000)
	if _, err := b.Seed(lctx, revokeK1); err != nil {
		t.Fatal(err)
	}
	if r, err := b.RotateAll(lctx, revokeK2); err != nil || r.Failed() {
		t.Fatalf("rotate: %+v, %v", r, err)
	}
	if _, err := b.RevokeKid(lctx, contracts.RevokeKidArgs{Kid: "k1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the revocation, the file's free pages hold k1's secret: %v", holdsForm(raw, revokeK1.Secret))

	src, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := bolt.Open(compacted, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bolt.Compact(dst, src, 0); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(compacted)
	if err != nil {
		t.Fatal(err)
	}
	if holdsForm(raw, revokeK1.Secret) {
		t.Fatal("the compacted file holds the revoked secret")
	}
	if !holdsForm(raw, revokeK2.NewSecret) {
		t.Fatal("the compacted file lost the current kid's secret (the control)")
	}
}

func revokeKey(t *testing.T) *kek.Key {
	t.Helper()
	k, err := kek.New(bytes.Repeat([]byte{0x11}, kek.Size))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// wantRevoked requires token_expired saying the kid was revoked.
func wantRevoked(t *testing.T, err error) {
	t.Helper()
	var ce *contracts.Error
	if !errors.As(err, &ce) || !errors.Is(err, contracts.ErrTokenExpired) || !strings.Contains(ce.Detail, "revoked") {
		t.Fatalf("verify a revoked kid's token: %v, want token_expired (revoked)", err)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
