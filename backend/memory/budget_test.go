package memory

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
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
	"github.com/flowfabric/flowfabric-go/kek"
)

// payloadOf returns a JSON string of exactly n bytes (n >= 2).
func payloadOf(n int) json.RawMessage {
	return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
}

// A suspend replay opens the secret of the kid that signed its tokens only
// while that kid verifies (docs/spec.md §3): under a KEK it replays byte for
// byte; without the KEK that sealed the kid it is kek_mismatch; once the kid
// is past its grace it is suspend_replay_expired whatever the keyring, and
// nothing is written.
func TestSuspendReplayOpensOnlyAUsableKid(t *testing.T) {
	// given a suspend under an idempotency key on a store sealed under KEK A,
	// its kid k1 then rotated out for an hour
	f := harness.NewFixture(t)
	b := f.B.(*Backend)
	b.SetKeyring(kek.NewKeyring(testKEKA))
	f.Eng = engine.New(b, engine.WithKeystoreCache(0))
	f.Must(f.Eng.Seed(f.Ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')}))
	a := drivertest.SuspendArgs("e1", "a", "b")
	a.IdempotencyKey = "boot-1"
	first := f.Suspend(a)
	f.Rotate("k2", time.Hour)

	// when replayed under KEK A, then it answers the first outcome
	require.Equal(t, drivertest.JSONOf(t, first), drivertest.JSONOf(t, f.Suspend(a)))

	// when replayed without a KEK, then k1's secret does not open
	b.SetKeyring(nil)
	_, err := f.Eng.Suspend(f.Ctx, a)
	drivertest.WantErr(t, err, contracts.ErrKEKMismatch)

	// when k1's grace has passed, then the replay expired, with or without the KEK
	f.Clock.Advance(time.Hour + time.Millisecond)
	for _, ring := range []*kek.Keyring{nil, kek.NewKeyring(testKEKA)} {
		b.SetKeyring(ring)
		_, err = f.Eng.Suspend(f.Ctx, a)
		drivertest.WantErr(t, err, contracts.ErrSuspendReplayExpired)
	}
	o := drivertest.Try(f.Eng.ObserveSignals(f.Ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1"})).Must(t)
	require.Equal(t, first.SuspensionID, o.SuspensionID, "an expired replay writes nothing")
}

// The budget counters follow what is recorded: a duplicate and a refused
// delivery count nothing, and a new suspension starts from zero.
func TestBudgetCountersFollowDeliveries(t *testing.T) {
	f := harness.Seeded(t)
	b := f.B.(*Backend)
	s := f.Suspend(contracts.SuspendArgs{ExecutionID: "e1", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
	for i, p := range []json.RawMessage{payloadOf(10), nil, payloadOf(7)} {
		d := drivertest.DeliverArgs(s, 0, fmt.Sprintf("k%d", i))
		d.Payload = p
		drivertest.Try(f.Eng.DeliverSignal(f.Ctx, d)).Must(t)
	}
	f.Deliver(s, 0, "k0")
	lowered := engine.New(b, engine.WithSignalLimits(contracts.SignalLimits{PerWaitpoint: 3}))
	_, err := lowered.DeliverSignal(f.Ctx, drivertest.DeliverArgs(s, 0, ""))
	drivertest.WantErr(t, err, contracts.ErrSignalLimitExceeded)

	counters := func() (int, int64, []int) {
		b.mu.Lock()
		defer b.mu.Unlock()
		sp := b.execs["e1"].latest
		per := []int{}
		for _, w := range sp.waitpoints {
			per = append(per, w.signals)
		}
		return len(sp.signals), sp.payloadBytes, per
	}
	n, bytes, per := counters()
	require.Equal(t, 3, n)
	require.Equal(t, int64(17), bytes)
	require.Equal(t, []int{3, 0}, per)

	f.Deliver(s, 1, "")
	c := drivertest.Try(f.Eng.ClaimResumedExecution(f.Ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})).Must(t)
	f.Suspend(contracts.SuspendArgs{ExecutionID: "e1", Condition: contracts.ConditionAny, LeaseID: &c.LeaseID,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	n, bytes, per = counters()
	require.Equal(t, 0, n)
	require.Equal(t, int64(0), bytes)
	require.Equal(t, []int{0}, per)
}

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

// The budgets bound what one suspension costs its readers (docs/spec.md
// §8.3): with a suspension at its 1 MiB payload budget, 4 goroutines paging
// through observe_signals and 4 claiming it again and again (each claim
// returns every signal) grow the process by less than 64 MiB: the peak
// HeapInuse during the calls (sampled every millisecond), the HeapInuse
// left after a GC, and the memory obtained from the OS, each against the
// HeapInuse and Sys measured after a GC before the calls.
func TestConcurrentReadsOfAFullSuspensionStayBounded(t *testing.T) {
	// given a suspension filled to its payload budget, resumed
	f := harness.Seeded(t)
	e, ctx := f.Eng, f.Ctx
	a := contracts.SuspendArgs{ExecutionID: "full", Condition: contracts.ConditionAll}
	for i := range boundHolders {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: fmt.Sprintf("w%02d", i)})
	}
	a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: "go"})
	s := f.Suspend(a)
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
	observeAll := func() (int, error) {
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

	// when 4 observers and 4 claimers read it at once
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak.Store(max(peak.Load(), m.HeapInuse))
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	var claimed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*boundReaders)
	for range boundReaders {
		wg.Go(func() {
			for range boundRounds {
				if n, err := observeAll(); err != nil || n != boundSignals {
					errs <- fmt.Errorf("observe: %d signals, %v", n, err)
					return
				}
			}
		})
		wg.Go(func() {
			for range boundRounds {
				f.Clock.Advance(2 * time.Millisecond) // past the last claim's lease
				c, err := e.ClaimResumedExecution(context.Background(), contracts.ClaimArgs{WorkerID: "w", LeaseMs: 1})
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
	close(stop)
	<-sampled
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
	mib := func(n uint64) float64 { return float64(n) / (1 << 20) }
	t.Logf("%d claims of %d signals; peak HeapInuse +%.1f MiB, HeapInuse after GC +%.1f MiB, Sys +%.1f MiB",
		claimed.Load(), boundSignals, mib(growth(peak.Load(), before.HeapInuse)), mib(growth(after.HeapInuse, before.HeapInuse)), mib(growth(after.Sys, before.Sys)))
	require.Less(t, growth(peak.Load(), before.HeapInuse), uint64(boundMaxGrowth), "peak HeapInuse growth")
	require.Less(t, growth(after.HeapInuse, before.HeapInuse), uint64(boundMaxGrowth), "HeapInuse growth after GC")
	require.Less(t, growth(after.Sys, before.Sys), uint64(boundMaxGrowth), "Sys growth")
}
