package boltstore

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Driver-level tests of version 2 of the waitpoint lifecycle
// (docs/spec.md §8): what the shared conformance suite cannot see from
// outside the driver — the tags bucket, the renumbering of buffered
// signals, and the upgrade of layout 1 files.

var lctx = context.Background()

// openLifecycle opens a seeded Engine on a fresh bolt file, whose clock
// runs skew ahead of the wall clock.
func openLifecycle(t *testing.T) (*engine.Engine, *Backend, *atomic.Int64) {
	t.Helper()
	skew := new(atomic.Int64)
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	b, err := Open(lctx, filepath.Join(t.TempDir(), "ff.bolt"), WithoutSync(), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	e := engine.New(b)
	if _, err := e.Seed(lctx, contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret("0123456789abcdef0123456789abcdef")}); err != nil {
		t.Fatal(err)
	}
	return e, b, skew
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// tagEntries lists the executions the tags bucket holds under tag.
func tagEntries(t *testing.T, b *Backend, tag string) []string {
	t.Helper()
	var ids []string
	err := b.db.View(func(tx *bolt.Tx) error {
		prefix := tagPrefix(tag)
		c := tx.Bucket(bucketTags).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, orderID(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func deliverArgs(out contracts.SuspendOutcome, i int, name string) contracts.DeliverSignalArgs {
	w := out.Waitpoints[i]
	return contracts.DeliverSignalArgs{ExecutionID: out.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: name}
}

// Given tagged suspensions, then the tags bucket holds an entry per tag
// exactly while each is suspended: a resuming delivery, a cancel and a
// timeout claim remove them, and list_suspended by tag lists what it holds.
func TestTagEntriesOnlyWhileSuspended(t *testing.T) {
	e, b, skew := openLifecycle(t)
	timeout := int64(1000)
	suspend := func(id string, tags ...string) contracts.SuspendOutcome {
		return must[contracts.SuspendOutcome](t, "suspend "+id)(e.Suspend(lctx, contracts.SuspendArgs{
			ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Tags: tags, TimeoutMs: &timeout,
		}))
	}
	resumed := suspend("resumed", "mail", "vip")
	suspend("cancelled", "mail")
	suspend("waiting", "mail")
	suspend("untagged")
	if got := tagEntries(t, b, "mail"); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"cancelled", "resumed", "waiting"}) {
		t.Fatalf("mail entries %v", got)
	}
	must[contracts.DeliverSignalOutcome](t, "deliver")(e.DeliverSignal(lctx, deliverArgs(resumed, 0, "go")))
	must[contracts.CancelOutcome](t, "cancel")(e.CancelSuspension(lctx, contracts.CancelArgs{ExecutionID: "cancelled"}))
	if got := tagEntries(t, b, "vip"); len(got) != 0 {
		t.Fatalf("vip entries after resume: %v", got)
	}
	if got := tagEntries(t, b, "mail"); !slices.Equal(got, []string{"waiting"}) {
		t.Fatalf("mail entries after resume and cancel: %v", got)
	}
	page := must[contracts.ListSuspendedResult](t, "list")(e.ListSuspended(lctx, contracts.ListSuspendedArgs{Tag: "mail"}))
	if len(page.Executions) != 1 || page.Executions[0].ExecutionID != "waiting" || !slices.Equal(page.Executions[0].Tags, []string{"mail"}) {
		t.Fatalf("list by tag: %+v", page)
	}

	// claim all four (the waiting and the untagged one past their timeout;
	// the order depends on whether the suspends shared a millisecond)
	skew.Store(int64(time.Hour))
	for range 4 {
		c := must[contracts.ClaimOutcome](t, "claim")(e.ClaimResumedExecution(lctx, contracts.ClaimArgs{WorkerID: "w"}))
		if c.Outcome != contracts.OutcomeClaimed {
			t.Fatalf("claim: %+v", c)
		}
	}
	if got := tagEntries(t, b, "mail"); len(got) != 0 {
		t.Fatalf("mail entries after the timeout claim: %v", got)
	}
}

// Given pending waitpoints that receive signals before the suspend and
// while the suspension is open (one of them unused by it), then the
// suspension's signals are those of its waitpoints in delivery order, and
// observe pages of one signal walk exactly them: the buffered signals are
// renumbered into the suspension, and signals buffered on the unused
// pending waitpoint never interleave.
func TestBufferedSignalsJoinInDeliveryOrder(t *testing.T) {
	e, _, _ := openLifecycle(t)
	create := func(key string) contracts.CreateWaitpointOutcome {
		return must[contracts.CreateWaitpointOutcome](t, "create "+key)(e.CreateWaitpoint(lctx, contracts.CreateWaitpointArgs{
			ExecutionID: "x", Key: key, ExpiresInMs: 3_600_000,
		}))
	}
	p1, p2, p3 := create("p1"), create("p2"), create("p3")
	var want []string
	send := func(id, token, name string, joins bool) {
		out := must[contracts.DeliverSignalOutcome](t, "deliver "+name)(e.DeliverSignal(lctx, contracts.DeliverSignalArgs{
			ExecutionID: "x", WaitpointID: id, Token: token, Name: name,
		}))
		if joins {
			want = append(want, out.SignalID)
		}
	}
	send(p1.WaitpointID, p1.Token, "s1", true)
	send(p3.WaitpointID, p3.Token, "s2", false)
	send(p2.WaitpointID, p2.Token, "s3", true)
	send(p1.WaitpointID, p1.Token, "s4", true)
	s := must[contracts.SuspendOutcome](t, "suspend")(e.Suspend(lctx, contracts.SuspendArgs{
		ExecutionID: "x", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Pending: p1.WaitpointID}, {Key: "k"}, {Pending: p2.WaitpointID}},
	}))
	if s.Outcome != contracts.OutcomeSuspended {
		t.Fatalf("suspend: %+v", s)
	}
	send(p3.WaitpointID, p3.Token, "s5", false)
	send(s.Waitpoints[2].WaitpointID, s.Waitpoints[2].Token, "s6", true)
	send(p3.WaitpointID, p3.Token, "s7", false)
	send(s.Waitpoints[1].WaitpointID, s.Waitpoints[1].Token, "s8", true) // resumes

	var got []string
	cursor := ""
	for {
		page := must[contracts.ObserveSignalsResult](t, "observe")(e.ObserveSignals(lctx, contracts.ObserveSignalsArgs{ExecutionID: "x", Limit: 1, Cursor: cursor}))
		for _, sig := range page.Signals {
			got = append(got, sig.SignalID)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if !slices.Equal(got, want) {
		t.Fatalf("observe pages %v, want %v", got, want)
	}
	c := must[contracts.ClaimOutcome](t, "claim")(e.ClaimResumedExecution(lctx, contracts.ClaimArgs{WorkerID: "w"}))
	got = got[:0]
	for _, sig := range c.Signals {
		got = append(got, sig.SignalID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("claim signals %v, want %v", got, want)
	}
	info := must[contracts.WaitpointInfo](t, "get p3")(e.GetWaitpoint(lctx, contracts.GetWaitpointArgs{ExecutionID: "x", WaitpointID: p3.WaitpointID}))
	if info.Status != contracts.WaitpointPending || info.Signals != 3 {
		t.Fatalf("p3: %+v", info)
	}
	must[contracts.CompleteOutcome](t, "complete")(e.CompleteExecution(lctx, contracts.CompleteArgs{ExecutionID: "x", LeaseID: c.LeaseID}))
	if n := Leftover(t, e.Backend(), "x"); n != 0 {
		t.Fatalf("complete left %d keys of x (pending waitpoints, buffered signals)", n)
	}
}

// Given a file of layout 1, when it is opened, then it is upgraded in place
// to the current layout (its documents read as they are; the tags bucket is
// added).
func TestLayoutOneUpgrades(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ff.bolt")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets[:len(allBuckets)-1] { // layout 1: every bucket but tags
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyLayout, []byte("1")); err != nil {
			return err
		}
		return meta.Put(keyPartitions, []byte("1"))
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	b, err := Open(lctx, path)
	if err != nil {
		t.Fatalf("Open of a layout 1 file: %v", err)
	}
	defer b.Close()
	err = b.db.View(func(tx *bolt.Tx) error {
		if got := string(tx.Bucket(bucketMeta).Get(keyLayout)); got != layout {
			t.Errorf("layout %q after open, want %q", got, layout)
		}
		if tx.Bucket(bucketTags) == nil {
			t.Error("no tags bucket after the upgrade")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
