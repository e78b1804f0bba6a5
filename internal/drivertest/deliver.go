package drivertest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

func testDeliverAnyResumesOnFirstSignal(t *testing.T, h Harness) {
	f := h.Seeded(t)
	s := f.Suspend(SuspendArgs("e1", "a", "b"))

	got := f.Deliver(s, 1, "")

	if got.Outcome != "accepted" || !got.Resumed || contracts.ValidateUUID("signal_id", got.SignalID) != nil {
		t.Fatalf("deliver = %s", JSONOf(t, got))
	}
	WantErr(t, f.DeliverErr(s, 0, ""), contracts.ErrWaitpointClosed) // every waitpoint closed
	if l := f.List(10, ""); len(l.Executions) != 0 {
		t.Fatalf("resumed execution still listed: %s", JSONOf(t, l))
	}
}

func testDeliverAllCountsWaitpointsNotSignals(t *testing.T, h Harness) {
	// Given an "all" suspension on three waitpoints.
	f := h.Seeded(t)
	a := SuspendArgs("e1", "a", "b", "c")
	a.Condition = contracts.ConditionAll
	s := f.Suspend(a)

	steps := []struct {
		waitpoint   int
		wantResumed bool
	}{
		{0, false}, {0, false}, {0, false}, // many signals on one waitpoint are not enough
		{2, false},
		{1, true}, // now every waitpoint holds one
	}
	for i, st := range steps {
		if got := f.Deliver(s, st.waitpoint, ""); got.Resumed != st.wantResumed {
			t.Fatalf("step %d (waitpoint %d): resumed = %v, want %v", i, st.waitpoint, got.Resumed, st.wantResumed)
		}
	}
	WantErr(t, f.DeliverErr(s, 0, ""), contracts.ErrWaitpointClosed)
	if c := f.Claim(time.Minute); c.Reason != "signal" || len(c.Signals) != 5 {
		t.Fatalf("claim = %s", JSONOf(t, c))
	}
}

func testDeliverTokenChecks(t *testing.T, h Harness) {
	// Given e1 and e2 suspended under k1, then k1 rotated out with 1s grace.
	f := h.Seeded(t)
	s1 := f.Suspend(SuspendArgs("e1", "a"))
	s2 := f.Suspend(SuspendArgs("e2", "a"))
	f.Rotate("k2", time.Second)
	w1 := s1.Waitpoints[0]

	tests := []struct {
		name   string
		mutate func(*contracts.DeliverSignalArgs)
		want   *contracts.Error
	}{
		{"UnknownKidBeforeWaitpointLookup", func(a *contracts.DeliverSignalArgs) {
			a.WaitpointID = driver.NewID()
			a.Token = driver.SignToken("k9", Secret('z'), []byte("x"))
		}, contracts.ErrUnknownKid},
		{"MissingWaitpoint", func(a *contracts.DeliverSignalArgs) { a.WaitpointID = driver.NewID() }, contracts.ErrSignatureMismatch},
		{"MissingWaitpointWithTokenOverEmptyMessage", func(a *contracts.DeliverSignalArgs) {
			a.WaitpointID = driver.NewID()
			a.Token = driver.SignToken("k2", Secret('b'), nil)
		}, contracts.ErrSignatureMismatch},
		{"OtherExecutionsWaitpointWithItsToken", func(a *contracts.DeliverSignalArgs) {
			a.WaitpointID, a.Token = s2.Waitpoints[0].WaitpointID, s2.Waitpoints[0].Token
		}, contracts.ErrSignatureMismatch},
		{"TokenOfAnotherWaitpoint", func(a *contracts.DeliverSignalArgs) { a.Token = s2.Waitpoints[0].Token }, contracts.ErrSignatureMismatch},
		{"WrongSecret", func(a *contracts.DeliverSignalArgs) {
			a.Token = driver.SignToken("k1", Secret('q'), driver.WaitpointMessage("e1", w1.WaitpointID, "a", startMs))
		}, contracts.ErrSignatureMismatch},
		{"ReplayedUnderAnotherKid", func(a *contracts.DeliverSignalArgs) { a.Token = "k2" + w1.Token[2:] }, contracts.ErrSignatureMismatch},
	}
	var details []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := DeliverArgs(s1, 0, "")
			tt.mutate(&a)
			_, err := f.Eng.DeliverSignal(f.Ctx, a)
			WantErr(t, err, tt.want)
			if tt.want == contracts.ErrSignatureMismatch {
				var ce *contracts.Error
				errors.As(err, &ce)
				details = append(details, ce.Detail)
			}
		})
	}
	t.Run("MismatchesAreIndistinguishable", func(t *testing.T) {
		for _, d := range details {
			if d != details[0] {
				t.Fatalf("signature_mismatch details differ: %q", details)
			}
		}
	})
	t.Run("VerifyingKidInGraceIsAccepted", func(t *testing.T) {
		f.Clock.Advance(time.Second) // k1 expires exactly now
		if got := f.Deliver(s2, 0, ""); got.Outcome != "accepted" {
			t.Fatalf("deliver = %s", JSONOf(t, got))
		}
	})
	t.Run("VerifyingKidPastGraceIsExpired", func(t *testing.T) {
		f.Clock.Advance(time.Millisecond)
		WantErr(t, f.DeliverErr(s1, 0, ""), contracts.ErrTokenExpired)
	})
}

func testDeliverIdempotency(t *testing.T, h Harness) {
	t.Run("SameKeyIsDuplicateWithSameSignalID", func(t *testing.T) {
		f := h.Seeded(t)
		a := SuspendArgs("e1", "a", "b")
		a.Condition = contracts.ConditionAll
		s := f.Suspend(a)
		first := f.Deliver(s, 0, "d1")
		again := f.Deliver(s, 0, "d1")
		if s := JSONOf(t, again); s != `{"outcome":"duplicate","signal_id":"`+first.SignalID+`"}` {
			t.Fatalf("replay = %s", s)
		}
		if n := len(f.Observe("e1").Signals); n != 1 {
			t.Fatalf("%d signals recorded, want 1", n)
		}
	})
	t.Run("KeysAreScopedByWaitpoint", func(t *testing.T) {
		f := h.Seeded(t)
		a := SuspendArgs("e1", "a", "b")
		a.Condition = contracts.ConditionAll
		s := f.Suspend(a)
		f.Deliver(s, 0, "d1")
		if got := f.Deliver(s, 1, "d1"); got.Outcome != "accepted" || !got.Resumed {
			t.Fatalf("deliver on the other waitpoint = %s", JSONOf(t, got))
		}
	})
	t.Run("EmptyKeyNeverDuplicates", func(t *testing.T) {
		f := h.Seeded(t)
		a := SuspendArgs("e1", "a", "b")
		a.Condition = contracts.ConditionAll
		s := f.Suspend(a)
		if x, y := f.Deliver(s, 0, ""), f.Deliver(s, 0, ""); x.SignalID == y.SignalID || y.Outcome != "accepted" {
			t.Fatalf("two deliveries without a key: %s %s", JSONOf(t, x), JSONOf(t, y))
		}
	})
	t.Run("DuplicateAfterClose", func(t *testing.T) {
		f := h.Seeded(t)
		s := f.Suspend(SuspendArgs("e1", "a"))
		first := f.Deliver(s, 0, "d1")
		c := f.Claim(time.Minute)
		if got := f.Deliver(s, 0, "d1"); got.Outcome != "duplicate" || got.SignalID != first.SignalID {
			t.Fatalf("replay after claim = %s", JSONOf(t, got))
		}
		WantErr(t, f.DeliverErr(s, 0, "d2"), contracts.ErrWaitpointClosed)

		// And after the execution suspended again, on the earlier suspension's waitpoint:
		// token passes, then the duplicate check, then waitpoint_closed.
		f.Suspend(WithLease(SuspendArgs("e1", "a"), c.LeaseID))
		if got := f.Deliver(s, 0, "d1"); got.Outcome != "duplicate" || got.SignalID != first.SignalID {
			t.Fatalf("replay on an earlier suspension = %s", JSONOf(t, got))
		}
		WantErr(t, f.DeliverErr(s, 0, "d3"), contracts.ErrWaitpointClosed)
	})
	t.Run("DuplicateBeforeTimeout", func(t *testing.T) {
		f := h.Seeded(t)
		a := WithTimeout(SuspendArgs("e1", "a", "b"), time.Second)
		a.Condition = contracts.ConditionAll
		s := f.Suspend(a)
		first := f.Deliver(s, 0, "d1")
		f.Clock.Advance(2 * time.Second)
		if got := f.Deliver(s, 0, "d1"); got.SignalID != first.SignalID {
			t.Fatalf("replay after timeout = %s", JSONOf(t, got))
		}
		WantErr(t, f.DeliverErr(s, 0, "d2"), contracts.ErrSuspensionTimedOut)
	})
}

func testDeliverTimeoutBoundary(t *testing.T, h Harness) {
	f := h.Seeded(t)
	a := WithTimeout(SuspendArgs("e1", "a", "b"), time.Second)
	a.Condition = contracts.ConditionAll
	s := f.Suspend(a)

	f.Clock.Advance(time.Second) // timeout_at_ms == now: not yet timed out
	if got := f.Deliver(s, 0, ""); got.Outcome != "accepted" {
		t.Fatalf("deliver at timeout_at_ms = %s", JSONOf(t, got))
	}
	f.Clock.Advance(time.Millisecond)
	WantErr(t, f.DeliverErr(s, 1, ""), contracts.ErrSuspensionTimedOut)

	// A timeout claim closes the waitpoints: closed is reported before timed out.
	if c := f.Claim(time.Minute); c.Reason != "timeout" || len(c.Signals) != 1 {
		t.Fatalf("claim = %s", JSONOf(t, c))
	}
	WantErr(t, f.DeliverErr(s, 1, ""), contracts.ErrWaitpointClosed)
}

func testDeliverSignalLimit(t *testing.T, h Harness) {
	h.skipIfSlow(t, "10,000 deliveries")
	// Given an "all" suspension holding 10,000 signals on one of its two waitpoints.
	f := h.Seeded(t)
	a := SuspendArgs("e1", "a", "b")
	a.Condition = contracts.ConditionAll
	s := f.Suspend(a)
	for i := range contracts.SignalLimit {
		idem := ""
		if i == 0 {
			idem = "first"
		}
		if got := f.Deliver(s, 0, idem); got.Resumed {
			t.Fatalf("signal %d resumed an all-suspension", i)
		}
	}
	// Then the next signal, on either waitpoint, is refused and nothing is recorded.
	WantErr(t, f.DeliverErr(s, 0, ""), contracts.ErrSignalLimitExceeded)
	WantErr(t, f.DeliverErr(s, 1, "new"), contracts.ErrSignalLimitExceeded)
	// But a replay is still a duplicate.
	if got := f.Deliver(s, 0, "first"); got.Outcome != "duplicate" {
		t.Fatalf("replay at the limit = %s", JSONOf(t, got))
	}
	if n := len(f.Observe("e1").Signals); n != contracts.SignalLimit {
		t.Fatalf("%d signals recorded, want %d", n, contracts.SignalLimit)
	}
}

func testDeliverConcurrentSameKey(t *testing.T, h Harness) {
	f := h.Seeded(t)
	a := SuspendArgs("e1", "a", "b")
	a.Condition = contracts.ConditionAll
	s := f.Suspend(a)
	const n = 64
	outs := make([]contracts.DeliverSignalOutcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			if outs[i], err = f.Eng.DeliverSignal(f.Ctx, DeliverArgs(s, 0, "same")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	accepted := 0
	for _, o := range outs {
		if o.Outcome == "accepted" {
			accepted++
		}
		if o.SignalID != outs[0].SignalID {
			t.Fatalf("signal ids differ: %s vs %s", o.SignalID, outs[0].SignalID)
		}
	}
	if accepted != 1 {
		t.Fatalf("%d deliveries accepted, want exactly 1", accepted)
	}
}
