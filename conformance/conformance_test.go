package conformance

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// TestGoldenNormalization checks checkGolden's placeholders on a fixed value.
func TestGoldenNormalization(t *testing.T) {
	prev := "kid-a"
	id1, id2 := "3f2b8c1e-0a4d-4e5f-8a9b-1c2d3e4f5a6b", "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	steps := []any{
		map[string]any{"waitpoint_id": id1, "other": id2, "again": id1, "created_at_ms": 1767225600000, "timeout_at_ms": nil,
			"token": "kid-a:" + strings.Repeat("ab", 32), "next_cursor": "abc", "note": "<b>&"},
		contracts.RotateAllResult{Entries: []contracts.RotateEntry{
			{Partition: 0, Outcome: &contracts.RotateOutcome{Outcome: "rotated", PreviousKid: &prev, NewKid: "kid-b"}},
			{Partition: 1, Outcome: &contracts.RotateOutcome{Outcome: "rotated", PreviousKid: &prev, NewKid: "kid-b"}},
		}},
		contracts.ErrRotationConflict.With("new_kid: %q is a verifying kid", "kid-a"),
	}
	checkGolden(t, "keystore_golden_selftest", steps)
}

// TestGoldenPartitionMismatch checks that differing partitions are reported.
func TestGoldenPartitionMismatch(t *testing.T) {
	prev := "kid-a"
	r := contracts.RotateAllResult{Entries: []contracts.RotateEntry{
		{Partition: 0, Outcome: &contracts.RotateOutcome{Outcome: "rotated", PreviousKid: &prev, NewKid: "kid-b"}},
		{Partition: 1, Outcome: &contracts.RotateOutcome{Outcome: "noop", Kid: "kid-b"}},
	}}
	_, err := goldenText(r)
	require.ErrorContains(t, err, "partition 1 differs", "want a partition 1 difference")
	r.Entries[1].Partition = 2
	_, err = goldenText(r)
	require.ErrorContains(t, err, "partitions 0..P-1", "want a partition order error")
}

// memoryHarness opens reference memory backends on the suite's clock.
func memoryHarness() Harness {
	return Harness{
		ClockControl: true,
		Open: func(t testing.TB, clock *Clock) driver.Backend {
			return memory.New(memory.WithClock(clock.Now))
		},
	}
}

// TestConformance runs the whole suite against the reference memory backend.
// Its envelopes are the golden files: regenerate them with
//
//	go test ./conformance -run TestConformance -conformance.update
//
// and review the diff.
func TestConformance(t *testing.T) {
	Run(t, memoryHarness())
}

// TestConformanceRealTime runs the suite against the memory backend on its
// own clock, as drivers without clock control run it.
func TestConformanceRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time waits")
	}
	if *update {
		t.Skip("goldens come from the manual-clock run")
	}
	Run(t, Harness{Open: func(t testing.TB, _ *Clock) driver.Backend { return memory.New() }})
}

// partitioned is a test-only P-partition backend made of P memory backends
// (one per partition), to run the suite's per-partition paths (entries,
// routing by scope, golden collapsing) without a server. Seeds are
// serialized so that every partition installs the same first kid; rotations
// are atomic per partition only, as on Valkey.
type partitioned struct {
	*memory.Backend // partition 0; also serves the suspension methods
	parts           []*memory.Backend
	seedMu          *sync.Mutex // shared by every handle on these partitions
	view            bool        // a second handle: Close leaves the partitions open
}

func newPartitioned(p int, clock *Clock) *partitioned {
	b := &partitioned{seedMu: &sync.Mutex{}}
	for range p {
		var opts []memory.Option
		if clock != nil {
			opts = append(opts, memory.WithClock(clock.Now))
		}
		b.parts = append(b.parts, memory.New(opts...))
	}
	b.Backend = b.parts[0]
	return b
}

func (b *partitioned) Capabilities() driver.Capabilities {
	return driver.Capabilities{Partitions: len(b.parts)}
}

// reopen is a second handle on the same partitions (Harness.Reopen).
func (b *partitioned) reopen() *partitioned {
	return &partitioned{Backend: b.Backend, parts: b.parts, seedMu: b.seedMu, view: true}
}

func (b *partitioned) Close() error {
	if b.view {
		return nil
	}
	for _, p := range b.parts {
		_ = p.Close()
	}
	return nil
}

func (b *partitioned) Seed(ctx context.Context, a contracts.SeedArgs) (contracts.SeedOutcome, error) {
	b.seedMu.Lock()
	defer b.seedMu.Unlock()
	var first contracts.SeedOutcome
	for i, p := range b.parts {
		out, err := p.Seed(ctx, a)
		if err != nil {
			return out, err
		}
		if i == 0 {
			first = out
		}
	}
	return first, nil
}

func (b *partitioned) RotateAll(ctx context.Context, a contracts.RotateArgs) (contracts.RotateAllResult, error) {
	entries, err := eachPartition(b, func(p *memory.Backend) ([]contracts.RotateEntry, error) {
		r, err := p.RotateAll(ctx, a)
		return r.Entries, err
	}, func(e *contracts.RotateEntry, i int) { e.Partition = i })
	return contracts.RotateAllResult{Entries: entries}, err
}

func (b *partitioned) RevokeKid(ctx context.Context, a contracts.RevokeKidArgs) (contracts.RevokeKidResult, error) {
	entries, err := eachPartition(b, func(p *memory.Backend) ([]contracts.RevokeEntry, error) {
		r, err := p.RevokeKid(ctx, a)
		return r.Entries, err
	}, func(e *contracts.RevokeEntry, i int) { e.Partition = i })
	return contracts.RevokeKidResult{Entries: entries}, err
}

// eachPartition runs a one-partition operation on every partition and
// renumbers each one's single entry with its partition.
func eachPartition[E any](b *partitioned, call func(*memory.Backend) ([]E, error), renumber func(*E, int)) ([]E, error) {
	var out []E
	for i, p := range b.parts {
		entries, err := call(p)
		if err != nil {
			return out, err
		}
		e := entries[0]
		renumber(&e, i)
		out = append(out, e)
	}
	return out, nil
}

func (b *partitioned) ListKids(ctx context.Context, a contracts.ListKidsArgs) (contracts.ListKidsResult, error) {
	var r contracts.ListKidsResult
	for i, p := range b.parts {
		pr, err := p.ListKids(ctx, a)
		if err != nil {
			return r, err
		}
		e := pr.Partitions[0]
		e.Partition = i
		r.Partitions = append(r.Partitions, e)
	}
	return r, nil
}

func (b *partitioned) Sign(ctx context.Context, a contracts.SignArgs) (contracts.SignResult, error) {
	return b.parts[driver.PartitionOf(a.Scope, len(b.parts))].Sign(ctx, a)
}

func (b *partitioned) Verify(ctx context.Context, a contracts.VerifyArgs) (contracts.VerifyResult, error) {
	return b.parts[driver.PartitionOf(a.Scope, len(b.parts))].Verify(ctx, a)
}

// TestKeystorePartitioned runs the keystore scenarios and keystore
// concurrency against P = 4 and P = 256 partitions, sharing the
// one-partition golden files, with a second handle for Reopen.
func TestKeystorePartitioned(t *testing.T) {
	if *update {
		t.Skip("goldens come from the one-partition memory backend")
	}
	for _, p := range []int{4, 256} {
		t.Run(fmt.Sprintf("P=%d", p), func(t *testing.T) {
			h := Harness{
				ClockControl: true,
				Open:         func(t testing.TB, clock *Clock) driver.Backend { return newPartitioned(p, clock) },
				Reopen:       func(t testing.TB, b driver.Backend) driver.Backend { return b.(*partitioned).reopen() },
			}
			RunKeystore(t, h)
			t.Run("Concurrency", func(t *testing.T) { keystoreConcurrencyScenarios(t, h) })
		})
	}
}
