package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// WatchClaimable wakes after the Engine's own calls that made an execution
// claimable at once — a resuming delivery, a cancel, a release — and not
// after a delivery that did not resume; it returns nil when ctx ends.
func TestWatchClaimableWakesOnTheEnginesOwnCalls(t *testing.T) {
	ctx := context.Background()
	e := engine.New(memory.New())
	if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k", Secret: make(contracts.Secret, 32)}); err != nil {
		t.Fatal(err)
	}
	wakes := make(chan struct{}, 16)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.WatchClaimable(wctx, func() { wakes <- struct{}{} }) }()
	select { // the wake-up that says it is registered
	case <-wakes:
	case <-time.After(5 * time.Second):
		t.Fatal("no first wake-up after registering")
	}

	expectWake := func(what string, want bool) {
		t.Helper()
		select {
		case <-wakes:
			if !want {
				t.Fatalf("%s woke the watcher", what)
			}
		case <-time.After(200 * time.Millisecond):
			if want {
				t.Fatalf("%s did not wake the watcher", what)
			}
		}
	}
	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e1", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(i int) {
		w := s.Waitpoints[i]
		if _, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"}); err != nil {
			t.Fatal(err)
		}
	}
	deliver(0)
	expectWake("a delivery that did not resume", false)
	deliver(1)
	expectWake("a resuming delivery", true)

	c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w"})
	if err != nil || c.Outcome != contracts.OutcomeClaimed {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if _, err := e.ReleaseExecution(ctx, contracts.ReleaseArgs{ExecutionID: "e1", LeaseID: c.LeaseID}); err != nil {
		t.Fatal(err)
	}
	expectWake("a release", true)

	if _, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e2", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: "e2"}); err != nil {
		t.Fatal(err)
	}
	expectWake("a cancel", true)

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WatchClaimable returned %v after ctx ended, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchClaimable did not return after ctx ended")
	}
}

// Without a driver.BatchClaimer, ClaimResumedExecutions makes successive
// claims and stops at the first that finds nothing; arguments are checked
// first.
func TestClaimResumedExecutionsWithoutBatchClaimer(t *testing.T) {
	ctx := context.Background()
	// The memory backend is a BatchClaimer; this wrapper hides it.
	m := memory.New()
	e := engine.New(struct {
		driver.Backend
		driver.Lifecycle
	}{m, m})
	if _, ok := e.Backend().(driver.BatchClaimer); ok {
		t.Fatal("the wrapper is a BatchClaimer")
	}
	if _, err := e.ClaimResumedExecutions(ctx, contracts.ClaimBatchArgs{WorkerID: "w", Max: 0}); err == nil {
		t.Fatal("max 0 accepted")
	}
	out, err := e.ClaimResumedExecutions(ctx, contracts.ClaimBatchArgs{WorkerID: "w", Max: 5})
	if err != nil || len(out.Claims) != 0 {
		t.Fatalf("empty store: %+v %v", out, err)
	}
	if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k", Secret: make(contracts.Secret, 32)}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"e1", "e2"} {
		if _, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	out, err = e.ClaimResumedExecutions(ctx, contracts.ClaimBatchArgs{WorkerID: "w", Max: 5})
	if err != nil || len(out.Claims) != 2 || out.Claims[0].ExecutionID != "e1" || out.Claims[1].ExecutionID != "e2" {
		t.Fatalf("two claimable: %+v %v", out, err)
	}
}
