package valkey

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// pushDeadline bounds how long a rotation through another Engine may take
// to reach a cache whose TTL is an hour: only a push can make it.
const pushDeadline = 2 * time.Second

// watchedPair is one store shared by two Engines, as by two processes: a,
// whose keystore cache (TTL one hour) is under test, and b, which writes.
type watchedPair struct {
	a, b   *engine.Engine
	ba, bb *Backend
}

func newWatchedPair(t *testing.T, s server, partitions int) *watchedPair {
	t.Helper()
	ba, raw := openFresh(t, s, partitions)
	w := &watchedPair{ba: ba, bb: openURL(t, raw, nil)}
	w.a = engine.New(w.ba, engine.WithKeystoreCache(time.Hour))
	t.Cleanup(func() { _ = w.a.Close() })
	w.b = engine.New(w.bb, engine.WithKeystoreCache(0))
	if _, err := w.b.Seed(context.Background(), contracts.SeedArgs{Kid: "kid-0", Secret: fill(1)}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	waitSubscribers(t, w.ba, 1)
	if kid := w.signKid(t); kid != "kid-0" {
		t.Fatalf("first sign: %s, want kid-0", kid)
	}
	return w
}

func fill(c byte) contracts.Secret {
	s := make(contracts.Secret, 32)
	for i := range s {
		s[i] = c
	}
	return s
}

func (w *watchedPair) signKid(t *testing.T) string {
	t.Helper()
	r, err := w.a.Sign(context.Background(), contracts.SignArgs{Scope: "s", Message: []byte("m")})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return r.Kid
}

// seen rotates through b to kid and returns how long a took to sign with
// it, failing after pushDeadline.
func (w *watchedPair) seen(t *testing.T, kid string, c byte) time.Duration {
	t.Helper()
	r, err := w.b.RotateAll(context.Background(), contracts.RotateArgs{NewKid: kid, NewSecret: fill(c), GraceMs: 60_000})
	if err != nil || r.Failed() {
		t.Fatalf("rotate to %s: %+v %v", kid, r, err)
	}
	start := time.Now()
	for w.signKid(t) != kid {
		if time.Since(start) > pushDeadline {
			t.Fatalf("engine a still signs with the previous kid %v after the rotation to %s (cache TTL 1h)", pushDeadline, kid)
		}
		time.Sleep(100 * time.Microsecond) // the resolution of the measured latency
	}
	return time.Since(start)
}

// Given two Engines on one store with hour-long caches, a rotation through
// one reaches the other's cache at once; the median latency of 20 is logged.
func TestKeystoreWatchPushesRotation(t *testing.T) {
	for _, s := range servers {
		for _, p := range []int{1, 256} {
			t.Run(fmt.Sprintf("%s/P%d", s.name, p), func(t *testing.T) {
				w := newWatchedPair(t, s, p)
				var lat []time.Duration
				for i := 1; i <= 20; i++ {
					lat = append(lat, w.seen(t, fmt.Sprintf("kid-%d", i), byte(i+1)))
				}
				slices.Sort(lat)
				t.Logf("%s: push invalidation latency over %d rotations: median %.2f ms, max %.2f ms", t.Name(),
					len(lat), ms(lat[len(lat)/2]), ms(lat[len(lat)-1]))
			})
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Given a's subscriber connection is killed by the server, a rotation made
// right after (while it reconnects) is still seen, and so is a later one.
func TestKeystoreWatchRecoversFromKilledConnection(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			w := newWatchedPair(t, s, 4)
			forEachMaster(t, w.bb, func(ctx context.Context, c *redis.Client) error {
				return c.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err()
			})
			w.seen(t, "kid-b", 2)
			waitSubscribers(t, w.ba, 1)
			w.seen(t, "kid-c", 3)
		})
	}
}

// Given a subscriber of the keystore channel, every script that writes a
// partition's keystore (seed, rotate, rewrap) publishes that partition's
// keystore key once, and a write that changes nothing publishes nothing.
func TestKeystoreWritesPublish(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			const p = 4
			b, _ := openFresh(t, s, p)
			ctx := context.Background()
			ps := b.client.Subscribe(ctx, b.keystoreChannel())
			defer ps.Close()
			if _, err := ps.Receive(ctx); err != nil { // the confirmation
				t.Fatal(err)
			}
			want := map[string]bool{}
			for i := range p {
				want[b.keystoreKey(i)] = true
			}
			expect := func(what string, n int) {
				t.Helper()
				got := map[string]bool{}
				for range n {
					m, err := ps.ReceiveTimeout(ctx, 5*time.Second)
					msg, ok := m.(*redis.Message)
					if err != nil || !ok {
						t.Fatalf("%s: %d messages, want %d (%v)", what, len(got), n, err)
					}
					got[msg.Payload] = true
				}
				if m, err := ps.ReceiveTimeout(ctx, 200*time.Millisecond); err == nil {
					t.Fatalf("%s: one more message than %d: %v", what, n, m)
				}
				if n > 0 && len(got) != len(want) {
					t.Fatalf("%s: published %v, want each of %v once", what, got, want)
				}
			}
			e := engine.New(b, engine.WithKeystoreCache(0))
			if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "kid-a", Secret: fill(1)}); err != nil {
				t.Fatal(err)
			}
			expect("seed", p)
			if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "kid-a", Secret: fill(1)}); err != nil {
				t.Fatal(err)
			}
			expect("seed again", 0)
			rot := contracts.RotateArgs{NewKid: "kid-b", NewSecret: fill(2), GraceMs: 60_000}
			if _, err := e.RotateAll(ctx, rot); err != nil {
				t.Fatal(err)
			}
			expect("rotate", p)
			if _, err := e.RotateAll(ctx, rot); err != nil {
				t.Fatal(err)
			}
			expect("rotate again (noop)", 0)
			key, err := kek.New(bytes.Repeat([]byte{7}, kek.Size))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.RewrapSecrets(ctx, kek.NewKeyring(key)); err != nil {
				t.Fatal(err)
			}
			expect("rewrap", p)
		})
	}
}

// Given two Engines on one store with hour-long caches, and a token signed
// under kid-0 that a verifies from its cache while kid-1 is current, a
// revocation of kid-0 through b reaches a's cache at once: a's next
// verifications of that token answer token_expired well before the TTL.
func TestKeystoreWatchPushesRevocation(t *testing.T) {
	for _, s := range servers {
		for _, p := range []int{1, 256} {
			t.Run(fmt.Sprintf("%s/P%d", s.name, p), func(t *testing.T) {
				ctx := context.Background()
				w := newWatchedPair(t, s, p)
				sig, err := w.a.Sign(ctx, contracts.SignArgs{Scope: "s", Message: []byte("m")})
				if err != nil {
					t.Fatal(err)
				}
				w.seen(t, "kid-1", 2) // a's cache now holds kid-1, and kid-0 in grace
				verify := func() error {
					_, err := w.a.Verify(ctx, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: sig.Token})
					return err
				}
				if err := verify(); err != nil {
					t.Fatalf("before the revocation a refuses kid-0's token: %v", err)
				}
				r, err := w.b.RevokeKid(ctx, contracts.RevokeKidArgs{Kid: "kid-0"})
				if err != nil || r.Failed() {
					t.Fatalf("revoke kid-0: %+v %v", r, err)
				}
				start := time.Now()
				for verify() == nil {
					if time.Since(start) > pushDeadline {
						t.Fatalf("engine a still accepts kid-0 %v after its revocation (cache TTL 1h)", pushDeadline)
					}
					time.Sleep(100 * time.Microsecond)
				}
				t.Logf("%s: push latency of a revocation: %.2f ms", t.Name(), ms(time.Since(start)))
				if err := verify(); !errors.Is(err, contracts.ErrTokenExpired) {
					t.Fatalf("after the revocation: %v, want token_expired", err)
				}
			})
		}
	}
}
