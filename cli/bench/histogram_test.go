package bench

import (
	"testing"
	"time"
)

// The histogram's quantiles are within its relative error of the truth.
func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 100_000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.01 || d > 0.01 {
			t.Errorf("q%.2f = %v, want %v ±1%%", c.q, got, c.want)
		}
	}
	for _, ns := range []uint64{0, 1, 127, 128, 129, 1000, 1 << 40, 1<<63 - 1} {
		i := bucketOf(ns)
		if top := bucketTop(i); top < ns || (i > 0 && bucketTop(i-1) >= ns) {
			t.Errorf("value %d in bucket %d (top %d, previous top %d)", ns, i, top, bucketTop(i-1))
		}
	}
}

// Merging the workers' histograms is the histogram of all their values;
// an empty histogram reports zeros, a negative duration counts as 0.
func TestHistogramMergeAndLatency(t *testing.T) {
	var a, b, all histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i*i) * time.Nanosecond
		all.add(d)
		if i%3 == 0 {
			a.add(d)
		} else {
			b.add(d)
		}
	}
	a.merge(&b)
	if a.counts != all.counts || a.n != all.n || a.max != all.max {
		t.Fatalf("merged: n %d max %v, want n %d max %v", a.n, a.max, all.n, all.max)
	}
	if l := a.latency(); l.Max != 1000 || !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Fatalf("latency %+v, want ordered, max 1000µs", l)
	}
	var empty histogram
	if l := empty.latency(); l != (Latency{}) {
		t.Fatalf("empty: %+v", l)
	}
	empty.add(-time.Second)
	if empty.n != 1 || empty.max != 0 || empty.quantile(1) != 0 {
		t.Fatalf("negative duration: n %d max %v", empty.n, empty.max)
	}
}
