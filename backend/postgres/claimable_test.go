package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Given a claimable watcher on one backend and writes through another (as
// through another process), a resuming delivery, a cancel and a release
// each wake it, after their commit; a delivery that resumes nothing does
// not, and neither does a rolled-back one (a deliver refused for its lease
// is not a write). The claim that follows a wake-up finds the execution.
func TestClaimableWatchWakesAcrossProcesses(t *testing.T) {
	plain := schemaURL(t)
	writer := engine.New(openURL(t, withParam(t, plain, postgres.ParamMigrate, postgres.MigrateAuto)))
	watcher := openURL(t, plain)
	seed(t, writer, "kid-a", 0x01)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wakes := make(chan struct{}, 64)
	done := make(chan error, 1)
	go func() { done <- watcher.WatchClaimable(ctx, func() { wakes <- struct{}{} }) }()
	// The first wake-up follows the listener's connection.
	select {
	case <-wakes:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after the listener connected")
	}
	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-wakes:
			if !want {
				t.Fatalf("%s woke the watcher", what)
			}
		case <-time.After(map[bool]time.Duration{true: 5 * time.Second, false: 300 * time.Millisecond}[want]):
			if want {
				t.Fatalf("%s did not wake the watcher of another backend", what)
			}
		}
	}
	bg := context.Background()
	s, err := writer.Suspend(bg, contracts.SuspendArgs{ExecutionID: "e1", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	expect("a suspend", false)
	deliver := func(i int) {
		w := s.Waitpoints[i]
		if _, err := writer.DeliverSignal(bg, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"}); err != nil {
			t.Fatal(err)
		}
	}
	deliver(0)
	expect("a delivery that resumed nothing", false)
	deliver(1)
	expect("a resuming delivery", true)
	c, err := writer.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w"})
	if err != nil || c.ExecutionID != "e1" {
		t.Fatalf("claim after the wake-up: %+v %v", c, err)
	}
	if _, err := writer.ReleaseExecution(bg, contracts.ReleaseArgs{ExecutionID: "e1", LeaseID: c.LeaseID}); err != nil {
		t.Fatal(err)
	}
	expect("a release", true)
	if _, err := writer.Suspend(bg, contracts.SuspendArgs{ExecutionID: "e2", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: "e2"}); err != nil {
		t.Fatal(err)
	}
	expect("a cancel", true)
	if _, err := writer.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: "e2"}); err == nil {
		t.Fatal("a second cancel succeeded")
	}
	expect("a refused cancel", false)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WatchClaimable: %v, want nil after ctx ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchClaimable did not return after ctx ended")
	}
}
