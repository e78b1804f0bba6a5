package valkey

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// requireStoreReset asserts unavailable / store_reset, not retryable, whose
// detail names partition p and says how its marker went.
func requireStoreReset(t testing.TB, err error, p int, how string) {
	t.Helper()
	require.ErrorIs(t, err, contracts.ErrStoreReset)
	var ce *contracts.Error
	require.True(t, errors.As(err, &ce))
	require.False(t, ce.Retryable)
	require.Contains(t, ce.Detail, fmt.Sprintf("the store's marker for partition %d %s", p, how))
}

// markers reads every partition's store marker around the driver.
func markers(t testing.TB, b *Backend) []string {
	t.Helper()
	out := make([]string, b.parts)
	for p := range out {
		v, err := b.client.Get(bg, b.markerKey(p)).Result()
		require.NoError(t, err, "marker of partition %d", p)
		out[p] = v
	}
	return out
}

// remembered is the value of every partition's marker that b expects.
func remembered(b *Backend) []string {
	out := make([]string, b.parts)
	for p := range out {
		out[p] = b.marker(p)
	}
	return out
}

// scopeOn returns a scope (an execution id) of partition p.
func scopeOn(p, partitions int, salt string) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", salt, i)
		if driver.PartitionOf(id, partitions) == p {
			return id
		}
	}
}

// Open creates a store marker on every partition of a fresh store and
// remembers their values; a second backend on the same store keeps them.
func TestStoreMarkerCreatedAtOpen(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		a, raw := openFresh(t, s, 16)
		stored := markers(t, a)
		require.Equal(t, remembered(a), stored)
		require.NotEmpty(t, stored[0])
		for _, v := range stored {
			require.Equal(t, stored[0], v, "one Open writes one id everywhere")
		}
		b := openURL(t, raw, nil)
		require.Equal(t, stored, remembered(b), "a second Open takes the markers there")
		require.Equal(t, stored, markers(t, b))
		require.NoError(t, b.Ping(bg))
	})
}

// A partition whose marker is gone answers store_reset on every script
// call and on Ping, changing nothing; the other partitions answer as
// before; AdoptStore takes the store as it is and the calls work again.
func TestStoreMarkerGone(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		const P = 16
		_, b := seededEngine(t, s, P, nil)
		lost, kept := 3, 9
		on := scopeOn(lost, P, "gone")
		sus := suspend(t, b, on, "a")
		require.NoError(t, b.client.Del(bg, b.markerKey(lost)).Err())

		// every script of the driver checks the marker before its body
		require.Len(t, allScripts, 30)
		for _, sc := range allScripts {
			_, err := b.run(bg, sc, lost)
			requireStoreReset(t, err, lost, "is gone")
		}
		_, err := b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: on})
		requireStoreReset(t, err, lost, "is gone")
		fresh := scopeOn(lost, P, "gone-fresh")
		_, err = b.Suspend(bg, contracts.SuspendArgs{ExecutionID: fresh, Condition: contracts.ConditionAny,
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
		requireStoreReset(t, err, lost, "is gone")
		n, err := b.client.Exists(bg, b.key(lost, "x:"+fresh)).Result()
		require.NoError(t, err)
		require.Zero(t, n, "a call answering store_reset writes nothing")
		requireStoreReset(t, b.Ping(bg), lost, "is gone")
		// the other partitions answer
		_, err = b.Sign(bg, contracts.SignArgs{Scope: scopeOn(kept, P, "kept"), Message: []byte("m")})
		require.NoError(t, err)
		_, err = b.ListKids(bg, contracts.ListKidsArgs{})
		requireStoreReset(t, err, lost, "is gone") // it reads every partition

		require.NoError(t, b.AdoptStore(bg))
		require.NoError(t, b.Ping(bg))
		o, err := b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: on})
		require.NoError(t, err, "the store adopted as it is: the partition kept its data")
		require.Equal(t, sus.SuspensionID, o.SuspensionID)
		require.Equal(t, markers(t, b), remembered(b))
	})
}

// A store re-created by another process (every marker holds another
// value) answers store_reset "changed" until this backend adopts it; a
// backend opened meanwhile works on it.
func TestStoreMarkerChanged(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		const P = 8
		a, raw := openFresh(t, s, P)
		mustSeed(t, a, "kid-a", secret(1))
		for p := range P {
			require.NoError(t, a.client.Set(bg, a.markerKey(p), "another-process", 0).Err())
		}
		requireStoreReset(t, a.Ping(bg), 0, "changed")
		_, err := a.Sign(bg, contracts.SignArgs{Scope: scopeOn(5, P, "c"), Message: []byte("m")})
		requireStoreReset(t, err, 5, "changed")

		b := openURL(t, raw, nil)
		require.NoError(t, b.Ping(bg))
		_, err = b.Sign(bg, contracts.SignArgs{Scope: scopeOn(5, P, "c"), Message: []byte("m")})
		require.NoError(t, err)
		requireStoreReset(t, a.Ping(bg), 0, "changed") // still, until it adopts

		require.NoError(t, a.AdoptStore(bg))
		require.NoError(t, a.Ping(bg))
		require.Equal(t, remembered(b), remembered(a))
		_, err = a.Sign(bg, contracts.SignArgs{Scope: scopeOn(5, P, "c"), Message: []byte("m")})
		require.NoError(t, err)
	})
}

// A store written before store markers existed gets them at Open and keeps
// its data.
func TestStoreMarkerAddedToOlderStore(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		const P = 8
		a, raw := openFresh(t, s, P)
		mustSeed(t, a, "kid-a", secret(1))
		sig, err := a.Sign(bg, contracts.SignArgs{Scope: "older", Message: []byte("m")})
		require.NoError(t, err)
		for p := range P {
			require.NoError(t, a.client.Del(bg, a.markerKey(p)).Err())
		}
		b := openURL(t, raw, nil)
		require.Len(t, markers(t, b), P)
		v, err := b.Verify(bg, contracts.VerifyArgs{Scope: "older", Message: []byte("m"), Token: sig.Token})
		require.NoError(t, err)
		require.True(t, v.Valid)
	})
}

// On a standalone server claim_hinted may claim on any partition the hint
// names: a named partition whose marker is gone answers store_reset.
func TestStoreMarkerClaimHinted(t *testing.T) {
	b, _ := openFresh(t, server{"Standalone", testenv.ValkeyURL}, 16)
	mustSeed(t, b, "kid-a", secret(1))
	require.NotEmpty(t, b.hint)
	lost := 7
	sus := suspend(t, b, scopeOn(lost, 16, "hinted"), "a")
	deliver(t, b, sus, 0, contracts.DeliverSignalArgs{})
	// complete the hint first: a claim that finds it incomplete asks every
	// partition in a pipeline instead
	_, err := b.claimCandidates(bg, b.allPartitions(), true)
	require.NoError(t, err)
	require.NoError(t, b.client.Del(bg, b.markerKey(lost)).Err())
	_, err = b.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
	requireStoreReset(t, err, lost, "is gone")
}

// The real thing, on a private server of each family without persistence:
// killed with SIGKILL and restarted empty on the same port, it answers
// store_reset on the next call and on Ping; a backend opened afterwards
// sees a fresh store; AdoptStore takes the empty store (not seeded yet),
// and a seed makes it work again.
func TestStoreResetOnServerRestart(t *testing.T) {
	forEachFamily(t, func(t *testing.T, fam family) {
		srv := startKV(t, fam, noPersistence...)
		raw := srv.url(8, "restart:")
		b := openURL(t, raw, nil)
		e := engine.New(b, engine.WithKeystoreCache(0))
		_, err := e.Seed(bg, contracts.SeedArgs{Kid: "kid-a", Secret: secret(1)})
		require.NoError(t, err)
		sus := suspend(t, b, "before-the-loss", "a")
		require.NoError(t, e.Ping(bg))

		srv.Kill()
		srv.Restart(t)

		_, err = e.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: sus.ExecutionID})
		require.ErrorIs(t, err, contracts.ErrStoreReset, "the first call after the restart")
		require.Contains(t, contracts.AsError(err).Detail, "is gone: the server lost its data")
		require.ErrorIs(t, e.Ping(bg), contracts.ErrStoreReset)
		_, err = e.Seed(bg, contracts.SeedArgs{Kid: "kid-b", Secret: secret(2)})
		require.ErrorIs(t, err, contracts.ErrStoreReset, "no seed on a store lost under the backend")

		other := openURL(t, raw, nil)
		_, err = other.Sign(bg, contracts.SignArgs{Scope: "s", Message: []byte("m")})
		require.ErrorIs(t, err, contracts.ErrHMACSecretNotInitialized, "a backend opened afterwards sees a fresh store")
		require.ErrorIs(t, e.Ping(bg), contracts.ErrStoreReset, "still, the markers being another process's now")

		require.NoError(t, e.AdoptStore(bg))
		require.NoError(t, e.Ping(bg))
		_, err = e.Sign(bg, contracts.SignArgs{Scope: "s", Message: []byte("m")})
		require.ErrorIs(t, err, contracts.ErrHMACSecretNotInitialized)
		_, err = e.Seed(bg, contracts.SeedArgs{Kid: "kid-a", Secret: secret(1)})
		require.NoError(t, err)
		_, err = e.Sign(bg, contracts.SignArgs{Scope: "s", Message: []byte("m")})
		require.NoError(t, err)
		_, err = e.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: sus.ExecutionID})
		require.ErrorIs(t, err, contracts.ErrExecutionNotFound, "the waits of the lost store are gone")
	})
}
