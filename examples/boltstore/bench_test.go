package boltstore_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/examples/boltstore"
)

// benchEngine opens a seeded store in a temporary directory.
func benchEngine(b *testing.B, opts ...boltstore.Option) *engine.Engine {
	b.Helper()
	be, err := boltstore.Open(ctx, filepath.Join(b.TempDir(), "ff.bolt"), opts...)
	if err != nil {
		b.Fatal(err)
	}
	e := engine.New(be)
	b.Cleanup(func() { _ = e.Close() })
	if _, err := e.Seed(ctx, fx); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkSuspendDeliver measures one suspend plus one deliver_signal (two
// write transactions), with fsync on (as bolt:// URLs open) and off.
func BenchmarkSuspendDeliver(b *testing.B) {
	for _, c := range []struct {
		name string
		opts []boltstore.Option
	}{{"fsync", nil}, {"nosync", []boltstore.Option{boltstore.WithoutSync()}}} {
		b.Run(c.name, func(b *testing.B) {
			e := benchEngine(b, c.opts...)
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("exec-%d", i)
				s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "k"}}})
				if err != nil {
					b.Fatal(err)
				}
				w := s.Waitpoints[0]
				_, err = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify measures verify: one read transaction and an HMAC.
func BenchmarkVerify(b *testing.B) {
	e := benchEngine(b)
	msg := []byte("hello")
	tok, err := e.Sign(ctx, contracts.SignArgs{Scope: "s", Message: msg})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Verify(ctx, contracts.VerifyArgs{Scope: "s", Message: msg, Token: tok.Token}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
