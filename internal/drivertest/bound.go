package drivertest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Sizes of the memory bound check: a suspension filled to its payload
// budget (16 payloads of 64 KiB, 1 MiB) and to 2,000 signals, read by 4
// observers and 4 claimers at once.
const (
	boundPayloads  = 16
	boundHolders   = contracts.MaxWaitpoints - 1 // waitpoints holding the signals; one more resumes
	boundSignals   = 2000
	boundReaders   = 4
	boundRounds    = 4
	boundMaxGrowth = 64 << 20
)

// PayloadOf returns a JSON string of exactly n bytes (n >= 2).
func PayloadOf(n int) json.RawMessage {
	return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
}

// ReadsStayBounded checks the bound of docs/spec.md §8.3 on e, whose
// keystore is seeded: with suspension executionID filled to its 1 MiB
// payload budget, 4 goroutines paging through observe_signals and 4
// claiming it again and again (each claim returns every signal) grow the
// process by less than 64 MiB: the peak HeapInuse during the calls, the
// HeapInuse left after a GC, and the memory obtained from the OS, each
// against what was measured after a GC before the calls. pass lets a claim's
// 1 ms lease pass (a manual clock's Advance, or time.Sleep). Callers do not
// run it in parallel with other tests, so the process measures these
// readers alone.
func ReadsStayBounded(t *testing.T, e *engine.Engine, executionID string, pass func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	fillToBudget(t, e, executionID)
	t.Logf("filled in %v", time.Since(start).Round(time.Millisecond))
	n, err := observeAll(ctx, e, executionID)
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
				if n, err := observeAll(ctx, e, executionID); err != nil || n != boundSignals {
					errs <- fmt.Errorf("observe: %d signals, %v", n, err)
					return
				}
			}
		})
		wg.Go(func() {
			for range boundRounds {
				pass(2 * time.Millisecond) // past the last claim's lease
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
	peak := sampler.stop()
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

// fillToBudget suspends executionID on 16 waitpoints (condition all),
// delivers 16 payloads of 64 KiB (the whole 1 MiB payload budget) and
// signals without payload, up to boundSignals-1, round-robin to the first
// 15, checks that one more payload byte is refused, then delivers to the
// 16th, which resumes it.
func fillToBudget(t *testing.T, e *engine.Engine, executionID string) {
	t.Helper()
	ctx := context.Background()
	a := contracts.SuspendArgs{ExecutionID: executionID, Condition: contracts.ConditionAll}
	for i := range boundHolders {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: fmt.Sprintf("w%02d", i)})
	}
	a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: "go"})
	s := Try(e.Suspend(ctx, a)).Must(t)
	for i := range boundSignals - 1 {
		d := DeliverArgs(s, i%boundHolders, "")
		if i < boundPayloads {
			d.Payload = PayloadOf(contracts.MaxPayloadLen)
		}
		Try(e.DeliverSignal(ctx, d)).Must(t)
	}
	over := DeliverArgs(s, 0, "")
	over.Payload = PayloadOf(2)
	_, err := e.DeliverSignal(ctx, over)
	WantErr(t, err, contracts.ErrSignalLimitExceeded)
	require.True(t, Try(e.DeliverSignal(ctx, DeliverArgs(s, boundHolders, ""))).Must(t).Resumed)
}

// observeAll pages through the signals of executionID at the default limit
// and returns how many it saw.
func observeAll(ctx context.Context, e *engine.Engine, executionID string) (int, error) {
	n := 0
	a := contracts.ObserveSignalsArgs{ExecutionID: executionID}
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

// memSampler records the largest HeapInuse seen while it runs.
type memSampler struct {
	peak atomic.Uint64
	done chan struct{}
	quit chan struct{}
}

func sampleMemory() *memSampler {
	s := &memSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > s.peak.Load() {
				s.peak.Store(m.HeapInuse)
			}
			select {
			case <-s.quit:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return s
}

func (s *memSampler) stop() uint64 {
	close(s.quit)
	<-s.done
	return s.peak.Load()
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
