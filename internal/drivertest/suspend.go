package drivertest

import (
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

func testSuspendOutcome(t *testing.T, h Harness) {
	f := h.Seeded(t)
	a := WithTimeout(SuspendArgs("e1", "a", "b"), 5*time.Second)
	a.Condition = contracts.ConditionAll

	got := f.Suspend(a)

	if got.Outcome != "suspended" || got.ExecutionID != "e1" || got.Condition != "all" ||
		got.SuspendedAtMs != startMs || *got.TimeoutAtMs != startMs+5000 {
		t.Fatalf("suspend = %s", JSONOf(t, got))
	}
	if contracts.ValidateUUID("suspension_id", got.SuspensionID) != nil {
		t.Fatalf("suspension_id %q is not a UUID", got.SuspensionID)
	}
	for i, w := range got.Waitpoints {
		if w.WaitpointKey != a.Waitpoints[i].Key || w.CreatedAtMs != startMs {
			t.Fatalf("waitpoint %d = %+v", i, w)
		}
		want := driver.SignToken("k1", Secret('a'), driver.WaitpointMessage("e1", w.WaitpointID, w.WaitpointKey, startMs))
		if w.Token != want {
			t.Fatalf("waitpoint %d token is not the contract token", i)
		}
	}
	if got.Waitpoints[0].WaitpointID == got.Waitpoints[1].WaitpointID {
		t.Fatal("two waitpoints share an id")
	}
}

func testSuspendSignsWithTheCurrentKid(t *testing.T, h Harness) {
	f := h.Seeded(t)
	f.Rotate("k2", time.Hour)
	w := f.Suspend(SuspendArgs("e1", "a")).Waitpoints[0]
	if w.Token != driver.SignToken("k2", Secret('b'), driver.WaitpointMessage("e1", w.WaitpointID, "a", startMs)) {
		t.Fatal("token not signed by the current kid k2")
	}
}

func testSuspendChecks(t *testing.T, h Harness) {
	tests := []struct {
		name string
		// given prepares execution e1 and returns the lease to present (or "" for none).
		given func(f *Fixture) string
		want  *contracts.Error // nil: suspended
	}{
		{"NewExecution", func(*Fixture) string { return "" }, nil},
		{"NewExecutionWithLease", func(*Fixture) string { return driver.NewID() }, contracts.ErrLeaseMismatch},
		{"Suspended", func(f *Fixture) string { f.Suspend(SuspendArgs("e1", "a")); return "" }, contracts.ErrAlreadySuspended},
		{"SuspendedWithLease", func(f *Fixture) string { f.Suspend(SuspendArgs("e1", "a")); return driver.NewID() }, contracts.ErrAlreadySuspended},
		{"ResumedNotClaimed", func(f *Fixture) string {
			f.Deliver(f.Suspend(SuspendArgs("e1", "a")), 0, "")
			return ""
		}, contracts.ErrAlreadySuspended},
		{"ClaimedWithoutLease", func(f *Fixture) string { f.ClaimedExecution("e1", time.Minute); return "" }, contracts.ErrLeaseMismatch},
		{"ClaimedWithOtherLease", func(f *Fixture) string { f.ClaimedExecution("e1", time.Minute); return driver.NewID() }, contracts.ErrLeaseMismatch},
		{"ClaimedWithItsLease", func(f *Fixture) string { return f.ClaimedExecution("e1", time.Minute).LeaseID }, nil},
		{"LeaseExpiredNobodyReclaimed", func(f *Fixture) string {
			c := f.ClaimedExecution("e1", time.Second)
			f.Clock.Advance(time.Hour)
			return c.LeaseID
		}, nil},
		{"LeaseExpiredAndReclaimed", func(f *Fixture) string {
			c := f.ClaimedExecution("e1", time.Second)
			f.Clock.Advance(2 * time.Second)
			if again := f.Claim(time.Minute); again.LeaseID == c.LeaseID {
				t.Fatal("re-claim kept the lease id")
			}
			return c.LeaseID
		}, contracts.ErrLeaseMismatch},
		{"CompletedByAnother", func(f *Fixture) string {
			c := f.ClaimedExecution("e1", time.Minute)
			f.Must(f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID}))
			return c.LeaseID
		}, contracts.ErrLeaseMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := h.Seeded(t)
			a := SuspendArgs("e1", "x")
			if lease := tt.given(f); lease != "" {
				a = WithLease(a, lease)
			}
			_, err := f.Eng.Suspend(f.Ctx, a)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("suspend: %v", err)
				}
				return
			}
			WantErr(t, err, tt.want)
		})
	}
}

func testSuspendAfterClaimDropsLease(t *testing.T, h Harness) {
	f := h.Seeded(t)
	c := f.ClaimedExecution("e1", time.Minute)
	s := f.Suspend(WithLease(SuspendArgs("e1", "b"), c.LeaseID))
	_, err := f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID})
	WantErr(t, err, contracts.ErrLeaseMismatch)
	if got := f.List(10, ""); len(got.Executions) != 1 || got.Executions[0].SuspensionID != s.SuspensionID {
		t.Fatalf("list after re-suspend = %s", JSONOf(t, got))
	}
}

func testSuspendWithoutKeystore(t *testing.T, h Harness) {
	f := h.NewFixture(t)
	_, err := f.Eng.Suspend(f.Ctx, SuspendArgs("e1", "a"))
	WantErr(t, err, contracts.ErrHMACSecretNotInitialized)
	_, err = f.Eng.ObserveSignals(f.Ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1"})
	WantErr(t, err, contracts.ErrExecutionNotFound) // nothing was written
}

func testSuspendIdempotency(t *testing.T, h Harness) {
	t.Run("ReplayIsByteForByte", func(t *testing.T) {
		// Given a suspension recorded under key "i1".
		f := h.Seeded(t)
		a := WithIdem(WithTimeout(SuspendArgs("e1", "a", "b"), time.Minute), "i1")
		first := f.Suspend(a)
		want := JSONOf(t, first)
		first.Waitpoints[0].Token = "changed by the caller"
		*first.TimeoutAtMs = 0

		// When the same call is replayed later, in each state the execution passes.
		steps := []struct {
			name string
			then func(*Fixture)
		}{
			{"Suspended", func(*Fixture) {}},
			{"Resumed", func(f *Fixture) { f.Deliver(f.Suspend(a), 0, "") }},
			{"Claimed", func(f *Fixture) { f.Claim(time.Minute) }},
			{"ClaimedAfterRotation", func(f *Fixture) { f.Rotate("k2", time.Hour) }},
		}
		for _, s := range steps {
			f.Clock.Advance(time.Second)
			s.then(f)
			got := f.Suspend(a)
			// Then it answers the first outcome, byte for byte.
			if g := JSONOf(t, got); g != want {
				t.Fatalf("%s: replay = %s\nwant       %s", s.name, g, want)
			}
			got.Waitpoints[1].Token = "changed again"
		}
	})
	t.Run("ReplayWritesNothing", func(t *testing.T) {
		f := h.Seeded(t)
		a := WithIdem(SuspendArgs("e1", "a"), "i1")
		f.Suspend(a)
		f.Clock.Advance(time.Second)
		f.Suspend(a)
		if got := f.List(10, ""); len(got.Executions) != 1 || got.Executions[0].SuspendedAtMs != startMs {
			t.Fatalf("list = %s", JSONOf(t, got))
		}
	})
	t.Run("OtherArgumentsMismatch", func(t *testing.T) {
		f := h.Seeded(t)
		a := WithIdem(SuspendArgs("e1", "a"), "i1")
		f.Suspend(a)
		others := map[string]contracts.SuspendArgs{
			"Keys":      WithIdem(SuspendArgs("e1", "b"), "i1"),
			"Condition": func() contracts.SuspendArgs { b := a; b.Condition = contracts.ConditionAll; return b }(),
			"Timeout":   WithTimeout(a, time.Second),
			"Lease":     WithLease(a, driver.NewID()),
		}
		for name, o := range others {
			t.Run(name, func(t *testing.T) {
				_, err := f.Eng.Suspend(f.Ctx, o)
				WantErr(t, err, contracts.ErrIdempotencyMismatch)
			})
		}
	})
	t.Run("OtherKeyIsAlreadySuspended", func(t *testing.T) {
		f := h.Seeded(t)
		f.Suspend(WithIdem(SuspendArgs("e1", "a"), "i1"))
		_, err := f.Eng.Suspend(f.Ctx, WithIdem(SuspendArgs("e1", "a"), "i2"))
		WantErr(t, err, contracts.ErrAlreadySuspended)
	})
	t.Run("KeysAreScopedByExecution", func(t *testing.T) {
		f := h.Seeded(t)
		s1 := f.Suspend(WithIdem(SuspendArgs("e1", "a"), "i1"))
		s2 := f.Suspend(WithIdem(SuspendArgs("e2", "a"), "i1"))
		if s1.SuspensionID == s2.SuspensionID {
			t.Fatal("the key of e1 answered for e2")
		}
	})
	t.Run("ForgottenAfterComplete", func(t *testing.T) {
		f := h.Seeded(t)
		a := WithIdem(SuspendArgs("e1", "a"), "i1")
		first := f.Suspend(a)
		f.Deliver(first, 0, "")
		c := f.Claim(time.Minute)
		f.Must(f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID}))
		if again := f.Suspend(a); again.SuspensionID == first.SuspensionID {
			t.Fatal("a completed execution's idempotency record answered")
		}
	})
}
