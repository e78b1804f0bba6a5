// Package benchutil holds what the drivers' benchmarks share: running b.N
// calls of one operation over a fixed number of concurrent clients, so that
// a driver call and its baseline (pgx SELECT 1, go-redis PING) are measured
// the same way.
package benchutil

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// Run performs b.N calls of op spread over clients concurrent goroutines;
// op receives its client number and the call's index. The first error of a
// client fails the benchmark and stops that client.
func Run(b *testing.B, clients int, op func(ctx context.Context, client, i int) error) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				if err := op(ctx, c, i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
