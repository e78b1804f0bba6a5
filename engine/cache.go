package engine

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// DefaultKeystoreCacheTTL is the keystore cache's lifetime when
// WithKeystoreCache is not given. See WithKeystoreCache.
const DefaultKeystoreCacheTTL = time.Second

// KeystoreRefreshInterval bounds the refreshes that failed verifications
// (an unknown kid, an expired kid, a MAC that does not match) may trigger:
// at most one per partition per interval, so a flood of forged tokens
// cannot hammer the backend.
const KeystoreRefreshInterval = 100 * time.Millisecond

// WithKeystoreCache sets how long the Engine serves Sign and Verify from its
// in-process snapshot of a partition's keystore before reading it again; 0
// turns the cache off. The cache is used only when the backend implements
// KeystoreSnapshotter; otherwise every call is one driver call.
//
// With the cache on:
//   - results and errors are the same as the driver's, byte for byte, at
//     the backend's clock: the snapshot carries the backend's time at the
//     read and the monotonic time elapsed since is added (in-process drivers
//     give their clock itself);
//   - a Seed or RotateAll through this Engine is seen by the next call; one
//     made through another Engine or process is seen within ttl (until then
//     Sign may use the previous current kid, whose tokens stay valid for
//     the rotation's grace), or as soon as the backend pushes it when it
//     implements KeystoreWatcher and its listener is up;
//   - a token that fails against the snapshot triggers a refresh, at most
//     one per partition per KeystoreRefreshInterval;
//   - a missing keystore (hmac_secret_not_initialized) is never cached.
func WithKeystoreCache(ttl time.Duration) Option {
	return func(e *Engine) {
		if ttl < 0 {
			ttl = 0
		}
		e.cacheTTL = ttl
	}
}

// errCacheUnusable tells the Engine to fall back to the driver: the
// backend's snapshot does not describe it (an embedded driver's method).
var errCacheUnusable = errors.New("engine: keystore snapshot does not describe this backend")

// keystoreCache holds one snapshot per partition. It is safe for concurrent
// use; the hot path takes no lock.
type keystoreCache struct {
	src      driver.KeystoreSnapshotter
	ttl      time.Duration
	parts    []partitionCache
	gen      atomic.Uint64 // bumped by every Seed and RotateAll through the Engine, and by pushed changes
	disabled atomic.Bool
	start    time.Time
	mono     func() time.Duration // monotonic time since start; replaced in tests
	// manual reports that tests replaced mono: fresh then compares ages
	// on every call instead of relying on expiry timers.
	manual bool
}

func newKeystoreCache(src driver.KeystoreSnapshotter, partitions int, ttl time.Duration) *keystoreCache {
	c := &keystoreCache{src: src, ttl: ttl, parts: make([]partitionCache, partitions), start: time.Now()}
	c.mono = func() time.Duration { return time.Since(c.start) }
	for i := range c.parts {
		c.parts[i].lastFetch.Store(-int64(KeystoreRefreshInterval))
	}
	return c
}

// partitionCache is one partition's snapshot and its refresh state.
type partitionCache struct {
	snap      atomic.Pointer[keySnapshot]
	lastFetch atomic.Int64 // monotonic ns at the start of the last read

	mu     sync.Mutex
	flight *flight // the read in progress, guarded by mu
}

// flight is one read of a partition that concurrent callers share.
type flight struct {
	done chan struct{}
	snap *keySnapshot
	err  error
}

// keySnapshot is an immutable view of one partition's keystore.
type keySnapshot struct {
	gen      uint64
	fetched  time.Duration // monotonic time when the read started
	returned time.Duration // monotonic time when the read returned
	nowMs    int64         // the backend's clock at the read
	clock    func() int64  // the backend's clock itself, for in-process drivers
	keys     driver.PartitionKeys
	current  *cachedKid   // nil: not initialized (never stored)
	kids     []*cachedKid // current and verifying
	expired  atomic.Bool  // set by a timer once the snapshot is ttl old
}

// cachedKid is one kid's record and a pool of HMAC states keyed by its secret.
type cachedKid struct {
	rec  driver.KidRecord
	macs *kidMAC
}

func (s *keySnapshot) find(kid string) *cachedKid {
	for _, k := range s.kids {
		if k.rec.Kid == kid {
			return k
		}
	}
	return nil
}

// now is the backend's clock: read directly, or estimated from the
// snapshot's reading plus the monotonic time since the read started (an
// estimate that runs ahead by at most the read's round trip).
func (s *keySnapshot) now(mono time.Duration) int64 {
	if s.clock != nil {
		return s.clock()
	}
	return s.nowMs + (mono - s.fetched).Milliseconds()
}

// usable decides whether rec is usable at the backend's clock. The backend
// read its clock somewhere within the read's round trip, so without the
// clock itself its time now lies in [nowMs + (mono - returned),
// nowMs + (mono - fetched)]; when rec's expiry falls inside that window the
// answer depends on the unknown latency and certain is false: ask the
// backend.
func (s *keySnapshot) usable(rec driver.KidRecord, mono time.Duration) (ok, certain bool) {
	if rec.Revoked {
		return false, true
	}
	if s.clock != nil || rec.ExpiresAtMs == nil {
		return rec.Usable(s.now(mono)), true
	}
	lo := s.nowMs + (mono - s.returned).Milliseconds()
	hi := s.nowMs + (mono - s.fetched).Milliseconds()
	exp := *rec.ExpiresAtMs
	return exp >= hi, exp >= hi || exp < lo
}

// record returns the kid's record for driver.CheckToken, nil when unknown.
func (k *cachedKid) record() *driver.KidRecord {
	if k == nil {
		return nil
	}
	return &k.rec
}

// fresh reports whether s answers without a read: not invalidated by a
// Seed or RotateAll through the Engine, and younger than the TTL.
func (c *keystoreCache) fresh(s *keySnapshot) bool {
	if s == nil || s.gen != c.gen.Load() || s.expired.Load() {
		return false
	}
	return !c.manual || c.mono()-s.fetched < c.ttl
}

// expireAfterTTL arms the timer that marks s expired when it is ttl old,
// so the hot path reads a flag instead of the clock.
func (c *keystoreCache) expireAfterTTL(s *keySnapshot) {
	if c.manual {
		return
	}
	time.AfterFunc(c.ttl-(c.mono()-s.fetched), func() { s.expired.Store(true) })
}

// invalidate makes every partition read again on its next use: called after
// a Seed or RotateAll through the Engine, whatever its outcome, and for every
// change a KeystoreWatcher pushes. A read in flight when it is called does
// not publish its snapshot, which may predate the change.
func (c *keystoreCache) invalidate() { c.gen.Add(1) }

// snapshot returns partition p's snapshot, reading it when the cached one
// is stale. read reports that this call waited for a read.
func (c *keystoreCache) snapshot(ctx context.Context, p int) (s *keySnapshot, read bool, err error) {
	if s := c.parts[p].snap.Load(); c.fresh(s) {
		return s, false, nil
	}
	s, err = c.refresh(ctx, p, false)
	return s, true, err
}

// refresh reads partition p, sharing a read in progress. throttled refreshes
// (after a failed verification) read at most once per
// KeystoreRefreshInterval and otherwise return the cached snapshot.
func (c *keystoreCache) refresh(ctx context.Context, p int, throttled bool) (*keySnapshot, error) {
	pc := &c.parts[p]
	for {
		pc.mu.Lock()
		f, lead := pc.flight, false
		if f == nil {
			// A read that ended since the caller looked may have made the
			// snapshot fresh; a throttled refresh also settles for a fresh
			// snapshot read less than KeystoreRefreshInterval ago.
			if s := pc.snap.Load(); c.fresh(s) && (!throttled || c.recentlyRead(pc)) {
				pc.mu.Unlock()
				return s, nil
			}
			f, lead = &flight{done: make(chan struct{})}, true
			pc.flight = f
		}
		pc.mu.Unlock()
		if lead {
			c.read(ctx, p, f)
			return f.snap, f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, contracts.AsError(ctx.Err())
		}
		if f.err != nil && ctx.Err() == nil && isContextError(f.err) {
			continue // the leader's context ended, not ours: read again
		}
		return f.snap, f.err
	}
}

// read performs flight f for partition p and publishes its snapshot. The
// flight ends even if the driver panics (its waiters then use the driver).
func (c *keystoreCache) read(ctx context.Context, p int, f *flight) {
	pc := &c.parts[p]
	gen, started := c.gen.Load(), c.mono()
	pc.lastFetch.Store(int64(started))
	f.err = errCacheUnusable
	defer c.publish(pc, f, gen)
	ks, err := c.src.KeystoreSnapshot(ctx, p)
	returned := c.mono()
	switch {
	case errors.Is(err, contracts.ErrKEKMismatch):
		// One kid the keyring cannot open fails the whole snapshot, while the
		// driver may still answer calls that do not need that kid (sign with
		// the current kid, token_expired for an expired one): ask it.
	case err != nil:
		f.err = contracts.AsError(err)
	case ks.Partitions != len(c.parts):
		c.disabled.Store(true)
	default:
		f.snap, f.err = buildSnapshot(ks, gen, started, returned, pc.snap.Load()), nil
	}
}

// publish stores flight f's snapshot unless the keystore is missing (never
// cached) or a Seed or RotateAll through the Engine began since gen, and
// releases f's waiters.
func (c *keystoreCache) publish(pc *partitionCache, f *flight, gen uint64) {
	pc.mu.Lock()
	switch {
	case f.err != nil:
	case f.snap.current == nil:
		pc.snap.Store(nil)
	case c.gen.Load() == gen:
		pc.snap.Store(f.snap)
		c.expireAfterTTL(f.snap)
	}
	pc.flight = nil
	pc.mu.Unlock()
	close(f.done)
}

// recentlyRead reports whether pc's last read started less than
// KeystoreRefreshInterval ago.
func (c *keystoreCache) recentlyRead(pc *partitionCache) bool {
	return int64(c.mono())-pc.lastFetch.Load() < int64(KeystoreRefreshInterval)
}

func isContextError(err error) bool {
	return errors.Is(err, contracts.ErrCanceled) || errors.Is(err, contracts.ErrDeadlineExceeded)
}

// buildSnapshot indexes a driver's snapshot, reusing the HMAC pools of prev
// for kids whose secret did not change.
func buildSnapshot(ks driver.KeystoreSnapshot, gen uint64, fetched, returned time.Duration, prev *keySnapshot) *keySnapshot {
	s := &keySnapshot{gen: gen, fetched: fetched, returned: returned, nowMs: ks.NowMs, clock: ks.Clock, keys: ks.Keys}
	add := func(rec driver.KidRecord) *cachedKid {
		k := &cachedKid{rec: rec}
		if prev != nil {
			if old := prev.find(rec.Kid); old != nil && old.rec.Secret.Equal(rec.Secret) {
				k.macs = old.macs
			}
		}
		if k.macs == nil {
			k.macs = newKidMAC(rec.Kid, rec.Secret)
		}
		s.kids = append(s.kids, k)
		return k
	}
	if ks.Keys.Current != nil {
		s.current = add(*ks.Keys.Current)
	}
	for _, v := range ks.Keys.Verifying {
		add(v)
	}
	return s
}

// kidMAC computes token MACs, HMAC-SHA256(secret, kid ":" message) as
// contracts.ComputeMAC defines them, from a pool of keyed HMAC states, so a
// verification costs one HMAC and allocates nothing.
type kidMAC struct {
	kid  string
	pool sync.Pool
}

// macState is a keyed HMAC and the buffer its sum is written to.
type macState struct {
	h   hash.Hash
	hdr [512]byte // the MAC input's header (driver.AppendSignatureHeader)
	sum [sha256.Size]byte
}

func newKidMAC(kid string, secret []byte) *kidMAC {
	key := append([]byte(nil), secret...)
	m := &kidMAC{kid: kid}
	m.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	return m
}

// equal reports, in constant time, whether mac is the MAC of the signature
// of message for scope (driver.SignatureInput).
func (m *kidMAC) equal(scope string, message []byte, mac *[sha256.Size]byte) bool {
	st := m.pool.Get().(*macState)
	st.h.Reset()
	st.h.Write(driver.AppendSignatureHeader(st.hdr[:0], m.kid, scope, len(message)))
	st.h.Write(message)
	st.h.Sum(st.sum[:0])
	ok := hmac.Equal(st.sum[:], mac[:])
	m.pool.Put(st)
	return ok
}

// partition routes scope like driver.PartitionOf, skipping the checksum
// when there is one partition.
func (c *keystoreCache) partition(scope string) int {
	if len(c.parts) == 1 {
		return 0
	}
	return driver.PartitionOf(scope, len(c.parts))
}

// sign answers Sign from the snapshot: the current kid signs.
func (c *keystoreCache) sign(ctx context.Context, a contracts.SignArgs) (contracts.SignResult, error) {
	s, _, err := c.snapshot(ctx, c.partition(a.Scope))
	if err != nil {
		return contracts.SignResult{}, err
	}
	return driver.SignWith(s.keys, a)
}

// verify answers Verify from the snapshot. A token that fails against a
// snapshot it did not just read triggers a throttled refresh and is checked
// again; the error is always driver.CheckToken's.
func (c *keystoreCache) verify(ctx context.Context, a contracts.VerifyArgs, t contracts.Token) (contracts.VerifyResult, error) {
	p := c.partition(a.Scope)
	s, read, err := c.snapshot(ctx, p)
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	ok, certain := c.accepts(s, a.Scope, a.Message, &t)
	if ok {
		return contracts.VerifyResult{Valid: true, Kid: t.Kid}, nil
	}
	if !read && s.current != nil && certain {
		if s, err = c.refresh(ctx, p, true); err != nil {
			return contracts.VerifyResult{}, err
		}
		if ok, certain = c.accepts(s, a.Scope, a.Message, &t); ok {
			return contracts.VerifyResult{Valid: true, Kid: t.Kid}, nil
		}
	}
	if !certain {
		return contracts.VerifyResult{}, errCacheUnusable // the expiry is within a round trip of now
	}
	if err := c.reject(s, a.Scope, a.Message, t); err != nil {
		return contracts.VerifyResult{}, err
	}
	return contracts.VerifyResult{Valid: true, Kid: t.Kid}, nil
}

// accepts reports whether s accepts token t for message: its kid is known
// and usable at the backend's clock and the MAC matches. certain is false
// when the kid's expiry is too close to now for the snapshot to decide.
func (c *keystoreCache) accepts(s *keySnapshot, scope string, message []byte, t *contracts.Token) (ok, certain bool) {
	if s == nil || s.current == nil {
		return false, true
	}
	k := s.find(t.Kid)
	if k == nil {
		return false, true
	}
	// The current kid is usable at any time (KidRecord.Usable), so only a
	// verifying kid needs the clock.
	if k != s.current {
		if usable, sure := s.usable(k.rec, c.mono()); !usable {
			return false, sure
		}
	}
	return k.macs.equal(scope, message, &t.MAC), true
}

// reject decides a token s did not accept with driver.CheckToken, so
// cached and uncached rejections are the same error. (It accepts only if an
// injected clock moved back in between.)
func (c *keystoreCache) reject(s *keySnapshot, scope string, message []byte, t contracts.Token) error {
	in := driver.SignatureInput(t.Kid, scope, message)
	if s == nil || s.current == nil {
		return driver.CheckToken(t, in, false, nil, 0)
	}
	return driver.CheckToken(t, in, true, s.find(t.Kid).record(), s.now(c.mono()))
}
