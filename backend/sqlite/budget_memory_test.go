package sqlite

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// Sizes of the memory bound test: a suspension filled to its payload budget
// (16 payloads of 64 KiB, 1 MiB) and to 2,000 signals, read by 4 observers
// and 4 claimers at once.
const (
	boundPayloads  = 16
	boundHolders   = contracts.MaxWaitpoints - 1 // waitpoints holding the signals; one more resumes
	boundSignals   = 2000
	boundReaders   = 4
	boundRounds    = 4
	boundMaxGrowth = 64 << 20
)

// memSampler records the largest HeapInuse seen while it runs.
type memSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func sampleMemory() *memSampler {
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > s.peak.Load() {
				s.peak.Store(m.HeapInuse)
			}
			select {
			case <-s.stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return s
}

func (s *memSampler) Stop() uint64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// fillToBudget suspends execution "full" on 16 waitpoints (condition all),
// delivers 16 payloads of 64 KiB (the whole 1 MiB payload budget) and
// signals without payload, up to boundSignals-1, round-robin to the first
// 15, then delivers to the 16th, which resumes it.
func fillToBudget(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	a := contracts.SuspendArgs{ExecutionID: "full", Condition: contracts.ConditionAll}
	for i := range boundHolders {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: fmt.Sprintf("w%02d", i)})
	}
	a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: "go"})
	s := drivertest.Try(e.Suspend(ctx, a)).Must(t)
	for i := range boundSignals - 1 {
		d := drivertest.DeliverArgs(s, i%boundHolders, "")
		if i < boundPayloads {
			d.Payload = payloadOf(contracts.MaxPayloadLen)
		}
		drivertest.Try(e.DeliverSignal(ctx, d)).Must(t)
	}
	over := drivertest.DeliverArgs(s, 0, "")
	over.Payload = payloadOf(2)
	_, err := e.DeliverSignal(ctx, over)
	drivertest.WantErr(t, err, contracts.ErrSignalLimitExceeded)
	require.True(t, drivertest.Try(e.DeliverSignal(ctx, drivertest.DeliverArgs(s, boundHolders, ""))).Must(t).Resumed)
}

// observeAll pages through the signals of "full" at the default limit and
// returns how many it saw.
func observeAll(ctx context.Context, e *engine.Engine) (int, error) {
	n := 0
	a := contracts.ObserveSignalsArgs{ExecutionID: "full"}
	for {
		p, err := e.ObserveSignals(ctx, a)
		if err != nil {
			return n, err
		}
		n += len(p.Signals)
		if p.NextCursor == nil {
			return n, nil
		}
		a.Cursor = *p.NextCursor
	}
}

// The budgets bound what one suspension costs its readers (docs/spec.md
// §8.3): with a suspension at its 1 MiB payload budget, 4 goroutines paging
// through observe_signals and 4 claiming it again and again (each claim
// returns every signal) grow the process by less than 64 MiB: the peak
// HeapInuse during the calls, the HeapInuse left after a GC, and the memory
// obtained from the OS, each against the HeapInuse and Sys measured after a
// GC before the calls.
func TestConcurrentReadsOfAFullSuspensionStayBounded(t *testing.T) {
	// given a suspension filled to its payload budget, resumed
	clock := conformance.NewClock(startMs)
	b, _ := openFile(t, WithClock(clock.Now))
	// Commits skip fsync while the test fills the file (what it measures
	// does not depend on durability); the writer is a single connection.
	_, err := b.db.Exec(`PRAGMA synchronous = OFF`)
	require.NoError(t, err)
	e := eng(b)
	ctx := context.Background()
	drivertest.Try(e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')})).Must(t)
	start := time.Now()
	fillToBudget(t, e)
	t.Logf("filled in %v", time.Since(start).Round(time.Millisecond))
	n, err := observeAll(ctx, e)
	require.NoError(t, err)
	require.Equal(t, boundSignals, n)
	start = time.Now()

	// when 4 observers and 4 claimers read it at once
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	sampler := sampleMemory()
	var claimed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*boundReaders)
	for range boundReaders {
		wg.Go(func() {
			for range boundRounds {
				if n, err := observeAll(ctx, e); err != nil || n != boundSignals {
					errs <- fmt.Errorf("observe: %d signals, %v", n, err)
					return
				}
			}
		})
		wg.Go(func() {
			for range boundRounds {
				clock.Advance(2 * time.Millisecond) // past the last claim's lease
				c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 1})
				switch {
				case err != nil:
					errs <- fmt.Errorf("claim: %w", err)
					return
				case c.Outcome == contracts.OutcomeClaimed && len(c.Signals) != boundSignals:
					errs <- fmt.Errorf("claim: %d signals", len(c.Signals))
					return
				case c.Outcome == contracts.OutcomeClaimed:
					claimed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	peak := sampler.Stop()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	// then the process grew by less than the bound
	require.Positive(t, claimed.Load(), "no claim returned the suspension")
	growth := func(to, from uint64) uint64 { return max(to, from) - from }
	t.Logf("%d observers and claimers in %v", 2*boundReaders, time.Since(start).Round(time.Millisecond))
	t.Logf("%d claims of %d signals; peak HeapInuse +%.1f MiB, HeapInuse after GC +%.1f MiB, Sys +%.1f MiB",
		claimed.Load(), boundSignals, mib(growth(peak, before.HeapInuse)), mib(growth(after.HeapInuse, before.HeapInuse)), mib(growth(after.Sys, before.Sys)))
	require.Less(t, growth(peak, before.HeapInuse), uint64(boundMaxGrowth), "peak HeapInuse growth")
	require.Less(t, growth(after.HeapInuse, before.HeapInuse), uint64(boundMaxGrowth), "HeapInuse growth after GC")
	require.Less(t, growth(after.Sys, before.Sys), uint64(boundMaxGrowth), "Sys growth")
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
