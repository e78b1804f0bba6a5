package conformance

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

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
			if !retryableContention(errs[i]) {
				t.Fatalf("rotate to %s: %v; want rotated or retryable contention", kid, errs[i])
			}
			continue
		}
		k.checkEntries(results[i])
		for _, e := range results[i].Entries {
			switch {
			case e.Error != nil && !retryableContention(e.Error):
				t.Fatalf("rotate to %s: partition %d: %v; want rotated or retryable contention", kid, e.Partition, e.Error)
			case e.Error != nil:
			case e.Outcome.Outcome != contracts.RotateRotated || e.Outcome.NewKid != kid || e.Outcome.GCCount != 0:
				t.Fatalf("rotate to %s: partition %d: %s; want rotated to %s with gc_count 0", kid, e.Partition, ksJSON(e.Outcome), kid)
			case e.Outcome.PreviousKid == nil:
				t.Fatalf("rotate to %s: partition %d: previous_kid null on a seeded keystore", kid, e.Partition)
			default:
				installed[e.Partition] = append(installed[e.Partition], kid)
				prevs[e.Partition] = append(prevs[e.Partition], *e.Outcome.PreviousKid)
			}
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
	if p.CurrentKid == nil {
		t.Fatalf("partition %d: no current kid after concurrent rotations", p.Partition)
	}
	present := map[string]int{*p.CurrentKid: 1}
	for _, v := range p.Verifying {
		present[v.Kid]++
	}
	for _, kid := range installed {
		if present[kid] != 1 {
			t.Fatalf("partition %d: installed kid %s is listed %d times, want once as current or verifying", p.Partition, kid, present[kid])
		}
	}
	chain := append(slices.Clone(prevs), *p.CurrentKid)
	want := append([]string{fxA.Kid}, installed...)
	slices.Sort(chain)
	slices.Sort(want)
	if !slices.Equal(chain, want) {
		t.Fatalf("partition %d: previous kids plus current %v, want kid-a plus installed kids %v: rotations did not serialize", p.Partition, chain, want)
	}
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
		if errs[i] != nil {
			t.Fatalf("concurrent seed: %v", errs[i])
		}
		switch o := outs[i]; {
		case o.Outcome == contracts.SeedSeeded && o.Kid == fxA.Kid && o.CurrentKid == fxA.Kid && o.SameSecret == nil:
			seeded++
		case o.Outcome == contracts.SeedAlreadySeeded && o.Kid == fxA.Kid && o.CurrentKid == fxA.Kid && o.SameSecret != nil && *o.SameSecret:
		default:
			t.Fatalf("concurrent seed: got %s; want seeded or already_seeded with same_secret true", ksJSON(o))
		}
	}
	if seeded != 1 {
		t.Fatalf("%d seeds answered seeded, want exactly 1", seeded)
	}
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
		if errs[i] != nil {
			t.Fatalf("concurrent seed: %v", errs[i])
		}
		if outs[i].Outcome == contracts.SeedSeeded {
			if winner != "" {
				t.Fatalf("both %s and %s answered seeded", winner, outs[i].Kid)
			}
			winner = outs[i].Kid
		}
	}
	if winner == "" {
		t.Fatalf("no seed answered seeded")
	}
	for i := range racers {
		o := outs[i]
		if o.Outcome == contracts.SeedSeeded {
			continue
		}
		if o.Outcome != contracts.SeedAlreadyInitialized || o.CurrentKid != winner || o.SameSecret != nil || o.Kid != racerFixture("kid-s", i).Kid {
			t.Fatalf("concurrent seed of %s: got %s; want already_initialized naming %s, same_secret null", racerFixture("kid-s", i).Kid, ksJSON(o), winner)
		}
	}
	k.wantCurrent("after concurrent seeds", k.list(), &winner)
}
