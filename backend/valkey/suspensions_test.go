package valkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// seededEngine opens a fresh backend with P partitions, seeded with kid-a.
func seededEngine(t *testing.T, s server, partitions int, rt *roundTrips) (*engine.Engine, *Backend) {
	t.Helper()
	raw := backendURL(t, s.url(t), partitions, testenv.KeyPrefix(t))
	var b *Backend
	if rt != nil {
		b = openURL(t, raw, rt.attach)
	} else {
		b = openURL(t, raw, nil)
	}
	mustSeed(t, b, "kid-a", secret(1))
	return engine.New(b), b
}

// ops is what Engine and Backend both offer; round-trip tests call the
// Backend directly, so that nothing of the Engine's (its keystore cache)
// adds commands.
type ops interface {
	driver.Suspensions

	Sign(ctx context.Context, args contracts.SignArgs) (contracts.SignResult, error)
}

func suspend(t *testing.T, e ops, id string, keys ...string) contracts.SuspendOutcome {
	t.Helper()
	a := contracts.SuspendArgs{ExecutionID: id, Condition: contracts.ConditionAny}
	for _, k := range keys {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: k})
	}
	out, err := e.Suspend(bg, a)
	if err != nil {
		t.Fatalf("suspend %s: %v", id, err)
	}
	return out
}

func deliver(t *testing.T, e ops, s contracts.SuspendOutcome, i int, a contracts.DeliverSignalArgs) contracts.DeliverSignalOutcome {
	t.Helper()
	w := s.Waitpoints[i]
	a.ExecutionID, a.WaitpointID, a.Token = s.ExecutionID, w.WaitpointID, w.Token
	if a.Name == "" {
		a.Name = "go"
	}
	out, err := e.DeliverSignal(bg, a)
	if err != nil {
		t.Fatalf("deliver to %s/%s: %v", s.ExecutionID, w.WaitpointKey, err)
	}
	return out
}

// With nothing to claim or list, claim_resumed_execution over 256
// partitions costs one pipeline per node and no single command on a
// cluster; on a standalone server the first claim finds the claim hint
// incomplete, asks every partition once and completes the hint (one call,
// one pipeline, one ZADD), and later claims read only the hint (one call).
// list_suspended on an empty store costs one script call on a standalone
// server (list_all) and two pipelines per node at most on a cluster
// (list_peek's two waves; no row to read).
func TestIdleClaimAndListRoundTrips(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		rt := newRoundTrips()
		_, b := seededEngine(t, s, 256, rt)
		e := ops(b)
		masters := countMasters(t, b)
		loadAllScripts(t, b)

		claim := func(wantSingles, wantPipelines int) {
			t.Helper()
			rt.start()
			c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 1000})
			singles, pipelines, _, piped := rt.stop()
			if err != nil || c.Outcome != contracts.OutcomeNone {
				t.Fatalf("claim: %+v, %v", c, err)
			}
			t.Logf("%s: idle claim: %d pipelines (%d masters), %d piped, %d singles", s.name, pipelines, masters, piped, singles)
			if pipelines != wantPipelines || singles != wantSingles {
				t.Errorf("idle claim: %d pipelines and %d singles, want %d and %d", pipelines, singles, wantPipelines, wantSingles)
			}
		}
		if b.hint == "" {
			claim(0, masters)
			claim(0, masters)
		} else {
			claim(2, 1)
			claim(1, 0)
		}

		rt.start()
		l, err := e.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: 100})
		singles, pipelines, _, _ := rt.stop()
		if err != nil || len(l.Executions) != 0 {
			t.Fatalf("list: %+v, %v", l, err)
		}
		if b.hint != "" {
			if pipelines != 0 || singles != 1 {
				t.Errorf("list: %d pipelines and %d singles, want 0 and 1", pipelines, singles)
			}
		} else if pipelines > 2*masters || singles != 0 {
			t.Errorf("list: %d pipelines and %d singles, want at most %d and 0", pipelines, singles, 2*masters)
		}
	})
}

// Round trips of the single-execution operations: suspend two script calls
// (its replay one), deliver (of the token suspend issued; accepted,
// duplicate or past a budget), a page of observe and complete one, claim
// one pipeline per node plus one script call (standalone: one script call,
// claim_hinted, the first claim head naming the partition with a resumed
// execution).
func TestOperationRoundTrips(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		rt := newRoundTrips()
		_, b := seededEngine(t, s, 256, rt)
		e := ops(b)
		masters := countMasters(t, b)
		warm(t, e)
		loadAllScripts(t, b) // cached on every master, whatever another test flushed

		count := func(name string, wantSingles, wantPipelines int, f func()) {
			t.Helper()
			rt.start()
			f()
			singles, pipelines, _, _ := rt.stop()
			if singles != wantSingles || pipelines != wantPipelines {
				t.Errorf("%s: %d singles and %d pipelines, want %d and %d", name, singles, pipelines, wantSingles, wantPipelines)
			}
		}
		var sus contracts.SuspendOutcome
		count("suspend", 2, 0, func() { sus = suspend(t, e, "rt-1", "a") })

		// budgets and pages on a suspension that does not resume
		limits := contracts.SignalLimits{PerWaitpoint: 3, PerSuspension: 5, PayloadBytes: 64}
		keyed := contracts.SuspendArgs{ExecutionID: "rt-3", Condition: contracts.ConditionAll, IdempotencyKey: "k",
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}, {Key: "never"}}}
		var all contracts.SuspendOutcome
		var err error
		count("suspend with an idempotency key", 2, 0, func() { all, err = e.Suspend(bg, keyed); require.NoError(t, err) })
		count("suspend replay", 1, 0, func() { _, err = e.Suspend(bg, keyed); require.NoError(t, err) })
		for i := range 3 {
			count("deliver_signal with a payload", 1, 0, func() {
				_, err := deliverTo(e, all, "a", `{"n":1}`, fmt.Sprint(i), limits)
				require.NoError(t, err)
			})
		}
		count("deliver_signal duplicate", 1, 0, func() {
			d, err := deliverTo(e, all, "a", `{"n":1}`, "0", limits)
			require.NoError(t, err)
			require.Equal(t, contracts.OutcomeDuplicate, d.Outcome)
		})
		count("deliver_signal past a budget", 1, 0, func() {
			_, err := deliverTo(e, all, "a", "", "", limits)
			require.ErrorIs(t, err, contracts.ErrSignalLimitExceeded)
		})
		var page contracts.ObserveSignalsResult
		count("observe_signals first page", 1, 0, func() {
			page, err = e.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "rt-3", Limit: 2})
			require.NoError(t, err)
			require.NotNil(t, page.NextCursor)
		})
		count("observe_signals next page", 1, 0, func() {
			page, err = e.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "rt-3", Limit: 2, Cursor: *page.NextCursor})
			require.NoError(t, err)
			require.Len(t, page.Signals, 1)
		})

		count("deliver_signal", 1, 0, func() { deliver(t, e, sus, 0, contracts.DeliverSignalArgs{}) })
		count("observe_signals", 1, 0, func() { _, _ = e.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "rt-1"}) })
		var c contracts.ClaimOutcome
		claimSingles, claimPipelines := 1, masters
		if b.hint != "" {
			claimSingles, claimPipelines = 1, 0
		}
		count("claim", claimSingles, claimPipelines, func() { c, _ = e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000}) })
		count("complete", 1, 0, func() {
			if _, err := e.CompleteExecution(bg, contracts.CompleteArgs{ExecutionID: "rt-1", LeaseID: c.LeaseID}); err != nil {
				t.Fatalf("complete: %v", err)
			}
		})
		count("sign", 1, 0, func() { _, _ = e.Sign(bg, contracts.SignArgs{Scope: "s"}) })

		// deliver compares the presented token's digest with the raw bytes
		// an inline waitpoint keeps and with the hex a waitpoint's own hash
		// keeps (a pending one, before and after a suspend used it): a
		// mismatch would take the three-call slow path.
		pending := create(t, b, "rt-4", "early", hourMs)
		count("deliver_signal to a pending waitpoint", 1, 0, func() {
			_, err := deliverPending(b, pending, "", "", contracts.SignalLimits{})
			require.NoError(t, err)
		})
		joined, err := b.Suspend(bg, using("rt-4", contracts.ConditionAll, pending, "late"))
		require.NoError(t, err)
		for _, key := range []string{"early", "late"} {
			count("deliver_signal to the suspension's "+key+" waitpoint", 1, 0, func() {
				_, err := deliverTo(e, joined, key, "", "", contracts.SignalLimits{})
				require.NoError(t, err)
			})
		}
	})
}

// The claim hint of a standalone server (ff_hint in lua/prelude.lua) finds
// what a claim over every partition finds: executions resumed, timed out
// or with an expired lease, in a store whose hint was lost (or that was
// written before the hint existed) too, oldest first, and nothing twice.
func TestClaimHint(t *testing.T) {
	e, b := seededEngine(t, servers[0], 256, nil)
	if b.hint == "" {
		t.Fatal("a standalone backend has no claim hint")
	}
	claim := func(lease int64) contracts.ClaimOutcome {
		t.Helper()
		c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: lease})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		return c
	}
	want := func(c contracts.ClaimOutcome, id, reason string) {
		t.Helper()
		if c.Outcome != contracts.OutcomeClaimed || c.ExecutionID != id || c.Reason != reason {
			t.Fatalf("claim: %+v, want %s (%s)", c, id, reason)
		}
	}
	if c := claim(1000); c.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim of an empty store: %+v", c)
	}
	// Resumed before the hint was lost: found by the full pass.
	var sus []contracts.SuspendOutcome
	for i := range 3 {
		sus = append(sus, suspend(t, e, fmt.Sprintf("hint-%d", i), "a"))
		time.Sleep(2 * time.Millisecond) // distinct suspended_at_ms: a defined oldest
	}
	for i := range sus {
		deliver(t, e, sus[len(sus)-1-i], 0, contracts.DeliverSignalArgs{})
	}
	if err := b.client.Del(bg, b.hint).Err(); err != nil {
		t.Fatal(err)
	}
	want(claim(60000), "hint-0", "signal")
	want(claim(60000), "hint-1", "signal")
	// A timeout and an expired lease become claimable with no write.
	ms := int64(30)
	if _, err := e.Suspend(bg, contracts.SuspendArgs{ExecutionID: "hint-t", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, TimeoutMs: &ms}); err != nil {
		t.Fatal(err)
	}
	want(claim(50), "hint-2", "signal")
	if c := claim(1000); c.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim before the timeout and the lease expiry: %+v", c)
	}
	time.Sleep(100 * time.Millisecond)
	want(claim(60000), "hint-2", "signal") // suspended earlier than hint-t
	want(claim(60000), "hint-t", "timeout")
	if c := claim(1000); c.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim after everything was claimed: %+v", c)
	}
	// A re-sent claim_hinted answers the execution it claimed; another
	// resumed execution of the same partition (so that the hint names one
	// partition and claim_hinted claims) stays claimable.
	r2 := "hint-r2"
	for i := 0; driver.PartitionOf(r2, 256) != driver.PartitionOf("hint-r1", 256); i++ {
		r2 = fmt.Sprintf("hint-r2-%d", i)
	}
	for _, id := range []string{"hint-r1", r2} {
		deliver(t, e, suspend(t, e, id, "a"), 0, contracts.DeliverSignalArgs{})
		time.Sleep(2 * time.Millisecond)
	}
	lease := driver.NewID()
	var replies [2][]any
	for i := range replies {
		v, err := b.run(bg, scriptClaimHinted, 0, lease, "60000")
		if err != nil {
			t.Fatal(err)
		}
		replies[i] = v
	}
	if !slices.Equal(replies[0], replies[1]) || str(replies[0], 0) != contracts.OutcomeClaimed || str(replies[0], 1) != "hint-r1" {
		t.Fatalf("claim_hinted re-sent: %v, first %v; want hint-r1 claimed twice", replies[1], replies[0])
	}
	want(claim(60000), r2, "signal")
	// More partitions named than claim_hinted asks itself: the pipeline
	// compares them; oldest first all the same.
	var ids []string
	used := map[int]bool{}
	for i := 0; len(ids) < 40; i++ {
		id := fmt.Sprintf("hint-many-%d", i)
		if p := driver.PartitionOf(id, 256); !used[p] {
			used[p] = true
			ids = append(ids, id)
			deliver(t, e, suspend(t, e, id, "a"), 0, contracts.DeliverSignalArgs{})
			time.Sleep(2 * time.Millisecond)
		}
	}
	for _, id := range ids {
		want(claim(60000), id, "signal")
	}
	if c := claim(1000); c.Outcome != contracts.OutcomeNone {
		t.Fatalf("claim after everything was claimed: %+v", c)
	}
}

// warm runs one full cycle so that every script is cached on every master.
func warm(t *testing.T, e ops) {
	t.Helper()
	sus := suspend(t, e, "warm", "a")
	deliver(t, e, sus, 0, contracts.DeliverSignalArgs{})
	_, _ = e.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "warm"})
	c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
	if err != nil || c.ExecutionID != "warm" {
		t.Fatalf("warm claim: %+v, %v", c, err)
	}
	if _, err := e.CompleteExecution(bg, contracts.CompleteArgs{ExecutionID: "warm", LeaseID: c.LeaseID}); err != nil {
		t.Fatalf("warm complete: %v", err)
	}
	_, _ = e.Sign(bg, contracts.SignArgs{Scope: "s"})
}

// Executions spread over many partitions are claimed oldest first, whatever
// the order in which they resumed.
func TestClaimOldestFirstAcrossPartitions(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		e, b := seededEngine(t, s, 256, nil)
		var sus []contracts.SuspendOutcome
		partitions := map[int]bool{}
		for i := range 12 {
			id := fmt.Sprintf("oldest-%02d", i)
			partitions[driver.PartitionOf(id, b.parts)] = true
			sus = append(sus, suspend(t, e, id, "a"))
			time.Sleep(3 * time.Millisecond) // distinct suspended_at_ms
		}
		if len(partitions) < 6 {
			t.Fatalf("executions fell in only %d partitions", len(partitions))
		}
		for i := len(sus) - 1; i >= 0; i-- { // resume newest first
			deliver(t, e, sus[i], 0, contracts.DeliverSignalArgs{})
		}
		for i := range sus {
			c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
			if err != nil || c.ExecutionID != sus[i].ExecutionID {
				t.Fatalf("claim %d: got %s (%v), want %s", i, c.ExecutionID, err, sus[i].ExecutionID)
			}
		}
	})
}

// Paging list_suspended over many partitions visits every suspended
// execution once, in (suspended_at_ms, execution_id) order.
func TestListSuspendedPagesAcrossPartitions(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		e, _ := seededEngine(t, s, 256, nil)
		var want []string
		for i := range 40 {
			id := fmt.Sprintf("list-%02d", i)
			suspend(t, e, id, "a")
			want = append(want, id)
		}
		var got []string
		var last contracts.SuspendedExecution
		cursor := ""
		for range 20 {
			page, err := e.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: 7, Cursor: cursor})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			for _, x := range page.Executions {
				if len(got) > 0 && !(contracts.Cursor{SuspendedAtMs: last.SuspendedAtMs, ExecutionID: last.ExecutionID}).After(x.SuspendedAtMs, x.ExecutionID) {
					t.Fatalf("%s listed after %s: out of order", x.ExecutionID, last.ExecutionID)
				}
				got, last = append(got, x.ExecutionID), x
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("listed %v, want %v", got, want)
		}
	})
}

// Payloads and idempotency keys are stored byte for byte, whatever bytes
// they hold.
func TestSignalBytesRoundTrip(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		e, _ := seededEngine(t, s, 256, nil)
		sus, err := e.Suspend(bg, contracts.SuspendArgs{ExecutionID: "bytes-1", Condition: contracts.ConditionAll,
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
		if err != nil {
			t.Fatal(err)
		}
		keys := []string{"k|1:2", "\u00e9\r\n\t{p:1} \"quoted\" 3:abc ]] --"}
		payloads := []json.RawMessage{json.RawMessage(`{"a":[1,2.50,"\u00e9\/x"],"b":null}`), nil}
		for i, k := range keys {
			out := deliver(t, e, sus, i, contracts.DeliverSignalArgs{IdempotencyKey: k, Payload: payloads[i]})
			again := deliver(t, e, sus, i, contracts.DeliverSignalArgs{IdempotencyKey: k, Payload: payloads[i]})
			if again.Outcome != contracts.OutcomeDuplicate || again.SignalID != out.SignalID {
				t.Fatalf("replay of key %q: %+v, want duplicate of %s", k, again, out.SignalID)
			}
		}
		r, err := e.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "bytes-1"})
		if err != nil || len(r.Signals) != 2 {
			t.Fatalf("observe: %+v, %v", r, err)
		}
		for i, sig := range r.Signals {
			if sig.IdempotencyKey != keys[i] || string(sig.Payload) != string(payloads[i]) {
				t.Errorf("signal %d: key %q payload %s, want %q %s", i, sig.IdempotencyKey, sig.Payload, keys[i], payloads[i])
			}
		}
	})
}

// A waitpoint token issued by Valkey's suspend is the token of docs/spec.md
// §3 that any backend holding the same keystore computes, and it is a
// waitpoint token only: the memory backend's verify refuses it.
func TestWaitpointTokenIsTheSameElsewhere(t *testing.T) {
	e, _ := seededEngine(t, servers[0], 256, nil)
	m := memory.New()
	mustSeed(t, m, "kid-a", secret(1))
	sus := suspend(t, e, "cross-1", "approve")
	w := sus.Waitpoints[0]
	in := driver.WaitpointInput("kid-a", sus.ExecutionID, w.WaitpointID, w.WaitpointKey, w.CreatedAtMs)
	if want := driver.SignToken("kid-a", secret(1), in); w.Token != want {
		t.Fatalf("Valkey waitpoint token %q, want %q", w.Token, want)
	}
	if _, err := m.Verify(bg, contracts.VerifyArgs{Scope: sus.ExecutionID, Message: in, Token: w.Token}); !errors.Is(err, contracts.ErrSignatureMismatch) {
		t.Fatalf("memory verify of a Valkey waitpoint token: %v, want signature_mismatch", err)
	}
}

// A suspension's timeout_at_ms near the contract's limit is exact.
func TestSuspendMaxTimeoutIsExact(t *testing.T) {
	e, _ := seededEngine(t, servers[0], 1, nil)
	max := int64(contracts.MaxTimeoutMs)
	out, err := e.Suspend(bg, contracts.SuspendArgs{ExecutionID: "far", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, TimeoutMs: &max})
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.ListSuspended(bg, contracts.ListSuspendedArgs{})
	if err != nil || len(l.Executions) != 1 || *l.Executions[0].TimeoutAtMs != out.SuspendedAtMs+max {
		t.Fatalf("list: %+v, %v; want timeout_at_ms %d", l, err, out.SuspendedAtMs+max)
	}
}

// loadAllScripts loads every script of the driver on every master.
func loadAllScripts(t *testing.T, b *Backend) {
	t.Helper()
	for _, s := range []*redis.Script{scriptKeysLoad, scriptKeysKid, scriptSeedInstall, scriptRotate, scriptSuspendRead,
		scriptSuspendWrite, scriptDeliver, scriptDeliverRead, scriptDeliverWrite, scriptObserve, scriptListPeek, scriptListRows,
		scriptClaimPeek, scriptClaim, scriptComplete, scriptClaimHinted, scriptCreateRead, scriptCreateWrite,
		scriptGetWaitpoint, scriptExtend, scriptRelease, scriptCancel, scriptDescribe, scriptCount, scriptListAll} {
		if err := b.loadEverywhere(bg, s); err != nil {
			t.Fatalf("load scripts: %v", err)
		}
	}
}

// Suspends racing rotations (one every few milliseconds, far more than any
// deployment): every suspend signs with a kid that was still current when
// it wrote (the write re-checks it and starts over otherwise), so every
// token delivers.
func TestSuspendRacingRotations(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		e, b := seededEngine(t, s, 4, nil)
		done := make(chan struct{})
		rotated := make(chan int)
		go func() {
			n := 0
			defer func() { rotated <- n }()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := b.RotateAll(bg, contracts.RotateArgs{NewKid: fmt.Sprintf("race-%d", n), NewSecret: secret(byte(n + 2)), GraceMs: 600000}); err != nil {
					t.Errorf("rotate: %v", err)
					return
				}
				n++
				time.Sleep(3 * time.Millisecond)
			}
		}()
		var sus []contracts.SuspendOutcome
		for i := range 40 {
			sus = append(sus, suspend(t, e, fmt.Sprintf("race-exec-%d", i), "a"))
		}
		close(done)
		t.Logf("%s: %d rotations during 40 suspends", s.name, <-rotated)
		for _, x := range sus {
			if out := deliver(t, e, x, 0, contracts.DeliverSignalArgs{}); out.Outcome != contracts.OutcomeAccepted {
				t.Fatalf("deliver to %s: %+v", x.ExecutionID, out)
			}
		}
	})
}

// A valid token that suspend did not issue (signed by the current kid after
// a rotation, for the waitpoint's message) takes the slow path and is
// accepted; a wrong one is refused as signature_mismatch.
func TestDeliverSlowPath(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		e, b := seededEngine(t, s, 256, nil)
		sus := suspend(t, e, "slow-1", "a")
		mustRotate(t, b, "kid-b", secret(2), 600000)
		w := sus.Waitpoints[0]
		in := driver.WaitpointInput("kid-b", sus.ExecutionID, w.WaitpointID, w.WaitpointKey, w.CreatedAtMs)
		resigned := driver.SignToken("kid-b", secret(2), in)
		wrong := driver.SignToken("kid-b", secret(3), in)
		a := contracts.DeliverSignalArgs{ExecutionID: sus.ExecutionID, WaitpointID: w.WaitpointID, Name: "go"}
		a.Token = wrong
		if _, err := e.DeliverSignal(bg, a); !errors.Is(err, contracts.ErrSignatureMismatch) {
			t.Fatalf("wrong MAC: got %v, want signature_mismatch", err)
		}
		a.Token = resigned
		if out, err := e.DeliverSignal(bg, a); err != nil || out.Outcome != contracts.OutcomeAccepted {
			t.Fatalf("token re-signed by the current kid: %+v, %v", out, err)
		}
	})
}
