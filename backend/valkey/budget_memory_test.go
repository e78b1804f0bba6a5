package valkey

import (
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

// fillToBudget suspends execution id on 16 waitpoints (condition all),
// delivers 16 payloads of 64 KiB (the whole 1 MiB payload budget) and
// signals without payload, up to boundSignals-1, round-robin to the first
// 15, then delivers to the 16th, which resumes it.
func fillToBudget(t *testing.T, e *engine.Engine, id string) {
	t.Helper()
	a := contracts.SuspendArgs{ExecutionID: id, Condition: contracts.ConditionAll}
	for i := range boundHolders {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: fmt.Sprintf("w%02d", i)})
	}
	a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: "go"})
	s, err := e.Suspend(bg, a)
	require.NoError(t, err)
	to := func(i int, payload json.RawMessage) contracts.DeliverSignalArgs {
		w := s.Waitpoints[i]
		return contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: w.WaitpointID, Token: w.Token, Name: "fill", Payload: payload}
	}
	big := json.RawMessage(`"` + strings.Repeat("x", contracts.MaxPayloadLen-2) + `"`)
	for i := range boundSignals - 1 {
		var p json.RawMessage
		if i < boundPayloads {
			p = big
		}
		_, err := e.DeliverSignal(bg, to(i%boundHolders, p))
		require.NoError(t, err, "signal %d", i)
	}
	_, err = e.DeliverSignal(bg, to(0, json.RawMessage(`""`)))
	require.ErrorIs(t, err, contracts.ErrSignalLimitExceeded, "a payload past the budget")
	d, err := e.DeliverSignal(bg, to(boundHolders, nil))
	require.NoError(t, err)
	require.True(t, d.Resumed)
}

// observeAll pages through the signals of id at the default limit and
// returns how many it saw.
func observeAll(e *engine.Engine, id string) (int, error) {
	n := 0
	a := contracts.ObserveSignalsArgs{ExecutionID: id}
	for {
		p, err := e.ObserveSignals(bg, a)
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
// returns every signal; a lease of 1 ms expires between claims) grow the
// process by less than 64 MiB: the peak HeapInuse during the calls, the
// HeapInuse left after a GC, and the memory obtained from the OS, each
// against what was measured after a GC before the calls. The servers run
// one after the other, and no other test runs meanwhile (the test is not
// parallel), so that the process measures these readers alone.
func TestConcurrentReadsOfAFullSuspensionStayBounded(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			// given a suspension filled to its payload budget, resumed
			_, b := seededEngine(t, s, 16, nil)
			e := engine.New(b)
			start := time.Now()
			fillToBudget(t, e, "full")
			t.Logf("filled in %v", time.Since(start).Round(time.Millisecond))
			n, err := observeAll(e, "full")
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
						if n, err := observeAll(e, "full"); err != nil || n != boundSignals {
							errs <- fmt.Errorf("observe: %d signals, %v", n, err)
							return
						}
					}
				})
				wg.Go(func() {
					for range boundRounds {
						time.Sleep(2 * time.Millisecond) // past the last claim's lease
						c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 1})
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
		})
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
