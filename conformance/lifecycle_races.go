package conformance

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Sizes of the version 2 races.
const (
	quorumRacers   = 8  // deliveries per waitpoint in the quorum race
	raceExecutions = 24 // executions each per-execution race runs on
)

// raceQuorum: a count 2 of 3 suspension receives 8 deliveries on each
// waitpoint at once: exactly one delivery resumes it, every other one is
// accepted without resuming or refused as waitpoint_closed, and the claim
// holds exactly the accepted signals: none is lost.
func raceQuorum(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("quorum-race", contracts.CountCondition(2), "a", "b", "c"))
	hs := w.handles()
	keys := []string{"a", "b", "c"}
	n := quorumRacers * len(keys)
	outs := make([]contracts.DeliverSignalOutcome, n)
	errs := make([]error, n)
	raceEach(n, func(i int) {
		outs[i], errs[i] = retryContention(w, func() (contracts.DeliverSignalOutcome, error) {
			return hs[i%len(hs)].DeliverSignal(ctx(), signalTo(s, keys[i%len(keys)], "vote", fmt.Sprintf("v%d", i)))
		})
	})
	accepted, resumed := map[string]bool{}, 0
	for i, out := range outs {
		if errs[i] != nil {
			sigWantErr(t, "delivery", errs[i], contracts.ErrWaitpointClosed)
			continue
		}
		require.Equal(t, contracts.OutcomeAccepted, out.Outcome, "delivery %d", i)
		accepted[out.SignalID] = true
		if out.Resumed {
			resumed++
		}
	}
	require.Equal(t, 1, resumed, "exactly one delivery resumes the suspension")
	var c contracts.ClaimOutcome
	w.aside(func() { c = w.mustClaim("claim", "worker-1", 60_000) }) // how many were accepted varies
	got := map[string]bool{}
	for _, sig := range c.Signals {
		got[sig.SignalID] = true
	}
	require.Equal(t, accepted, got, "the claim holds exactly the accepted signals")
	w.note("resumes", resumed)
	w.golden("lifecycle_race_quorum")
}

// raceCancelDeliver: on each of 24 executions a cancel and a resuming
// delivery race: exactly one wins. Either the signal resumed it and cancel
// answered not_suspended, or it was cancelled and the delivery answered
// waitpoint_closed; the claim's reason and signals agree with the winner.
func raceCancelDeliver(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	hs := w.handles()
	ss := make([]contracts.SuspendOutcome, raceExecutions)
	w.aside(func() {
		for i := range ss {
			ss[i] = w.mustSuspend("suspend", suspendArgs(fmt.Sprintf("cd-%d", i), contracts.ConditionAny, "a"))
		}
	})
	delivered := make([]error, raceExecutions)
	cancelled := make([]error, raceExecutions)
	raceEach(2*raceExecutions, func(i int) {
		x, e := i/2, hs[i%len(hs)]
		if i%2 == 0 {
			_, delivered[x] = retryContention(w, func() (contracts.DeliverSignalOutcome, error) {
				return e.DeliverSignal(ctx(), signalTo(ss[x], "a", "go", ""))
			})
			return
		}
		_, cancelled[x] = retryContention(w, func() (contracts.CancelOutcome, error) {
			return e.CancelSuspension(ctx(), contracts.CancelArgs{ExecutionID: ss[x].ExecutionID})
		})
	})
	wins := map[string]string{}
	for x := range ss {
		switch {
		case delivered[x] == nil:
			sigWantErr(t, "cancel after the resuming delivery", cancelled[x], contracts.ErrNotSuspended)
			wins[ss[x].ExecutionID] = contracts.ReasonSignal
		default:
			sigWantErr(t, "delivery after cancel", delivered[x], contracts.ErrWaitpointClosed)
			require.NoError(t, cancelled[x], "cancel: the delivery lost, so cancel won")
			wins[ss[x].ExecutionID] = contracts.ReasonCancelled
		}
	}
	w.aside(func() {
		for range ss {
			c := w.mustClaim("claim", "worker-1", 60_000)
			require.Equal(t, wins[c.ExecutionID], c.Reason, "%s: claim reason", c.ExecutionID)
			want := 0
			if c.Reason == contracts.ReasonSignal {
				want = 1
			}
			require.Len(t, c.Signals, want, "%s: claim signals", c.ExecutionID)
		}
	})
	w.note("executions", len(wins))
	w.golden("lifecycle_race_cancel_deliver")
}

// raceExtendReclaim: 24 executions whose leases expired; worker-1 extends
// each while worker-2 claims as many times: for each execution exactly one
// of them wins, the extend or the re-claim.
func raceExtendReclaim(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	leases := expiredLeases(t, w, "er")
	extended, reclaimed := raceAgainstReclaim(t, w, leases, func(e *engine.Engine, l contracts.ClaimOutcome) error {
		_, err := e.ExtendLease(ctx(), contracts.ExtendLeaseArgs{ExecutionID: l.ExecutionID, LeaseID: l.LeaseID, LeaseMs: 60_000})
		return err
	})
	for x, l := range leases {
		if reclaimed[l.ExecutionID] {
			sigWantErr(t, l.ExecutionID+": extend after the re-claim", extended[x], contracts.ErrLeaseMismatch)
		} else {
			require.NoError(t, extended[x], "%s: not re-claimed, so the extend won", l.ExecutionID)
		}
	}
	w.note("executions", len(leases))
	w.golden("lifecycle_race_extend_reclaim")
}

// raceReleaseReclaim: 24 executions whose leases expired; worker-1 releases
// each while worker-2 claims as many times: every execution is claimed by
// worker-2 exactly once whichever comes first, and worker-1's lease holds
// nothing afterwards.
func raceReleaseReclaim(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	leases := expiredLeases(t, w, "rr")
	released, reclaimed := raceAgainstReclaim(t, w, leases, func(e *engine.Engine, l contracts.ClaimOutcome) error {
		_, err := e.ReleaseExecution(ctx(), contracts.ReleaseArgs{ExecutionID: l.ExecutionID, LeaseID: l.LeaseID})
		return err
	})
	require.Len(t, reclaimed, len(leases), "every lease had expired: each execution is re-claimed")
	for x, l := range leases {
		if released[x] != nil {
			sigWantErr(t, l.ExecutionID+": release after the re-claim", released[x], contracts.ErrLeaseMismatch)
		}
		_, err := w.e.CompleteExecution(ctx(), contracts.CompleteArgs{ExecutionID: l.ExecutionID, LeaseID: l.LeaseID})
		sigWantErr(t, l.ExecutionID+": complete with worker-1's lease", err, contracts.ErrLeaseMismatch)
	}
	w.note("reclaimed", len(reclaimed))
	w.golden("lifecycle_race_release_reclaim")
}

// raceAgainstReclaim races op by worker-1 on each expired lease against as
// many claims by worker-2, across handles, and returns op's errors (in
// lease order) and the executions worker-2 claimed, each at most once.
func raceAgainstReclaim(t *testing.T, w *sigWorld, leases []contracts.ClaimOutcome, op func(*engine.Engine, contracts.ClaimOutcome) error) ([]error, map[string]bool) {
	t.Helper()
	hs := w.handles()
	opErrs := make([]error, len(leases))
	claimed := make([]contracts.ClaimOutcome, len(leases))
	claimErrs := make([]error, len(leases))
	raceEach(2*len(leases), func(i int) {
		x, e := i/2, hs[i%len(hs)]
		if i%2 == 0 {
			_, opErrs[x] = retryContention(w, func() (struct{}, error) { return struct{}{}, op(e, leases[x]) })
			return
		}
		claimed[x], claimErrs[x] = retryContention(w, func() (contracts.ClaimOutcome, error) {
			return e.ClaimResumedExecution(ctx(), contracts.ClaimArgs{WorkerID: "worker-2", LeaseMs: 60_000})
		})
	})
	reclaimed := map[string]bool{}
	for x := range claimed {
		require.NoError(t, claimErrs[x], "claim %d", x)
		if claimed[x].Outcome == contracts.OutcomeClaimed {
			require.False(t, reclaimed[claimed[x].ExecutionID], "%s claimed twice", claimed[x].ExecutionID)
			reclaimed[claimed[x].ExecutionID] = true
		}
	}
	return opErrs, reclaimed
}

// racePendingSuspendDeliver: on each of 24 executions a delivery to a
// pending waitpoint races the suspend that uses it: the signal is never
// lost. Either it came first and the suspend answered already_satisfied
// with it, or the suspend came first and the delivery resumed it.
func racePendingSuspendDeliver(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	hs := w.handles()
	ps := make([]contracts.CreateWaitpointOutcome, raceExecutions)
	w.aside(func() {
		for i := range ps {
			ps[i] = w.mustCreate("create", pendingArgs(fmt.Sprintf("ps-%d", i), "a", hour))
		}
	})
	delivered := make([]contracts.DeliverSignalOutcome, raceExecutions)
	deliverErrs := make([]error, raceExecutions)
	suspended := make([]contracts.SuspendOutcome, raceExecutions)
	suspendErrs := make([]error, raceExecutions)
	raceEach(2*raceExecutions, func(i int) {
		x, e := i/2, hs[i%len(hs)]
		if i%2 == 0 {
			delivered[x], deliverErrs[x] = retryContention(w, func() (contracts.DeliverSignalOutcome, error) {
				return e.DeliverSignal(ctx(), signalPending(ps[x], "go", ""))
			})
			return
		}
		suspended[x], suspendErrs[x] = retryContention(w, func() (contracts.SuspendOutcome, error) {
			return e.Suspend(ctx(), usingPending(ps[x].ExecutionID, contracts.ConditionAny, ps[x]))
		})
	})
	for x := range ps {
		require.NoError(t, deliverErrs[x], "%s: deliver", ps[x].ExecutionID)
		require.NoError(t, suspendErrs[x], "%s: suspend", ps[x].ExecutionID)
		switch suspended[x].Outcome {
		case contracts.OutcomeAlreadySatisfied:
			require.False(t, delivered[x].Resumed, "%s: the delivery came first", ps[x].ExecutionID)
			require.Len(t, suspended[x].Signals, 1, "%s: already_satisfied with the signal", ps[x].ExecutionID)
			require.Equal(t, delivered[x].SignalID, suspended[x].Signals[0].SignalID, "%s: already_satisfied with the signal", ps[x].ExecutionID)
		default:
			require.Equal(t, contracts.OutcomeSuspended, suspended[x].Outcome, "%s: suspend", ps[x].ExecutionID)
			require.True(t, delivered[x].Resumed, "%s: the suspend came first, so the delivery resumed it", ps[x].ExecutionID)
		}
	}
	w.note("executions", len(ps))
	w.golden("lifecycle_race_pending_suspend_deliver")
}

// expiredLeases suspends, resumes and claims 24 executions, then lets their
// leases expire, and returns their claims (one per execution, in execution
// order). The claims take a long lease, which extend_lease then shortens
// to 1 ms, so that however slowly 24 claims run no lease expires before
// every execution is claimed once.
func expiredLeases(t *testing.T, w *sigWorld, prefix string) []contracts.ClaimOutcome {
	t.Helper()
	byID := map[string]contracts.ClaimOutcome{}
	w.aside(func() {
		for i := range raceExecutions {
			s := w.mustSuspend("suspend", suspendArgs(fmt.Sprintf("%s-%02d", prefix, i), contracts.ConditionAny, "a"))
			w.mustDeliver("deliver", signalTo(s, "a", "go", ""))
		}
		for range raceExecutions {
			c := w.mustClaim("claim", "worker-1", 600_000)
			byID[c.ExecutionID] = c
		}
		for _, c := range byID {
			_, err := w.extend("shorten", c.ExecutionID, c.LeaseID, 1)
			require.NoError(t, err, "given: %s's lease shortened to 1 ms", c.ExecutionID)
		}
	})
	require.Len(t, byID, raceExecutions, "given: every execution claimed once")
	w.pass(timeoutWait(w, 1))
	out := make([]contracts.ClaimOutcome, 0, raceExecutions)
	for i := range raceExecutions {
		out = append(out, byID[fmt.Sprintf("%s-%02d", prefix, i)])
	}
	return out
}

// raceEach runs f(0..n-1) at once (raceAll) for calls that keep their own
// results.
func raceEach(n int, f func(i int)) {
	raceAll(n, func(i int) (struct{}, error) {
		f(i)
		return struct{}{}, nil
	})
}
