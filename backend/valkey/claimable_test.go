package valkey

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// claimableWakes runs b.WatchClaimable until the test ends and returns its
// wake-ups and its result, after the first wake-up (the subscription's).
func claimableWakes(t *testing.T, ctx context.Context, b *Backend) (<-chan struct{}, <-chan error) {
	t.Helper()
	wakes := make(chan struct{}, 64)
	done := make(chan error, 1)
	go func() { done <- b.WatchClaimable(ctx, func() { wakes <- struct{}{} }) }()
	select {
	case <-wakes:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after the subscription")
	}
	return wakes, done
}

// expectWake waits for a wake-up when want, and makes sure none comes
// within 300 ms otherwise.
func expectWake(t *testing.T, wakes <-chan struct{}, what string, want bool) {
	t.Helper()
	wait := 300 * time.Millisecond
	if want {
		wait = 5 * time.Second
	}
	select {
	case <-wakes:
		require.True(t, want, "%s woke the watcher", what)
	case <-time.After(wait):
		require.False(t, want, "%s did not wake the watcher of another backend", what)
	}
}

// Given a claimable watcher on one backend and writes through another (as
// through another process), a resuming delivery, a release and a cancel
// each wake it; a suspend, a delivery that resumes nothing and a refused
// cancel do not. The claim that follows a wake-up finds the execution, and
// the watch returns nil once ctx ends. On a cluster the publication crosses
// nodes (the watcher's connection is on one master, the partitions on
// all).
func TestClaimableWatchWakesAcrossProcesses(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		for _, p := range []int{256, 1} {
			t.Run("P"+itoa(p), func(t *testing.T) {
				watcher, raw := openFresh(t, s, p)
				wb := openURL(t, raw, nil)
				writer := engine.New(wb)
				mustSeed(t, wb, "kid-a", secret(1))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				wakes, done := claimableWakes(t, ctx, watcher)

				sus, err := writer.Suspend(bg, contracts.SuspendArgs{ExecutionID: "e1", Condition: contracts.ConditionAll,
					Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
				require.NoError(t, err)
				expectWake(t, wakes, "a suspend", false)
				deliverTo := func(i int) {
					w := sus.Waitpoints[i]
					_, err := writer.DeliverSignal(bg, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
					require.NoError(t, err)
				}
				deliverTo(0)
				expectWake(t, wakes, "a delivery that resumed nothing", false)
				deliverTo(1)
				expectWake(t, wakes, "a resuming delivery", true)

				c, err := writer.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w"})
				require.NoError(t, err)
				require.Equal(t, "e1", c.ExecutionID, "the claim after the wake-up")
				expectWake(t, wakes, "a claim", false)
				_, err = writer.ReleaseExecution(bg, contracts.ReleaseArgs{ExecutionID: "e1", LeaseID: c.LeaseID})
				require.NoError(t, err)
				expectWake(t, wakes, "a release", true)

				_, err = writer.Suspend(bg, contracts.SuspendArgs{ExecutionID: "e2", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
				require.NoError(t, err)
				expectWake(t, wakes, "a suspend", false)
				_, err = writer.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: "e2"})
				require.NoError(t, err)
				expectWake(t, wakes, "a cancel", true)
				_, err = writer.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: "e2"})
				require.ErrorIs(t, err, contracts.ErrNotSuspended, "a second cancel")
				expectWake(t, wakes, "a refused cancel", false)

				cancel()
				select {
				case err := <-done:
					require.NoError(t, err, "WatchClaimable after ctx ended")
				case <-time.After(10 * time.Second):
					t.Fatal("WatchClaimable did not return after ctx ended")
				}
			})
		}
	})
}

// Given watchers of two stores on one server (two prefixes), a resuming
// delivery in one wakes its own watcher only.
func TestClaimableWatchIsPerPrefix(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		mine, _ := openFresh(t, s, 16)
		other, _ := openFresh(t, s, 16)
		mustSeed(t, other, "kid-a", secret(1))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wakes, _ := claimableWakes(t, ctx, mine)
		theirs, _ := claimableWakes(t, ctx, other)

		e := engine.New(other)
		sus := suspend(t, e, "e1", "a")
		deliver(t, e, sus, 0, contracts.DeliverSignalArgs{})
		expectWake(t, theirs, "a resuming delivery in its store", true)
		expectWake(t, wakes, "a resuming delivery under another prefix", false)
	})
}

// Closing the backend ends a running WatchClaimable with nil; called after
// Close, it answers backend_closed.
func TestClaimableWatchStopsAtClose(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		b, _ := openFresh(t, s, 1)
		_, done := claimableWakes(t, context.Background(), b)
		require.NoError(t, b.Close())
		select {
		case err := <-done:
			require.NoError(t, err, "WatchClaimable after Close")
		case <-time.After(5 * time.Second):
			t.Fatal("WatchClaimable still runs after Close")
		}
		err := b.WatchClaimable(bg, func() {})
		require.True(t, errors.Is(err, contracts.ErrBackendClosed), "WatchClaimable called after Close: %v", err)
	})
}
