package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRowRatio(t *testing.T) {
	t.Run("OursOverReference", func(t *testing.T) {
		r := row{Ours: measure{OpsPerSec: 400}, Ref: measure{OpsPerSec: 1000}, Target: 0.5}
		ratio, ok := r.ratio()
		require.True(t, ok)
		require.InDelta(t, 0.4, ratio, 1e-9)
		require.Equal(t, "no", r.met())
	})
	t.Run("TargetReachedExactly", func(t *testing.T) {
		r := row{Ours: measure{OpsPerSec: 800}, Ref: measure{OpsPerSec: 1000}, Target: 0.8}
		require.Equal(t, "yes", r.met())
	})
	t.Run("FailedSideHasNoRatio", func(t *testing.T) {
		r := row{Ours: measure{Err: errors.New("boom")}, Ref: measure{OpsPerSec: 1000}, Target: 0.5}
		_, ok := r.ratio()
		require.False(t, ok)
		require.Equal(t, "n/a", r.met())
	})
	t.Run("ZeroReferenceHasNoRatio", func(t *testing.T) {
		_, ok := row{Ours: measure{OpsPerSec: 10}}.ratio()
		require.False(t, ok)
	})
	t.Run("InformationalSaysSo", func(t *testing.T) {
		r := row{Ours: measure{OpsPerSec: 1}, Ref: measure{OpsPerSec: 1}, Target: 0.7, Informational: true}
		require.Equal(t, "yes (info)", r.met())
	})
}

func TestScaledKeepsRateOnly(t *testing.T) {
	m := measure{OpsPerSec: 1000, P50: time.Millisecond, P99: 2 * time.Millisecond, Errors: 3}
	q := m.scaled(0.25)
	require.InDelta(t, 250, q.OpsPerSec, 1e-9)
	require.Zero(t, q.P50, "a quarter of a rate has no latency of its own")
	require.Equal(t, int64(3), q.Errors)

	failed := measure{Err: errors.New("boom")}
	require.Equal(t, failed, failed.scaled(0.25))
}

func TestMeasureOf(t *testing.T) {
	t.Run("AllFailedIsAnError", func(t *testing.T) {
		m := measureOf(result{Errors: 5, FirstErr: errors.New("refused"), Elapsed: time.Second})
		require.EqualError(t, m.Err, "refused")
	})
	t.Run("SomeFailedIsANote", func(t *testing.T) {
		m := measureOf(result{Ops: 10, Errors: 1, FirstErr: errors.New("refused"), Elapsed: time.Second})
		require.NoError(t, m.Err)
		require.InDelta(t, 10, m.OpsPerSec, 1e-9)
		require.Equal(t, "first error: refused", m.Note)
	})
}

func TestWriteTable(t *testing.T) {
	rows := []row{
		{Name: "SQLite deliver_signal, 8 clients", RefName: "raw tx", Target: 0.8,
			Ours: measure{OpsPerSec: 900, P50: 1200 * time.Microsecond, P99: 3400 * time.Microsecond},
			Ref:  measure{OpsPerSec: 1000, P50: time.Millisecond, P99: 2 * time.Millisecond}},
		{Name: "broken", RefName: "a | b", Target: 0.5, Ours: measure{Err: errors.New("no\nserver")}, Ref: measure{OpsPerSec: 12345.6}},
	}
	var b strings.Builder
	require.NoError(t, writeTable(&b, rows))
	want := "| # | ours | ours: rate, p50 / p99 | reference | reference: rate, p50 / p99 | ratio | target | met |\n" +
		"|---|---|---|---|---|---|---|---|\n" +
		"| 1 | SQLite deliver_signal, 8 clients | 900 ops/s, 1.20 ms / 3.40 ms | raw tx | 1,000 ops/s, 1.00 ms / 2.00 ms | 0.90× | ≥ 0.8× | yes |\n" +
		"| 2 | broken | failed: no server | a \\| b | 12,346 ops/s | n/a | ≥ 0.5× | n/a |\n"
	require.Equal(t, want, b.String())
}

func TestFormatRate(t *testing.T) {
	for in, want := range map[float64]string{0: "0.0", 74.84: "74.8", 100: "100", 999.5: "1,000", 1234567: "1,234,567"} {
		require.Equal(t, want, formatRate(in), "formatRate(%v)", in)
	}
}

func TestFormatLatency(t *testing.T) {
	for in, want := range map[time.Duration]string{
		44 * time.Microsecond:   "44 µs",
		1200 * time.Microsecond: "1.20 ms",
		1280 * time.Millisecond: "1.28 s",
	} {
		require.Equal(t, want, formatLatency(in))
	}
}
