package sqlite

import (
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

func TestSuspendOutcome(t *testing.T) {
	f := seeded(t)
	a := withTimeout(suspendArgs("e1", "a", "b"), 5*time.Second)
	a.Condition = contracts.ConditionAll

	got := f.suspend(a)

	if got.Outcome != "suspended" || got.ExecutionID != "e1" || got.Condition != "all" ||
		got.SuspendedAtMs != startMs || *got.TimeoutAtMs != startMs+5000 {
		t.Fatalf("suspend = %s", jsonOf(t, got))
	}
	if contracts.ValidateUUID("suspension_id", got.SuspensionID) != nil {
		t.Fatalf("suspension_id %q is not a UUID", got.SuspensionID)
	}
	for i, w := range got.Waitpoints {
		if w.WaitpointKey != a.Waitpoints[i].Key || w.CreatedAtMs != startMs {
			t.Fatalf("waitpoint %d = %+v", i, w)
		}
		want := contracts.SignToken("k1", secret('a'), contracts.WaitpointMessage("e1", w.WaitpointID, w.WaitpointKey, startMs))
		if w.Token != want {
			t.Fatalf("waitpoint %d token is not the contract token", i)
		}
	}
	if got.Waitpoints[0].WaitpointID == got.Waitpoints[1].WaitpointID {
		t.Fatal("two waitpoints share an id")
	}
}

func TestSuspendSignsWithTheCurrentKid(t *testing.T) {
	f := seeded(t)
	rotate(f, "k2", time.Hour)
	w := f.suspend(suspendArgs("e1", "a")).Waitpoints[0]
	if w.Token != contracts.SignToken("k2", secret('b'), contracts.WaitpointMessage("e1", w.WaitpointID, "a", startMs)) {
		t.Fatal("token not signed by the current kid k2")
	}
}

func TestSuspendChecks(t *testing.T) {
	tests := []struct {
		name string
		// given prepares execution e1 and returns the lease to present (or "" for none).
		given func(f *fixture) string
		want  *contracts.Error // nil: suspended
	}{
		{"NewExecution", func(*fixture) string { return "" }, nil},
		{"NewExecutionWithLease", func(*fixture) string { return contracts.NewID() }, contracts.ErrLeaseMismatch},
		{"Suspended", func(f *fixture) string { f.suspend(suspendArgs("e1", "a")); return "" }, contracts.ErrAlreadySuspended},
		{"SuspendedWithLease", func(f *fixture) string { f.suspend(suspendArgs("e1", "a")); return contracts.NewID() }, contracts.ErrAlreadySuspended},
		{"ResumedNotClaimed", func(f *fixture) string {
			f.deliver(f.suspend(suspendArgs("e1", "a")), 0, "")
			return ""
		}, contracts.ErrAlreadySuspended},
		{"ClaimedWithoutLease", func(f *fixture) string { f.claimedExecution("e1", time.Minute); return "" }, contracts.ErrLeaseMismatch},
		{"ClaimedWithOtherLease", func(f *fixture) string { f.claimedExecution("e1", time.Minute); return contracts.NewID() }, contracts.ErrLeaseMismatch},
		{"ClaimedWithItsLease", func(f *fixture) string { return f.claimedExecution("e1", time.Minute).LeaseID }, nil},
		{"LeaseExpiredNobodyReclaimed", func(f *fixture) string {
			c := f.claimedExecution("e1", time.Second)
			f.clock.advance(time.Hour)
			return c.LeaseID
		}, nil},
		{"LeaseExpiredAndReclaimed", func(f *fixture) string {
			c := f.claimedExecution("e1", time.Second)
			f.clock.advance(2 * time.Second)
			if again := f.claim(time.Minute); again.LeaseID == c.LeaseID {
				t.Fatal("re-claim kept the lease id")
			}
			return c.LeaseID
		}, contracts.ErrLeaseMismatch},
		{"CompletedByAnother", func(f *fixture) string {
			c := f.claimedExecution("e1", time.Minute)
			f.must(f.eng.CompleteExecution(f.ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID}))
			return c.LeaseID
		}, contracts.ErrLeaseMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := seeded(t)
			a := suspendArgs("e1", "x")
			if lease := tt.given(f); lease != "" {
				a = withLease(a, lease)
			}
			_, err := f.eng.Suspend(f.ctx, a)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("suspend: %v", err)
				}
				return
			}
			wantErr(t, err, tt.want)
		})
	}
}

func TestSuspendAfterClaimDropsLease(t *testing.T) {
	f := seeded(t)
	c := f.claimedExecution("e1", time.Minute)
	s := f.suspend(withLease(suspendArgs("e1", "b"), c.LeaseID))
	_, err := f.eng.CompleteExecution(f.ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID})
	wantErr(t, err, contracts.ErrLeaseMismatch)
	if got := f.list(10, ""); len(got.Executions) != 1 || got.Executions[0].SuspensionID != s.SuspensionID {
		t.Fatalf("list after re-suspend = %s", jsonOf(t, got))
	}
}

func TestSuspendWithoutKeystore(t *testing.T) {
	f := newFixture(t)
	_, err := f.eng.Suspend(f.ctx, suspendArgs("e1", "a"))
	wantErr(t, err, contracts.ErrHMACSecretNotInitialized)
	_, err = f.eng.ObserveSignals(f.ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1"})
	wantErr(t, err, contracts.ErrExecutionNotFound) // nothing was written
}

func TestSuspendIdempotency(t *testing.T) {
	t.Run("ReplayIsByteForByte", func(t *testing.T) {
		// Given a suspension recorded under key "i1".
		f := seeded(t)
		a := withIdem(withTimeout(suspendArgs("e1", "a", "b"), time.Minute), "i1")
		first := f.suspend(a)
		want := jsonOf(t, first)
		first.Waitpoints[0].Token = "changed by the caller"
		*first.TimeoutAtMs = 0

		// When the same call is replayed later, in each state the execution passes.
		steps := []struct {
			name string
			then func(*fixture)
		}{
			{"Suspended", func(*fixture) {}},
			{"Resumed", func(f *fixture) { f.deliver(f.suspend(a), 0, "") }},
			{"Claimed", func(f *fixture) { f.claim(time.Minute) }},
			{"ClaimedAfterRotation", func(f *fixture) { rotate(f, "k2", time.Hour) }},
		}
		for _, s := range steps {
			f.clock.advance(time.Second)
			s.then(f)
			got := f.suspend(a)
			// Then it answers the first outcome, byte for byte.
			if g := jsonOf(t, got); g != want {
				t.Fatalf("%s: replay = %s\nwant       %s", s.name, g, want)
			}
			got.Waitpoints[1].Token = "changed again"
		}
	})
	t.Run("ReplayWritesNothing", func(t *testing.T) {
		f := seeded(t)
		a := withIdem(suspendArgs("e1", "a"), "i1")
		f.suspend(a)
		f.clock.advance(time.Second)
		f.suspend(a)
		if got := f.list(10, ""); len(got.Executions) != 1 || got.Executions[0].SuspendedAtMs != startMs {
			t.Fatalf("list = %s", jsonOf(t, got))
		}
	})
	t.Run("OtherArgumentsMismatch", func(t *testing.T) {
		f := seeded(t)
		a := withIdem(suspendArgs("e1", "a"), "i1")
		f.suspend(a)
		others := map[string]contracts.SuspendArgs{
			"Keys":      withIdem(suspendArgs("e1", "b"), "i1"),
			"Condition": func() contracts.SuspendArgs { b := a; b.Condition = contracts.ConditionAll; return b }(),
			"Timeout":   withTimeout(a, time.Second),
			"Lease":     withLease(a, contracts.NewID()),
		}
		for name, o := range others {
			t.Run(name, func(t *testing.T) {
				_, err := f.eng.Suspend(f.ctx, o)
				wantErr(t, err, contracts.ErrIdempotencyMismatch)
			})
		}
	})
	t.Run("OtherKeyIsAlreadySuspended", func(t *testing.T) {
		f := seeded(t)
		f.suspend(withIdem(suspendArgs("e1", "a"), "i1"))
		_, err := f.eng.Suspend(f.ctx, withIdem(suspendArgs("e1", "a"), "i2"))
		wantErr(t, err, contracts.ErrAlreadySuspended)
	})
	t.Run("KeysAreScopedByExecution", func(t *testing.T) {
		f := seeded(t)
		s1 := f.suspend(withIdem(suspendArgs("e1", "a"), "i1"))
		s2 := f.suspend(withIdem(suspendArgs("e2", "a"), "i1"))
		if s1.SuspensionID == s2.SuspensionID {
			t.Fatal("the key of e1 answered for e2")
		}
	})
	t.Run("ForgottenAfterComplete", func(t *testing.T) {
		f := seeded(t)
		a := withIdem(suspendArgs("e1", "a"), "i1")
		first := f.suspend(a)
		f.deliver(first, 0, "")
		c := f.claim(time.Minute)
		f.must(f.eng.CompleteExecution(f.ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID}))
		if again := f.suspend(a); again.SuspensionID == first.SuspensionID {
			t.Fatal("a completed execution's idempotency record answered")
		}
	})
}
