package drivertest

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

func testObserveSignals(t *testing.T, h Harness) {
	t.Run("UnknownExecution", func(t *testing.T) {
		f := h.Seeded(t)
		_, err := f.Eng.ObserveSignals(f.Ctx, contracts.ObserveSignalsArgs{ExecutionID: "nope"})
		WantErr(t, err, contracts.ErrExecutionNotFound)
	})
	t.Run("DeliveryOrderWithinOneMillisecond", func(t *testing.T) {
		f := h.Seeded(t)
		a := SuspendArgs("e1", "a", "b", "c")
		a.Condition = contracts.ConditionAll
		s := f.Suspend(a)
		var want []string
		for _, i := range []int{2, 0, 2, 1} {
			want = append(want, f.Deliver(s, i, "").SignalID)
		}
		var got []string
		for _, sig := range f.Observe("e1").Signals {
			got = append(got, sig.SignalID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("signal order = %v, want %v", got, want)
		}
	})
	t.Run("Envelope", func(t *testing.T) {
		f := h.Seeded(t)
		s := f.Suspend(SuspendArgs("e1", "a"))
		da := DeliverArgs(s, 0, "d1")
		da.Payload = payload(`{ "ok" : true }`)
		sig := Try(f.Eng.DeliverSignal(f.Ctx, da)).Must(t)
		want := `{"execution_id":"e1","suspension_id":"` + s.SuspensionID + `","signals":[{"signal_id":"` + sig.SignalID +
			`","waitpoint_id":"` + s.Waitpoints[0].WaitpointID + `","waitpoint_key":"a","name":"approve","payload":{"ok":true},` +
			`"idempotency_key":"d1","delivered_at_ms":1767225600000}]}`
		if got := JSONOf(t, f.Observe("e1")); got != want {
			t.Fatalf("observe = %s\nwant      %s", got, want)
		}
	})
	t.Run("NullPayloadAndKey", func(t *testing.T) {
		f := h.Seeded(t)
		f.Deliver(f.Suspend(SuspendArgs("e1", "a")), 0, "")
		sig := JSONOf(t, f.Observe("e1").Signals[0])
		if want := `"payload":null,"idempotency_key":null`; !strings.Contains(sig, want) {
			t.Fatalf("signal = %s, want %s", sig, want)
		}
	})
	t.Run("LatestSuspensionOnly", func(t *testing.T) {
		f := h.Seeded(t)
		c := f.ClaimedExecution("e1", time.Minute)
		s2 := f.Suspend(WithLease(SuspendArgs("e1", "b"), c.LeaseID))
		got := f.Observe("e1")
		if got.SuspensionID != s2.SuspensionID || len(got.Signals) != 0 || got.Signals == nil {
			t.Fatalf("observe after re-suspend = %s", JSONOf(t, got))
		}
	})
	t.Run("CallerCannotChangeStoredPayload", func(t *testing.T) {
		f := h.Seeded(t)
		da := DeliverArgs(f.Suspend(SuspendArgs("e1", "a")), 0, "")
		da.Payload = payload(`"abc"`)
		f.Must(f.B.DeliverSignal(f.Ctx, da)) // the driver directly: the Engine would copy
		da.Payload[1] = 'X'
		f.Observe("e1").Signals[0].Payload[1] = 'Y'
		if p := string(f.Observe("e1").Signals[0].Payload); p != `"abc"` {
			t.Fatalf("stored payload = %s", p)
		}
	})
}

func testListSuspended(t *testing.T, h Harness) {
	// Given five suspended executions over three milliseconds, inserted out of order,
	// and two that are not suspended.
	f := h.Seeded(t)
	at := func(ms int64, ids ...string) {
		f.Clock.Set(startMs + ms)
		for _, id := range ids {
			f.Suspend(WithTimeout(SuspendArgs(id, "a", "b"), time.Hour))
		}
	}
	at(2, "e5")
	at(1, "e3", "e1", "e4")
	at(0, "e2")
	f.Clock.Set(startMs + 3)
	f.Deliver(f.Suspend(SuspendArgs("r", "a")), 0, "")
	f.ClaimedExecution("c", time.Minute)
	want := []string{"e2", "e1", "e3", "e4", "e5"} // by (suspended_at_ms, execution_id)
	f.Clock.Advance(2 * time.Hour)                 // timed out but unclaimed: still listed

	tests := []struct {
		limit     int
		wantPages [][]string
	}{
		{2, [][]string{{"e2", "e1"}, {"e3", "e4"}, {"e5"}}},
		{5, [][]string{want}}, // exactly limit rows: no next cursor
		{4, [][]string{{"e2", "e1", "e3", "e4"}, {"e5"}}},
		{1000, [][]string{want}},
	}
	for _, tt := range tests {
		t.Run("Limit"+strconv.Itoa(tt.limit), func(t *testing.T) {
			cursor := ""
			for i, wantPage := range tt.wantPages {
				p := f.List(tt.limit, cursor)
				if got := ids(p); !slices.Equal(got, wantPage) {
					t.Fatalf("page %d = %v, want %v", i, got, wantPage)
				}
				last := i == len(tt.wantPages)-1
				if (p.NextCursor == nil) != last {
					t.Fatalf("page %d next_cursor = %v, want it set exactly when more follow", i, p.NextCursor)
				}
				if !last {
					cursor = *p.NextCursor
				}
			}
		})
	}
	t.Run("Row", func(t *testing.T) {
		got := JSONOf(t, f.List(1, "").Executions[0])
		want := `"suspended_at_ms":1767225600000,"timeout_at_ms":1767229200000,"waitpoints":2}`
		if !strings.Contains(got, `{"execution_id":"e2","suspension_id":"`) || !strings.Contains(got, want) {
			t.Fatalf("row = %s", got)
		}
	})
	t.Run("EmptyIsAnArray", func(t *testing.T) {
		if got := JSONOf(t, h.Seeded(t).List(10, "")); got != `{"executions":[],"next_cursor":null}` {
			t.Fatalf("empty list = %s", got)
		}
	})
	t.Run("CursorIsExclusiveAndStable", func(t *testing.T) {
		// The cursor after e1 still works when e1 leaves and an older execution arrives.
		p := f.List(2, "")
		f.Clock.Set(startMs) // a new execution sorting before the cursor
		f.Suspend(SuspendArgs("e0", "a"))
		if got := ids(f.List(10, *p.NextCursor)); !slices.Equal(got, []string{"e3", "e4", "e5"}) {
			t.Fatalf("after cursor = %v", got)
		}
	})
	t.Run("MalformedCursor", func(t *testing.T) {
		for _, c := range []string{"!!", "djE6", contracts.EncodeCursor(contracts.Cursor{ExecutionID: "bad id"})} {
			_, err := f.B.ListSuspended(f.Ctx, contracts.ListSuspendedArgs{Limit: 10, Cursor: c})
			WantErr(t, err, contracts.ErrInvalidInput)
		}
	})
}

func testClaim(t *testing.T, h Harness) {
	t.Run("NothingClaimable", func(t *testing.T) {
		f := h.Seeded(t)
		f.Suspend(WithTimeout(SuspendArgs("e1", "a"), time.Second))
		f.Clock.Advance(time.Second) // timeout_at_ms == now: not yet timed out
		if got := JSONOf(t, f.Claim(time.Minute)); got != `{"outcome":"none"}` {
			t.Fatalf("claim = %s", got)
		}
	})
	t.Run("OldestFirstWithReasons", func(t *testing.T) {
		// Given, by (suspended_at_ms, execution_id): b resumed, then c timing out,
		// then a resumed, then d suspended with no timeout.
		f := h.Seeded(t)
		sb := f.Suspend(SuspendArgs("b", "x"))
		f.Suspend(WithTimeout(SuspendArgs("c", "x"), time.Millisecond))
		f.Clock.Advance(time.Millisecond)
		sa := f.Suspend(SuspendArgs("a", "x"))
		f.Suspend(SuspendArgs("d", "x"))
		f.Deliver(sa, 0, "") // a resumes before b: order is by suspension, not resumption
		f.Deliver(sb, 0, "")
		f.Clock.Advance(time.Millisecond) // c timed out

		want := []struct{ id, reason string }{{"b", "signal"}, {"c", "timeout"}, {"a", "signal"}}
		for _, w := range want {
			got := f.Claim(time.Minute)
			if got.ExecutionID != w.id || got.Reason != w.reason {
				t.Fatalf("claim = %s, want %s with reason %s", JSONOf(t, got), w.id, w.reason)
			}
		}
		if got := f.Claim(time.Minute); got.Outcome != "none" {
			t.Fatalf("fourth claim = %s, want none", JSONOf(t, got))
		}
	})
	t.Run("Envelope", func(t *testing.T) {
		f := h.Seeded(t)
		s := f.Suspend(SuspendArgs("e1", "a"))
		sig := f.Deliver(s, 0, "")
		got := f.Claim(30 * time.Second)
		if got.Outcome != "claimed" || got.SuspensionID != s.SuspensionID || got.LeaseExpiresAtMs != startMs+30000 ||
			contracts.ValidateUUID("lease_id", got.LeaseID) != nil || len(got.Signals) != 1 || got.Signals[0].SignalID != sig.SignalID {
			t.Fatalf("claim = %s", JSONOf(t, got))
		}
	})
	t.Run("TimeoutClaimHasEmptySignals", func(t *testing.T) {
		f := h.Seeded(t)
		f.Suspend(WithTimeout(SuspendArgs("e1", "a"), time.Millisecond))
		f.Clock.Advance(2 * time.Millisecond)
		if got := JSONOf(t, f.Claim(time.Minute)); !strings.Contains(got, `"reason":"timeout"`) || !strings.Contains(got, `"signals":[]`) {
			t.Fatalf("claim = %s", got)
		}
	})
	t.Run("ExpiredLease", func(t *testing.T) {
		// Given e1 claimed (reason timeout) with a 1s lease.
		f := h.Seeded(t)
		f.Suspend(WithTimeout(SuspendArgs("e1", "a"), time.Millisecond))
		f.Clock.Advance(2 * time.Millisecond)
		first := f.Claim(time.Second)

		f.Clock.Advance(time.Second) // lease_expires_at_ms == now: still held
		if got := f.Claim(time.Second); got.Outcome != "none" {
			t.Fatalf("claim at lease expiry = %s", JSONOf(t, got))
		}
		f.Clock.Advance(time.Millisecond)
		again := f.Claim(time.Second)
		if again.ExecutionID != "e1" || again.LeaseID == first.LeaseID || again.Reason != "timeout" ||
			again.LeaseExpiresAtMs != f.Clock.NowMs()+1000 {
			t.Fatalf("re-claim = %s after %s", JSONOf(t, again), JSONOf(t, first))
		}
		_, err := f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: first.LeaseID})
		WantErr(t, err, contracts.ErrLeaseMismatch)
	})
	t.Run("ConcurrentClaimsTakeEachOnce", func(t *testing.T) {
		f := h.Seeded(t)
		const n = 50
		for i := range n {
			f.Deliver(f.Suspend(SuspendArgs("e"+strconv.Itoa(i), "a")), 0, "")
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 2 * n {
			wg.Go(func() {
				c, err := f.Eng.ClaimResumedExecution(f.Ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				seen[c.ExecutionID]++ // "" counts the none outcomes
			})
		}
		wg.Wait()
		if seen[""] != n || len(seen) != n+1 {
			t.Fatalf("claims = %v, want each of %d executions once and %d none", seen, n, n)
		}
		for id, c := range seen {
			if c != 1 && id != "" {
				t.Fatalf("%s claimed %d times", id, c)
			}
		}
	})
}

func testComplete(t *testing.T, h Harness) {
	t.Run("Unknown", func(t *testing.T) {
		f := h.Seeded(t)
		_, err := f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: driver.NewID()})
		WantErr(t, err, contracts.ErrExecutionNotFound)
	})
	t.Run("NotClaimed", func(t *testing.T) {
		f := h.Seeded(t)
		f.Deliver(f.Suspend(SuspendArgs("e1", "a")), 0, "")
		_, err := f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: driver.NewID()})
		WantErr(t, err, contracts.ErrLeaseMismatch)
	})
	t.Run("ExpiredLeaseNobodyReclaimed", func(t *testing.T) {
		f := h.Seeded(t)
		c := f.ClaimedExecution("e1", time.Second)
		f.Clock.Advance(time.Hour)
		got := Try(f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID})).Must(t)
		if s := JSONOf(t, got); s != `{"outcome":"completed","execution_id":"e1"}` {
			t.Fatalf("complete = %s", s)
		}
	})
	t.Run("ForgetsEverything", func(t *testing.T) {
		// Given e1 with two suspensions, signals and idempotency records, then completed.
		f := h.Seeded(t)
		s1 := f.Suspend(WithIdem(SuspendArgs("e1", "a"), "i1"))
		f.Deliver(s1, 0, "d1")
		c1 := f.Claim(time.Minute)
		s2 := f.Suspend(WithIdem(WithLease(SuspendArgs("e1", "a"), c1.LeaseID), "i2"))
		f.Deliver(s2, 0, "d1")
		c2 := f.Claim(time.Minute)
		f.Must(f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c2.LeaseID}))

		// Then nothing of it remains.
		if n := h.Leftover(t, f.B, "e1"); n != 0 {
			t.Fatalf("%d rows or entries of e1 left", n)
		}
		_, err := f.Eng.ObserveSignals(f.Ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1"})
		WantErr(t, err, contracts.ErrExecutionNotFound)
		WantErr(t, f.DeliverErr(s1, 0, "d1"), contracts.ErrSignatureMismatch)
		WantErr(t, f.DeliverErr(s2, 0, "d1"), contracts.ErrSignatureMismatch)
		_, err = f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c2.LeaseID})
		WantErr(t, err, contracts.ErrExecutionNotFound)
		if got := f.Claim(time.Minute); got.Outcome != "none" {
			t.Fatalf("claim after complete = %s", JSONOf(t, got))
		}
		// And the execution starts afresh, its old idempotency keys free.
		if s := f.Suspend(WithIdem(SuspendArgs("e1", "a"), "i1")); s.SuspensionID == s1.SuspensionID {
			t.Fatal("idempotency record survived completion")
		}
	})
}
