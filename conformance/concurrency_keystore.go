package conformance

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// racers is how many goroutines each keystore concurrency scenario starts.
const racers = 32

// keystoreConcurrencyScenarios race rotations and seeds through one Engine
// (docs/spec.md §4: concurrent rotations serialize per partition; seed is
// idempotent), then check that nothing they produced reveals a secret.
func keystoreConcurrencyScenarios(t *testing.T, h Harness) {
	rec := newRecorder()
	t.Run("RotateDistinctKids", func(t *testing.T) { concurrentRotations(t, openKeystore(t, h, rec)) })
	t.Run("SeedOneKid", func(t *testing.T) { concurrentSeedsOneKid(t, openKeystore(t, h, rec)) })
	t.Run("SeedDistinctKids", func(t *testing.T) { concurrentSeedsDistinctKids(t, openKeystore(t, h, rec)) })
	t.Run("SecretHygiene", func(t *testing.T) { rec.check(t) })
}

// racerFixture is the i-th racer's kid and 32-byte secret (0x40+i …).
func racerFixture(prefix string, i int) fixture {
	return newFixture(fmt.Sprintf("%s-%02d", prefix, i), byte(0x40+i), 32)
}

// race runs f(i) for i in [0, racers) in goroutines released together.
func race(f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

// retryableContention reports whether err is a retryable contention error,
// the only failure a lost race may produce.
func retryableContention(err error) bool {
	var ce *contracts.Error
	return errors.As(err, &ce) && ce.Retryable && ce.Kind == contracts.KindContention
}

// Given kid-a seeded, when 32 goroutines (split over two handles when the
// store can be shared) rotate to 32 distinct kids at once,
// then every call (and every partition entry) is rotated or a retryable
// contention error; afterwards each partition has one current kid, every
// installed kid is current or verifying there, and the previous_kid values
// form one chain from kid-a: the rotations serialized per partition.
func concurrentRotations(t *testing.T, k *keystoreEnv) {
	k.mustSeed(fxA)
	hs := k.handles()
	results := make([]contracts.RotateAllResult, racers)
	errs := make([]error, racers)
	race(func(i int) {
		f := racerFixture("kid-r", i)
		k.rec.alsoSecret(f)
		results[i], errs[i] = hs[i%len(hs)].rotate(f, hourMs)
	})
	installed := make([][]string, k.parts) // per partition: kids rotated in
	prevs := make([][]string, k.parts)
	for i := range racers {
		kid := racerFixture("kid-r", i).Kid
		if errs[i] != nil {
			require.True(t, retryableContention(errs[i]), "rotate to %s: %v; want rotated or retryable contention", kid, errs[i])
			continue
		}
		k.checkEntries(results[i])
		for _, e := range results[i].Entries {
			if e.Error != nil {
				require.True(t, retryableContention(e.Error), "rotate to %s: partition %d: %v; want rotated or retryable contention", kid, e.Partition, e.Error)
				continue
			}
			require.Equal(t, contracts.RotateRotated, e.Outcome.Outcome, "rotate to %s: partition %d: outcome", kid, e.Partition)
			require.Equal(t, kid, e.Outcome.NewKid, "rotate to %s: partition %d: new_kid", kid, e.Partition)
			require.Zero(t, e.Outcome.GCCount, "rotate to %s: partition %d: gc_count", kid, e.Partition)
			require.NotNil(t, e.Outcome.PreviousKid, "rotate to %s: partition %d: previous_kid null on a seeded keystore", kid, e.Partition)
			installed[e.Partition] = append(installed[e.Partition], kid)
			prevs[e.Partition] = append(prevs[e.Partition], *e.Outcome.PreviousKid)
		}
	}
	l := k.list()
	for _, p := range l.Partitions {
		checkRotationChain(t, p, installed[p.Partition], prevs[p.Partition])
	}
	if n := len(installed[0]); n < racers {
		t.Logf("%d of %d rotations lost to retryable contention in partition 0", racers-n, racers)
	}
}

// checkRotationChain checks one partition after concurrent rotations from
// kid-a: installed kids each appear exactly once as current or verifying,
// and {previous kids} ∪ {current} = {kid-a} ∪ installed, without repeats.
func checkRotationChain(t *testing.T, p contracts.PartitionKids, installed, prevs []string) {
	t.Helper()
	require.NotNil(t, p.CurrentKid, "partition %d: no current kid after concurrent rotations", p.Partition)
	present := map[string]int{*p.CurrentKid: 1}
	for _, v := range p.Verifying {
		present[v.Kid]++
	}
	for _, kid := range installed {
		require.Equal(t, 1, present[kid], "partition %d: installed kid %s: want it listed once as current or verifying", p.Partition, kid)
	}
	chain := append(slices.Clone(prevs), *p.CurrentKid)
	want := append([]string{fxA.Kid}, installed...)
	slices.Sort(chain)
	slices.Sort(want)
	require.Equal(t, want, chain, "partition %d: previous kids plus current, want kid-a plus installed kids: rotations did not serialize", p.Partition)
}

// seedRetrying seeds, retrying retryable contention as an application does.
func seedRetrying(k *keystoreEnv, f fixture) (contracts.SeedOutcome, error) {
	for attempt := 0; ; attempt++ {
		out, err := k.seed(f)
		if err == nil || !retryableContention(err) || attempt == 20 {
			return out, err
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
}

// Given an empty keystore, when 32 goroutines seed kid-a with its secret at
// once, then exactly one is seeded and the rest already_seeded with
// same_secret true.
func concurrentSeedsOneKid(t *testing.T, k *keystoreEnv) {
	outs := make([]contracts.SeedOutcome, racers)
	errs := make([]error, racers)
	hs := k.handles()
	race(func(i int) { outs[i], errs[i] = seedRetrying(hs[i%len(hs)], fxA) })
	seeded := 0
	for i := range racers {
		require.NoError(t, errs[i], "concurrent seed")
		switch o := outs[i]; o.Outcome {
		case contracts.SeedSeeded:
			seeded++
			require.JSONEq(t, ksJSON(contracts.SeedOutcome{Outcome: contracts.SeedSeeded, Kid: fxA.Kid, CurrentKid: fxA.Kid}), ksJSON(o), "concurrent seed")
		default:
			require.JSONEq(t, ksJSON(seedAlready(fxA, fxA, true)), ksJSON(o), "concurrent seed: want seeded or already_seeded with same_secret true")
		}
	}
	require.Equal(t, 1, seeded, "want exactly 1 seed answering seeded")
	k.wantCurrent("after concurrent seeds", k.list(), kidOf(fxA))
}

// Given an empty keystore, when 32 goroutines seed 32 distinct kids at once,
// then exactly one is seeded and the rest already_initialized naming the
// winner as current, with same_secret null.
func concurrentSeedsDistinctKids(t *testing.T, k *keystoreEnv) {
	outs := make([]contracts.SeedOutcome, racers)
	errs := make([]error, racers)
	hs := k.handles()
	race(func(i int) {
		f := racerFixture("kid-s", i)
		k.rec.alsoSecret(f)
		outs[i], errs[i] = seedRetrying(hs[i%len(hs)], f)
	})
	var winner string
	for i := range racers {
		require.NoError(t, errs[i], "concurrent seed")
		if outs[i].Outcome == contracts.SeedSeeded {
			require.Empty(t, winner, "both %s and %s answered seeded", winner, outs[i].Kid)
			winner = outs[i].Kid
		}
	}
	require.NotEmpty(t, winner, "no seed answered seeded")
	for i := range racers {
		o := outs[i]
		if o.Outcome == contracts.SeedSeeded {
			continue
		}
		kid := racerFixture("kid-s", i).Kid
		want := contracts.SeedOutcome{Outcome: contracts.SeedAlreadyInitialized, Kid: kid, CurrentKid: winner}
		require.JSONEq(t, ksJSON(want), ksJSON(o), "concurrent seed of %s: want already_initialized naming %s, same_secret null", kid, winner)
	}
	k.wantCurrent("after concurrent seeds", k.list(), &winner)
}
