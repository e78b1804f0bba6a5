package drivertest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// startMs is where fixture clocks start: 2026-01-01T00:00:00Z.
const startMs = conformance.ClockStartMs

// Fixture is a fresh backend on a manual clock, used through engine.Engine so
// that validation and envelope encoding are the ones users get. Tests may
// replace B and Eng together (e.g. with a reopened backend).
type Fixture struct {
	T     testing.TB
	Ctx   context.Context
	Clock *conformance.Clock // starts at conformance.ClockStartMs
	B     driver.Backend     // as Harness.Open returned it
	Eng   *engine.Engine     // engine.New(B)
}

// NewFixture opens a fresh backend with h.Open on a new manual clock and
// closes it when the test ends.
func (h Harness) NewFixture(t testing.TB) *Fixture {
	t.Helper()
	c := conformance.NewClock(startMs)
	b := h.Open(t, c)
	t.Cleanup(func() { _ = b.Close() })
	return &Fixture{T: t, Ctx: context.Background(), Clock: c, B: b, Eng: engine.New(b)}
}

// Seeded returns a fixture whose keystore holds kid "k1" with Secret('a').
func (h Harness) Seeded(t testing.TB) *Fixture {
	t.Helper()
	f := h.NewFixture(t)
	f.Must(f.Eng.Seed(f.Ctx, contracts.SeedArgs{Kid: "k1", Secret: Secret('a')}))
	return f
}

// Must fails the test on an error; the first result is ignored.
func (f *Fixture) Must(_ any, err error) {
	f.T.Helper()
	if err != nil {
		f.T.Fatalf("unexpected error: %v", err)
	}
}

// Rotate makes kid current with the secret its last digit names ("k2" gets
// Secret('b')), keeping the previous kid for grace, and fails the test on any
// error or failed partition.
func (f *Fixture) Rotate(kid string, grace time.Duration) {
	f.T.Helper()
	s := Secret('a' + kid[len(kid)-1] - '1')
	res, err := f.Eng.RotateAll(f.Ctx, contracts.RotateArgs{NewKid: kid, NewSecret: s, GraceMs: grace.Milliseconds()})
	if err != nil || res.Failed() {
		f.T.Fatalf("rotate to %s: %v %s", kid, err, JSONOf(f.T, res))
	}
}

// Secret returns a 32-byte secret filled with c.
func Secret(c byte) contracts.Secret {
	return contracts.Secret([]byte(strings.Repeat(string(c), 32)))
}

// Result carries a call's two results so that Try(call()).Must(t) reads in
// one line.
type Result[V any] struct {
	v   V
	err error
}

// Try captures a call's value and error.
func Try[V any](v V, err error) Result[V] { return Result[V]{v, err} }

// Must fails the test on an error and returns the value.
func (r Result[V]) Must(t testing.TB) V {
	t.Helper()
	if r.err != nil {
		t.Fatalf("unexpected error: %v", r.err)
	}
	return r.v
}

// WantErr asserts that err matches the sentinel with errors.Is.
func WantErr(t testing.TB, err error, sentinel *contracts.Error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error = %v, want %s/%s %s", err, sentinel.Kind, sentinel.Code, sentinel.Reason)
	}
}

// JSONOf encodes v as its envelope.
func JSONOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
