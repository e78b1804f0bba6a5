package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
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

// signalConcurrencyScenarios race many goroutines through one Engine
// (docs/spec.md §5: exactly once delivery, exactly once claims, the signal
// limit under contention).
func signalConcurrencyScenarios(t *testing.T, h Harness) {
	s := sigSuite{h: h, rec: newRecorder()}
	s.scenario(t, "SameIdempotencyKey", raceSameKey)
	s.scenario(t, "ClaimEachOnce", raceClaims)
	s.scenario(t, "SignalLimit", raceSignalLimit)
	s.scenario(t, "AllResumesOnce", raceAllWaitpoints)
	s.scenario(t, "AnyResumesOnce", raceAnyWaitpoints)
	s.scenario(t, "SuspendOnce", raceSuspend)
}

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
		switch {
		case errs[i] != nil:
			t.Fatalf("delivery %d: %v", i, errs[i])
		case out.Outcome == contracts.OutcomeAccepted:
			accepted = append(accepted, out)
		case out.Outcome == contracts.OutcomeDuplicate:
			dups = append(dups, out)
		}
	}
	if len(accepted) != 1 || len(dups) != racingDeliveries-1 {
		t.Fatalf("want 1 accepted and %d duplicates, got %d and %d", racingDeliveries-1, len(accepted), len(dups))
	}
	for _, d := range dups {
		if d.SignalID != accepted[0].SignalID {
			t.Fatalf("duplicate names %s, want the accepted %s", d.SignalID, accepted[0].SignalID)
		}
	}
	w.record("accepted", accepted[0], nil)
	w.record("a_duplicate", dups[0], nil)
	w.note("duplicates", len(dups))
	if o := w.mustObserve("observe", "race-1"); len(o.Signals) != 1 || o.Signals[0].SignalID != accepted[0].SignalID {
		t.Fatalf("observe: want the one accepted signal, got %+v", o.Signals)
	}
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
		if err != nil {
			t.Fatalf("given: suspend %s: %v", id, err)
		}
		if _, err := w.e.DeliverSignal(ctx(), signalTo(s, "a", "go", "")); err != nil {
			t.Fatalf("given: deliver to %s: %v", id, err)
		}
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
		t.Fatal(err)
	}

	// then every execution went to exactly one worker
	if len(claimedBy) != claimExecutions || len(leases) != claimExecutions {
		t.Fatalf("want %d executions claimed with distinct leases, got %d executions, %d leases", claimExecutions, len(claimedBy), len(leases))
	}
	for id, workers := range claimedBy {
		if len(workers) != 1 {
			t.Fatalf("%s claimed %d times (by %v)", id, len(workers), workers)
		}
	}
	w.note("claimed_executions", len(claimedBy))
	if out, _ := w.claim("claim_after_all", "worker-x", 600_000); out.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim_after_all: want none, got %+v", out)
	}
	w.golden("signals_concurrency_claim_each_once")
}

// raceSignalLimit: 10,100 signals with distinct keys go to a suspension that
// does not resume, the last 300 from 16 goroutines at once: exactly 10,000
// are accepted, the rest are signal_limit_exceeded, a duplicate still answers duplicate, and the
// suspension holds 10,000 signals. Skipped with -short.
func raceSignalLimit(t *testing.T, suite sigSuite) {
	if testing.Short() {
		t.Skip("10,100 deliveries; skipped with -short")
	}
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("limit-1", contracts.ConditionAll, "a", "b"))
	hs := w.handles()

	// fill up to limitRace below the limit with a few goroutines (a
	// SERIALIZABLE backend spends its time on retries when many contend),
	// then race 16 goroutines across the limit
	var accepted, exceeded sync.Map
	total := contracts.SignalLimit + limitOverflow
	start := time.Now()
	deliverTicks(t, w, hs, s, 0, contracts.SignalLimit-limitRace, fillWorkers, &accepted, &exceeded)
	filled := time.Now()
	deliverTicks(t, w, hs, s, contracts.SignalLimit-limitRace, total, limitWorkers, &accepted, &exceeded)
	t.Logf("%d deliveries by %d goroutines in %v, then %d by %d goroutines in %v",
		contracts.SignalLimit-limitRace, fillWorkers, filled.Sub(start).Round(time.Millisecond),
		limitRace+limitOverflow, limitWorkers, time.Since(filled).Round(time.Millisecond))
	if n, m := syncMapLen(&accepted), syncMapLen(&exceeded); n != contracts.SignalLimit || m != limitOverflow {
		t.Fatalf("want %d accepted and %d signal_limit_exceeded, got %d and %d", contracts.SignalLimit, limitOverflow, n, m)
	}
	w.note("accepted", contracts.SignalLimit)
	w.note("signal_limit_exceeded", limitOverflow)

	// then the other waitpoint cannot resume it, a recorded key is still a duplicate
	_, err := w.deliver("deliver_other_waitpoint", signalTo(s, "b", "tick", ""))
	sigWantErr(t, "deliver_other_waitpoint", err, contracts.ErrSignalLimitExceeded)
	var some int
	var someID string
	accepted.Range(func(k, v any) bool { some, someID = k.(int), v.(string); return false })
	if d, err := w.deliver("redeliver_recorded_key", signalTo(s, "a", "tick", fmt.Sprintf("tick-%05d", some))); err != nil || d.Outcome != contracts.OutcomeDuplicate || d.SignalID != someID {
		t.Fatalf("redeliver_recorded_key: want duplicate of %s, got %+v %v", someID, d, err)
	}
	o, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: "limit-1"})
	if err != nil || len(o.Signals) != contracts.SignalLimit {
		t.Fatalf("observe: want %d signals, got %d %v", contracts.SignalLimit, len(o.Signals), err)
	}
	w.note("observed_signals", len(o.Signals))
	w.golden("signals_concurrency_signal_limit")
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
		if errs[i] != nil || out.Outcome != contracts.OutcomeAccepted {
			t.Fatalf("delivery to %s: want accepted, got %+v %v", a.Waitpoints[i].Key, out, errs[i])
		}
		if out.Resumed {
			resumed++
		}
	}
	if resumed != 1 {
		t.Fatalf("want exactly one delivery answering resumed true, got %d", resumed)
	}
	w.note("resumed_true", resumed)
	// the delivery order varies, so the claim is checked, not kept in the golden file
	c, err := w.e.ClaimResumedExecution(ctx(), contracts.ClaimArgs{WorkerID: "worker-1", LeaseMs: 60_000})
	if err != nil || c.Outcome != contracts.OutcomeClaimed || len(c.Signals) != contracts.MaxWaitpoints {
		t.Fatalf("claim: want the execution with %d signals, got %+v %v", contracts.MaxWaitpoints, c, err)
	}
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
			t.Fatalf("delivery to %s: want accepted and resumed, or waitpoint_closed; got %+v %v", a.Waitpoints[i].Key, out, errs[i])
		}
	}
	if accepted != 1 || closed != contracts.MaxWaitpoints-1 {
		t.Fatalf("want 1 accepted and %d waitpoint_closed, got %d and %d", contracts.MaxWaitpoints-1, accepted, closed)
	}
	w.note("accepted", accepted)
	w.note("waitpoint_closed", closed)
	if o := w.mustObserve("observe_count", "race-any"); len(o.Signals) != 1 {
		t.Fatalf("observe: want one signal, got %d", len(o.Signals))
	}
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
		if errs[i] != nil || sigMarshal(t, outs[i]) != sigMarshal(t, outs[0]) {
			t.Fatalf("suspend %d with the shared key: want the one envelope, got %s %v", i, sigMarshal(t, outs[i]), errs[i])
		}
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
			t.Fatalf("suspend %d with its own key: %v", i, errs[i])
		}
	}
	if won != 1 || lost != n-1 {
		t.Fatalf("want 1 suspended and %d already_suspended, got %d and %d", n-1, won, lost)
	}
	w.note("suspended", won)
	w.note("already_suspended", lost)
	if l := w.mustList("list", contracts.ListSuspendedArgs{}); len(l.Executions) != 2 {
		t.Fatalf("list: want two suspended executions, got %+v", l.Executions)
	}
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

// deliverTicks delivers signals with idempotency keys tick-<i> for i in
// [from, to) to waitpoint "a" of s from n goroutines spread over the
// handles, recording accepted signal ids and signal_limit_exceeded answers.
func deliverTicks(t *testing.T, w *sigWorld, hs []*engine.Engine, s contracts.SuspendOutcome, from, to, n int, accepted, exceeded *sync.Map) {
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
					return hs[g%len(hs)].DeliverSignal(ctx(), signalTo(s, "a", "tick", fmt.Sprintf("tick-%05d", i)))
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
		t.Fatal(err)
	}
}
