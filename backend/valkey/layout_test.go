package valkey

import (
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// testdata/layout1 holds the scripts of the driver as they were before
// waitpoints moved into their execution's hash (layout 2, see ff_wp in
// lua/prelude.lua), copied unchanged, so that tests can write a store the
// way the previous version wrote it.
var layout1 = struct {
	sync.Mutex
	scripts map[string]*redis.Script
}{scripts: map[string]*redis.Script{}}

// layout1Script returns testdata/layout1/<name>.lua with that copy's
// prelude and libs in front, as newScript builds the driver's scripts.
func layout1Script(t testing.TB, name string, libs ...string) *redis.Script {
	t.Helper()
	layout1.Lock()
	defer layout1.Unlock()
	if s, ok := layout1.scripts[name]; ok {
		return s
	}
	read := func(f string) string {
		b, err := os.ReadFile("testdata/layout1/" + f + ".lua")
		require.NoError(t, err)
		return string(b)
	}
	src := read("prelude")
	for _, lib := range libs {
		src += "\n" + read(lib)
	}
	s := redis.NewScript(src + "\n" + read(name))
	layout1.scripts[name] = s
	return s
}

// suspendLayout1 suspends as the previous version did: its suspend_read
// and suspend_write around the driver kit's decision, which did not change.
func suspendLayout1(t testing.TB, b *Backend, args contracts.SuspendArgs) contracts.SuspendOutcome {
	t.Helper()
	p := driver.PartitionOf(args.ExecutionID, b.parts)
	argv := []any{args.ExecutionID, args.IdempotencyKey, strconv.Itoa(conditionNeed(args.Condition, len(args.Waitpoints)))}
	for _, id := range driver.PendingIDs(args) {
		argv = append(argv, id)
	}
	v, err := b.run(bg, layout1Script(t, "suspend_read"), p, argv...)
	require.NoError(t, err)
	d := b.decideSuspend(args, p, v)
	require.NoError(t, d.err)
	require.NotNil(t, d.argv, "a suspend to write")
	for _, wp := range d.out.Waitpoints { // the previous version passed each token's digest as hex
		i := slices.Index(d.argv, any(tokenDigest(wp.Token)))
		require.GreaterOrEqual(t, i, 0, "the digest of %s among suspend_write's arguments", wp.WaitpointKey)
		d.argv[i] = tokenHash(wp.Token)
	}
	w, err := b.run(bg, layout1Script(t, "suspend_write"), p, d.argv...)
	require.NoError(t, err)
	require.Equal(t, "ok", str(w, 0))
	return d.out
}

// createLayout1 opens a pending waitpoint as the previous version did.
func createLayout1(t testing.TB, b *Backend, args contracts.CreateWaitpointArgs) contracts.CreateWaitpointOutcome {
	t.Helper()
	p := driver.PartitionOf(args.ExecutionID, b.parts)
	v, err := b.run(bg, layout1Script(t, "create_read"), p, args.ExecutionID)
	require.NoError(t, err)
	d := b.decideCreate(args, p, v)
	require.NoError(t, d.err)
	w, err := b.run(bg, layout1Script(t, "create_write"), p, d.argv...)
	require.NoError(t, err)
	require.Equal(t, "ok", str(w, 0))
	return d.out
}

// deliverLayout1 delivers the token suspend issued with the previous
// version's one-trip script.
func deliverLayout1(t testing.TB, b *Backend, args contracts.DeliverSignalArgs) contracts.DeliverSignalOutcome {
	t.Helper()
	tok, err := contracts.ParseToken("token", args.Token)
	require.NoError(t, err)
	signalID := driver.NewID()
	argv := append(deliverArgv(tok.Kid, signalID, args), tokenHash(args.Token))
	v, err := b.run(bg, layout1Script(t, "deliver"), driver.PartitionOf(args.ExecutionID, b.parts), argv...)
	require.NoError(t, err)
	out, ok := parseDeliver(v, signalID)
	require.True(t, ok, "the previous version's deliver: %v", v)
	return out
}

// claimLayout1 claims on the partition of id with the previous version's
// claim script, which takes the partition's oldest claimable execution.
func claimLayout1(t testing.TB, b *Backend, id string) contracts.ClaimOutcome {
	t.Helper()
	v, err := b.run(bg, layout1Script(t, "claim", "claim_lib"), driver.PartitionOf(id, b.parts), driver.NewID(), "60000")
	require.NoError(t, err)
	c, err := parseClaim(v)
	require.NoError(t, err)
	require.Equal(t, id, c.out.ExecutionID)
	return c.out
}

// tokenOf returns the delivery arguments for the waitpoint of s with key.
func tokenOf(s contracts.SuspendOutcome, key string) contracts.DeliverSignalArgs {
	for _, w := range s.Waitpoints {
		if w.WaitpointKey == key {
			return contracts.DeliverSignalArgs{ExecutionID: s.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"}
		}
	}
	panic("no waitpoint " + key)
}

// A store written by the previous version (layout 1: a hash per
// waitpoint) keeps working without a migration step: every operation of
// this version reads what the previous version's scripts wrote, writes
// its own layout next to it, and leaves the count indexes exact (each
// step compares count_executions with what describing every execution
// finds) and nothing behind once the executions complete.
func TestLayout1StoreKeepsWorking(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		ids := []string{"l1-plain", "l1-half", "l1-cancel", "l1-pending", "l1-claimed", "l1-timeout"}
		step := func(name string, want contracts.ExecutionCounts) {
			t.Helper()
			got, err := b.CountExecutions(bg, contracts.CountExecutionsArgs{})
			require.NoError(t, err, "%s: count", name)
			require.Equal(t, want, got, "%s: counts", name)
			require.Equal(t, want, recount(t, b, ids...), "%s: what describe finds", name)
		}
		claim := func(want, reason string) contracts.ClaimOutcome {
			t.Helper()
			c, err := b.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
			require.NoError(t, err)
			require.Equal(t, want, c.ExecutionID)
			require.Equal(t, reason, c.Reason)
			return c
		}
		complete := func(c contracts.ClaimOutcome) {
			t.Helper()
			_, err := b.CompleteExecution(bg, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID})
			require.NoError(t, err, "complete %s", c.ExecutionID)
		}

		// given executions written by the previous version's scripts
		plain := suspendLayout1(t, b, using("l1-plain", contracts.ConditionAny, "a", "b"))
		time.Sleep(2 * time.Millisecond)
		half := suspendLayout1(t, b, using("l1-half", contracts.ConditionAll, "a", "b"))
		require.False(t, deliverLayout1(t, b, tokenOf(half, "a")).Resumed)
		time.Sleep(2 * time.Millisecond)
		cancel := suspendLayout1(t, b, using("l1-cancel", contracts.ConditionAny, "a"))
		pending := createLayout1(t, b, contracts.CreateWaitpointArgs{ExecutionID: "l1-pending", Key: "early", ExpiresInMs: hourMs, Tags: []string{"mail"}})
		_, err := b.run(bg, layout1Script(t, "deliver"), driver.PartitionOf("l1-pending", b.parts),
			append(deliverArgv("kid-a", driver.NewID(), contracts.DeliverSignalArgs{ExecutionID: "l1-pending", WaitpointID: pending.WaitpointID,
				Token: pending.Token, Name: "early"}), tokenHash(pending.Token))...)
		require.NoError(t, err)
		claimedSus := suspendLayout1(t, b, using("l1-claimed", contracts.ConditionAny, "a"))
		deliverLayout1(t, b, tokenOf(claimedSus, "a"))
		first := claimLayout1(t, b, "l1-claimed")
		ms := int64(30)
		to := using("l1-timeout", contracts.ConditionAny, "a")
		to.TimeoutMs = &ms
		suspendLayout1(t, b, to)
		time.Sleep(60 * time.Millisecond)
		step("written by the previous version", contracts.ExecutionCounts{Suspended: 3, TimedOut: 1, Claimed: 1})

		// (a store the previous version wrote has no global list indexes:
		// this one opened it empty and marked them complete)
		require.NoError(t, b.client.Del(bg, b.prefix+"ff:list-complete").Err())

		// then this version reads them
		l, err := b.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{"l1-plain", "l1-half"}, listedIDs(l))
		require.NotNil(t, l.NextCursor)
		l, err = b.ListSuspended(bg, contracts.ListSuspendedArgs{Limit: 10, Cursor: *l.NextCursor})
		require.NoError(t, err)
		require.Equal(t, []string{"l1-cancel", "l1-timeout"}, listedIDs(l))
		info, err := b.DescribeExecution(bg, contracts.DescribeExecutionArgs{ExecutionID: "l1-half"})
		require.NoError(t, err)
		require.Len(t, info.Waitpoints, 2)
		requireDescribedAsGot(t, b, "l1-half")
		wp, err := b.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: "l1-half", WaitpointID: half.Waitpoints[0].WaitpointID})
		require.NoError(t, err)
		require.Equal(t, 1, wp.Signals)
		require.Equal(t, driver.TokenFingerprint(half.Waitpoints[0].Token), *wp.TokenFingerprint)
		obs, err := b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: "l1-half", Limit: 10})
		require.NoError(t, err)
		require.Len(t, obs.Signals, 1)

		// and drives every operation on them
		d, err := b.DeliverSignal(bg, tokenOf(half, "b"))
		require.NoError(t, err)
		require.True(t, d.Resumed, "the second waitpoint of condition all resumes")
		step("resumed", contracts.ExecutionCounts{Suspended: 2, TimedOut: 1, Resumed: 1, Claimed: 1})
		_, err = b.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: "l1-cancel"})
		require.NoError(t, err)
		_, err = b.DeliverSignal(bg, tokenOf(cancel, "a"))
		require.ErrorIs(t, err, contracts.ErrWaitpointClosed)
		step("cancelled", contracts.ExecutionCounts{Suspended: 1, TimedOut: 1, Resumed: 2, Claimed: 1})
		c := claim("l1-half", contracts.ReasonSignal)
		require.Len(t, c.Signals, 2, "the signal the previous version recorded, then this version's")
		_, err = b.ExtendLease(bg, contracts.ExtendLeaseArgs{ExecutionID: "l1-half", LeaseID: c.LeaseID, LeaseMs: 60_000})
		require.NoError(t, err)
		_, err = b.ReleaseExecution(bg, contracts.ReleaseArgs{ExecutionID: "l1-half", LeaseID: c.LeaseID})
		require.NoError(t, err)
		step("released", contracts.ExecutionCounts{Suspended: 1, TimedOut: 1, Resumed: 1, Claimed: 1, LeaseExpired: 1})
		c = claim("l1-half", contracts.ReasonSignal)
		again := using("l1-half", contracts.ConditionAny, "c")
		again.LeaseID = &c.LeaseID
		resus, err := b.Suspend(bg, again)
		require.NoError(t, err)
		old, err := b.GetWaitpoint(bg, contracts.GetWaitpointArgs{ExecutionID: "l1-half", WaitpointID: half.Waitpoints[1].WaitpointID})
		require.NoError(t, err)
		require.Equal(t, contracts.WaitpointClosed, old.Status, "a waitpoint of the earlier suspension")
		info, err = b.DescribeExecution(bg, contracts.DescribeExecutionArgs{ExecutionID: "l1-half"})
		require.NoError(t, err)
		require.Len(t, info.Waitpoints, 1, "the latest suspension's waitpoints")
		requireDescribedAsGot(t, b, "l1-half")
		step("suspended again", contracts.ExecutionCounts{Suspended: 2, TimedOut: 1, Resumed: 1, Claimed: 1})
		require.True(t, deliver(t, b, resus, 0, contracts.DeliverSignalArgs{}).Resumed)

		complete(claim("l1-cancel", contracts.ReasonCancelled))
		complete(claim("l1-timeout", contracts.ReasonTimeout))
		complete(claim("l1-half", contracts.ReasonSignal)) // suspended last
		step("three completed", contracts.ExecutionCounts{Suspended: 1, Claimed: 1})

		// the execution the previous version claimed suspends again under its lease
		_, err = b.ExtendLease(bg, contracts.ExtendLeaseArgs{ExecutionID: "l1-claimed", LeaseID: first.LeaseID, LeaseMs: 60_000})
		require.NoError(t, err)
		again = using("l1-claimed", contracts.ConditionAny, "b")
		again.LeaseID = &first.LeaseID
		resus, err = b.Suspend(bg, again)
		require.NoError(t, err)
		_, err = b.DeliverSignal(bg, tokenOf(claimedSus, "a"))
		require.ErrorIs(t, err, contracts.ErrWaitpointClosed)
		require.True(t, deliver(t, b, resus, 0, contracts.DeliverSignalArgs{}).Resumed)
		complete(claim("l1-claimed", contracts.ReasonSignal))

		// the pending waitpoint the previous version opened joins a suspension
		joined, err := b.Suspend(bg, using("l1-pending", contracts.ConditionAll, pending, "b"))
		require.NoError(t, err)
		require.Equal(t, contracts.OutcomeSuspended, joined.Outcome)
		requireDescribedAsGot(t, b, "l1-pending")
		require.True(t, deliver(t, b, joined, 1, contracts.DeliverSignalArgs{}).Resumed)
		c = claim("l1-pending", contracts.ReasonSignal)
		require.Len(t, c.Signals, 2, "the buffered signal, then this version's")
		complete(c)

		d, err = b.DeliverSignal(bg, tokenOf(plain, "b"))
		require.NoError(t, err)
		require.True(t, d.Resumed)
		complete(claim("l1-plain", contracts.ReasonSignal))
		step("all completed", contracts.ExecutionCounts{})
		requireForgotten(t, b)
	})
}

// listedIDs returns the execution ids of a page, in order.
func listedIDs(r contracts.ListSuspendedResult) []string {
	out := make([]string, 0, len(r.Executions))
	for _, x := range r.Executions {
		out = append(out, x.ExecutionID)
	}
	return out
}
