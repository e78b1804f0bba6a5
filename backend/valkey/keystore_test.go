package valkey

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

var bg = context.Background()

func secret(fill byte) contracts.Secret { return contracts.Secret(bytes.Repeat([]byte{fill}, 32)) }

func mustSeed(t testing.TB, e driver.Keystore, kid string, s contracts.Secret) contracts.SeedOutcome {
	t.Helper()
	out, err := e.Seed(bg, contracts.SeedArgs{Kid: kid, Secret: s})
	if err != nil {
		t.Fatalf("seed %s: %v", kid, err)
	}
	return out
}

func mustRotate(t testing.TB, e driver.Keystore, kid string, s contracts.Secret, graceMs int64) contracts.RotateAllResult {
	t.Helper()
	r, err := e.RotateAll(bg, contracts.RotateArgs{NewKid: kid, NewSecret: s, GraceMs: graceMs})
	if err != nil || r.Failed() {
		t.Fatalf("rotate to %s: %+v, %v", kid, r, err)
	}
	return r
}

// forEachServer runs f as parallel subtests on a standalone server and on a
// cluster.
func forEachServer(t *testing.T, f func(t *testing.T, s server)) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			f(t, s)
		})
	}
}

// Given a store written with 256 partitions, opening it with another count
// is refused with partition_count_mismatch; the same count opens.
func TestPartitionCountMismatchAtOpen(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		prefix := testenv.KeyPrefix(t)
		base := s.url(t)
		b := openURL(t, backendURL(t, base, 256, prefix), nil)
		mustSeed(t, b, "kid-a", secret(1))

		u := mustParse(t, backendURL(t, base, 16, prefix))
		_, err := Open(bg, u)
		if !errors.Is(err, contracts.ErrPartitionCountMismatch) {
			t.Fatalf("open with 16 partitions: got %v, want partition_count_mismatch", err)
		}
		again := openURL(t, backendURL(t, base, 256, prefix), nil)
		if out := mustSeed(t, again, "kid-a", secret(1)); out.Outcome != contracts.SeedAlreadySeeded {
			t.Fatalf("reopened with 256: seed outcome %s, want already_seeded", out.Outcome)
		}
	})
}

// Given two backends opened with different counts on an empty store, the
// first write records its count and the other's write is refused.
func TestPartitionCountRecordedOnFirstWrite(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		prefix := testenv.KeyPrefix(t)
		base := s.url(t)
		b256 := openURL(t, backendURL(t, base, 256, prefix), nil)
		b8 := openURL(t, backendURL(t, base, 8, prefix), nil)
		mustSeed(t, b256, "kid-a", secret(1))
		_, err := b8.Seed(bg, contracts.SeedArgs{Kid: "kid-a", Secret: secret(1)})
		if !errors.Is(err, contracts.ErrPartitionCountMismatch) {
			t.Fatalf("seed through an 8-partition backend: got %v, want partition_count_mismatch", err)
		}
		_, err = b8.Sign(bg, contracts.SignArgs{Scope: "x"})
		if !errors.Is(err, contracts.ErrPartitionCountMismatch) {
			t.Fatalf("sign through an 8-partition backend: got %v, want partition_count_mismatch", err)
		}
	})
}

// rotate_all over 256 partitions costs one pipeline per node and no single
// commands once the script is cached; on a server without the script, one
// load per master and one more pipeline per node.
func TestRotateAllRoundTrips(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		rt := newRoundTrips()
		b := openURL(t, backendURL(t, s.url(t), 256, testenv.KeyPrefix(t)), rt.attach)
		masters := countMasters(t, b)
		mustRotate(t, b, "kid-a", secret(1), 1000) // warm: the script is cached on every master

		rt.start()
		r := mustRotate(t, b, "kid-b", secret(2), 1000)
		singles, pipelines, nodes, piped := rt.stop()
		t.Logf("%s: rotate_all over 256 partitions: %d pipelines on %d nodes (%d masters), %d scripts piped, %d single commands",
			s.name, pipelines, nodes, masters, piped, singles)
		if len(r.Entries) != 256 || piped != 256 || singles != 0 || pipelines != masters {
			t.Fatalf("want 256 entries in one pipeline per master (%d) and no single command; got %d entries, %d pipelines, %d piped, %d singles",
				masters, len(r.Entries), pipelines, piped, singles)
		}
	})
}

// With the script cache cold, rotate_all still takes a constant number
// of round trips: the NOSCRIPT pipeline, one SCRIPT LOAD per master (on a
// cluster, ForEachMaster may first refresh the topology: one CLUSTER SLOTS),
// and a pipeline of the calls that did not run. The shared servers' script
// caches are never flushed: there, every EVALSHA sent before the driver's
// first SCRIPT LOAD names a script no server has (see coldScripts), so the
// servers answer NOSCRIPT as a fresh server would; a private server started
// by the test is genuinely cold.
func TestRotateAllRoundTripsColdCache(t *testing.T) {
	run := func(t *testing.T, name, serverURL string, cold bool) {
		rt := newRoundTrips()
		var cs coldScripts
		b := openURL(t, backendURL(t, serverURL, 256, testenv.KeyPrefix(t)), func(c redis.UniversalClient) {
			if !cold {
				cs.attach(c)
			}
			rt.attach(c)
		})
		masters := countMasters(t, b)

		rt.start()
		r := mustRotate(t, b, "kid-a", secret(1), 1000)
		singles, pipelines, _, piped := rt.stop()
		t.Logf("%s: cold rotate_all: %d pipelines, %d piped, %d single commands (%d masters)", name, pipelines, piped, singles, masters)
		if !cold && cs.rewritten.Load() == 0 {
			t.Fatalf("no EVALSHA went out with an unknown script: the cold path was not taken")
		}
		maxSingles := masters
		if masters > 1 {
			maxSingles++
		}
		if len(r.Entries) != 256 || pipelines > 2*masters || singles > maxSingles {
			t.Fatalf("want at most %d pipelines and %d single commands; got %d pipelines, %d singles", 2*masters, maxSingles, pipelines, singles)
		}
		for _, e := range r.Entries {
			if e.Outcome == nil || e.Outcome.Outcome != contracts.RotateRotated {
				t.Fatalf("partition %d: %+v, want rotated", e.Partition, e)
			}
		}
	}
	forEachServer(t, func(t *testing.T, s server) { run(t, s.name, s.url(t), false) })
	t.Run("Private", func(t *testing.T) {
		t.Parallel()
		run(t, "Private", startPrivateServer(t, false).url(""), true)
	})
}

// A token signed through Valkey verifies through the memory backend holding
// the same kid and secret, and the other way round.
func TestTokensCrossBackends(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		v, _ := openFresh(t, s, 256)
		m := memory.New()
		for _, k := range []driver.Keystore{v, m} {
			mustSeed(t, k, "kid-x", secret(7))
		}
		for _, scope := range []string{"", "exec-1", "tenant/42", "ü"} {
			msg := []byte("message for " + scope)
			for _, pair := range []struct {
				name         string
				sign, verify driver.Keystore
			}{{"valkey->memory", v, m}, {"memory->valkey", m, v}} {
				st, err := pair.sign.Sign(bg, contracts.SignArgs{Scope: scope, Message: msg})
				if err != nil {
					t.Fatalf("%s: sign: %v", pair.name, err)
				}
				got, err := pair.verify.Verify(bg, contracts.VerifyArgs{Scope: scope, Message: msg, Token: st.Token})
				if err != nil || !got.Valid || got.Kid != "kid-x" {
					t.Fatalf("%s scope %q: verify: %+v, %v", pair.name, scope, got, err)
				}
			}
		}
	})
}

// 32 concurrent seeds of one kid give exactly one seeded; the others answer
// already_seeded with the same secret, and every partition ends with the kid.
func TestConcurrentSeedsOneKid(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		b, raw := openFresh(t, s, 256)
		outs := seedConcurrently(t, raw, 32, func(int) (string, contracts.Secret) { return "kid-a", secret(1) })
		counts := map[string]int{}
		for _, o := range outs {
			counts[o.Outcome]++
			if o.Outcome == contracts.SeedAlreadySeeded && !*o.SameSecret {
				t.Errorf("already_seeded with same_secret false")
			}
		}
		if counts[contracts.SeedSeeded] != 1 || counts[contracts.SeedAlreadySeeded] != 31 {
			t.Fatalf("outcomes %v, want 1 seeded and 31 already_seeded", counts)
		}
		requireEveryCurrent(t, b, "kid-a")
	})
}

// Concurrent seeds of different kids: exactly one kid wins everywhere.
func TestConcurrentSeedsManyKids(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		b, raw := openFresh(t, s, 256)
		outs := seedConcurrently(t, raw, 16, func(i int) (string, contracts.Secret) {
			return fmt.Sprintf("kid-%d", i), secret(byte(i + 1))
		})
		var winners []string
		for _, o := range outs {
			if o.Outcome == contracts.SeedSeeded {
				winners = append(winners, o.Kid)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("%d seeded outcomes (%v), want 1", len(winners), winners)
		}
		for _, o := range outs {
			if o.Outcome != contracts.SeedSeeded && (o.Outcome != contracts.SeedAlreadyInitialized || o.CurrentKid != winners[0]) {
				t.Errorf("loser %s: %+v, want already_initialized naming %s", o.Kid, o, winners[0])
			}
		}
		requireEveryCurrent(t, b, winners[0])
	})
}

// seedConcurrently runs n seeds at once, each through its own backend (as
// n processes would).
func seedConcurrently(t *testing.T, raw string, n int, arg func(i int) (string, contracts.Secret)) []contracts.SeedOutcome {
	t.Helper()
	backends := make([]*Backend, n)
	for i := range backends {
		backends[i] = openURL(t, raw, nil)
	}
	outs := make([]contracts.SeedOutcome, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			kid, s := arg(i)
			outs[i], errs[i] = backends[i].Seed(bg, contracts.SeedArgs{Kid: kid, Secret: s})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
	return outs
}

// requireEveryCurrent checks that every partition's current kid is kid.
func requireEveryCurrent(t *testing.T, b *Backend, kid string) {
	t.Helper()
	r, err := b.ListKids(bg, contracts.ListKidsArgs{})
	if err != nil {
		t.Fatalf("list_kids: %v", err)
	}
	for _, p := range r.Partitions {
		if p.CurrentKid == nil || *p.CurrentKid != kid {
			t.Fatalf("partition %d: current %v, want %s", p.Partition, p.CurrentKid, kid)
		}
	}
}

// A seed interrupted after partition 0 installed is repaired by the next
// seed of the same kid and secret, which answers already_seeded.
func TestSeedRepairsInterruptedSeed(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		b, _ := openFresh(t, s, 64)
		args := contracts.SeedArgs{Kid: "kid-a", Secret: secret(1)}
		if _, _, err := b.seedArbiter(bg, nil, args, contracts.SeedOutcome{}, driver.NewID()); err != nil { // only partition 0
			t.Fatalf("install on partition 0: %v", err)
		}
		out := mustSeed(t, b, "kid-a", secret(1))
		if out.Outcome != contracts.SeedAlreadySeeded || !*out.SameSecret {
			t.Fatalf("seed after interruption: %+v, want already_seeded, same secret", out)
		}
		requireEveryCurrent(t, b, "kid-a")

		// Another kid is refused and repairs nothing with its own secret.
		if out := mustSeed(t, b, "kid-b", secret(2)); out.Outcome != contracts.SeedAlreadyInitialized || out.CurrentKid != "kid-a" {
			t.Fatalf("seed of another kid: %+v, want already_initialized naming kid-a", out)
		}
	})
}

// A rotation that reached only some partitions is completed by running it
// again: done partitions answer noop, the rest rotate.
func TestRotateRepairsPartialRotation(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		b, _ := openFresh(t, s, 32)
		mustSeed(t, b, "kid-a", secret(1))
		done := []int{0, 3, 17, 31}
		replies, err := b.runAll(bg, scriptRotate, done, func(int) []any { return []any{"kid-b", secret(2).Hex(), "60000", driver.NewID()} })
		if err != nil {
			t.Fatalf("partial rotation: %v", err)
		}
		for _, r := range replies {
			if r.err != nil {
				t.Fatalf("partial rotation: %v", r.err)
			}
		}
		r := mustRotate(t, b, "kid-b", secret(2), 60000)
		isDone := map[int]bool{0: true, 3: true, 17: true, 31: true}
		for _, e := range r.Entries {
			want := contracts.RotateRotated
			if isDone[e.Partition] {
				want = contracts.RotateNoop
			}
			if e.Outcome.Outcome != want {
				t.Errorf("partition %d: %s, want %s", e.Partition, e.Outcome.Outcome, want)
			}
		}
		requireEveryCurrent(t, b, "kid-b")
	})
}

// Grace arithmetic is exact up to the contract's limit 2^53-1 (Lua numbers
// are doubles; the scripts add decimal strings).
func TestRotateMaxGraceIsExact(t *testing.T) {
	b, _ := openFresh(t, servers[0], 1)
	mustSeed(t, b, "kid-a", secret(1))
	mustRotate(t, b, "kid-b", secret(2), contracts.MaxGraceMs)
	lk, err := b.loadKeys(bg, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	v := lk.keys.Find("kid-a")
	if v == nil || v.ExpiresAtMs == nil {
		t.Fatalf("kid-a not verifying")
	}
	if d := *v.ExpiresAtMs - contracts.MaxGraceMs; d < lk.nowMs-60_000 || d > lk.nowMs {
		t.Fatalf("expires_at_ms - grace = %d, want the rotation time (now %d)", d, lk.nowMs)
	}
}

func countMasters(t testing.TB, b *Backend) int {
	t.Helper()
	cc, ok := b.client.(*redis.ClusterClient)
	if !ok {
		return 1
	}
	var mu sync.Mutex
	n := 0
	if err := cc.ForEachMaster(bg, func(context.Context, *redis.Client) error {
		mu.Lock()
		n++
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatalf("ForEachMaster: %v", err)
	}
	return n
}

// A partition that fails is reported in its own entry; the others rotate.
// (The failure here: two partitions whose keystore records another
// partition count, as if written by a misconfigured process.)
func TestRotateReportsPartitionFailuresInEntries(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		b, _ := openFresh(t, s, 16)
		mustSeed(t, b, "kid-a", secret(1))
		for _, p := range []int{3, 9} {
			if err := b.client.HSet(bg, b.keystoreKey(p), "partitions", "99").Err(); err != nil {
				t.Fatal(err)
			}
		}
		r, err := b.RotateAll(bg, contracts.RotateArgs{NewKid: "kid-b", NewSecret: secret(2), GraceMs: 1000})
		if err != nil {
			t.Fatalf("rotate_all: %v", err)
		}
		for _, e := range r.Entries {
			failed := e.Partition == 3 || e.Partition == 9
			switch {
			case failed && (e.Error == nil || !errors.Is(e.Error, contracts.ErrPartitionCountMismatch) || e.Outcome != nil):
				t.Errorf("partition %d: %+v, want a partition_count_mismatch entry", e.Partition, e)
			case !failed && (e.Error != nil || e.Outcome == nil || e.Outcome.Outcome != contracts.RotateRotated):
				t.Errorf("partition %d: %+v, want rotated", e.Partition, e)
			}
		}
		if !r.Failed() {
			t.Errorf("Failed() = false with failed entries")
		}
	})
}

// After Close every call fails with unavailable / backend_closed, fan-outs
// included (not one error entry per partition).
func TestClosedBackend(t *testing.T) {
	b, _ := openFresh(t, servers[0], 16)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RotateAll(bg, contracts.RotateArgs{NewKid: "k", NewSecret: secret(1)}); !errors.Is(err, contracts.ErrBackendClosed) {
		t.Fatalf("rotate_all after Close: %v", err)
	}
	if _, err := b.Sign(bg, contracts.SignArgs{}); !errors.Is(err, contracts.ErrBackendClosed) {
		t.Fatalf("sign after Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
