package sqlite

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// The suspension tests (suspend_test.go, deliver_test.go, lifecycle_test.go,
// suspensions_helpers_test.go) are the memory reference driver's, run
// unchanged against a fresh SQLite file through this fixture.

// startMs is where test clocks start: 2026-01-01T00:00:00Z.
const startMs = clockStartMs

func (c *manualClock) advance(d time.Duration) { c.Advance(d) }

// fixture is a fresh database file on a manual clock, used through
// engine.Engine so that validation and envelope encoding are the ones users get.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	clock *manualClock
	b     *Backend
	eng   *engine.Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := newClock(startMs)
	b, _ := openFile(t, WithClock(c.Now))
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

// rotate makes kid current with the secret its last digit names.
func rotate(f *fixture, kid string, grace time.Duration) {
	f.t.Helper()
	s := secret('a' + kid[len(kid)-1] - '1')
	res, err := f.eng.RotateAll(f.ctx, contracts.RotateArgs{NewKid: kid, NewSecret: s, GraceMs: grace.Milliseconds()})
	if err != nil || res.Failed() {
		f.t.Fatalf("rotate to %s: %v %s", kid, err, jsonOf(f.t, res))
	}
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

// rowsLeft counts the rows an execution left in every table.
func (f *fixture) rowsLeft(executionID string) int {
	f.t.Helper()
	n := 0
	for _, table := range []string{"executions", "waitpoints", "signals", "suspend_idempotency"} {
		var c int
		if err := f.b.db.QueryRow(`SELECT count(*) FROM `+table+` WHERE execution_id = ?`, executionID).Scan(&c); err != nil {
			f.t.Fatal(err)
		}
		n += c
	}
	return n
}

// jsonOf encodes v as its envelope.
func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ptr[V any](v V) *V { return &v }
