package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

const startMs = 1767225600000 // 2026-01-01T00:00:00Z

var bg = context.Background()

// manual is a hand-moved clock: the backend's (milliseconds) or the
// cache's monotonic one.
type manual struct{ ns atomic.Int64 }

func (m *manual) mono() time.Duration     { return time.Duration(m.ns.Load()) }
func (m *manual) now() time.Time          { return time.Unix(0, m.ns.Load()) }
func (m *manual) advance(d time.Duration) { m.ns.Add(int64(d)) }

// store is a memory backend on a manual clock that counts keystore
// snapshots. serverLike drops the snapshot's Clock, so the cache estimates
// the backend's time from NowMs and its monotonic clock, as it does for
// Postgres and Valkey.
type store struct {
	*memory.Backend
	clock      *manual
	snapshots  atomic.Int64
	serverLike bool
}

func (s *store) KeystoreSnapshot(ctx context.Context, p int) (driver.KeystoreSnapshot, error) {
	s.snapshots.Add(1)
	ks, err := s.Backend.KeystoreSnapshot(ctx, p)
	if s.serverLike {
		ks.Clock = nil
	}
	return ks, err
}

func newStore(t *testing.T) *store {
	c := &manual{}
	c.ns.Store(startMs * int64(time.Millisecond))
	s := &store{Backend: memory.New(memory.WithClock(c.now)), clock: c}
	t.Cleanup(func() { _ = s.Backend.Close() })
	return s
}

// cached returns an Engine over b with the cache on and its monotonic clock
// in the test's hands.
func cached(t *testing.T, b driver.Backend, ttl time.Duration) (*engine.Engine, *manual) {
	t.Helper()
	m := &manual{}
	e := engine.New(b, engine.WithKeystoreCache(ttl))
	engine.SetKeystoreCacheMonotonic(e, m.mono)
	if !engine.KeystoreCacheActive(e) {
		t.Fatal("keystore cache is not active")
	}
	return e, m
}

func secret(c byte) contracts.Secret { return contracts.Secret(strings.Repeat(string(c), 32)) }

func mustSeed(t *testing.T, e *engine.Engine, kid string, c byte) {
	t.Helper()
	if _, err := e.Seed(bg, contracts.SeedArgs{Kid: kid, Secret: secret(c)}); err != nil {
		t.Fatalf("seed %s: %v", kid, err)
	}
}

func mustRotate(t *testing.T, e *engine.Engine, kid string, c byte, graceMs int64) {
	t.Helper()
	r, err := e.RotateAll(bg, contracts.RotateArgs{NewKid: kid, NewSecret: secret(c), GraceMs: graceMs})
	if err != nil || r.Failed() {
		t.Fatalf("rotate to %s: %+v, %v", kid, r, err)
	}
}

func mustSign(t *testing.T, e *engine.Engine, msg string) contracts.SignResult {
	t.Helper()
	r, err := e.Sign(bg, contracts.SignArgs{Scope: "s", Message: []byte(msg)})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return r
}

func verify(e *engine.Engine, msg, token string) (contracts.VerifyResult, error) {
	return e.Verify(bg, contracts.VerifyArgs{Scope: "s", Message: []byte(msg), Token: token})
}

func wantKid(t *testing.T, what string, got contracts.SignResult, kid string) {
	t.Helper()
	if got.Kid != kid {
		t.Fatalf("%s: signed with %s, want %s", what, got.Kid, kid)
	}
}

// Given engine A has cached kid-a and engine B rotates the same store to
// kid-b, then A signs with kid-a until its TTL has passed, and with kid-b
// from then on.
func TestKeystoreCacheSeesExternalRotationWithinTTL(t *testing.T) {
	s := newStore(t)
	a, mono := cached(t, s, time.Second)
	b := engine.New(s, engine.WithKeystoreCache(time.Second))
	mustSeed(t, a, "kid-a", 'a')
	wantKid(t, "before the rotation", mustSign(t, a, "m"), "kid-a")
	mustRotate(t, b, "kid-b", 'b', 3_600_000)
	wantKid(t, "A at once (cached)", mustSign(t, a, "m"), "kid-a")
	mono.advance(999 * time.Millisecond)
	wantKid(t, "A 999 ms later (cached)", mustSign(t, a, "m"), "kid-a")
	mono.advance(time.Millisecond)
	tok := mustSign(t, a, "m")
	wantKid(t, "A once the TTL passed", tok, "kid-b")
	if _, err := verify(b, "m", tok.Token); err != nil {
		t.Fatalf("B verifies A's token: %v", err)
	}
}

// Given engine A has cached kid-a, then a rotation or a seed through A is
// seen by A's next call, without waiting for the TTL.
func TestKeystoreCacheSeesOwnSeedAndRotationAtOnce(t *testing.T) {
	s := newStore(t)
	a, _ := cached(t, s, time.Hour)
	if _, err := a.Sign(bg, contracts.SignArgs{Scope: "s"}); !errors.Is(err, contracts.ErrHMACSecretNotInitialized) {
		t.Fatalf("sign before seed: %v, want hmac_secret_not_initialized", err)
	}
	mustSeed(t, a, "kid-a", 'a')
	wantKid(t, "after seed", mustSign(t, a, "m"), "kid-a")
	mustRotate(t, a, "kid-b", 'b', 3_600_000)
	tok := mustSign(t, a, "m")
	wantKid(t, "after rotation", tok, "kid-b")
	if out, err := verify(a, "m", tok.Token); err != nil || out.Kid != "kid-b" {
		t.Fatalf("verify after rotation: %+v, %v", out, err)
	}
}

// Given a cached keystore, then a flood of tokens with forged kids from 16
// goroutines reads the keystore at most once per partition per 100 ms, and
// a kid installed elsewhere is found by the first refresh allowed.
func TestKeystoreCacheThrottlesRefreshesOnForgedKids(t *testing.T) {
	s := newStore(t)
	a, mono := cached(t, s, time.Hour)
	other := engine.New(s, engine.WithKeystoreCache(0))
	mustSeed(t, a, "kid-a", 'a')
	mustSign(t, a, "m")
	flood := func() int64 {
		before := s.snapshots.Load()
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 500 {
					tok := fmt.Sprintf("forged-%d-%d:%s", g, i, strings.Repeat("0", 64))
					if _, err := verify(a, "m", tok); !errors.Is(err, contracts.ErrUnknownKid) {
						t.Errorf("forged kid: %v, want unknown_kid", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return s.snapshots.Load() - before
	}
	if n := flood(); n != 0 {
		t.Fatalf("8000 forged kids within 100 ms of the last read: %d reads, want 0", n)
	}
	mono.advance(100 * time.Millisecond)
	if n := flood(); n != 1 {
		t.Fatalf("8000 forged kids after 100 ms: %d reads, want 1", n)
	}
	mustRotate(t, other, "kid-c", 'c', 3_600_000)
	tokC := mustSign(t, other, "m")
	if _, err := verify(a, "m", tokC.Token); !errors.Is(err, contracts.ErrUnknownKid) {
		t.Fatalf("kid-c within 100 ms of the last read: %v, want unknown_kid (throttled)", err)
	}
	mono.advance(100 * time.Millisecond)
	if out, err := verify(a, "m", tokC.Token); err != nil || out.Kid != "kid-c" {
		t.Fatalf("kid-c 100 ms later: %+v, %v, want valid", out, err)
	}
}

// Given kid-a rotated away with grace 1000 ms and the snapshot cached, then
// its token verifies at expires_at_ms == now and is token_expired 1 ms
// later, both when the driver hands over its clock and when the cache
// estimates the server's clock from the snapshot and its monotonic clock;
// the errors are the uncached path's.
func TestKeystoreCacheExpiryAtTheBoundary(t *testing.T) {
	for _, serverLike := range []bool{false, true} {
		t.Run(fmt.Sprintf("serverLike=%v", serverLike), func(t *testing.T) {
			s := newStore(t)
			s.serverLike = serverLike
			a, mono := cached(t, s, time.Hour)
			plain := engine.New(s, engine.WithKeystoreCache(0))
			step := func(d time.Duration) { s.clock.advance(d); mono.advance(d) }
			mustSeed(t, a, "kid-a", 'a')
			tok := mustSign(t, a, "m").Token
			mustRotate(t, a, "kid-b", 'b', 1000)
			if _, err := verify(a, "m", tok); err != nil { // reads the snapshot
				t.Fatalf("within grace: %v", err)
			}
			reads := s.snapshots.Load()
			step(1000 * time.Millisecond)
			if _, err := verify(a, "m", tok); err != nil {
				t.Fatalf("at expires_at_ms == now: %v, want valid", err)
			}
			step(time.Millisecond)
			_, got := verify(a, "m", tok)
			_, want := verify(plain, "m", tok)
			if !errors.Is(got, contracts.ErrTokenExpired) || envelope(got) != envelope(want) {
				t.Fatalf("1 ms past expiry: cached %s, uncached %s", envelope(got), envelope(want))
			}
			if n := s.snapshots.Load() - reads; n != 1 {
				t.Fatalf("%d reads, want 1 (the throttled refresh after the expired token)", n)
			}
		})
	}
}

// Given an empty store, then every Sign and Verify reads the keystore
// (hmac_secret_not_initialized is never cached), and a seed through another
// engine is seen at once.
func TestKeystoreCacheNeverCachesNotInitialized(t *testing.T) {
	s := newStore(t)
	a, _ := cached(t, s, time.Hour)
	tok := driver.SignToken("kid-a", secret('a'), driver.SignatureInput("kid-a", "s", []byte("m")))
	for i := range 3 {
		if _, err := a.Sign(bg, contracts.SignArgs{Scope: "s"}); !errors.Is(err, contracts.ErrHMACSecretNotInitialized) {
			t.Fatalf("sign: %v", err)
		}
		if _, err := verify(a, "m", tok); !errors.Is(err, contracts.ErrHMACSecretNotInitialized) {
			t.Fatalf("verify: %v", err)
		}
		if n := s.snapshots.Load(); n != int64(2*(i+1)) {
			t.Fatalf("after %d rounds: %d reads, want %d", i+1, n, 2*(i+1))
		}
	}
	mustSeed(t, engine.New(s), "kid-a", 'a')
	if _, err := verify(a, "m", tok); err != nil {
		t.Fatalf("verify after a seed elsewhere: %v", err)
	}
}

// envelope is the JSON an API would return for err, or "ok".
func envelope(err error) string {
	if err == nil {
		return "ok"
	}
	b, _ := json.Marshal(contracts.ErrorEnvelope{Error: contracts.AsError(err)})
	return string(b)
}

func outcome(v any, err error) string {
	if err != nil {
		return envelope(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Given one store seen by a cached and an uncached engine, then every sign
// and verify answers the same envelope, byte for byte.
func TestKeystoreCacheAnswersLikeTheDriver(t *testing.T) {
	s := newStore(t)
	c, mono := cached(t, s, time.Hour)
	u := engine.New(s, engine.WithKeystoreCache(0))
	same := func(what string, cv any, cerr error, uv any, uerr error) {
		t.Helper()
		if got, want := outcome(cv, cerr), outcome(uv, uerr); got != want {
			t.Fatalf("%s: cached %s, uncached %s", what, got, want)
		}
	}
	sign := func(what, scope, msg string) {
		t.Helper()
		a := contracts.SignArgs{Scope: scope, Message: []byte(msg)}
		cv, cerr := c.Sign(bg, a)
		uv, uerr := u.Sign(bg, a)
		same("sign "+what, cv, cerr, uv, uerr)
	}
	check := func(what, scope, msg, tok string) {
		t.Helper()
		a := contracts.VerifyArgs{Scope: scope, Message: []byte(msg), Token: tok}
		cv, cerr := c.Verify(bg, a)
		uv, uerr := u.Verify(bg, a)
		same("verify "+what, cv, cerr, uv, uerr)
	}
	tokA := driver.SignToken("kid-a", secret('a'), driver.SignatureInput("kid-a", "s", []byte("m")))
	sign("not initialized", "s", "m")
	check("not initialized", "s", "m", tokA)
	mustSeed(t, c, "kid-a", 'a')
	sign("current", "s", "m")
	check("current", "s", "m", tokA)
	mustRotate(t, c, "kid-b", 'b', 1000)
	tokB := driver.SignToken("kid-b", secret('b'), driver.SignatureInput("kid-b", "s", []byte("m")))
	sign("after rotation", "s", "m")
	check("new current", "s", "m", tokB)
	check("verifying", "s", "m", tokA)
	check("other message", "s", "other", tokB)
	check("other scope", "t", "m", tokB)
	check("wrong MAC", "s", "m", "kid-b:"+strings.Repeat("ab", 32))
	check("unknown kid", "s", "m", driver.SignToken("kid-z", secret('b'), driver.SignatureInput("kid-z", "s", []byte("m"))))
	check("kid bound into the MAC", "s", "m", driver.SignToken("kid-b", secret('a'), driver.SignatureInput("kid-b", "s", []byte("m"))))
	check("malformed", "s", "m", "kid-b:XYZ")
	check("uppercase hex", "s", "m", strings.ToUpper(tokB))
	check("empty token", "s", "m", "")
	check("scope too long", strings.Repeat("s", contracts.MaxScopeLen+1), "m", tokB)
	check("message too long", "s", strings.Repeat("m", contracts.MaxMessageLen+1), tokB)
	sign("scope too long", strings.Repeat("s", contracts.MaxScopeLen+1), "m")
	sign("message too long", "s", strings.Repeat("m", contracts.MaxMessageLen+1))
	s.clock.advance(1001 * time.Millisecond)
	mono.advance(1001 * time.Millisecond)
	check("expired", "s", "m", tokA)
	canceled, cancel := context.WithCancel(bg)
	cancel()
	cv, cerr := c.Verify(canceled, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: tokB})
	uv, uerr := u.Verify(canceled, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: tokB})
	same("verify with a canceled context", cv, cerr, uv, uerr)
}

// fourPartitions embeds a one-partition memory backend but declares four
// partitions: the KeystoreSnapshot it inherits does not describe it.
type fourPartitions struct{ *memory.Backend }

func (fourPartitions) Capabilities() driver.Capabilities { return driver.Capabilities{Partitions: 4} }

// Given a backend whose inherited snapshot describes another store, then the
// engine stops using the cache and answers through the driver.
func TestKeystoreCacheOffWhenSnapshotDescribesAnotherStore(t *testing.T) {
	b := fourPartitions{memory.New()}
	e := engine.New(b)
	mustSeed(t, e, "kid-a", 'a')
	tok := mustSign(t, e, "m")
	if engine.KeystoreCacheActive(e) {
		t.Fatal("cache still active over a mismatched snapshot")
	}
	if _, err := verify(e, "m", tok.Token); err != nil {
		t.Fatalf("verify through the driver: %v", err)
	}
}

// Given rotations through the engine racing with signs and verifies, then
// every token it signs verifies (run with -race).
func TestKeystoreCacheConcurrentRotations(t *testing.T) {
	s := newStore(t)
	s.serverLike = true
	e := engine.New(s, engine.WithKeystoreCache(time.Hour))
	mustSeed(t, e, "kid-0", '0')
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				msg := fmt.Sprintf("%d-%d", g, i)
				tok := mustSign(t, e, msg)
				if _, err := verify(e, msg, tok.Token); err != nil {
					t.Errorf("verify own token of %s: %v", tok.Kid, err)
					return
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		mustRotate(t, e, fmt.Sprintf("kid-%d", i), byte('a'+i), 3_600_000)
	}
	close(stop)
	wg.Wait()
	wantKid(t, "after 20 rotations", mustSign(t, e, "m"), "kid-20")
}

// A cached verify of a valid token allocates at most twice.
func TestKeystoreCacheVerifyAllocations(t *testing.T) {
	s := newStore(t)
	e, _ := cached(t, s, time.Hour)
	mustSeed(t, e, "kid-a", 'a')
	msg := []byte("exec-1|" + driver.NewID() + "|approve|1767225600000")
	tok := driver.SignToken("kid-a", secret('a'), driver.SignatureInput("kid-a", "exec-1", msg))
	a := contracts.VerifyArgs{Scope: "exec-1", Message: msg, Token: tok}
	if _, err := e.Verify(bg, a); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = e.Verify(bg, a) }); n > 2 {
		t.Fatalf("cached verify: %.1f allocations, want ≤ 2", n)
	}
}

// On the real monotonic clock (expiry timers, no hand-moved clock): a
// rotation through another engine is seen once the TTL has passed.
func TestKeystoreCacheTTLOnTheRealClock(t *testing.T) {
	s := newStore(t)
	const ttl = 200 * time.Millisecond
	a := engine.New(s, engine.WithKeystoreCache(ttl))
	b := engine.New(s, engine.WithKeystoreCache(0))
	mustSeed(t, a, "kid-a", 'a')
	mustSign(t, a, "m")
	start := time.Now()
	mustRotate(t, b, "kid-b", 'b', 3_600_000)
	got := mustSign(t, a, "m")
	if time.Since(start) < ttl/2 {
		wantKid(t, "A within the TTL (cached)", got, "kid-a")
	}
	time.Sleep(ttl + 300*time.Millisecond) // margin for a loaded machine
	wantKid(t, "A after the TTL", mustSign(t, a, "m"), "kid-b")
}

// slowStore makes every keystore read take a while, so that concurrent
// callers overlap.
type slowStore struct{ *store }

func (s slowStore) KeystoreSnapshot(ctx context.Context, p int) (driver.KeystoreSnapshot, error) {
	time.Sleep(50 * time.Millisecond)
	return s.store.KeystoreSnapshot(ctx, p)
}

// Given a cold cache, then 16 concurrent verifies share one keystore read;
// a caller whose context ends while it waits gets its own context's error.
func TestKeystoreCacheSharesOneRead(t *testing.T) {
	s := newStore(t)
	mustSeed(t, engine.New(s.Backend), "kid-a", 'a')
	e := engine.New(slowStore{s}, engine.WithKeystoreCache(time.Hour))
	tok := driver.SignToken("kid-a", secret('a'), driver.SignatureInput("kid-a", "s", []byte("m")))
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := verify(e, "m", tok); err != nil {
				t.Errorf("verify: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := s.snapshots.Load(); n != 1 {
		t.Fatalf("16 concurrent verifies on a cold cache: %d reads, want 1", n)
	}
	g := gatedStore{store: s, started: make(chan struct{}, 1), release: make(chan struct{})}
	cold := engine.New(g, engine.WithKeystoreCache(time.Hour))
	led := make(chan error, 1)
	go func() { _, err := verify(cold, "m", tok); led <- err }() // the leader of the read
	<-g.started                                                  // its read is in flight, and stays so until release
	release := sync.OnceFunc(func() { close(g.release) })
	time.AfterFunc(2*time.Second, release) // a waiter that ignored its context would return only then
	ctx, cancel := context.WithTimeout(bg, 5*time.Millisecond)
	defer cancel()
	_, err := cold.Verify(ctx, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: tok})
	release()
	if !errors.Is(err, contracts.ErrDeadlineExceeded) {
		t.Fatalf("waiting caller past its deadline: %v, want deadline_exceeded", err)
	}
	if err := <-led; err != nil {
		t.Fatalf("the leader: %v", err)
	}
}

// gatedStore holds every keystore read until release is closed, telling
// started when one begins: a read in flight for as long as a test needs.
type gatedStore struct {
	*store
	started chan struct{}
	release chan struct{}
}

func (s gatedStore) KeystoreSnapshot(ctx context.Context, p int) (driver.KeystoreSnapshot, error) {
	select {
	case s.started <- struct{}{}:
	default:
	}
	<-s.release
	return s.store.KeystoreSnapshot(ctx, p)
}

func TestKeystoreCacheOffAfterClose(t *testing.T) {
	e := engine.New(memory.New(), engine.WithKeystoreCache(time.Hour))
	mustSeed(t, e, "kid-a", 'a')
	tok := mustSign(t, e, "m")
	if _, err := verify(e, "m", tok.Token); err != nil {
		t.Fatalf("verify before Close: %v", err)
	}
	_ = e.Close()
	if _, err := verify(e, "m", tok.Token); !errors.Is(err, contracts.ErrBackendClosed) {
		t.Fatalf("verify after Close: %v, want backend_closed", err)
	}
}

// TestKeystoreCacheFallsBackOnKEKMismatch: when one kid of a partition is
// sealed under a KEK the keyring no longer holds, the snapshot cannot be
// read, but the driver still answers calls that do not need that kid; the
// cached Engine answers exactly as the uncached one.
func TestKeystoreCacheFallsBackOnKEKMismatch(t *testing.T) {
	b := memory.New()
	kekA, _ := kek.New(bytes.Repeat([]byte{1}, kek.Size))
	kekB, _ := kek.New(bytes.Repeat([]byte{2}, kek.Size))
	uncached := engine.New(b, engine.WithKeystoreCache(0))
	b.SetKeyring(kek.NewKeyring(kekA))
	secret := func(fill byte) contracts.Secret { return contracts.Secret(bytes.Repeat([]byte{fill}, 32)) }
	if _, err := uncached.Seed(bg, contracts.SeedArgs{Kid: "a", Secret: secret(0xa)}); err != nil {
		t.Fatal(err)
	}
	tokA, err := uncached.Sign(bg, contracts.SignArgs{Scope: "s", Message: []byte("m")})
	if err != nil || tokA.Kid != "a" {
		t.Fatal(tokA, err)
	}
	b.SetKeyring(kek.NewKeyring(kekB, kekA))
	if _, err := uncached.RotateAll(bg, contracts.RotateArgs{NewKid: "b", NewSecret: secret(0xb), GraceMs: 3_600_000}); err != nil {
		t.Fatal(err)
	}
	b.SetKeyring(kek.NewKeyring(kekB)) // kid a, sealed under A, no longer opens

	cached := engine.New(b, engine.WithKeystoreCache(time.Hour))
	for _, e := range []*engine.Engine{uncached, cached} {
		r, err := e.Sign(bg, contracts.SignArgs{Scope: "s", Message: []byte("m")})
		if err != nil || r.Kid != "b" {
			t.Fatalf("sign with the current kid b (sealed under the configured KEK): %+v, %v", r, err)
		}
		_, err = e.Verify(bg, contracts.VerifyArgs{Scope: "s", Message: []byte("m"), Token: tokA.Token})
		if !errors.Is(err, contracts.ErrKEKMismatch) {
			t.Fatalf("verify a token of kid a: %v, want kek_mismatch", err)
		}
	}
}
