package valkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// testKEK is a fixed key-encryption key; it protects nothing.
func testKEK(t testing.TB, fill byte) *kek.Key {
	t.Helper()
	k, err := kek.New(bytes.Repeat([]byte{fill}, kek.Size))
	if err != nil {
		t.Fatalf("kek.New: %v", err)
	}
	return k
}

// storedHex reads kid's s:<kid> field of partition p around the driver.
func storedHex(t testing.TB, b *Backend, p int, kid string) string {
	t.Helper()
	v, err := b.client.HGet(bg, b.keystoreKey(p), "s:"+kid).Result()
	if err != nil {
		t.Fatalf("HGET s:%s on partition %d: %v", kid, p, err)
	}
	return v
}

// Without a keyring the keystore holds each secret as its lowercase hex,
// byte for byte what the driver stored before KEKs existed; with one, each
// partition holds its own sealed form, which opens only for its partition.
func TestStoredForms(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		plain, _ := openFresh(t, s, 4)
		mustSeed(t, plain, "kid-a", secret(1))
		for p := range 4 {
			if got := storedHex(t, plain, p, "kid-a"); got != secret(1).Hex() {
				t.Fatalf("plain store, partition %d: s:kid-a is not the secret's hex", p)
			}
		}

		b, _ := openFresh(t, s, 4)
		ring := kek.NewKeyring(testKEK(t, 1))
		b.SetKeyring(ring)
		mustSeed(t, b, "kid-a", secret(1))
		mustRotate(t, b, "kid-b", secret(2), 60000)
		for _, kid := range []string{"kid-a", "kid-b"} {
			forms := map[string]bool{}
			for p := range 4 {
				h := storedHex(t, b, p, kid)
				raw, err := hex.DecodeString(h)
				if err != nil || !ring.SealedUnderPrimary(raw) {
					t.Fatalf("partition %d: s:%s is not sealed under the keyring", p, kid)
				}
				forms[h] = true
			}
			if len(forms) != 4 {
				t.Fatalf("%s: %d distinct stored forms over 4 partitions, want 4", kid, len(forms))
			}
		}

		// A sealed secret copied to another partition does not open there.
		moved := storedHex(t, b, 1, "kid-b")
		if err := b.client.HSet(bg, b.keystoreKey(0), "s:kid-b", moved).Err(); err != nil {
			t.Fatalf("HSET: %v", err)
		}
		_, err := b.Sign(bg, contracts.SignArgs{Scope: scopeOf(t, 0, 4), Message: []byte("m")})
		if !errors.Is(err, contracts.ErrKEKMismatch) {
			t.Fatalf("sign with a secret moved from partition 1 to 0: %v, want kek_mismatch", err)
		}
	})
}

// scopeOf returns a scope that routes to partition p of P.
func scopeOf(t testing.TB, p, parts int) string {
	t.Helper()
	for i := range 10000 {
		sc := "scope-" + itoa(i)
		if driver.PartitionOf(sc, parts) == p {
			return sc
		}
	}
	t.Fatalf("no scope for partition %d of %d", p, parts)
	return ""
}

// Re-running a seed and a rotation after the KEK changed compares opened
// secrets on every partition (the scripts see another stored form and leave
// the decision to the driver): already_seeded with the same secret, noop
// everywhere; another secret is rotation_conflict everywhere; nothing is
// written.
func TestReRunsUnderAnotherKEK(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		b, _ := openFresh(t, s, 16)
		kekA, kekB := testKEK(t, 1), testKEK(t, 2)
		b.SetKeyring(kek.NewKeyring(kekA))
		mustSeed(t, b, "kid-a", secret(1))
		before := storedHex(t, b, 7, "kid-a")

		b.SetKeyring(kek.NewKeyring(kekB, kekA))
		if out := mustSeed(t, b, "kid-a", secret(1)); out.Outcome != contracts.SeedAlreadySeeded || !*out.SameSecret {
			t.Fatalf("re-seed under another KEK: %+v, want already_seeded, same secret", out)
		}
		if out := mustSeed(t, b, "kid-a", secret(3)); out.Outcome != contracts.SeedAlreadySeeded || *out.SameSecret {
			t.Fatalf("seed of another secret: %+v, want already_seeded, not the same secret", out)
		}
		r, err := b.RotateAll(bg, contracts.RotateArgs{NewKid: "kid-a", NewSecret: secret(1), GraceMs: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range r.Entries {
			if e.Error != nil || e.Outcome.Outcome != contracts.RotateNoop || e.Outcome.Kid != "kid-a" {
				t.Fatalf("partition %d: %+v, want noop", e.Partition, e)
			}
		}
		r, err = b.RotateAll(bg, contracts.RotateArgs{NewKid: "kid-a", NewSecret: secret(3), GraceMs: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range r.Entries {
			if !errors.Is(e.Error, contracts.ErrRotationConflict) {
				t.Fatalf("partition %d: %+v, want rotation_conflict", e.Partition, e)
			}
		}
		if storedHex(t, b, 7, "kid-a") != before {
			t.Fatal("the re-runs changed a stored secret")
		}

		// Under B alone the secret sealed under A does not open: the
		// comparison fails with kek_mismatch instead of guessing.
		b.SetKeyring(kek.NewKeyring(kekB))
		if _, err := b.Seed(bg, contracts.SeedArgs{Kid: "kid-a", Secret: secret(1)}); !errors.Is(err, contracts.ErrKEKMismatch) {
			t.Fatalf("re-seed under B alone: %v, want kek_mismatch", err)
		}
		r, err = b.RotateAll(bg, contracts.RotateArgs{NewKid: "kid-a", NewSecret: secret(1), GraceMs: 1000})
		if err != nil || !errors.Is(r.Entries[0].Error, contracts.ErrKEKMismatch) {
			t.Fatalf("re-rotate under B alone: %+v, %v; want kek_mismatch entries", r, err)
		}
	})
}

// A kid past its grace answers token_expired even when its secret is
// sealed under a KEK no longer configured: expired secrets are not opened,
// through the driver or its keystore snapshot.
func TestExpiredKidIsNotOpened(t *testing.T) {
	b, _ := openFresh(t, servers[0], 1)
	kekA, kekB := testKEK(t, 1), testKEK(t, 2)
	b.SetKeyring(kek.NewKeyring(kekA))
	mustSeed(t, b, "kid-a", secret(1))
	tok, err := b.Sign(bg, contracts.SignArgs{Message: []byte("m")})
	if err != nil {
		t.Fatal(err)
	}
	b.SetKeyring(kek.NewKeyring(kekB, kekA))
	mustRotate(t, b, "kid-b", secret(2), 0)
	// grace 0: kid-a expires 1 ms after the rotation.
	for {
		ks, err := b.KeystoreSnapshot(bg, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !ks.Keys.Verifying[0].Usable(ks.NowMs) {
			break
		}
	}
	b.SetKeyring(kek.NewKeyring(kekB))
	_, err = b.Verify(bg, contracts.VerifyArgs{Message: []byte("m"), Token: tok.Token})
	if !errors.Is(err, contracts.ErrTokenExpired) {
		t.Fatalf("verify a token of an expired kid sealed under a dropped KEK: %v, want token_expired", err)
	}
	ks, err := b.KeystoreSnapshot(bg, 0)
	if err != nil {
		t.Fatalf("snapshot with an expired kid sealed under a dropped KEK: %v", err)
	}
	if ks.Keys.Verifying[0].Secret != nil || !ks.Keys.Current.Secret.Equal(secret(2)) {
		t.Fatal("snapshot: want the expired kid without a secret and the current kid opened")
	}
}

// rewrap.lua is a compare-and-set: a partition whose secrets changed since
// the read (here: another value in s:kid-a) is left as it is and answers
// retry; RewrapSecrets then reads it again and completes.
func TestRewrapIsCompareAndSet(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		b, _ := openFresh(t, s, 8)
		kekA, kekB := testKEK(t, 1), testKEK(t, 2)
		b.SetKeyring(kek.NewKeyring(kekA))
		mustSeed(t, b, "kid-a", secret(1))
		now := storedHex(t, b, 3, "kid-a")
		stale := sealHex(kek.NewKeyring(kekB), "kid-a", 3, secret(9))
		v, err := b.run(bg, scriptRewrap, 3, driver.NewID(), "1", "kid-a", stale, sealHex(kek.NewKeyring(kekB), "kid-a", 3, secret(1)))
		if err != nil || str(v, 0) != "retry" {
			t.Fatalf("rewrap with a stale read: %v, %v; want retry", v, err)
		}
		if storedHex(t, b, 3, "kid-a") != now {
			t.Fatal("a refused rewrap wrote")
		}
		// A re-sent call (same operation id) that already wrote answers ok.
		op, to := driver.NewID(), sealHex(kek.NewKeyring(kekB), "kid-a", 3, secret(1))
		for i := range 2 {
			v, err := b.run(bg, scriptRewrap, 3, op, "1", "kid-a", now, to)
			if err != nil || str(v, 0) != "ok" {
				t.Fatalf("rewrap %d: %v, %v; want ok", i, v, err)
			}
		}
		r, err := b.RewrapSecrets(bg, kek.NewKeyring(kekB))
		if err != nil || r.Partitions != 8 || r.Rewrapped != 7 || r.Unchanged != 1 {
			t.Fatalf("RewrapSecrets = %+v, %v; want 8 partitions, 7 rewrapped, 1 unchanged", r, err)
		}
		b.SetKeyring(kek.NewKeyring(kekB))
		for p := range 8 {
			if _, err := b.Sign(bg, contracts.SignArgs{Scope: scopeOf(t, p, 8), Message: []byte("m")}); err != nil {
				t.Fatalf("sign on partition %d under B: %v", p, err)
			}
		}
	})
}
