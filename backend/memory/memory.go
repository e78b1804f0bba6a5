// Package memory is the reference driver of FlowFabric-Go: every backend
// keeps the whole contract (docs/spec.md §3–§5) in process
// memory, behind one mutex. It is the executable specification: each
// operation takes the lock, reads the clock once, decides and writes, and
// releases the lock, so every operation is atomic and the code reads like
// the contract.
//
// Importing the package registers the "memory" scheme; each
// engine.Open("memory://") gives a fresh, empty store that lives as long as
// the Backend. Nothing survives Close and nothing is shared between
// processes.
//
// It implements driver.SecretSealer (sealing.go): with memory://?kek_file=…
// the keystore holds every secret sealed under the key-encryption key, as a
// persistent driver stores it, so the conformance suite checks the sealing
// logic here against the same scenarios as every other driver.
package memory

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Scheme is the URL scheme this driver registers: memory://.
const Scheme = "memory"

func init() {
	engine.Register(Scheme, func(context.Context, *url.URL) (driver.Backend, error) {
		return New(), nil
	})
}

var (
	_ driver.Backend      = (*Backend)(nil)
	_ driver.BatchClaimer = (*Backend)(nil)
)

// Backend is an in-memory store with one keystore partition. It is safe for
// concurrent use: one mutex guards the whole state, so every operation is a
// single atomic step. The zero value is not usable; call New.
type Backend struct {
	now  func() time.Time
	ring atomic.Pointer[kek.Keyring] // nil: secrets stored in plain (sealing.go)

	mu     sync.Mutex
	closed bool
	keys   driver.PartitionKeys  // secrets in their stored form (sealing.go)
	execs  map[string]*execution // by execution_id; absent means state none
	wps    map[string]*waitpoint // every remembered waitpoint, by waitpoint_id
}

// Option configures a Backend.
type Option func(*Backend)

// WithClock makes the backend read its time from now instead of time.Now.
// Every operation calls it exactly once, under the backend's lock.
func WithClock(now func() time.Time) Option {
	return func(b *Backend) { b.now = now }
}

// New returns an empty backend: no keystore, no executions.
func New(opts ...Option) *Backend {
	b := &Backend{
		now:   time.Now,
		execs: map[string]*execution{},
		wps:   map[string]*waitpoint{},
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Capabilities declares one partition, no persistence and no sharing.
func (b *Backend) Capabilities() driver.Capabilities {
	return driver.Capabilities{Partitions: 1}
}

// Ping succeeds until Close.
func (b *Backend) Ping(ctx context.Context) error {
	_, unlock, err := b.begin(ctx)
	if err != nil {
		return err
	}
	unlock()
	return nil
}

// Close discards the state. Later calls fail with unavailable /
// backend_closed; closing twice is harmless.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.keys = driver.PartitionKeys{}
	b.execs = nil
	b.wps = nil
	return nil
}

// begin starts one operation: it honours ctx, takes the lock, refuses a
// closed backend and reads the clock once. On success the caller must call
// unlock when done.
func (b *Backend) begin(ctx context.Context) (nowMs int64, unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, contracts.AsError(err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, nil, contracts.ErrBackendClosed.With("the memory backend is closed")
	}
	return b.now().UnixMilli(), b.mu.Unlock, nil
}
