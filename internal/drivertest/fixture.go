// Package drivertest holds the fixture the in-repo drivers' own tests use
// beyond the conformance suite: an Engine on a manual clock over a fresh
// backend, and short helpers to suspend, deliver, claim and assert errors.
// The behaviour every driver shares is tested by package conformance; this
// package only saves each driver's tests from repeating their setup.
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

// Harness opens the backends of this package's tests; each test gets
// a Fixture on a manual clock (conformance.Clock) and goes through
// engine.Engine, so that validation and envelope encoding are the ones users
// get. (These helpers were internal/drivertest's; its scenarios now run in
// the conformance suite's clock-controlled group.)
type Harness struct {
	// Open returns a fresh, isolated, empty backend for one test that reads
	// its time from clock. The fixture closes it when the test ends, so
	// Close must also accept a second call from a test that closed it
	// itself.
	Open func(t testing.TB, clock *conformance.Clock) driver.Backend
}

// StartMs is where fixture clocks start: 2026-01-01T00:00:00Z.
const StartMs = conformance.ClockStartMs

// Fixture is a fresh backend on a manual clock, used through engine.Engine.
// Tests may replace B and Eng together (e.g. with a reopened backend).
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
	c := conformance.NewClock(StartMs)
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
func WantErr(t testing.TB, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error = %v, want %v", err, sentinel)
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

// SuspendArgs suspends execution on waitpoints keys with condition "any".
func SuspendArgs(execution string, keys ...string) contracts.SuspendArgs {
	a := contracts.SuspendArgs{ExecutionID: execution, Condition: contracts.ConditionAny}
	for _, k := range keys {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: k})
	}
	return a
}

// Suspend suspends through the Engine and fails the test on an error.
func (f *Fixture) Suspend(a contracts.SuspendArgs) contracts.SuspendOutcome {
	f.T.Helper()
	return Try(f.Eng.Suspend(f.Ctx, a)).Must(f.T)
}

// DeliverArgs targets waitpoint i of a suspend outcome with its own token.
func DeliverArgs(s contracts.SuspendOutcome, i int, idem string) contracts.DeliverSignalArgs {
	w := s.Waitpoints[i]
	return contracts.DeliverSignalArgs{ExecutionID: s.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: "approve", IdempotencyKey: idem}
}

// Deliver delivers signal "approve" to waitpoint i of s under idempotency
// key idem (none when empty) and fails the test on an error.
func (f *Fixture) Deliver(s contracts.SuspendOutcome, i int, idem string) contracts.DeliverSignalOutcome {
	f.T.Helper()
	return Try(f.Eng.DeliverSignal(f.Ctx, DeliverArgs(s, i, idem))).Must(f.T)
}

// Claim claims as worker "w1" with the given lease and fails the test on
// an error; the outcome may be none.
func (f *Fixture) Claim(lease time.Duration) contracts.ClaimOutcome {
	f.T.Helper()
	return Try(f.Eng.ClaimResumedExecution(f.Ctx, contracts.ClaimArgs{WorkerID: "w1", LeaseMs: lease.Milliseconds()})).Must(f.T)
}

// List lists one page of suspended executions and fails the test on an
// error.
func (f *Fixture) List(limit int, cursor string) contracts.ListSuspendedResult {
	f.T.Helper()
	return Try(f.Eng.ListSuspended(f.Ctx, contracts.ListSuspendedArgs{Limit: limit, Cursor: cursor})).Must(f.T)
}

// WithIdem returns a with idempotency key key.
func WithIdem(a contracts.SuspendArgs, key string) contracts.SuspendArgs {
	a.IdempotencyKey = key
	return a
}
