package sqlite

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

func TestObserveSignals(t *testing.T) {
	t.Run("UnknownExecution", func(t *testing.T) {
		f := seeded(t)
		_, err := f.eng.ObserveSignals(f.ctx, contracts.ObserveSignalsArgs{ExecutionID: "nope"})
		wantErr(t, err, contracts.ErrExecutionNotFound)
	})
	t.Run("DeliveryOrderWithinOneMillisecond", func(t *testing.T) {
		f := seeded(t)
		a := suspendArgs("e1", "a", "b", "c")
		a.Condition = contracts.ConditionAll
		s := f.suspend(a)
		var want []string
		for _, i := range []int{2, 0, 2, 1} {
			want = append(want, f.deliver(s, i, "").SignalID)
		}
		var got []string
		for _, sig := range f.observe("e1").Signals {
			got = append(got, sig.SignalID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("signal order = %v, want %v", got, want)
		}
	})
	t.Run("Envelope", func(t *testing.T) {
		f := seeded(t)
		s := f.suspend(suspendArgs("e1", "a"))
		da := deliverArgs(s, 0, "d1")
		da.Payload = payload(`{ "ok" : true }`)
		sig := try(f.eng.DeliverSignal(f.ctx, da)).must(t)
		want := `{"execution_id":"e1","suspension_id":"` + s.SuspensionID + `","signals":[{"signal_id":"` + sig.SignalID +
			`","waitpoint_id":"` + s.Waitpoints[0].WaitpointID + `","waitpoint_key":"a","name":"approve","payload":{"ok":true},` +
			`"idempotency_key":"d1","delivered_at_ms":1767225600000}]}`
		if got := jsonOf(t, f.observe("e1")); got != want {
			t.Fatalf("observe = %s\nwant      %s", got, want)
		}
	})
	t.Run("NullPayloadAndKey", func(t *testing.T) {
		f := seeded(t)
		f.deliver(f.suspend(suspendArgs("e1", "a")), 0, "")
		sig := jsonOf(t, f.observe("e1").Signals[0])
		if want := `"payload":null,"idempotency_key":null`; !strings.Contains(sig, want) {
			t.Fatalf("signal = %s, want %s", sig, want)
		}
	})
	t.Run("LatestSuspensionOnly", func(t *testing.T) {
		f := seeded(t)
		c := f.claimedExecution("e1", time.Minute)
		s2 := f.suspend(withLease(suspendArgs("e1", "b"), c.LeaseID))
		got := f.observe("e1")
		if got.SuspensionID != s2.SuspensionID || len(got.Signals) != 0 || got.Signals == nil {
			t.Fatalf("observe after re-suspend = %s", jsonOf(t, got))
		}
	})
	t.Run("CallerCannotChangeStoredPayload", func(t *testing.T) {
		f := seeded(t)
		da := deliverArgs(f.suspend(suspendArgs("e1", "a")), 0, "")
		da.Payload = payload(`"abc"`)
		f.must(f.b.DeliverSignal(f.ctx, da)) // the driver directly: the Engine would copy
		da.Payload[1] = 'X'
		f.observe("e1").Signals[0].Payload[1] = 'Y'
		if p := string(f.observe("e1").Signals[0].Payload); p != `"abc"` {
			t.Fatalf("stored payload = %s", p)
		}
	})
}

func TestListSuspended(t *testing.T) {
	// Given five suspended executions over three milliseconds, inserted out of order,
	// and two that are not suspended.
	f := seeded(t)
	at := func(ms int64, ids ...string) {
		f.clock.ms.Store(startMs + ms)
		for _, id := range ids {
			f.suspend(withTimeout(suspendArgs(id, "a", "b"), time.Hour))
		}
	}
	at(2, "e5")
	at(1, "e3", "e1", "e4")
	at(0, "e2")
	f.clock.ms.Store(startMs + 3)
	f.deliver(f.suspend(suspendArgs("r", "a")), 0, "")
	f.claimedExecution("c", time.Minute)
	want := []string{"e2", "e1", "e3", "e4", "e5"} // by (suspended_at_ms, execution_id)
	f.clock.advance(2 * time.Hour)                 // timed out but unclaimed: still listed

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
				p := f.list(tt.limit, cursor)
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
		got := jsonOf(t, f.list(1, "").Executions[0])
		want := `"suspended_at_ms":1767225600000,"timeout_at_ms":1767229200000,"waitpoints":2}`
		if !strings.Contains(got, `{"execution_id":"e2","suspension_id":"`) || !strings.Contains(got, want) {
			t.Fatalf("row = %s", got)
		}
	})
	t.Run("EmptyIsAnArray", func(t *testing.T) {
		if got := jsonOf(t, seeded(t).list(10, "")); got != `{"executions":[],"next_cursor":null}` {
			t.Fatalf("empty list = %s", got)
		}
	})
	t.Run("CursorIsExclusiveAndStable", func(t *testing.T) {
		// The cursor after e1 still works when e1 leaves and an older execution arrives.
		p := f.list(2, "")
		f.clock.ms.Store(startMs) // a new execution sorting before the cursor
		f.suspend(suspendArgs("e0", "a"))
		if got := ids(f.list(10, *p.NextCursor)); !slices.Equal(got, []string{"e3", "e4", "e5"}) {
			t.Fatalf("after cursor = %v", got)
		}
	})
	t.Run("MalformedCursor", func(t *testing.T) {
		for _, c := range []string{"!!", "djE6", contracts.EncodeCursor(contracts.Cursor{ExecutionID: "bad id"})} {
			_, err := f.b.ListSuspended(f.ctx, contracts.ListSuspendedArgs{Limit: 10, Cursor: c})
			wantErr(t, err, contracts.ErrInvalidInput)
		}
	})
}

func TestClaim(t *testing.T) {
	t.Run("NothingClaimable", func(t *testing.T) {
		f := seeded(t)
		f.suspend(withTimeout(suspendArgs("e1", "a"), time.Second))
		f.clock.advance(time.Second) // timeout_at_ms == now: not yet timed out
		if got := jsonOf(t, f.claim(time.Minute)); got != `{"outcome":"none"}` {
			t.Fatalf("claim = %s", got)
		}
	})
	t.Run("OldestFirstWithReasons", func(t *testing.T) {
		// Given, by (suspended_at_ms, execution_id): b resumed, then c timing out,
		// then a resumed, then d suspended with no timeout.
		f := seeded(t)
		sb := f.suspend(suspendArgs("b", "x"))
		f.suspend(withTimeout(suspendArgs("c", "x"), time.Millisecond))
		f.clock.advance(time.Millisecond)
		sa := f.suspend(suspendArgs("a", "x"))
		f.suspend(suspendArgs("d", "x"))
		f.deliver(sa, 0, "") // a resumes before b: order is by suspension, not resumption
		f.deliver(sb, 0, "")
		f.clock.advance(time.Millisecond) // c timed out

		want := []struct{ id, reason string }{{"b", "signal"}, {"c", "timeout"}, {"a", "signal"}}
		for _, w := range want {
			got := f.claim(time.Minute)
			if got.ExecutionID != w.id || got.Reason != w.reason {
				t.Fatalf("claim = %s, want %s with reason %s", jsonOf(t, got), w.id, w.reason)
			}
		}
		if got := f.claim(time.Minute); got.Outcome != "none" {
			t.Fatalf("fourth claim = %s, want none", jsonOf(t, got))
		}
	})
	t.Run("Envelope", func(t *testing.T) {
		f := seeded(t)
		s := f.suspend(suspendArgs("e1", "a"))
		sig := f.deliver(s, 0, "")
		got := f.claim(30 * time.Second)
		if got.Outcome != "claimed" || got.SuspensionID != s.SuspensionID || got.LeaseExpiresAtMs != startMs+30000 ||
			contracts.ValidateUUID("lease_id", got.LeaseID) != nil || len(got.Signals) != 1 || got.Signals[0].SignalID != sig.SignalID {
			t.Fatalf("claim = %s", jsonOf(t, got))
		}
	})
	t.Run("TimeoutClaimHasEmptySignals", func(t *testing.T) {
		f := seeded(t)
		f.suspend(withTimeout(suspendArgs("e1", "a"), time.Millisecond))
		f.clock.advance(2 * time.Millisecond)
		if got := jsonOf(t, f.claim(time.Minute)); !strings.Contains(got, `"reason":"timeout"`) || !strings.Contains(got, `"signals":[]`) {
			t.Fatalf("claim = %s", got)
		}
	})
	t.Run("ExpiredLease", func(t *testing.T) {
		// Given e1 claimed (reason timeout) with a 1s lease.
		f := seeded(t)
		f.suspend(withTimeout(suspendArgs("e1", "a"), time.Millisecond))
		f.clock.advance(2 * time.Millisecond)
		first := f.claim(time.Second)

		f.clock.advance(time.Second) // lease_expires_at_ms == now: still held
		if got := f.claim(time.Second); got.Outcome != "none" {
			t.Fatalf("claim at lease expiry = %s", jsonOf(t, got))
		}
		f.clock.advance(time.Millisecond)
		again := f.claim(time.Second)
		if again.ExecutionID != "e1" || again.LeaseID == first.LeaseID || again.Reason != "timeout" ||
			again.LeaseExpiresAtMs != f.clock.ms.Load()+1000 {
			t.Fatalf("re-claim = %s after %s", jsonOf(t, again), jsonOf(t, first))
		}
		_, err := f.eng.CompleteExecution(f.ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: first.LeaseID})
		wantErr(t, err, contracts.ErrLeaseMismatch)
	})
	t.Run("ConcurrentClaimsTakeEachOnce", func(t *testing.T) {
		f := seeded(t)
		const n = 50
		for i := range n {
			f.deliver(f.suspend(suspendArgs("e"+strconv.Itoa(i), "a")), 0, "")
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 2 * n {
			wg.Go(func() {
				c, err := f.eng.ClaimResumedExecution(f.ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
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

func TestComplete(t *testing.T) {
	t.Run("Unknown", func(t *testing.T) {
		f := seeded(t)
		_, err := f.eng.CompleteExecution(f.ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: contracts.NewID()})
		wantErr(t, err, contracts.ErrExecutionNotFound)
	})
	t.Run("NotClaimed", func(t *testing.T) {
		f := seeded(t)
		f.deliver(f.suspend(suspendArgs("e1", "a")), 0, "")
		_, err := f.eng.CompleteExecution(f.ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: contracts.NewID()})
		wantErr(t, err, contracts.ErrLeaseMismatch)
	})
	t.Run("ExpiredLeaseNobodyReclaimed", func(t *testing.T) {
		f := seeded(t)
		c := f.claimedExecution("e1", time.Second)
		f.clock.advance(time.Hour)
		got := try(f.eng.CompleteExecution(f.ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID})).must(t)
		if s := jsonOf(t, got); s != `{"outcome":"completed","execution_id":"e1"}` {
			t.Fatalf("complete = %s", s)
		}
	})
	t.Run("ForgetsEverything", func(t *testing.T) {
		// Given e1 with two suspensions, signals and idempotency records, then completed.
		f := seeded(t)
		s1 := f.suspend(withIdem(suspendArgs("e1", "a"), "i1"))
		f.deliver(s1, 0, "d1")
		c1 := f.claim(time.Minute)
		s2 := f.suspend(withIdem(withLease(suspendArgs("e1", "a"), c1.LeaseID), "i2"))
		f.deliver(s2, 0, "d1")
		c2 := f.claim(time.Minute)
		f.must(f.eng.CompleteExecution(f.ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c2.LeaseID}))

		// Then nothing of it remains.
		if n := f.rowsLeft("e1"); n != 0 {
			t.Fatalf("%d rows of e1 left", n)
		}
		_, err := f.eng.ObserveSignals(f.ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1"})
		wantErr(t, err, contracts.ErrExecutionNotFound)
		wantErr(t, f.deliverErr(s1, 0, "d1"), contracts.ErrSignatureMismatch)
		wantErr(t, f.deliverErr(s2, 0, "d1"), contracts.ErrSignatureMismatch)
		_, err = f.eng.CompleteExecution(f.ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c2.LeaseID})
		wantErr(t, err, contracts.ErrExecutionNotFound)
		if got := f.claim(time.Minute); got.Outcome != "none" {
			t.Fatalf("claim after complete = %s", jsonOf(t, got))
		}
		// And the execution starts afresh, its old idempotency keys free.
		if s := f.suspend(withIdem(suspendArgs("e1", "a"), "i1")); s.SuspensionID == s1.SuspensionID {
			t.Fatal("idempotency record survived completion")
		}
	})
}
