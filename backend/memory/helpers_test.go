package memory

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// startMs is where test clocks start: 2026-01-01T00:00:00Z.
const startMs = 1767225600000

// testClock is a manual clock that tests move forward.
type testClock struct{ ms atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// fixture is a fresh backend on a manual clock, used through engine.Engine so
// that validation and envelope encoding are the ones users get.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	clock *testClock
	b     *Backend
	eng   *engine.Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := &testClock{}
	c.ms.Store(startMs)
	b := New(WithClock(c.Now))
	t.Cleanup(func() { _ = b.Close() })
	return &fixture{t: t, ctx: context.Background(), clock: c, b: b, eng: engine.New(b)}
}

// secret returns a 32-byte secret filled with c.
func secret(c byte) contracts.Secret {
	return contracts.Secret([]byte(strings.Repeat(string(c), 32)))
}

// seeded returns a fixture whose keystore holds kid "k1".
func seeded(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.must(f.eng.Seed(f.ctx, contracts.SeedArgs{Kid: "k1", Secret: secret('a')}))
	return f
}

// result carries a call's two results so that try(call()).must(t) reads in
// one line.
type result[V any] struct {
	v   V
	err error
}

func try[V any](v V, err error) result[V] { return result[V]{v, err} }

// must fails the test on an error and returns the value.
func (r result[V]) must(t testing.TB) V {
	t.Helper()
	if r.err != nil {
		t.Fatalf("unexpected error: %v", r.err)
	}
	return r.v
}

func (f *fixture) must(_ any, err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("unexpected error: %v", err)
	}
}

// wantErr asserts that err matches the sentinel with errors.Is.
func wantErr(t *testing.T, err error, sentinel *contracts.Error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error = %v, want %s/%s %s", err, sentinel.Kind, sentinel.Code, sentinel.Reason)
	}
}

// jsonOf encodes v as its envelope.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ptr[V any](v V) *V { return &v }
