package valkey

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// spreadIDs returns n execution ids of distinct partitions (of P), or of
// any partitions when P < n.
func spreadIDs(prefix string, n, partitions int) []string {
	var ids []string
	used := map[int]bool{}
	for i := 0; len(ids) < n; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if p := driver.PartitionOf(id, partitions); !used[p] || partitions < n {
			used[p] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// resumeAll suspends and resumes each of ids in turn, a few milliseconds
// apart, so that their suspended_at_ms order is the slice's order.
func resumeAll(t *testing.T, e ops, ids []string) {
	t.Helper()
	for _, id := range ids {
		deliver(t, e, suspend(t, e, id, "a"), 0, contracts.DeliverSignalArgs{Payload: []byte(`{"id":"` + id + `"}`)})
		time.Sleep(2 * time.Millisecond)
	}
}

// batch claims up to max through the driver.
func batch(t *testing.T, b *Backend, max int) contracts.ClaimBatchOutcome {
	t.Helper()
	out, err := b.ClaimResumedExecutions(bg, contracts.ClaimBatchArgs{WorkerID: "w", LeaseMs: 60_000, Max: max})
	require.NoError(t, err, "batch of %d", max)
	require.NotNil(t, out.Claims, "claims are [] when none")
	return out
}

// claimedIDs checks that every claim is a claim with its own lease and
// the signal resumeAll delivered, and returns the execution ids in order.
func claimedIDs(t *testing.T, claims []contracts.ClaimOutcome) []string {
	t.Helper()
	var ids []string
	leases := map[string]bool{}
	for _, c := range claims {
		require.Equal(t, contracts.OutcomeClaimed, c.Outcome)
		require.False(t, leases[c.LeaseID], "lease %s handed out twice", c.LeaseID)
		leases[c.LeaseID] = true
		require.NotEmpty(t, c.SuspensionID)
		require.Len(t, c.Signals, 1, "claim of %s: its signal", c.ExecutionID)
		require.JSONEq(t, `{"id":"`+c.ExecutionID+`"}`, string(c.Signals[0].Payload))
		ids = append(ids, c.ExecutionID)
	}
	return ids
}

// A batch claims the oldest executions of all partitions in order, each
// with its own lease, in one script call on a standalone server (the claim
// hint complete) and with P = 1, and in two pipelines on a cluster (every
// master asked, then the partitions holding the oldest); a second batch
// takes the rest, a third finds nothing ([]). Every lease completes.
func TestBatchClaimOldestFirstRoundTrips(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		for _, p := range []int{256, 1} {
			t.Run("P"+itoa(p), func(t *testing.T) {
				rt := newRoundTrips()
				_, b := seededEngine(t, s, p, rt)
				masters := countMasters(t, b)
				loadAllScripts(t, b)
				require.Empty(t, batch(t, b, 4).Claims, "nothing claimable yet") // completes the claim hint
				ids := spreadIDs("oldest", 6, p)
				resumeAll(t, b, ids)

				rt.start()
				first := batch(t, b, 4)
				singles, pipelines, nodes, _ := rt.stop()
				require.Equal(t, ids[:4], claimedIDs(t, first.Claims), "the four oldest, in order")
				t.Logf("%s P%d: a batch of 4: %d singles, %d pipelines on %d nodes (%d masters)", s.name, p, singles, pipelines, nodes, masters)
				if b.hint != "" || p == 1 {
					require.Equal(t, []int{1, 0}, []int{singles, pipelines}, "one script call")
				} else {
					require.Zero(t, singles)
					require.Equal(t, masters, nodes, "every master asked")
					require.LessOrEqual(t, pipelines, 2*masters, "two pipelines per node at most")
				}

				second := batch(t, b, 4)
				require.Equal(t, ids[4:], claimedIDs(t, second.Claims), "the remaining two")
				require.Empty(t, batch(t, b, 4).Claims, "nothing left")
				for _, c := range append(first.Claims, second.Claims...) {
					_, err := b.CompleteExecution(bg, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID})
					require.NoError(t, err, "complete %s with its lease", c.ExecutionID)
				}
			})
		}
	})
}

// Many partitions (more than HINTED_MAX, 32) hold claimable executions: on
// a standalone server the claim heads name the oldest one at a time, on a
// cluster the batch asks every partition in a pipeline; oldest first all
// the same.
func TestBatchClaimManyPartitions(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 256, nil)
		require.Empty(t, batch(t, b, 1).Claims)
		ids := spreadIDs("many", 40, 256)
		resumeAll(t, b, ids)
		got := claimedIDs(t, batch(t, b, 25).Claims)
		got = append(got, claimedIDs(t, batch(t, b, contracts.MaxClaimBatch).Claims)...)
		require.Equal(t, ids, got)
	})
}

// On a standalone store whose claim hint is not complete (a fresh one, or
// one written before the hint existed), the first batch asks every
// partition, claims oldest first and completes the hint.
func TestBatchClaimCompletesTheHint(t *testing.T) {
	_, b := seededEngine(t, servers[0], 256, nil)
	require.NotEmpty(t, b.hint)
	ids := spreadIDs("full", 5, 256)
	resumeAll(t, b, ids)
	_, err := b.client.ZScore(bg, b.hint, "complete").Result()
	require.Error(t, err, "the hint is not complete yet")
	require.Equal(t, ids[:3], claimedIDs(t, batch(t, b, 3).Claims))
	score, err := b.client.ZScore(bg, b.hint, "complete").Result()
	require.NoError(t, err, "the hint is complete")
	require.Greater(t, score, 1e300)
	require.Equal(t, ids[3:], claimedIDs(t, batch(t, b, 3).Claims))
}

// A batch claims whatever a claim would, with its reason: a suspension
// past its timeout (timeout), a released execution (the reason it was
// claimed with), a cancelled one (cancelled), oldest first.
func TestBatchClaimReasons(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		// r-timeout must still wait at the first claim and be past its
		// timeout at the batch: a second leaves room for a loaded machine.
		ms := int64(1000)
		start := time.Now()
		_, err := b.Suspend(bg, contracts.SuspendArgs{ExecutionID: "r-timeout", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, TimeoutMs: &ms})
		require.NoError(t, err)
		time.Sleep(2 * time.Millisecond)
		resumeAll(t, b, []string{"r-released"})
		c, err := b.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
		require.NoError(t, err)
		require.Equal(t, "r-released", c.ExecutionID)
		_, err = b.ReleaseExecution(bg, contracts.ReleaseArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID})
		require.NoError(t, err)
		suspend(t, b, "r-cancelled", "a")
		_, err = b.CancelSuspension(bg, contracts.CancelArgs{ExecutionID: "r-cancelled"})
		require.NoError(t, err)
		time.Sleep(time.Until(start.Add(time.Duration(ms+50) * time.Millisecond))) // r-timeout is past its timeout

		out := batch(t, b, 10)
		var got [][2]string
		for _, c := range out.Claims {
			got = append(got, [2]string{c.ExecutionID, c.Reason})
		}
		require.Equal(t, [][2]string{{"r-timeout", contracts.ReasonTimeout}, {"r-released", contracts.ReasonSignal}, {"r-cancelled", contracts.ReasonCancelled}}, got)
	})
}

// go-redis re-sends a call whose connection failed before the reply: a
// batch claim call sent twice with the same lease ids answers the same
// claims, and claims nothing more while they are held.
func TestBatchClaimResent(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		for _, p := range []int{1, 256} {
			t.Run("P"+itoa(p), func(t *testing.T) {
				_, b := seededEngine(t, s, p, nil)
				require.Empty(t, batch(t, b, 1).Claims)
				var ids []string
				if p == 1 || b.hint != "" {
					ids = spreadIDs("resent", 4, p)
				} else {
					// On a cluster the claim script runs on one partition.
					for i := 0; len(ids) < 4; i++ {
						if id := fmt.Sprintf("resent-%d", i); driver.PartitionOf(id, p) == 7 {
							ids = append(ids, id)
						}
					}
				}
				resumeAll(t, b, ids)
				script, partition := scriptClaim, driver.PartitionOf(ids[0], p)
				if b.hint != "" && p > 1 {
					script, partition = scriptClaimHinted, 0
				}
				leases := []string{driver.NewID(), driver.NewID(), driver.NewID()}
				var replies [2][]contracts.ClaimOutcome
				for i := range replies {
					v, err := b.run(bg, script, partition, claimArgs(leases, 60_000)...)
					require.NoError(t, err)
					cs, err := parseClaims(v)
					require.NoError(t, err)
					for _, c := range cs {
						replies[i] = append(replies[i], c.out)
					}
				}
				require.Equal(t, ids[:3], claimedIDs(t, replies[0]))
				require.Equal(t, replies[0], replies[1], "the re-sent call answers the same claims")
				require.Equal(t, ids[3:], claimedIDs(t, batch(t, b, 10).Claims), "the fourth stayed claimable")
			})
		}
	})
}

// Workers claiming in batches at once: every resumed execution is claimed
// exactly once, and each batch is in oldest-first order.
func TestBatchClaimConcurrentWorkers(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		ids := spreadIDs("conc", 60, 16)
		resumeAll(t, b, ids)
		order := map[string]int{}
		for i, id := range ids {
			order[id] = i
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Go(func() {
				for {
					out, err := b.ClaimResumedExecutions(bg, contracts.ClaimBatchArgs{WorkerID: fmt.Sprint("w", w), LeaseMs: 60_000, Max: 7})
					if err != nil {
						t.Errorf("worker %d: %v", w, err)
						return
					}
					if len(out.Claims) == 0 {
						return
					}
					mu.Lock()
					for i, c := range out.Claims {
						seen[c.ExecutionID]++
						if i > 0 && order[c.ExecutionID] < order[out.Claims[i-1].ExecutionID] {
							t.Errorf("worker %d: batch out of order: %s after %s", w, c.ExecutionID, out.Claims[i-1].ExecutionID)
						}
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Len(t, seen, len(ids), "every execution claimed")
		for id, n := range seen {
			require.Equal(t, 1, n, "%s claimed %d times", id, n)
		}
	})
}
