package reliability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// The connection killed in the middle of each mutating operation of
// version 2 of the waitpoint lifecycle (docs/spec.md §8.1, §8.4, §8.5), as
// TestFaultConnectionKilled does for version 1: create_waitpoint, suspend
// using a pending waitpoint that holds a signal (suspended or
// already_satisfied), cancel_suspension, extend_lease and
// release_execution. Every error must be a retryable contract error;
// afterwards, on a fresh connection, each call took effect wholly or not at
// all, and retrying converges.
func TestFaultConnectionKilledLifecycle(t *testing.T) {
	workers, n := 4, sized(6, 100)
	for _, tg := range targets {
		if !tg.network {
			continue
		}
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			v := newVictim(t, tg)
			if tg.name == "postgres" {
				// These transactions run more statements than version 1's:
				// at a kill every 0-5 ms about 1 % of the calls were
				// acknowledged (a trial of 1,600), leaving the acknowledged
				// path unchecked; at 0-30 ms both paths are taken.
				v.maxGap = pgLifecycleKillGap
			}
			e := openEngine(t, v.url)
			needLifecycle(t, e, tg.name)
			seedOnce(t, e, "k0")
			// One store for the four cases (their execution ids differ, and
			// each ends with nothing claimable): opening a store is what
			// costs most on PostgreSQL at the bounded sizes.
			for _, c := range []struct {
				name string
				run  func(t testing.TB, e *engine.Engine, v victim, workers, n int)
			}{
				{"CreateWaitpoint", killDuringCreateWaitpoint},
				{"SuspendUsingPending", killDuringSuspendUsingPending},
				{"Cancel", killDuringCancel},
				{"ExtendRelease", killDuringExtendRelease},
			} {
				t.Run(c.name, func(t *testing.T) {
					note, known := knownIssues[tg.name+"/"+c.name]
					if !known {
						c.run(t, e, v, workers, n)
						return
					}
					k := &knownIssue{TB: t, note: note}
					c.run(k, e, v, workers, n)
					if k.hits > 0 {
						t.Skipf("known driver issue reproduced (%d violations logged above): %s", k.hits, note)
					}
					logf(t, "known issue %q did not reproduce in this run", note)
				})
			}
		})
	}
}

// pgLifecycleKillGap is the longest pause between two PostgreSQL session
// kills in TestFaultConnectionKilledLifecycle.
const pgLifecycleKillGap = 30 * time.Millisecond

// must runs f with retries (retry) and fails t on an error.
func must(t testing.TB, what string, f func(ctx context.Context) error) {
	t.Helper()
	if err := retry(f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// createPending opens a pending waitpoint with key for exec and fails t on
// an error.
func createPending(t testing.TB, e *engine.Engine, exec, key string) contracts.CreateWaitpointOutcome {
	t.Helper()
	var res contracts.CreateWaitpointOutcome
	must(t, "create_waitpoint "+exec, func(ctx context.Context) (err error) {
		res, err = e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: exec, Key: key, ExpiresInMs: pendingExpiresMs})
		return err
	})
	return res
}

// deliverOnce delivers one signal to wp under the idempotency key "once"
// and returns its signal id.
func deliverOnce(t testing.TB, e *engine.Engine, exec, wp, token string) string {
	t.Helper()
	var res contracts.DeliverSignalOutcome
	must(t, "deliver_signal "+exec, func(ctx context.Context) (err error) {
		res, err = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: wp, Token: token, Name: "go", IdempotencyKey: "once"})
		return err
	})
	return res.SignalID
}

// waitpointInfo reads get_waitpoint; a retryable error is retried.
func waitpointInfo(e *engine.Engine, exec, wp string) (contracts.WaitpointInfo, error) {
	var res contracts.WaitpointInfo
	err := retry(func(ctx context.Context) (err error) {
		res, err = e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: exec, WaitpointID: wp})
		return err
	})
	return res, err
}

// observe reads the first page of exec's signals; a retryable error is retried.
func observe(e *engine.Engine, exec string) (contracts.ObserveSignalsResult, error) {
	var res contracts.ObserveSignalsResult
	err := retry(func(ctx context.Context) (err error) {
		res, err = e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: exec})
		return err
	})
	return res, err
}

// claimAll claims until nothing is claimable and returns the claims by
// execution; an execution claimed twice fails t.
func claimAll(t testing.TB, e *engine.Engine) map[string]contracts.ClaimOutcome {
	t.Helper()
	out := map[string]contracts.ClaimOutcome{}
	for {
		var res contracts.ClaimOutcome
		must(t, "claim", func(ctx context.Context) (err error) {
			res, err = e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "after", LeaseMs: leaseMs})
			return err
		})
		if res.Outcome != contracts.OutcomeClaimed {
			return out
		}
		if _, dup := out[res.ExecutionID]; dup {
			t.Errorf("%s claimed twice", res.ExecutionID)
		}
		out[res.ExecutionID] = res
	}
}

// killDuringCreateWaitpoint: create_waitpoint on fresh executions under
// kills. Every acknowledged waitpoint is pending with no signal, stores the
// fingerprint of the token it answered, and takes a delivery with that
// token. An unacknowledged one left either nothing (the execution is
// unknown: complete answers execution_not_found) or the execution
// remembered in state none with its one pending waitpoint: 15 more creates
// fit under the limit of 16 and the 16th does not (checked for the first
// first one or few of those).
func killDuringCreateWaitpoint(t testing.TB, e *engine.Engine, v victim, workers, n int) {
	var c tally
	var mu sync.Mutex
	acked := map[string]contracts.CreateWaitpointOutcome{}
	var unacked []string
	kills := underKills(v, workers, n, func(w, i int) {
		exec := fmt.Sprintf("cw-%d-%d", w, i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: exec, Key: "a", ExpiresInMs: pendingExpiresMs})
		ok := c.record("create_waitpoint "+exec, err)
		mu.Lock()
		defer mu.Unlock()
		if ok {
			acked[exec] = res
		} else {
			unacked = append(unacked, exec)
		}
	})
	logf(t, "%s; %d connections killed", c.String(), kills)
	c.report(t)
	check := openEngine(t, v.url)
	for exec, res := range acked {
		info, err := waitpointInfo(check, exec, res.WaitpointID)
		switch {
		case err != nil:
			t.Errorf("acknowledged pending waitpoint of %s: %v", exec, err)
			continue
		case info.Status != contracts.WaitpointPending || info.Signals != 0 || info.WaitpointKey != "a" || info.CreatedAtMs != res.CreatedAtMs:
			t.Errorf("acknowledged pending waitpoint of %s: %+v", exec, info)
		case info.TokenFingerprint == nil || *info.TokenFingerprint != driver.TokenFingerprint(res.Token):
			t.Errorf("acknowledged pending waitpoint of %s: the stored fingerprint is not the answered token's", exec)
		}
		deliverOnce(t, check, exec, res.WaitpointID, res.Token)
	}
	remembered, probed := 0, 0
	for _, exec := range unacked {
		err := retry(func(ctx context.Context) error {
			_, err := check.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: exec, LeaseID: driver.NewID()})
			return err
		})
		switch {
		case isCode(err, contracts.CodeExecutionNotFound):
			continue
		case !isCode(err, contracts.CodeLeaseMismatch):
			t.Errorf("probing %s: %v", exec, err)
			continue
		}
		remembered++
		if probed < sized(1, 5) {
			probed++
			checkOnePending(t, check, exec)
		}
	}
	logf(t, "%d unacknowledged creates were applied (wholly; %d checked to hold exactly one pending waitpoint), %d not",
		remembered, probed, len(unacked)-remembered)
}

// checkOnePending checks that exec holds exactly one live pending
// waitpoint: 15 more fit under the limit, the 16th does not.
func checkOnePending(t testing.TB, e *engine.Engine, exec string) {
	t.Helper()
	for i := range contracts.MaxPendingWaitpoints {
		err := retry(func(ctx context.Context) error {
			_, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: exec, Key: "more", ExpiresInMs: pendingExpiresMs})
			return err
		})
		switch last := i == contracts.MaxPendingWaitpoints-1; {
		case last && !isCode(err, contracts.CodeWaitpointLimitExceeded):
			t.Errorf("%s: create %d answered %v, want waitpoint_limit_exceeded: the unacknowledged create left no waitpoint", exec, i+2, err)
		case !last && err != nil:
			t.Errorf("%s: create %d: %v (the unacknowledged create left more than one waitpoint?)", exec, i+2, err)
			return
		}
	}
}

// spExec is one execution of killDuringSuspendUsingPending: its pending
// waitpoint, the signal delivered to it, and whether its suspend waits (a
// second, new waitpoint and condition all) or is already satisfied
// (condition any).
type spExec struct {
	id      string
	pending contracts.CreateWaitpointOutcome
	signal  string
	waits   bool
}

func (x spExec) args() contracts.SuspendArgs {
	a := contracts.SuspendArgs{ExecutionID: x.id, Condition: contracts.ConditionAny, IdempotencyKey: "ik",
		Waitpoints: []contracts.WaitpointSpec{{Pending: x.pending.WaitpointID}}}
	if x.waits {
		a.Condition, a.Waitpoints = contracts.ConditionAll, append(a.Waitpoints, contracts.WaitpointSpec{Key: "k"})
	}
	return a
}

func (x spExec) outcome() string {
	if x.waits {
		return contracts.OutcomeSuspended
	}
	return contracts.OutcomeAlreadySatisfied
}

// killDuringSuspendUsingPending: each execution has a pending waitpoint
// holding one signal; under kills, suspend uses it (with an idempotency
// key), half waiting on a second waitpoint, half already satisfied.
// Afterwards each is whole: either the pending waitpoint is still pending
// with its signal and there is no suspension, or it is used (open and
// listed with 2 waitpoints, or closed and unlisted) and the suspension
// holds its signal. Every acknowledged suspend is applied; a retry with
// the same idempotency key answers the stored outcome (same suspension,
// the token create_waitpoint answered) or applies it.
func killDuringSuspendUsingPending(t testing.TB, e *engine.Engine, v victim, workers, n int) {
	execs := make([]spExec, workers*n)
	for j := range execs {
		x := spExec{id: fmt.Sprintf("sp-%04d", j), waits: j%2 == 0}
		x.pending = createPending(t, e, x.id, "p")
		x.signal = deliverOnce(t, e, x.id, x.pending.WaitpointID, x.pending.Token)
		execs[j] = x
	}
	var c tally
	var mu sync.Mutex
	acked := map[string]contracts.SuspendOutcome{}
	kills := underKills(v, workers, n, func(w, i int) {
		x := execs[w*n+i]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := e.Suspend(ctx, x.args())
		if c.record("suspend "+x.id, err) {
			mu.Lock()
			acked[x.id] = res
			mu.Unlock()
		}
	})
	logf(t, "%s; %d connections killed", c.String(), kills)
	c.report(t)
	check := openEngine(t, v.url)
	listed := listAll(t, check)
	applied := 0
	for _, x := range execs {
		sid, ok := checkSuspendUsing(t, check, x, listed)
		if a, was := acked[x.id]; was && (!ok || a.SuspensionID != sid || a.Outcome != x.outcome()) {
			t.Errorf("acknowledged suspend of %s (%s %s): stored as %q (applied %v)", x.id, a.Outcome, a.SuspensionID, sid, ok)
		}
		if ok {
			applied++
		}
		var res contracts.SuspendOutcome
		must(t, "retrying the suspend of "+x.id, func(ctx context.Context) (err error) { res, err = check.Suspend(ctx, x.args()); return err })
		switch {
		case res.Outcome != x.outcome():
			t.Errorf("retry of %s answered %s, want %s", x.id, res.Outcome, x.outcome())
		case ok && res.SuspensionID != sid:
			t.Errorf("retry of %s answered suspension %s, but %s was stored: the replay is not the first outcome", x.id, res.SuspensionID, sid)
		case x.waits && res.Waitpoints[0].Token != x.pending.Token:
			t.Errorf("retry of %s: the pending waitpoint's token changed (no rotation came between)", x.id)
		case !x.waits && (len(res.Signals) != 1 || res.Signals[0].SignalID != x.signal):
			t.Errorf("retry of %s: already_satisfied with %d signals, want its pending waitpoint's one", x.id, len(res.Signals))
		}
	}
	logf(t, "%d of %d suspends applied (wholly) before the retries, %d acknowledged", applied, len(execs), len(acked))
	listed = listAll(t, check)
	for _, x := range execs {
		if _, ok := listed[x.id]; ok != x.waits {
			t.Errorf("%s: listed %v after its retry, want %v", x.id, ok, x.waits)
		}
	}
}

// checkSuspendUsing checks that x's suspend is wholly applied or not at all
// and reports the suspension id and whether it was applied.
func checkSuspendUsing(t testing.TB, e *engine.Engine, x spExec, listed map[string]contracts.SuspendedExecution) (string, bool) {
	t.Helper()
	info, err := waitpointInfo(e, x.id, x.pending.WaitpointID)
	if err != nil {
		t.Errorf("%s: get_waitpoint of its pending waitpoint: %v", x.id, err)
		return "", false
	}
	if info.Signals != 1 {
		t.Errorf("%s: its pending waitpoint holds %d signals, want 1", x.id, info.Signals)
	}
	obs, oerr := observe(e, x.id)
	row, isListed := listed[x.id]
	if info.Status == contracts.WaitpointPending {
		if !isCode(oerr, contracts.CodeExecutionNotFound) || isListed {
			t.Errorf("%s: half applied: its waitpoint is still pending, but observe answered %+v %v and listed %v", x.id, obs, oerr, isListed)
		}
		return "", false
	}
	want := contracts.WaitpointClosed
	if x.waits {
		want = contracts.WaitpointOpen
	}
	switch {
	case info.Status != want:
		t.Errorf("%s: its used waitpoint is %s, want %s", x.id, info.Status, want)
	case oerr != nil || len(obs.Signals) != 1 || obs.Signals[0].SignalID != x.signal:
		t.Errorf("%s: half applied: its waitpoint is used, but the suspension holds %+v (%v), not its signal %s", x.id, obs.Signals, oerr, x.signal)
	case x.waits != isListed || isListed && (row.SuspensionID != obs.SuspensionID || row.Waitpoints != 2):
		t.Errorf("%s: listed %v as %+v; observed suspension %s", x.id, isListed, row, obs.SuspensionID)
	}
	return obs.SuspensionID, true
}

// killDuringCancel: executions suspended on a and b (condition all), a
// holding one signal; under kills, each is cancelled once. Afterwards each
// is whole: suspended with a and b open, or cancelled (unlisted, a and b
// closed); a retry answers cancelled exactly when it was not applied (else
// not_suspended); then every execution is claimed once, with reason
// cancelled and its one signal.
func killDuringCancel(t testing.TB, e *engine.Engine, v victim, workers, n int) {
	type cx struct {
		id, signal string
		wps        []contracts.WaitpointOutcome
	}
	execs := make([]cx, workers*n)
	for j := range execs {
		x := cx{id: fmt.Sprintf("cx-%04d", j)}
		x.wps = suspendOne(t, e, x.id, contracts.ConditionAll, "a", "b").Waitpoints
		x.signal = deliverOnce(t, e, x.id, x.wps[0].WaitpointID, x.wps[0].Token)
		execs[j] = x
	}
	var c tally
	var mu sync.Mutex
	acked := map[string]bool{}
	kills := underKills(v, workers, n, func(w, i int) {
		x := execs[w*n+i]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: x.id})
		if c.record("cancel "+x.id, err) {
			mu.Lock()
			acked[x.id] = true
			mu.Unlock()
		}
	})
	logf(t, "%s; %d connections killed", c.String(), kills)
	c.report(t)
	check := openEngine(t, v.url)
	listed := listAll(t, check)
	applied := 0
	for _, x := range execs {
		_, suspended := listed[x.id]
		want := contracts.WaitpointClosed
		if suspended {
			want = contracts.WaitpointOpen
		} else {
			applied++
		}
		if acked[x.id] && suspended {
			t.Errorf("acknowledged cancel of %s: still suspended", x.id)
		}
		for _, w := range x.wps {
			if info, err := waitpointInfo(check, x.id, w.WaitpointID); err != nil || info.Status != want {
				t.Errorf("%s: half applied: listed %v, but waitpoint %s is %s (%v)", x.id, suspended, w.WaitpointKey, info.Status, err)
			}
		}
		err := retry(func(ctx context.Context) error {
			_, err := check.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: x.id})
			return err
		})
		switch {
		case suspended && err != nil:
			t.Errorf("retrying the cancel of %s (not applied): %v", x.id, err)
		case !suspended && !isCode(err, contracts.CodeNotSuspended):
			t.Errorf("retrying the cancel of %s (applied): %v, want not_suspended", x.id, err)
		}
	}
	logf(t, "%d of %d cancels applied (wholly) before the retries, %d acknowledged", applied, len(execs), len(acked))
	claims := claimAll(t, check)
	for _, x := range execs {
		cl, ok := claims[x.id]
		switch {
		case !ok:
			t.Errorf("%s: cancelled but never claimed", x.id)
		case cl.Reason != contracts.ReasonCancelled || len(cl.Signals) != 1 || cl.Signals[0].SignalID != x.signal:
			t.Errorf("%s: claimed with reason %s and %d signals, want cancelled with its one signal", x.id, cl.Reason, len(cl.Signals))
		}
	}
	if len(claims) != len(execs) {
		t.Errorf("%d executions claimed, want %d", len(claims), len(execs))
	}
}

// killDuringExtendRelease: claimed executions; under kills, the even ones
// extend their lease, the odd ones release it. Afterwards an extended
// lease still holds (applied or not, the lease is the same); a release was
// applied wholly (the lease no longer holds and the execution is
// claimable) or not at all (the lease holds; a retry releases it). Then
// exactly the odd executions are claimable, each once, with reason signal
// and its signal.
func killDuringExtendRelease(t testing.TB, e *engine.Engine, v victim, workers, n int) {
	total := workers * n
	signals := map[string]string{}
	for j := range total {
		exec := fmt.Sprintf("lx-%04d", j)
		s := suspendOne(t, e, exec, contracts.ConditionAny, "a")
		signals[exec] = deliverOnce(t, e, exec, s.Waitpoints[0].WaitpointID, s.Waitpoints[0].Token)
	}
	claims := claimAll(t, e)
	if len(claims) != total {
		t.Fatalf("%d executions claimed in the setup, want %d", len(claims), total)
	}
	exec := func(j int) string { return fmt.Sprintf("lx-%04d", j) }
	var c tally
	var mu sync.Mutex
	acked := map[string]bool{}
	kills := underKills(v, workers, n, func(w, i int) {
		j := w*n + i
		x := exec(j)
		lease := claims[x].LeaseID
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if j%2 == 0 {
			_, err = e.ExtendLease(ctx, contracts.ExtendLeaseArgs{ExecutionID: x, LeaseID: lease, LeaseMs: leaseMs})
		} else {
			_, err = e.ReleaseExecution(ctx, contracts.ReleaseArgs{ExecutionID: x, LeaseID: lease})
		}
		if c.record("extend/release "+x, err) {
			mu.Lock()
			acked[x] = true
			mu.Unlock()
		}
	})
	logf(t, "%s; %d connections killed", c.String(), kills)
	c.report(t)
	check := openEngine(t, v.url)
	released := 0
	for j := range total {
		x := exec(j)
		lease := claims[x].LeaseID
		if j%2 == 0 {
			must(t, "extending "+x+" again", func(ctx context.Context) error {
				_, err := check.ExtendLease(ctx, contracts.ExtendLeaseArgs{ExecutionID: x, LeaseID: lease, LeaseMs: leaseMs})
				return err
			})
			continue
		}
		err := retry(func(ctx context.Context) error {
			_, err := check.ReleaseExecution(ctx, contracts.ReleaseArgs{ExecutionID: x, LeaseID: lease})
			return err
		})
		switch {
		case isCode(err, contracts.CodeLeaseMismatch):
			released++
		case err != nil:
			t.Errorf("retrying the release of %s: %v", x, err)
		case acked[x]:
			t.Errorf("acknowledged release of %s: its lease still held", x)
		}
	}
	logf(t, "%d of %d releases applied (wholly) before the retries", released, total/2)
	again := claimAll(t, check)
	for j := range total {
		x := exec(j)
		cl, ok := again[x]
		switch {
		case j%2 == 0 && ok:
			t.Errorf("%s: claimed while its extended lease holds", x)
		case j%2 == 1 && !ok:
			t.Errorf("%s: released but not claimable", x)
		case ok && (cl.Reason != contracts.ReasonSignal || len(cl.Signals) != 1 || cl.Signals[0].SignalID != signals[x] || cl.LeaseID == claims[x].LeaseID):
			t.Errorf("%s: re-claimed as %+v, want reason signal, its one signal and a new lease", x, cl)
		}
	}
}
