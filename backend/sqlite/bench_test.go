package sqlite

import (
	"context"
	"strconv"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// benchFixture is a seeded file-backed Engine for benchmarks.
func benchFixture(b *testing.B) (*Backend, context.Context) {
	be, _ := openFile(b)
	ctx := context.Background()
	if _, err := eng(be).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')}); err != nil {
		b.Fatal(err)
	}
	return be, ctx
}

// BenchmarkSuspendDeliverClaimComplete is one whole cycle: four write
// transactions (each a WAL commit with fsync).
func BenchmarkSuspendDeliverClaimComplete(b *testing.B) {
	be, ctx := benchFixture(b)
	e := eng(be)
	for i := 0; b.Loop(); i++ {
		s, err := e.Suspend(ctx, drivertest.SuspendArgs("e"+strconv.Itoa(i), "a"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.DeliverSignal(ctx, drivertest.DeliverArgs(s, 0, "d")); err != nil {
			b.Fatal(err)
		}
		c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
		if err != nil || c.Outcome != contracts.OutcomeClaimed {
			b.Fatal(c, err)
		}
		if _, err := e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel is a read transaction per call on the reader pool.
func BenchmarkVerifyParallel(b *testing.B) {
	be, ctx := benchFixture(b)
	msg := []byte("m")
	signed, err := be.Sign(ctx, contracts.SignArgs{Message: msg})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := be.Verify(ctx, contracts.VerifyArgs{Message: msg, Token: signed.Token}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
