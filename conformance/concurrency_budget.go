package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// signalRaceScenarios race many goroutines through one Engine
// (docs/spec.md §5: exactly once delivery, exactly once claims; §8.3: the
// budgets under contention). The signal limit race spreads its deliveries
// over ten waitpoints, since one waitpoint holds at most 1,000 signals.
func signalRaceScenarios(t *testing.T, h Harness) {
	s := sigSuite{h: h, rec: newRecorder()}
	s.scenario(t, "SameIdempotencyKey", raceSameKey)
	s.scenario(t, "ClaimEachOnce", raceClaims)
	s.scenario(t, "SignalLimit", raceSignalBudgets)
	s.scenario(t, "AllResumesOnce", raceAllWaitpoints)
	s.scenario(t, "AnyResumesOnce", raceAnyWaitpoints)
	s.scenario(t, "SuspendOnce", raceSuspend)
}

// budgetWaitpoints is how many waitpoints the signal limit race fills: the
// suspension's limit is exactly their limits together.
const budgetWaitpoints = contracts.SignalLimit / contracts.WaitpointSignalLimit

// raceSignalBudgets: 10,100 signals with distinct keys go round-robin to ten
// waitpoints of a suspension that does not resume (an eleventh, "spare",
// gets none), the last 300 from 16 goroutines at once, racing across both
// the waitpoints' limits and the suspension's: exactly 10,000 are accepted,
// 1,000 on each waitpoint, and 100 are signal_limit_exceeded; the spare
// waitpoint's holder is refused by the suspension's limit; a duplicate still
// answers duplicate, and observe_signals pages through the 10,000 signals.
// Skipped with -short.
func raceSignalBudgets(t *testing.T, suite sigSuite) {
	if testing.Short() {
		t.Skip("10,100 deliveries; skipped with -short")
	}
	w := suite.open(t)
	keys := make([]string, 0, budgetWaitpoints+1)
	for i := range budgetWaitpoints {
		keys = append(keys, fmt.Sprintf("w%02d", i))
	}
	s := w.mustSuspend("suspend", suspendArgs("limit-1", contracts.ConditionAll, append(keys, "spare")...))
	hs := w.handles()

	// fill up to limitRace below the limit with a few goroutines (a
	// SERIALIZABLE backend spends its time on retries when many contend),
	// then race 16 goroutines across the limits
	var accepted, exceeded sync.Map
	total := contracts.SignalLimit + limitOverflow
	start := time.Now()
	deliverRoundRobin(t, w, hs, s, keys, 0, contracts.SignalLimit-limitRace, fillWorkers, &accepted, &exceeded)
	filled := time.Now()
	deliverRoundRobin(t, w, hs, s, keys, contracts.SignalLimit-limitRace, total, limitWorkers, &accepted, &exceeded)
	t.Logf("%d deliveries by %d goroutines in %v, then %d by %d goroutines in %v",
		contracts.SignalLimit-limitRace, fillWorkers, filled.Sub(start).Round(time.Millisecond),
		limitRace+limitOverflow, limitWorkers, time.Since(filled).Round(time.Millisecond))
	require.Equal(t, contracts.SignalLimit, syncMapLen(&accepted), "accepted deliveries")
	require.Equal(t, limitOverflow, syncMapLen(&exceeded), "signal_limit_exceeded deliveries")
	w.note("accepted", contracts.SignalLimit)
	w.note("signal_limit_exceeded", limitOverflow)

	// then the spare waitpoint cannot resume it, a recorded key is still a duplicate
	_, err := w.deliver("deliver_spare_waitpoint", signalTo(s, "spare", "tick", ""))
	wantLimit(t, "deliver_spare_waitpoint", err, "the suspension already holds 10000 signals, its limit")
	w.aside(func() {
		_, err := w.deliver("deliver_spare_waitpoint_new_key", signalTo(s, "spare", "tick", "new-key"))
		sigWantErr(t, "deliver_spare_waitpoint_new_key", err, contracts.ErrSignalLimitExceeded)
	})
	var some int
	var someID string
	accepted.Range(func(k, v any) bool { some, someID = k.(int), v.(string); return false })
	d, err := w.deliver("redeliver_recorded_key", signalTo(s, keys[some%len(keys)], "tick", fmt.Sprintf("tick-%05d", some)))
	require.NoError(t, err, "redeliver_recorded_key")
	require.Equal(t, contracts.OutcomeDuplicate, d.Outcome, "redeliver_recorded_key: outcome")
	require.Equal(t, someID, d.SignalID, "redeliver_recorded_key: want the recorded signal_id")

	// and observe_signals pages through every signal, 1,000 at a time
	perWaitpoint := map[string]int{}
	pages, seen := 0, map[string]bool{}
	a := contracts.ObserveSignalsArgs{ExecutionID: "limit-1"}
	for {
		o, err := w.e.ObserveSignals(ctx(), a)
		require.NoError(t, err, "observe page %d", pages+1)
		require.LessOrEqual(t, len(o.Signals), contracts.DefaultObserveLimit, "observe page %d", pages+1)
		pages++
		for _, sg := range o.Signals {
			require.False(t, seen[sg.SignalID], "observe: signal %s on two pages", sg.SignalID)
			seen[sg.SignalID] = true
			perWaitpoint[sg.WaitpointKey]++
		}
		if o.NextCursor == nil {
			break
		}
		a.Cursor = *o.NextCursor
	}
	require.Len(t, seen, contracts.SignalLimit, "observe: want the signal limit's signals")
	for _, k := range keys {
		require.Equal(t, contracts.WaitpointSignalLimit, perWaitpoint[k], "observe: signals on waitpoint %s", k)
	}
	w.note("observed_signals", len(seen))
	w.note("observed_pages", pages)
	w.golden("signals_concurrency_signal_limit")
}

// deliverRoundRobin delivers signals with idempotency keys tick-<i> for i
// in [from, to) to waitpoint keys[i mod len(keys)] of s from n goroutines
// spread over the handles, recording accepted signal ids and
// signal_limit_exceeded answers.
func deliverRoundRobin(t *testing.T, w *sigWorld, hs []*engine.Engine, s contracts.SuspendOutcome, keys []string, from, to, n int, accepted, exceeded *sync.Map) {
	t.Helper()
	next := make(chan int, to-from)
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range n {
		wg.Go(func() {
			for i := range next {
				out, err := retryContention(w, func() (contracts.DeliverSignalOutcome, error) {
					return hs[g%len(hs)].DeliverSignal(ctx(), signalTo(s, keys[i%len(keys)], "tick", fmt.Sprintf("tick-%05d", i)))
				})
				switch {
				case err == nil && out.Outcome == contracts.OutcomeAccepted && !out.Resumed:
					accepted.Store(i, out.SignalID)
				case errors.Is(err, contracts.ErrSignalLimitExceeded):
					exceeded.Store(i, true)
				default:
					errs <- fmt.Errorf("delivery %d: %+v %v", i, out, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
