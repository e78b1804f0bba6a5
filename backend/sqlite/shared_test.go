package sqlite

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// TestSuspensionSurvivesReopen suspends, closes, reopens the file, and
// delivers, claims and completes through the new backend.
func TestSuspensionSurvivesReopen(t *testing.T) {
	f := seeded(t)
	s := f.suspend(withIdem(suspendArgs("e1", "a", "b"), "i1"))
	if err := f.b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(f.ctx, f.b.Path(), WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	f.b, f.eng = b2, engine.New(b2)

	if replay := f.suspend(withIdem(suspendArgs("e1", "a", "b"), "i1")); jsonOf(t, replay) != jsonOf(t, s) {
		t.Fatalf("replay after reopen = %s, want %s", jsonOf(t, replay), jsonOf(t, s))
	}
	if got := f.list(10, ""); len(got.Executions) != 1 {
		t.Fatalf("list after reopen = %s", jsonOf(t, got))
	}
	f.deliver(s, 1, "d1")
	c := f.claim(time.Minute)
	if c.ExecutionID != "e1" || len(c.Signals) != 1 {
		t.Fatalf("claim after reopen = %s", jsonOf(t, c))
	}
	f.must(f.eng.CompleteExecution(f.ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID}))
}

// TestClaimsAcrossBackendsOnOneFile claims from two backends (two connection
// pools, as two processes would have) on one file at once: each resumed
// execution goes to exactly one caller.
func TestClaimsAcrossBackendsOnOneFile(t *testing.T) {
	f := seeded(t)
	const n = 40
	for i := range n {
		f.deliver(f.suspend(suspendArgs("e"+strconv.Itoa(i), "a")), 0, "")
	}
	other, err := Open(context.Background(), f.b.Path(), WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	engines := []*engine.Engine{f.eng, engine.New(other)}

	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for i := range 3 * n {
		wg.Go(func() {
			c, err := engines[i%2].ClaimResumedExecution(f.ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			seen[c.ExecutionID]++
		})
	}
	wg.Wait()
	for id, c := range seen {
		if id != "" && c != 1 {
			t.Fatalf("%s claimed %d times", id, c)
		}
	}
	if len(seen) != n+1 || seen[""] != 2*n {
		t.Fatalf("claims = %v", seen)
	}
}
