package sqlite

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// TestSuspensionSurvivesReopen suspends, closes, reopens the file, and
// delivers, claims and completes through the new backend.
func TestSuspensionSurvivesReopen(t *testing.T) {
	f := harness.Seeded(t)
	s := f.Suspend(drivertest.WithIdem(drivertest.SuspendArgs("e1", "a", "b"), "i1"))
	if err := f.B.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(f.Ctx, f.B.(*Backend).Path(), WithClock(f.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	f.B, f.Eng = b2, engine.New(b2)

	if replay := f.Suspend(drivertest.WithIdem(drivertest.SuspendArgs("e1", "a", "b"), "i1")); drivertest.JSONOf(t, replay) != drivertest.JSONOf(t, s) {
		t.Fatalf("replay after reopen = %s, want %s", drivertest.JSONOf(t, replay), drivertest.JSONOf(t, s))
	}
	if got := f.List(10, ""); len(got.Executions) != 1 {
		t.Fatalf("list after reopen = %s", drivertest.JSONOf(t, got))
	}
	f.Deliver(s, 1, "d1")
	c := f.Claim(time.Minute)
	if c.ExecutionID != "e1" || len(c.Signals) != 1 {
		t.Fatalf("claim after reopen = %s", drivertest.JSONOf(t, c))
	}
	f.Must(f.Eng.CompleteExecution(f.Ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID}))
}

// TestClaimsAcrossBackendsOnOneFile claims from two backends (two connection
// pools, as two processes would have) on one file at once: each resumed
// execution goes to exactly one caller.
func TestClaimsAcrossBackendsOnOneFile(t *testing.T) {
	f := harness.Seeded(t)
	const n = 40
	for i := range n {
		f.Deliver(f.Suspend(drivertest.SuspendArgs("e"+strconv.Itoa(i), "a")), 0, "")
	}
	other, err := Open(context.Background(), f.B.(*Backend).Path(), WithClock(f.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	engines := []*engine.Engine{f.Eng, engine.New(other)}

	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for i := range 3 * n {
		wg.Go(func() {
			c, err := engines[i%2].ClaimResumedExecution(f.Ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
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
