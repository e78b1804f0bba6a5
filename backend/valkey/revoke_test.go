package valkey

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

func mustRevoke(t testing.TB, b *Backend, kid, want string) {
	t.Helper()
	r, err := b.RevokeKid(bg, contracts.RevokeKidArgs{Kid: kid})
	if err != nil {
		t.Fatalf("revoke %s: %v", kid, err)
	}
	if len(r.Entries) != b.parts {
		t.Fatalf("revoke %s: %d entries, want %d", kid, len(r.Entries), b.parts)
	}
	for i, e := range r.Entries {
		if e.Partition != i || e.Error != nil || e.Outcome == nil || *e.Outcome != (contracts.RevokeOutcome{Outcome: want, Kid: kid}) {
			t.Fatalf("revoke %s: entry %d = %+v, want %s", kid, i, e, want)
		}
	}
}

// A revoked kid's record keeps the kid, the revoked flag and an expiry of
// now-1, and its stored secret (plain or sealed) leaves the store in the
// same step; rewrap skips it, rotations never collect it nor reuse its
// name, and snapshots, verify and deliver answer its tokens token_expired
// "was revoked" (docs/spec.md §8.7).
func TestRevokeDeletesTheSecret(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		for _, sealed := range []bool{false, true} {
			const parts = 4
			b, _ := openFresh(t, s, parts)
			if sealed {
				b.SetKeyring(kek.NewKeyring(testKEK(t, 1)))
			}
			e := engine.New(b, engine.WithKeystoreCache(0))
			mustSeed(t, b, "kid-a", secret(1))
			sus := suspend(t, e, "revoke-1", "a")
			sig, err := b.Sign(bg, contracts.SignArgs{Scope: "s", Message: []byte("m")})
			if err != nil {
				t.Fatal(err)
			}
			stored := make([]string, parts)
			for p := range parts {
				stored[p] = storedHex(t, b, p, "kid-a")
			}
			mustRotate(t, b, "kid-b", secret(2), 3_600_000)
			before, err := b.client.Time(bg).Result()
			if err != nil {
				t.Fatal(err)
			}
			mustRevoke(t, b, "kid-a", contracts.RevokeRevoked)
			mustRevoke(t, b, "kid-a", contracts.RevokeNoop)

			raw := rawStore(t, b)
			for p := range parts {
				if bytes.Contains(raw, []byte(stored[p])) {
					t.Fatalf("sealed=%v: partition %d's stored form of kid-a is still in the store", sealed, p)
				}
				f, err := b.client.HMGet(bg, b.keystoreKey(p), "s:kid-a", "r:kid-a", "x:kid-a").Result()
				if err != nil {
					t.Fatal(err)
				}
				if f[0] != nil || f[1] != "1" || f[2] == nil {
					t.Fatalf("partition %d: s/r/x of kid-a = %v, want none/1/an expiry", p, f)
				}
				if x, err := strconv.ParseInt(f[2].(string), 10, 64); err != nil || x < before.UnixMilli()-1 || x > before.UnixMilli()+60_000 {
					t.Fatalf("partition %d: x:kid-a = %v, want now-1 of the revocation (after %d)", p, f[2], before.UnixMilli())
				}
			}
			if bytes.Contains(raw, []byte(secret(1).Hex())) || bytes.Contains(raw, secret(1)) {
				t.Fatalf("sealed=%v: kid-a's secret is still in the store", sealed)
			}

			_, err = b.Verify(bg, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: sig.Token})
			wantRevoked(t, "verify", err)
			w := sus.Waitpoints[0]
			_, err = b.DeliverSignal(bg, contracts.DeliverSignalArgs{ExecutionID: sus.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
			wantRevoked(t, "deliver", err)

			snap, err := b.KeystoreSnapshot(bg, 0)
			if err != nil {
				t.Fatal(err)
			}
			rec := snap.Keys.Find("kid-a")
			if rec == nil || !rec.Revoked || rec.Secret != nil || rec.ExpiresAtMs == nil {
				t.Fatalf("snapshot: kid-a = %+v, want revoked without a secret", rec)
			}

			rw, err := b.RewrapSecrets(bg, kek.NewKeyring(testKEK(t, 2)))
			if err != nil {
				t.Fatalf("rewrap with a revoked kid: %v", err)
			}
			if rw.Rewrapped != parts {
				t.Fatalf("rewrap: %+v, want kid-b rewrapped on each of %d partitions", rw, parts)
			}
			b.SetKeyring(kek.NewKeyring(testKEK(t, 2)))

			mustRotate(t, b, "kid-c", secret(3), 0)
			time.Sleep(3 * time.Millisecond)
			r := mustRotate(t, b, "kid-d", secret(4), 0) // collects kid-b, never kid-a
			for _, e := range r.Entries {
				if e.Outcome.GCCount != 1 {
					t.Fatalf("rotate to kid-d: entry %d: %+v, want kid-b collected", e.Partition, *e.Outcome)
				}
			}
			rr, err := b.RotateAll(bg, contracts.RotateArgs{NewKid: "kid-a", NewSecret: secret(1), GraceMs: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range rr.Entries {
				if !errors.Is(e.Error, contracts.ErrRotationConflict) || e.Error.Detail != `new_kid: "kid-a" was revoked; kid names are never reused` {
					t.Fatalf("rotate back to kid-a: entry %+v, want rotation_conflict (was revoked)", e)
				}
			}
			_, err = b.Verify(bg, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: sig.Token})
			wantRevoked(t, "verify after collections", err)
			if out := mustSeed(t, b, "kid-a", secret(1)); out.Outcome != contracts.SeedAlreadySeeded || out.SameSecret == nil || *out.SameSecret {
				t.Fatalf("seed a revoked kid: %+v, want already_seeded, same_secret false", out)
			}
		}
	})
}

func wantRevoked(t testing.TB, what string, err error) {
	t.Helper()
	var ce *contracts.Error
	if !errors.As(err, &ce) || !errors.Is(err, contracts.ErrTokenExpired) || !strings.Contains(ce.Detail, `kid "kid-a" was revoked`) {
		t.Fatalf("%s with a revoked kid's token: %v, want token_expired (was revoked)", what, err)
	}
}

// The current kid is kid_is_current in each entry, with the kit's detail;
// nothing is written.
func TestRevokeCurrentKid(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		b, _ := openFresh(t, s, 3)
		mustSeed(t, b, "kid-a", secret(1))
		r, err := b.RevokeKid(bg, contracts.RevokeKidArgs{Kid: "kid-a"})
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, want := driver.PlanRevoke(driver.PartitionKeys{Current: &driver.KidRecord{Kid: "kid-a"}}, contracts.RevokeKidArgs{Kid: "kid-a"}, 0)
		for i, e := range r.Entries {
			if e.Partition != i || e.Outcome != nil || e.Error == nil || e.Error.Error() != want.Error() {
				t.Fatalf("entry %d: %+v, want %v", i, e, want)
			}
		}
		if storedHex(t, b, 0, "kid-a") == "" {
			t.Fatal("the current kid lost its secret")
		}
	})
}

// A revocation publishes one message per partition it revoked on the
// keystore channel, as a rotation; a noop publishes none.
func TestRevokePublishes(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		const p = 4
		b, _ := openFresh(t, s, p)
		mustSeed(t, b, "kid-a", secret(1))
		mustRotate(t, b, "kid-b", secret(2), 60_000)
		ctx := context.Background()
		ps := b.client.Subscribe(ctx, b.keystoreChannel())
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		count := func() int {
			n := 0
			for {
				m, err := ps.ReceiveTimeout(ctx, 300*time.Millisecond)
				if err != nil {
					return n
				}
				if _, ok := m.(*redis.Message); ok {
					n++
				}
			}
		}
		// A cluster relays PUBLISH between nodes asynchronously: the
		// rotation's messages may still arrive; let them pass first.
		count()
		mustRevoke(t, b, "kid-a", contracts.RevokeRevoked)
		if n := count(); n != p {
			t.Fatalf("revoke: %d messages, want %d", n, p)
		}
		mustRevoke(t, b, "kid-a", contracts.RevokeNoop)
		if n := count(); n != 0 {
			t.Fatalf("revoke again (noop): %d messages, want 0", n)
		}
	})
}
