package valkey

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// lops is what Engine and Backend both offer of version 2 of the waitpoint
// lifecycle (docs/spec.md §8).
type lops interface {
	ops
	driver.Lifecycle
}

const hourMs = int64(time.Hour / time.Millisecond)

// create opens a pending waitpoint key for id that expires after ttlMs.
func create(t *testing.T, e lops, id, key string, ttlMs int64, tags ...string) contracts.CreateWaitpointOutcome {
	t.Helper()
	out, err := e.CreateWaitpoint(bg, contracts.CreateWaitpointArgs{ExecutionID: id, Key: key, ExpiresInMs: ttlMs, Tags: tags})
	require.NoError(t, err, "create_waitpoint %s/%s", id, key)
	return out
}

// deliverPending delivers a signal to p with payload (empty: none).
func deliverPending(e lops, p contracts.CreateWaitpointOutcome, payload, idem string, limits contracts.SignalLimits) (contracts.DeliverSignalOutcome, error) {
	a := contracts.DeliverSignalArgs{ExecutionID: p.ExecutionID, WaitpointID: p.WaitpointID, Token: p.Token, Name: "go",
		IdempotencyKey: idem, Limits: limits}
	if payload != "" {
		a.Payload = []byte(payload)
	}
	return e.DeliverSignal(bg, a)
}

// using builds suspend arguments for id over items: pending waitpoints
// (their outcomes) and new keys (strings).
func using(id, cond string, items ...any) contracts.SuspendArgs {
	a := contracts.SuspendArgs{ExecutionID: id, Condition: cond}
	for _, it := range items {
		switch x := it.(type) {
		case contracts.CreateWaitpointOutcome:
			a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Pending: x.WaitpointID})
		case string:
			a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: x})
		}
	}
	return a
}

// requireForgotten fails unless the store holds nothing of any execution:
// only keystore hashes, store markers, the claim hint and heads and operation records (replies of
// calls kept a minute for re-sent calls, docs in lua/prelude.lua).
func requireForgotten(t *testing.T, b *Backend) {
	t.Helper()
	for _, k := range storeKeys(t, b) {
		rest := strings.TrimPrefix(k, b.prefix+"ff:")
		if _, suffix, ok := strings.Cut(rest, "}:"); ok {
			rest = suffix
		}
		switch {
		case rest == "keys", rest == "store", rest == "claim-hint", rest == "claim-heads", rest == "claim-head", rest == "list-complete", rest == "list-fill", strings.HasPrefix(rest, "op:"), strings.HasPrefix(rest, "claim-op:"):
		default:
			t.Errorf("the store still holds %s", k)
		}
	}
}

// Round trips of version 2 (docs/spec.md §8): create_waitpoint and a
// suspend using pending waitpoints two script calls each (read, write),
// a delivery to a pending waitpoint with the token create_waitpoint issued,
// get_waitpoint, cancel, extend and release one, list_suspended by tag one
// script call on a standalone server (three pipelines per node at most on
// a cluster).
func TestLifecycleRoundTrips(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		rt := newRoundTrips()
		_, b := seededEngine(t, s, 256, rt)
		e := lops(b)
		masters := countMasters(t, b)
		warm(t, e)
		loadAllScripts(t, b)
		count := func(name string, wantSingles, wantPipelines int, f func()) {
			t.Helper()
			rt.start()
			f()
			singles, pipelines, _, _ := rt.stop()
			if singles != wantSingles || pipelines != wantPipelines {
				t.Errorf("%s: %d singles and %d pipelines, want %d and %d", name, singles, pipelines, wantSingles, wantPipelines)
			}
		}
		var p, q contracts.CreateWaitpointOutcome
		count("create_waitpoint", 2, 0, func() { p = create(t, e, "rt-v2", "a", hourMs, "mail") })
		q = create(t, e, "rt-v2", "b", hourMs)
		count("deliver_signal to a pending waitpoint", 1, 0, func() {
			_, err := deliverPending(e, p, `{"n":1}`, "d1", contracts.SignalLimits{})
			require.NoError(t, err)
		})
		count("get_waitpoint", 1, 0, func() {
			_, err := e.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: "rt-v2", WaitpointID: p.WaitpointID})
			require.NoError(t, err)
		})
		a := using("rt-v2", contracts.CountCondition(2), p, q, "c")
		a.Tags = []string{"vip"}
		count("suspend with pending waitpoints", 2, 0, func() { _, err := e.Suspend(bg, a); require.NoError(t, err) })
		rt.start()
		l, err := e.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: 10, Tag: "vip"})
		require.NoError(t, err)
		require.Len(t, l.Executions, 1)
		singles, pipelines, _, _ := rt.stop()
		if b.hint != "" {
			// list_all: one script call over every partition
			require.Equal(t, 1, singles, "list_suspended by tag: singles")
			require.Zero(t, pipelines, "list_suspended by tag: pipelines")
		} else {
			// list_peek in two waves, then list_rows: at most three per node
			require.Equal(t, 0, singles, "list_suspended by tag: singles")
			require.LessOrEqual(t, pipelines, 3*masters, "list_suspended by tag: pipelines")
		}
		count("cancel_suspension", 1, 0, func() {
			_, err := e.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: "rt-v2"})
			require.NoError(t, err)
		})
		c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
		require.NoError(t, err)
		require.Equal(t, contracts.ReasonCancelled, c.Reason)
		count("extend_lease", 1, 0, func() {
			_, err := e.ExtendLease(bg, contracts.ExtendLeaseArgs{ExecutionID: "rt-v2", LeaseID: c.LeaseID, LeaseMs: 60000})
			require.NoError(t, err)
		})
		count("release_execution", 1, 0, func() {
			_, err := e.ReleaseExecution(bg, contracts.ReleaseArgs{ExecutionID: "rt-v2", LeaseID: c.LeaseID})
			require.NoError(t, err)
		})
	})
}

// Signals buffered on pending waitpoints join the suspension that uses
// them in delivery order, whatever waitpoint they went to; an
// already_satisfied suspend lists them and its replay answers the same
// bytes, also when a payload holds what looks like a stored token field.
func TestPendingSignalsJoinInDeliveryOrder(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		e := lops(b)
		const id = "join-1"
		p := create(t, e, id, "a", hourMs)
		q := create(t, e, id, "b", hourMs)
		var want []string
		for i, w := range []contracts.CreateWaitpointOutcome{p, q, p, q, q} {
			d, err := deliverPending(e, w, fmt.Sprintf(`{"token":"kid-a:%d"}`, i), "", contracts.SignalLimits{})
			require.NoError(t, err)
			require.False(t, d.Resumed)
			want = append(want, d.SignalID)
		}
		a := using(id, contracts.ConditionAll, q, p)
		a.IdempotencyKey = "k"
		out, err := e.Suspend(bg, a)
		require.NoError(t, err)
		require.Equal(t, contracts.OutcomeAlreadySatisfied, out.Outcome)
		var got []string
		for _, sig := range out.Signals {
			got = append(got, sig.SignalID)
		}
		require.Equal(t, want, got, "already_satisfied lists the signals in delivery order")
		again, err := e.Suspend(bg, a)
		require.NoError(t, err)
		requireSameOutcome(t, out, again, "replay of already_satisfied")
		obs, err := e.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: id, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, out.SuspensionID, obs.SuspensionID)
		require.Equal(t, want[:2], []string{obs.Signals[0].SignalID, obs.Signals[1].SignalID})
		_, err = deliverPending(e, p, "", "", contracts.SignalLimits{})
		require.ErrorIs(t, err, contracts.ErrWaitpointClosed, "a waitpoint of an already satisfied suspension is closed")
		info, err := e.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: id, WaitpointID: q.WaitpointID})
		require.NoError(t, err)
		require.Equal(t, contracts.WaitpointClosed, info.Status)
		require.Equal(t, 3, info.Signals)

		// A suspension that waits starts from what its pending waitpoints bring.
		r := create(t, e, "join-2", "r", hourMs)
		_, err = deliverPending(e, r, `{"x":1}`, "", contracts.SignalLimits{})
		require.NoError(t, err)
		sus, err := e.Suspend(bg, using("join-2", contracts.ConditionAll, r, "new"))
		require.NoError(t, err)
		require.Equal(t, contracts.OutcomeSuspended, sus.Outcome)
		wps, signals, bytes := counters(t, b, sus, "r")
		require.Equal(t, [3]int64{1, 1, 7}, [3]int64{wps, signals, bytes})
		d := deliver(t, e, sus, 1, contracts.DeliverSignalArgs{})
		require.True(t, d.Resumed, "all: the pending waitpoint counted as signaled")
		c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
		require.NoError(t, err)
		require.Len(t, c.Signals, 2)
		require.Equal(t, "r", c.Signals[0].WaitpointKey)
	})
}

// An execution in state none whose pending waitpoints all expired is
// forgotten, with everything recorded for it, by its next successful
// create_waitpoint or suspend (docs/spec.md §8.1); a refused call forgets
// nothing.
func TestExpiredPendingIsForgotten(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		e := lops(b)
		const ttl = 150
		// an execution remembered in state none: a suspend already satisfied, with its record
		p := create(t, e, "forget-1", "a", ttl, "mail")
		_, err := deliverPending(e, p, `{"a":1}`, "d", contracts.SignalLimits{})
		require.NoError(t, err)
		a := using("forget-1", contracts.ConditionAny, p)
		a.IdempotencyKey = "k"
		first, err := e.Suspend(bg, a)
		require.NoError(t, err)
		require.Equal(t, contracts.OutcomeAlreadySatisfied, first.Outcome)
		time.Sleep(2*ttl*time.Millisecond + 100*time.Millisecond)

		_, err = deliverPending(e, p, "", "", contracts.SignalLimits{})
		require.ErrorIs(t, err, contracts.ErrWaitpointClosed, "before it is forgotten")
		lease := driver.NewID()
		a.LeaseID = &lease
		_, err = e.Suspend(bg, a)
		require.ErrorIs(t, err, contracts.ErrLeaseMismatch, "state none with a lease")
		info, err := e.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: "forget-1", WaitpointID: p.WaitpointID})
		require.NoError(t, err, "a refused suspend forgets nothing")
		require.Equal(t, contracts.WaitpointClosed, info.Status)
		// a suspend that succeeds forgets the old records first
		s1, err := e.Suspend(bg, contracts.SuspendArgs{ExecutionID: "forget-1", Waitpoints: []contracts.WaitpointSpec{{Key: "b"}}, Condition: contracts.ConditionAny})
		require.NoError(t, err)
		_, err = e.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: "forget-1", WaitpointID: p.WaitpointID})
		require.ErrorIs(t, err, contracts.ErrWaitpointNotFound)
		_, err = deliverPending(e, p, "", "", contracts.SignalLimits{})
		require.ErrorIs(t, err, contracts.ErrSignatureMismatch)
		o, err := e.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "forget-1", Limit: 10})
		require.NoError(t, err)
		require.Equal(t, s1.SuspensionID, o.SuspensionID, "only the new suspension is left")
		require.True(t, deliver(t, e, s1, 0, contracts.DeliverSignalArgs{}).Resumed)
		c1, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
		require.NoError(t, err)
		_, err = e.CompleteExecution(bg, contracts.CompleteArgs{ExecutionID: "forget-1", LeaseID: c1.LeaseID})
		require.NoError(t, err)

		// create_waitpoint forgets too, and writes the new waitpoint
		old := create(t, e, "forget-2", "a", ttl)
		time.Sleep(2*ttl*time.Millisecond + 100*time.Millisecond)
		fresh := create(t, e, "forget-2", "a", hourMs)
		_, err = e.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: "forget-2", WaitpointID: old.WaitpointID})
		require.ErrorIs(t, err, contracts.ErrWaitpointNotFound)
		info, err = e.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: "forget-2", WaitpointID: fresh.WaitpointID})
		require.NoError(t, err)
		require.Equal(t, contracts.WaitpointPending, info.Status)
		// ... and the suspend that writes, with the suspension
		sus, err := e.Suspend(bg, using("forget-2", contracts.ConditionAny, fresh))
		require.NoError(t, err)
		d := deliver(t, e, sus, 0, contracts.DeliverSignalArgs{})
		require.True(t, d.Resumed)
		c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
		require.NoError(t, err)
		_, err = e.CompleteExecution(bg, contracts.CompleteArgs{ExecutionID: "forget-2", LeaseID: c.LeaseID})
		require.NoError(t, err)
		requireForgotten(t, b)
	})
}

// The index of a tag holds exactly the suspended executions whose
// suspension carries it, through resume, cancel, claim and complete, so
// list_suspended by tag reads only those.
func TestTagIndexHoldsOnlySuspended(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		e := lops(b)
		tagged := func(tag string) []string {
			t.Helper()
			var members []string
			for p := range b.parts {
				m, err := b.client.ZRange(bg, b.key(p, "idx:tag:"+tag), 0, -1).Result()
				require.NoError(t, err)
				for _, x := range m {
					members = append(members, x[21:])
				}
			}
			slices.Sort(members)
			return members
		}
		listed := func(tag string) []string {
			t.Helper()
			l, err := e.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: 100, Tag: tag})
			require.NoError(t, err)
			var ids []string
			for _, x := range l.Executions {
				require.Contains(t, x.Tags, tag)
				ids = append(ids, x.ExecutionID)
			}
			slices.Sort(ids)
			return ids
		}
		for i := range 20 {
			suspend(t, e, fmt.Sprintf("plain-%02d", i), "a")
		}
		var sus []contracts.SuspendOutcome
		for i, tags := range [][]string{{"vip"}, {"vip", "eu"}, {"eu"}, {"vip"}} {
			a := using(fmt.Sprintf("tagged-%d", i), contracts.ConditionAny, "a")
			a.Tags = tags
			out, err := e.Suspend(bg, a)
			require.NoError(t, err)
			sus = append(sus, out)
		}
		require.Equal(t, []string{"tagged-0", "tagged-1", "tagged-3"}, tagged("vip"))
		require.Equal(t, tagged("vip"), listed("vip"))
		require.Equal(t, []string{"tagged-1", "tagged-2"}, listed("eu"))

		deliver(t, e, sus[0], 0, contracts.DeliverSignalArgs{}) // resumes tagged-0
		_, err := e.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: "tagged-1"})
		require.NoError(t, err)
		require.Equal(t, []string{"tagged-3"}, tagged("vip"))
		require.Equal(t, []string{"tagged-2"}, tagged("eu"))
		for range 2 {
			c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
			require.NoError(t, err)
			if c.ExecutionID == "tagged-1" { // suspended again under its lease, with another tag
				a := using("tagged-1", contracts.ConditionAny, "b")
				a.Tags, a.LeaseID = []string{"eu"}, &c.LeaseID
				_, err := e.Suspend(bg, a)
				require.NoError(t, err)
				continue
			}
			_, err = e.CompleteExecution(bg, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID})
			require.NoError(t, err)
		}
		require.Equal(t, []string{"tagged-3"}, tagged("vip"))
		require.Equal(t, []string{"tagged-1", "tagged-2"}, tagged("eu"))
		require.Equal(t, tagged("eu"), listed("eu"))
		require.Empty(t, listed("none"))
	})
}

// The budgets of a pending waitpoint (docs/spec.md §8.1, §8.3) are decided
// in the delivery script as driver.CheckPendingDeliverable decides them:
// the same errors, details included, and a refused delivery writes nothing.
func TestPendingBudgetsAreTheKits(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		e := lops(b)
		limits := contracts.SignalLimits{PerWaitpoint: 2, PerSuspension: 3, PayloadBytes: 10}
		kit := func(signals int, pool driver.SignalBudget, payload string) *contracts.Error {
			t.Helper()
			err := driver.CheckPendingDeliverable(driver.PendingWaitpoint{Signals: signals, ExpiresAtMs: 1}, pool,
				contracts.DeliverSignalArgs{Limits: limits, Payload: []byte(payload)}, 0)
			require.Error(t, err)
			return contracts.AsError(err)
		}
		p := create(t, e, "budget-1", "a", hourMs)
		q := create(t, e, "budget-1", "b", hourMs)
		for _, payload := range []string{"1234", "12"} {
			_, err := deliverPending(e, p, payload, "", limits)
			require.NoError(t, err)
		}
		_, err := deliverPending(e, p, "", "", limits)
		requireSameError(t, kit(2, driver.SignalBudget{SuspensionSignals: 2, PayloadBytes: 6}, ""), err, "per waitpoint")
		_, err = deliverPending(e, q, "12345", "", limits)
		requireSameError(t, kit(0, driver.SignalBudget{SuspensionSignals: 2, PayloadBytes: 6}, "12345"), err, "payload bytes")
		_, err = deliverPending(e, q, "1234", "", limits)
		require.NoError(t, err, "a payload that fills the budget exactly")
		_, err = deliverPending(e, q, "", "", limits)
		requireSameError(t, kit(1, driver.SignalBudget{SuspensionSignals: 3, PayloadBytes: 10}, ""), err, "per suspension")
		// expired pending waitpoints no longer count against the pool (one
		// that does not expire keeps the execution from being forgotten)
		create(t, e, "budget-2", "keep", hourMs)
		short := create(t, e, "budget-2", "a", 100)
		_, err = deliverPending(e, short, "1234567890", "", limits)
		require.NoError(t, err)
		time.Sleep(300 * time.Millisecond)
		long := create(t, e, "budget-2", "b", hourMs)
		_, err = deliverPending(e, long, "1234567890", "", limits)
		require.NoError(t, err, "the expired waitpoint's payload left the pool")
		_, err = deliverPending(e, short, "", "", limits)
		requireSameError(t, contracts.AsError(driver.PendingWaitpointExpired()), err, "expired")
	})
}

// Every new write script answers a re-sent call (same ARGV) as it answered
// the first, and writes nothing more (see lua/prelude.lua).
func TestLifecycleScriptsAnswerAReSentCall(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		e, b := seededEngine(t, s, 16, nil)
		const id = "resend-v2"
		p := driver.PartitionOf(id, b.parts)
		twice := func(name string, args ...any) []any {
			t.Helper()
			sc := scriptByNameV2(t, name)
			first, err1 := b.run(bg, sc, p, args...)
			second, err2 := b.run(bg, sc, p, args...)
			require.NoError(t, err1, name)
			require.NoError(t, err2, name+" re-sent")
			require.Equal(t, first, second, name+" re-sent")
			return first
		}
		v, err := b.run(bg, scriptCreateRead, p, id)
		require.NoError(t, err)
		d := b.decideCreate(contracts.CreateWaitpointArgs{ExecutionID: id, Key: "a", ExpiresInMs: hourMs}, p, v)
		require.NoError(t, d.err)
		require.Equal(t, "ok", str(twice("create_write", d.argv...), 0))
		n, err := b.client.SCard(bg, b.key(p, "xw:"+id)).Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "one waitpoint for one waitpoint_id")

		sus, err := e.Suspend(bg, using(id, contracts.ConditionAny, d.out))
		require.NoError(t, err)
		op := driver.NewID()
		require.Equal(t, []any{"cancelled", sus.SuspensionID}, twice("cancel", id, op))
		c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
		require.NoError(t, err)
		twice("extend", id, c.LeaseID, "60000", driver.NewID())
		released := driver.NewID()
		twice("release", id, c.LeaseID, released, "-1", driver.NewID())
		lease, err := b.client.HGet(bg, b.key(p, "x:"+id), "lease").Result()
		require.NoError(t, err)
		require.Equal(t, released, lease)
	})
}

// scriptByNameV2 returns a script of version 2 by its file name.
func scriptByNameV2(t *testing.T, name string) *redis.Script {
	t.Helper()
	s, ok := map[string]*redis.Script{
		"create_write": scriptCreateWrite, "cancel": scriptCancel, "extend": scriptExtend, "release": scriptRelease,
	}[name]
	require.True(t, ok, "no script %s", name)
	return s
}

// get_waitpoint shows the fingerprint of the token last handed out, which
// the store keeps as the first 16 hex digits of its SHA-256; no token and
// no MAC of a pending waitpoint is stored, before and after a suspend used
// it and signed its token again under a rotated kid.
func TestPendingTokensAreNotStored(t *testing.T) {
	require.Equal(t, driver.TokenFingerprint("kid-a:00ff"), fingerprintOf(tokenHash("kid-a:00ff")))
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		e := lops(b)
		p := create(t, e, "at-rest-v2", "a", hourMs, "mail")
		_, err := deliverPending(e, p, `{"a":1}`, "d", contracts.SignalLimits{})
		require.NoError(t, err)
		info, err := e.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: p.ExecutionID, WaitpointID: p.WaitpointID})
		require.NoError(t, err)
		require.Equal(t, driver.TokenFingerprint(p.Token), *info.TokenFingerprint)
		require.Equal(t, []string{"mail"}, info.Tags)
		mustRotate(t, b, "kid-b", secret(2), 600000)
		a := using(p.ExecutionID, contracts.ConditionAll, p, "b")
		a.IdempotencyKey = "k"
		sus, err := e.Suspend(bg, a)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(sus.Waitpoints[0].Token, "kid-b:"), "signed again under the current kid")
		info, err = e.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: p.ExecutionID, WaitpointID: p.WaitpointID})
		require.NoError(t, err)
		require.Equal(t, driver.TokenFingerprint(sus.Waitpoints[0].Token), *info.TokenFingerprint)
		require.Equal(t, contracts.WaitpointOpen, info.Status)
		_, err = deliverPending(e, p, "", "", contracts.SignalLimits{}) // the first token, in its kid's grace: slow path
		require.NoError(t, err)

		raw := rawStore(t, b)
		for _, tok := range []string{p.Token, sus.Waitpoints[0].Token, sus.Waitpoints[1].Token} {
			_, mac, _ := strings.Cut(tok, ":")
			require.False(t, bytes.Contains(raw, []byte(tok)), "the store holds a token")
			require.False(t, bytes.Contains(bytes.ToLower(raw), []byte(mac[:16])), "the store holds part of a MAC")
		}
	})
}

// A suspension written before thresholds were stored (no need field,
// pending = every waitpoint) still resumes by its condition.
func TestSuspensionOfAnEarlierVersionResumes(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		e := lops(b)
		for _, cond := range []string{contracts.ConditionAny, contracts.ConditionAll} {
			id := "legacy-" + cond
			sus, err := e.Suspend(bg, using(id, cond, "a", "b"))
			require.NoError(t, err)
			x := b.key(driver.PartitionOf(id, b.parts), "x:"+id)
			require.NoError(t, b.client.HDel(bg, x, "need", "tags", "ver").Err())
			require.NoError(t, b.client.HSet(bg, x, "pending", 2).Err())
			d := deliver(t, e, sus, 0, contracts.DeliverSignalArgs{})
			require.Equal(t, cond == contracts.ConditionAny, d.Resumed, cond)
			if !d.Resumed {
				require.True(t, deliver(t, e, sus, 1, contracts.DeliverSignalArgs{}).Resumed, cond)
			}
		}
	})
}

// A lease extended to expire sooner than it did is claimable once the new
// expiry passed: the partitions' claim hint follows the extension (a hint
// left at the old expiry made claims answer none for its whole length).
func TestShortenedLeaseIsClaimable(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		e, _ := seededEngine(t, s, 16, nil)
		sus, err := e.Suspend(bg, contracts.SuspendArgs{ExecutionID: "short-1", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Condition: contracts.ConditionAny})
		require.NoError(t, err)
		deliver(t, e, sus, 0, contracts.DeliverSignalArgs{})
		c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w1", LeaseMs: 600_000})
		require.NoError(t, err)
		_, err = e.ExtendLease(bg, contracts.ExtendLeaseArgs{ExecutionID: "short-1", LeaseID: c.LeaseID, LeaseMs: 1})
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
		again, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w2", LeaseMs: 60_000})
		require.NoError(t, err)
		require.Equal(t, contracts.OutcomeClaimed, again.Outcome, "the shortened lease expired: the execution is claimable")
		require.Equal(t, "short-1", again.ExecutionID)
	})
}
