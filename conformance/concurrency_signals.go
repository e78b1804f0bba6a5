package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Sizes of the concurrent signal scenarios.
const (
	racingDeliveries = 64  // goroutines delivering one idempotency key
	claimWorkers     = 8   // goroutines claiming
	claimExecutions  = 200 // resumed executions they share
	fillWorkers      = 4   // goroutines filling a suspension towards the signal limit
	limitWorkers     = 16  // goroutines racing past the signal limit
	limitRace        = 200 // accepted deliveries left for the race across the limit
	limitOverflow    = 100 // deliveries beyond contracts.SignalLimit
)

// raceSameKey: 64 goroutines deliver one (waitpoint_id, idempotency_key):
// exactly one is accepted, 63 are duplicates naming its signal_id, and one
// signal is recorded.
func raceSameKey(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("race-1", contracts.ConditionAny, "a"))
	hs := w.handles()

	// when 64 goroutines deliver the same key at once
	outs := make([]contracts.DeliverSignalOutcome, racingDeliveries)
	errs := make([]error, racingDeliveries)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racingDeliveries {
		wg.Go(func() {
			<-start
			outs[i], errs[i] = retryContention(w, func() (contracts.DeliverSignalOutcome, error) {
				return hs[i%len(hs)].DeliverSignal(ctx(), signalTo(s, "a", "webhook", "evt-42"))
			})
		})
	}
	close(start)
	wg.Wait()

	// then exactly one is accepted and the rest name its signal_id
	var accepted []contracts.DeliverSignalOutcome
	var dups []contracts.DeliverSignalOutcome
	for i, out := range outs {
		require.NoError(t, errs[i], "delivery %d", i)
		switch out.Outcome {
		case contracts.OutcomeAccepted:
			accepted = append(accepted, out)
		case contracts.OutcomeDuplicate:
			dups = append(dups, out)
		}
	}
	require.Len(t, accepted, 1, "want exactly 1 delivery accepted")
	require.Len(t, dups, racingDeliveries-1, "want every other delivery a duplicate")
	for _, d := range dups {
		require.Equal(t, accepted[0].SignalID, d.SignalID, "a duplicate must name the accepted signal_id")
	}
	w.record("accepted", accepted[0], nil)
	w.record("a_duplicate", dups[0], nil)
	w.note("duplicates", len(dups))
	o := w.mustObserve("observe", "race-1")
	require.Len(t, o.Signals, 1, "observe: want the one accepted signal")
	require.Equal(t, accepted[0].SignalID, o.Signals[0].SignalID, "observe: want the one accepted signal")
	w.golden("signals_concurrency_same_key")
}

// raceClaims: 8 workers claim 200 resumed executions at once: each is
// claimed exactly once, and then claims answer none.
func raceClaims(t *testing.T, suite sigSuite) {
	w := suite.open(t)

	// given 200 resumed executions
	for i := range claimExecutions {
		id := fmt.Sprintf("claim-%03d", i)
		s, err := w.e.Suspend(ctx(), suspendArgs(id, contracts.ConditionAny, "a"))
		require.NoError(t, err, "given: suspend %s", id)
		_, err = w.e.DeliverSignal(ctx(), signalTo(s, "a", "go", ""))
		require.NoError(t, err, "given: deliver to %s", id)
	}

	// when 8 workers claim until none is left
	hs := w.handles()
	var mu sync.Mutex
	claimedBy := map[string][]string{}
	leases := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, claimWorkers)
	for i := range claimWorkers {
		worker := fmt.Sprintf("worker-%d", i)
		wg.Go(func() {
			for {
				c, err := retryContention(w, func() (contracts.ClaimOutcome, error) {
					return hs[i%len(hs)].ClaimResumedExecution(ctx(), contracts.ClaimArgs{WorkerID: worker, LeaseMs: 600_000})
				})
				if err != nil {
					errs <- fmt.Errorf("%s: claim: %w", worker, err)
					return
				}
				if c.Outcome == contracts.OutcomeNone {
					return
				}
				mu.Lock()
				claimedBy[c.ExecutionID] = append(claimedBy[c.ExecutionID], worker)
				leases[c.LeaseID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	// then every execution went to exactly one worker
	require.Len(t, claimedBy, claimExecutions, "want every execution claimed")
	require.Len(t, leases, claimExecutions, "want distinct leases")
	for id, workers := range claimedBy {
		require.Len(t, workers, 1, "%s claimed more than once (by %v)", id, workers)
	}
	w.note("claimed_executions", len(claimedBy))
	out, _ := w.claim("claim_after_all", "worker-x", 600_000)
	require.Equal(t, contracts.OutcomeNone, out.Outcome, "claim_after_all: want none, got %+v", out)
	w.golden("signals_concurrency_claim_each_once")
}

func syncMapLen(m *sync.Map) int {
	n := 0
	m.Range(func(any, any) bool { n++; return true })
	return n
}

// raceAll runs n calls of f at once (released together) and returns their
// results in call order.
func raceAll[R any](n int, f func(i int) (R, error)) ([]R, []error) {
	outs, errs := make([]R, n), make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			outs[i], errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return outs, errs
}

// raceAllWaitpoints: under condition all, 16 goroutines each deliver to
// another of 16 waitpoints at once: all are accepted and exactly one
// answers resumed true (no lost update of the resume condition).
func raceAllWaitpoints(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	a := contracts.SuspendArgs{ExecutionID: "race-all", Condition: contracts.ConditionAll}
	for i := range contracts.MaxWaitpoints {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: fmt.Sprintf("wp-%02d", i)})
	}
	s := w.mustSuspend("suspend", a)
	hs := w.handles()
	outs, errs := raceAll(len(a.Waitpoints), func(i int) (contracts.DeliverSignalOutcome, error) {
		return retryContention(w, func() (contracts.DeliverSignalOutcome, error) {
			return hs[i%len(hs)].DeliverSignal(ctx(), signalTo(s, a.Waitpoints[i].Key, "done", ""))
		})
	})
	resumed := 0
	for i, out := range outs {
		require.NoError(t, errs[i], "delivery to %s", a.Waitpoints[i].Key)
		require.Equal(t, contracts.OutcomeAccepted, out.Outcome, "delivery to %s: outcome", a.Waitpoints[i].Key)
		if out.Resumed {
			resumed++
		}
	}
	require.Equal(t, 1, resumed, "want exactly one delivery answering resumed true")
	w.note("resumed_true", resumed)
	// the delivery order varies, so the claim is checked, not kept in the golden file
	c, err := w.e.ClaimResumedExecution(ctx(), contracts.ClaimArgs{WorkerID: "worker-1", LeaseMs: 60_000})
	require.NoError(t, err, "claim")
	require.Equal(t, contracts.OutcomeClaimed, c.Outcome, "claim: outcome")
	require.Len(t, c.Signals, contracts.MaxWaitpoints, "claim: want one signal per waitpoint")
	w.note("claimed_signals", len(c.Signals))
	w.golden("signals_concurrency_all_resumes_once")
}

// raceAnyWaitpoints: under condition any, 16 goroutines each deliver to
// another of 16 waitpoints at once: exactly one is accepted (and resumes),
// the other 15 find their waitpoint closed.
func raceAnyWaitpoints(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	a := contracts.SuspendArgs{ExecutionID: "race-any", Condition: contracts.ConditionAny}
	for i := range contracts.MaxWaitpoints {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: fmt.Sprintf("wp-%02d", i)})
	}
	s := w.mustSuspend("suspend", a)
	hs := w.handles()
	outs, errs := raceAll(len(a.Waitpoints), func(i int) (contracts.DeliverSignalOutcome, error) {
		return retryContention(w, func() (contracts.DeliverSignalOutcome, error) {
			return hs[i%len(hs)].DeliverSignal(ctx(), signalTo(s, a.Waitpoints[i].Key, "done", ""))
		})
	})
	accepted, closed := 0, 0
	for i, out := range outs {
		switch {
		case errs[i] == nil && out.Outcome == contracts.OutcomeAccepted && out.Resumed:
			accepted++
		case errors.Is(errs[i], contracts.ErrWaitpointClosed):
			closed++
		default:
			require.Failf(t, "unexpected delivery outcome", "delivery to %s: want accepted and resumed, or waitpoint_closed; got %+v %v", a.Waitpoints[i].Key, out, errs[i])
		}
	}
	require.Equal(t, 1, accepted, "want exactly 1 delivery accepted")
	require.Equal(t, contracts.MaxWaitpoints-1, closed, "want every other delivery waitpoint_closed")
	w.note("accepted", accepted)
	w.note("waitpoint_closed", closed)
	o := w.mustObserve("observe_count", "race-any")
	require.Len(t, o.Signals, 1, "observe: want one signal")
	w.steps = w.steps[:len(w.steps)-1] // which waitpoint won varies; keep the count only
	w.golden("signals_concurrency_any_resumes_once")
}

// raceSuspend: 16 goroutines suspend one execution at once. With one
// idempotency key all answer the same envelope byte for byte; with 16
// different keys exactly one succeeds and the rest are already_suspended.
func raceSuspend(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	const n = 16
	same := suspendArgs("race-suspend-1", contracts.ConditionAny, "a", "b")
	same.IdempotencyKey = "boot-1"
	hs := w.handles()
	outs, errs := raceAll(n, func(i int) (contracts.SuspendOutcome, error) {
		return retryContention(w, func() (contracts.SuspendOutcome, error) { return hs[i%len(hs)].Suspend(ctx(), same) })
	})
	for i := range outs {
		require.NoError(t, errs[i], "suspend %d with the shared key", i)
		require.Equal(t, sigMarshal(t, outs[0]), sigMarshal(t, outs[i]), "suspend %d with the shared key: want the one envelope", i)
	}
	w.record("suspend_same_key", outs[0], nil)

	outs, errs = raceAll(n, func(i int) (contracts.SuspendOutcome, error) {
		a := suspendArgs("race-suspend-2", contracts.ConditionAny, "a")
		a.IdempotencyKey = fmt.Sprintf("attempt-%d", i)
		return retryContention(w, func() (contracts.SuspendOutcome, error) { return hs[i%len(hs)].Suspend(ctx(), a) })
	})
	won, lost := 0, 0
	for i := range outs {
		switch {
		case errs[i] == nil:
			won++
		case errors.Is(errs[i], contracts.ErrAlreadySuspended):
			lost++
		default:
			require.ErrorIs(t, errs[i], contracts.ErrAlreadySuspended, "suspend %d with its own key", i)
		}
	}
	require.Equal(t, 1, won, "want exactly 1 suspend to succeed")
	require.Equal(t, n-1, lost, "want every other suspend already_suspended")
	w.note("suspended", won)
	w.note("already_suspended", lost)
	l := w.mustList("list", contracts.ListSuspendedArgs{})
	require.Len(t, l.Executions, 2, "list: want two suspended executions")
	w.golden("signals_concurrency_suspend_race")
}

// maxContentionRetries bounds how often a concurrent scenario repeats a call
// that failed with a retryable contention error.
const maxContentionRetries = 20

// retryContention calls f and, like a careful client, repeats it while it
// fails with kind contention (retryable, e.g. serialization_retry_exhausted
// on a SERIALIZABLE backend), at most maxContentionRetries times. Repeating
// is safe for every call the scenarios race: deliveries carry idempotency
// keys or distinct keys, and a failed claim or suspend changed nothing.
// Retries are counted and logged, never part of a golden file.
func retryContention[R any](w *sigWorld, f func() (R, error)) (R, error) {
	for attempt := 0; ; attempt++ {
		r, err := f()
		var ce *contracts.Error
		if err == nil || attempt == maxContentionRetries || !errors.As(err, &ce) || ce.Kind != contracts.KindContention {
			return r, err
		}
		w.retries.Add(1)
		time.Sleep(time.Duration(1+attempt) * time.Millisecond)
	}
}
