// Package benchutil holds what the drivers' benchmarks share: running b.N
// calls of one operation over a fixed number of concurrent clients, so that
// a driver call and its baseline (pgx SELECT 1, go-redis PING) are measured
// the same way.
package benchutil

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
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

// DeliverSignals benchmarks deliver_signal through e from clients
// concurrent clients, each delivering accepted signals to the first
// waitpoint of its own "all" suspension (whose second waitpoint never gets a
// signal, so every delivery is recorded and none resumes), moving to a fresh
// suspension before the signal limit.
func DeliverSignals(b *testing.B, e *engine.Engine, clients int) {
	ctx := context.Background()
	type target struct {
		exec  string
		wp    contracts.WaitpointOutcome
		count int
	}
	targets := make([]target, clients)
	fresh := func(c, i int) error {
		exec := fmt.Sprintf("bench-%d-%d", c, i)
		out, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: exec, Condition: contracts.ConditionAll,
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "never"}}})
		if err == nil {
			targets[c] = target{exec: exec, wp: out.Waitpoints[0]}
		}
		return err
	}
	for c := range targets {
		if err := fresh(c, -1); err != nil {
			b.Fatal(err)
		}
	}
	Run(b, clients, func(ctx context.Context, c, i int) error {
		t := &targets[c]
		if t.count == contracts.WaitpointSignalLimit-1 { // the waitpoint's budget (docs/spec.md §8.3)
			if err := fresh(c, i); err != nil {
				return err
			}
		}
		t.count++
		_, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: t.exec, WaitpointID: t.wp.WaitpointID,
			Token: t.wp.Token, Name: "bench", IdempotencyKey: strconv.Itoa(i)})
		return err
	})
}

// Cycles runs whole cycles from clients goroutines until b.N: each suspends
// an execution of its own on one waitpoint, delivers a signal with a small
// payload (which resumes it), claims the oldest resumed execution and
// completes it.
func Cycles(b *testing.B, e *engine.Engine, clients int) {
	payload := []byte(`{"approved":true,"by":"bench"}`)
	Run(b, clients, func(ctx context.Context, _, i int) error {
		s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "cycle-" + strconv.Itoa(i),
			Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}}})
		if err != nil {
			return err
		}
		w := s.Waitpoints[0]
		if _, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: s.ExecutionID, WaitpointID: w.WaitpointID,
			Token: w.Token, Name: "approved", Payload: payload}); err != nil {
			return err
		}
		c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
		if err != nil || c.Outcome != contracts.OutcomeClaimed {
			return err // another client took the last one: nothing to complete
		}
		_, err = e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID})
		return err
	})
}
