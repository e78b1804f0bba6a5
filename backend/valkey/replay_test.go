package valkey

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// suspendKey suspends id on two waitpoints under an idempotency key.
func suspendKey(e ops, id, key string) (contracts.SuspendOutcome, error) {
	return e.Suspend(bg, contracts.SuspendArgs{ExecutionID: id, Condition: contracts.ConditionAny, IdempotencyKey: key,
		Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}, {Key: "reject"}}})
}

// requireSameOutcome checks that got encodes byte for byte as want.
func requireSameOutcome(t *testing.T, want, got contracts.SuspendOutcome, msgAndArgs ...any) {
	t.Helper()
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	require.Equal(t, string(w), string(g), msgAndArgs...)
}

// After idempotent suspends, their replays and deliveries, a scan of every
// key and value of the store (conformance.Harness.Raw) finds no token and
// no MAC: the idempotency records keep kids, the waitpoints SHA-256 digests.
func TestStoreHoldsNoTokenOrMAC(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		var outs []contracts.SuspendOutcome
		for i := range 6 {
			out, err := suspendKey(b, fmt.Sprintf("at-rest-%d", i), "key-1")
			require.NoError(t, err)
			again, err := suspendKey(b, out.ExecutionID, "key-1")
			require.NoError(t, err)
			requireSameOutcome(t, out, again, "replay")
			outs = append(outs, out)
		}
		mustRotate(t, b, "kid-b", secret(2), 600000)
		out, err := suspendKey(b, "at-rest-b", "key-1") // signed by kid-b
		require.NoError(t, err)
		outs = append(outs, out)
		for _, out := range outs[:3] {
			deliver(t, b, out, 0, contracts.DeliverSignalArgs{IdempotencyKey: "d-1", Payload: []byte(`{"ok":true}`)})
		}

		raw := rawStore(t, b)
		for _, out := range outs {
			require.True(t, bytes.Contains(raw, []byte(out.Waitpoints[0].WaitpointID)), "the scan reads the waitpoints")
			for _, w := range out.Waitpoints {
				kid, mac, _ := strings.Cut(w.Token, ":")
				require.False(t, bytes.Contains(raw, []byte(w.Token)), "the store holds a token of %s", out.ExecutionID)
				require.False(t, bytes.Contains(raw, []byte(mac)), "the store holds a MAC of %s", out.ExecutionID)
				require.False(t, bytes.Contains(bytes.ToLower(raw), []byte(strings.ToLower(mac[:16]))), "the store holds part of a MAC")
				require.True(t, bytes.Contains(raw, []byte(`"token":"`+kid+`"`)), "the record keeps the kid")
				digest := sha256.Sum256([]byte(w.Token)) // raw inline (layout 2), as hex in a waitpoint's own hash
				require.True(t, bytes.Contains(raw, digest[:]) || bytes.Contains(raw, []byte(tokenHash(w.Token))), "the waitpoint keeps its token's digest")
			}
		}
	})
}

// A suspend replay signs the tokens again with the kid that signed them:
// the same bytes while that kid verifies (current, or verifying in its
// grace), suspend_replay_expired once it is past its grace or collected,
// in one script call.
func TestSuspendReplayAfterRotation(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		rt := newRoundTrips()
		_, b := seededEngine(t, s, 4, rt)
		loadAllScripts(t, b)
		replay := func(id string) (contracts.SuspendOutcome, error) {
			t.Helper()
			rt.start()
			out, err := suspendKey(b, id, "key-1")
			singles, pipelines, _, _ := rt.stop()
			require.Equal(t, [2]int{1, 0}, [2]int{singles, pipelines}, "a replay is one script call")
			return out, err
		}
		// given suspends signed by kid-a
		first, err := suspendKey(b, "replay-a", "key-1")
		require.NoError(t, err)
		got, err := replay("replay-a")
		require.NoError(t, err)
		requireSameOutcome(t, first, got, "kid-a current")

		// when kid-a is rotated out with a grace of one second, then it replays while in grace
		mustRotate(t, b, "kid-b", secret(2), 1000)
		got, err = replay("replay-a")
		require.NoError(t, err)
		requireSameOutcome(t, first, got, "kid-a in grace")
		second, err := suspendKey(b, "replay-b", "key-1") // signed by kid-b
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(second.Waitpoints[0].Token, "kid-b:"))

		// and past its grace, kid-a's record is suspend_replay_expired; kid-b's replays
		time.Sleep(1200 * time.Millisecond)
		_, err = replay("replay-a")
		require.ErrorIs(t, err, contracts.ErrSuspendReplayExpired)
		require.Contains(t, contracts.AsError(err).Detail, `"kid-a"`)
		got, err = replay("replay-b")
		require.NoError(t, err)
		requireSameOutcome(t, second, got, "kid-b current")

		// and once kid-a is collected, still suspend_replay_expired; a mismatch is still a mismatch
		mustRotate(t, b, "kid-c", secret(3), 600000)
		_, err = replay("replay-a")
		require.ErrorIs(t, err, contracts.ErrSuspendReplayExpired)
		_, err = b.Suspend(bg, contracts.SuspendArgs{ExecutionID: "replay-a", Condition: contracts.ConditionAll, IdempotencyKey: "key-1",
			Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}, {Key: "reject"}}})
		require.ErrorIs(t, err, contracts.ErrIdempotencyMismatch)
		got, err = replay("replay-b")
		require.NoError(t, err)
		requireSameOutcome(t, second, got, "kid-b verifying")
		// and a replayed token still delivers
		deliver(t, b, got, 1, contracts.DeliverSignalArgs{})
	})
}

// Records written before tokens stopped being stored hold the whole
// outcome, tokens included: they replay the same way, byte for byte while
// their kid verifies, suspend_replay_expired after.
func TestSuspendReplaysWholeTokenRecords(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 4, nil)
		// given a record as the driver wrote it before: fingerprint, then the outcome JSON with its tokens
		out, err := suspendKey(b, "legacy-1", "key-1")
		require.NoError(t, err)
		whole, err := json.Marshal(out)
		require.NoError(t, err)
		args := contracts.SuspendArgs{ExecutionID: "legacy-1", Condition: contracts.ConditionAny, IdempotencyKey: "key-1",
			Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}, {Key: "reject"}}}
		p := driver.PartitionOf("legacy-1", b.parts)
		require.NoError(t, b.client.HSet(bg, b.key(p, "xi:legacy-1"), "key-1", args.Fingerprint()+string(whole)).Err())

		// when replayed, then the outcome is the stored one
		got, err := suspendKey(b, "legacy-1", "key-1")
		require.NoError(t, err)
		requireSameOutcome(t, out, got)

		// and once its kid is past its grace, suspend_replay_expired
		mustRotate(t, b, "kid-b", secret(2), 0)
		time.Sleep(5 * time.Millisecond)
		_, err = suspendKey(b, "legacy-1", "key-1")
		require.ErrorIs(t, err, contracts.ErrSuspendReplayExpired)
	})
}

// Under a KEK, a replay opens the kid's sealed secret with the installed
// keyring; with a keyring that cannot open it, kek_mismatch.
func TestSuspendReplayOpensSealedSecret(t *testing.T) {
	b, _ := openFresh(t, servers[0], 4)
	b.SetKeyring(kek.NewKeyring(testKEK(t, 1)))
	mustSeed(t, b, "kid-a", secret(1))
	out, err := suspendKey(b, "sealed-1", "key-1")
	require.NoError(t, err)
	got, err := suspendKey(b, "sealed-1", "key-1")
	require.NoError(t, err)
	requireSameOutcome(t, out, got)
	b.SetKeyring(kek.NewKeyring(testKEK(t, 2)))
	_, err = suspendKey(b, "sealed-1", "key-1")
	require.ErrorIs(t, err, contracts.ErrKEKMismatch)
}

// Concurrent suspends with one idempotency key: one writes, every other
// one replays its outcome, byte for byte (a suspend_write that finds the
// record written since its read starts over and replays).
func TestConcurrentSuspendsWithOneKey(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 4, nil)
		for round := range 5 {
			id := fmt.Sprintf("same-key-%d", round)
			outs := make([]contracts.SuspendOutcome, 8)
			errs := make([]error, len(outs))
			var wg sync.WaitGroup
			for i := range outs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i], errs[i] = suspendKey(b, id, "key-1")
				}()
			}
			wg.Wait()
			for i := range outs {
				require.NoError(t, errs[i])
				requireSameOutcome(t, outs[0], outs[i], "suspend %d of round %d", i, round)
			}
		}
	})
}
