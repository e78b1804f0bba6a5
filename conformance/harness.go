// Package conformance is the shared test suite that defines a FlowFabric-Go
// backend: a driver that passes Run is a backend. It is a normal package so
// that third-party drivers run it from their own tests:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Harness{
//			Open: func(t testing.TB, clock *conformance.Clock) driver.Backend { ... },
//		})
//	}
//
// Every scenario goes through engine.Engine, so validation, error mapping and
// envelope encoding are exercised for every driver, and compares envelopes
// with the golden files in testdata/, shared by all drivers, after volatile
// values (ids, timestamps, tokens) are replaced by placeholders. Assertions
// use testify's require, so a failing driver reads the usual expected/actual
// diffs.
//
// A group of suspension scenarios pins details that need the manual clock
// (several calls within one millisecond, exact time placement) or a look
// inside the store (Harness.Leftover); they run with Harness.ClockControl
// and skip, naming what is missing, without it.
package conformance

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/driver"
)

// Harness tells the suite how to make backends of the driver under test.
type Harness struct {
	// Open returns a fresh, isolated, empty backend for one test; the suite
	// closes it. When ClockControl is true the suite passes a non-nil clock
	// and the backend must read its time from clock.Now; otherwise clock is
	// nil and the backend uses its own clock.
	Open func(t testing.TB, clock *Clock) driver.Backend

	// ClockControl reports that Open honours the clock. Scenarios that need
	// exact time boundaries (expires_at_ms == now) or several calls within
	// one millisecond run only with it, and skip without it; the others wait
	// on real time with margins.
	ClockControl bool

	// Reopen, when set, opens another live backend on the same store as b,
	// as a second process (or a second handle in this one) would see it;
	// the suite uses both handles at once, for scenarios about shared and
	// persistent state. Nil when the store cannot be shared (memory).
	Reopen func(t testing.TB, b driver.Backend) driver.Backend

	// Raw, when set, returns every byte the store behind b holds, read
	// around the driver: the database file with its journal, every row of
	// every table, every key's value. The secrets-at-rest scenarios search
	// it for the secrets they stored, in every encoding, with and without
	// a KEK. Nil skips those checks (the other sealing scenarios still run).
	Raw func(t testing.TB, b driver.Backend) []byte

	// Leftover, when set, counts what the store behind b still holds that
	// names executionID (rows, map entries, keys), read around the driver;
	// b is a backend Open returned, so the driver may type-assert it and
	// look inside. complete forgets an execution and everything recorded for
	// it (docs/spec.md §5.6): the scenario Lifecycle/CompleteForgetsEverything
	// requires a positive count before complete and zero after it. Nil skips
	// that scenario.
	Leftover func(t testing.TB, b driver.Backend, executionID string) int
}

// Clock is a manual clock, safe for concurrent use, that tests move forward.
type Clock struct{ ms atomic.Int64 }

// NewClock returns a clock standing at startMs milliseconds since the epoch.
func NewClock(startMs int64) *Clock {
	c := &Clock{}
	c.ms.Store(startMs)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

// NowMs returns the clock's time in milliseconds since the epoch.
func (c *Clock) NowMs() int64 { return c.ms.Load() }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// Set moves the clock to ms.
func (c *Clock) Set(ms int64) { c.ms.Store(ms) }

// ClockStartMs is where the suite's manual clocks start: 2026-01-01T00:00:00Z.
const ClockStartMs = 1767225600000
