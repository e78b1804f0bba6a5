package conformance

import (
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
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
	if _, err := goldenText(r); err == nil || !strings.Contains(err.Error(), "partition 1 differs") {
		t.Fatalf("want a partition 1 difference, got %v", err)
	}
	r.Entries[1].Partition = 2
	if _, err := goldenText(r); err == nil || !strings.Contains(err.Error(), "partitions 0..P-1") {
		t.Fatalf("want a partition order error, got %v", err)
	}
}

// memoryHarness opens reference memory backends on the suite's clock.
func memoryHarness() Harness {
	return Harness{
		ClockControl: true,
		Open: func(t testing.TB, clock *Clock) engine.Backend {
			return memory.New(memory.WithClock(clock.Now))
		},
	}
}

// TestConformance runs the whole suite against the reference memory backend.
// Its envelopes are the golden files: regenerate them with
//
//	go test ./conformance -run TestConformance -update
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
	Run(t, Harness{Open: func(t testing.TB, _ *Clock) engine.Backend { return memory.New() }})
}
