package bench

import (
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram: values below 2^subBits ns
// are exact, larger ones fall into 2^subBits buckets per power of two (a
// relative error below 1/2^subBits). Not safe for concurrent use: each
// worker keeps its own and they are merged.
type histogram struct {
	counts [(64 - subBits) << subBits]uint64
	n      uint64
	max    time.Duration
}

const subBits = 7

func bucketOf(ns uint64) int {
	if ns < 1<<subBits {
		return int(ns)
	}
	shift := bits.Len64(ns) - subBits - 1
	return (shift+1)<<subBits + int(ns>>shift) - 1<<subBits
}

// bucketTop is the largest value of bucket i.
func bucketTop(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	mant := uint64(i&(1<<subBits-1)) + 1<<subBits
	return (mant+1)<<shift - 1
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q ≤ 1), at most the maximum.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketTop(i)), h.max)
		}
	}
	return h.max
}

// latency returns the percentiles of h in microseconds.
func (h *histogram) latency() Latency {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return Latency{P50: us(h.quantile(0.5)), P90: us(h.quantile(0.9)), P99: us(h.quantile(0.99)), Max: us(h.max)}
}
