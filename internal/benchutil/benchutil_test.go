package benchutil

import (
	"context"
	"sync/atomic"
	"testing"
)

func BenchmarkRunCallsEachIndexOnce(b *testing.B) {
	var calls atomic.Int64
	seen := make([]atomic.Bool, b.N)
	Run(b, 4, func(_ context.Context, _, i int) error {
		if seen[i].Swap(true) {
			b.Errorf("index %d called twice", i)
		}
		calls.Add(1)
		return nil
	})
	if int(calls.Load()) != b.N {
		b.Fatalf("%d calls, want %d", calls.Load(), b.N)
	}
}

func TestRunCallsEachIndexOnce(t *testing.T) {
	r := testing.Benchmark(BenchmarkRunCallsEachIndexOnce)
	if r.N == 0 {
		t.Fatal("the benchmark did not run")
	}
}
