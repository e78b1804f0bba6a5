package driver

import (
	"bytes"
	"errors"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
)

func secretOf(b byte) contracts.Secret { return contracts.Secret(bytes.Repeat([]byte{b}, 32)) }

func TestPlanSeed(t *testing.T) {
	next, out, changed := PlanSeed(PartitionKeys{}, contracts.SeedArgs{Kid: "k1", Secret: secretOf(1)})
	if !changed || out.Outcome != contracts.SeedSeeded || next.Current == nil || next.Current.Kid != "k1" {
		t.Fatalf("empty keystore: %+v %v", out, changed)
	}
	_, out, changed = PlanSeed(next, contracts.SeedArgs{Kid: "k1", Secret: secretOf(2)})
	if changed || out.Outcome != contracts.SeedAlreadySeeded || out.SameSecret == nil || *out.SameSecret {
		t.Fatalf("same kid, other secret: %+v", out)
	}
	_, out, _ = PlanSeed(next, contracts.SeedArgs{Kid: "k9", Secret: secretOf(1)})
	if out.Outcome != contracts.SeedAlreadyInitialized || out.SameSecret != nil || out.CurrentKid != "k1" {
		t.Fatalf("other kid: %+v", out)
	}
	rotated, _, _, _ := PlanRotate(next, contracts.RotateArgs{NewKid: "k2", NewSecret: secretOf(2), GraceMs: 10}, 0)
	_, out, _ = PlanSeed(rotated, contracts.SeedArgs{Kid: "k1", Secret: secretOf(1)})
	if out.Outcome != contracts.SeedAlreadySeeded || !*out.SameSecret || out.CurrentKid != "k2" {
		t.Fatalf("verifying kid: %+v", out)
	}
}

func TestPlanRotate(t *testing.T) {
	k0 := PartitionKeys{}
	k1, out, changed, err := PlanRotate(k0, contracts.RotateArgs{NewKid: "a", NewSecret: secretOf(1), GraceMs: 100}, 1000)
	if err != nil || !changed || out.PreviousKid != nil || out.NewKid != "a" {
		t.Fatalf("bootstrap: %+v %v", out, err)
	}
	if _, out, changed, _ := PlanRotate(k1, contracts.RotateArgs{NewKid: "a", NewSecret: secretOf(1)}, 1000); changed || out.Outcome != contracts.RotateNoop {
		t.Fatalf("replay: %+v", out)
	}
	if _, _, _, err := PlanRotate(k1, contracts.RotateArgs{NewKid: "a", NewSecret: secretOf(2)}, 1000); !errors.Is(err, contracts.ErrRotationConflict) {
		t.Fatalf("same kid other secret: %v", err)
	}
	k2, out, _, _ := PlanRotate(k1, contracts.RotateArgs{NewKid: "b", NewSecret: secretOf(2), GraceMs: 100}, 1000)
	if *out.PreviousKid != "a" || *k2.Find("a").ExpiresAtMs != 1100 {
		t.Fatalf("rotate a->b: %+v", out)
	}
	if _, _, _, err := PlanRotate(k2, contracts.RotateArgs{NewKid: "a", NewSecret: secretOf(1)}, 1000); !errors.Is(err, contracts.ErrRotationConflict) {
		t.Fatalf("reuse of a verifying kid: %v", err)
	}
	// At 1100 "a" is still usable (expires_at == now): not collected.
	k3, out, _, _ := PlanRotate(k2, contracts.RotateArgs{NewKid: "c", NewSecret: secretOf(3), GraceMs: 100}, 1100)
	if out.GCCount != 0 || k3.Find("a") == nil {
		t.Fatalf("boundary: %+v", out)
	}
	// At 1201 both a (1100) and b (1200) are past: collected.
	k4, out, _, _ := PlanRotate(k3, contracts.RotateArgs{NewKid: "d", NewSecret: secretOf(4), GraceMs: 100}, 1201)
	if out.GCCount != 2 || k4.Find("a") != nil || k4.Find("b") != nil || k4.Find("c") == nil {
		t.Fatalf("gc: %+v", out)
	}
}

func TestListPartitionSortsAndHidesExpired(t *testing.T) {
	e := func(v int64) *int64 { return &v }
	k := PartitionKeys{
		Current: &KidRecord{Kid: "cur"},
		Verifying: []KidRecord{
			{Kid: "z", ExpiresAtMs: e(50)}, {Kid: "b", ExpiresAtMs: e(40)}, {Kid: "a", ExpiresAtMs: e(50)}, {Kid: "old", ExpiresAtMs: e(9)},
		},
	}
	got := ListPartition(3, k, 10)
	want := []contracts.VerifyingKid{{Kid: "b", ExpiresAtMs: 40}, {Kid: "a", ExpiresAtMs: 50}, {Kid: "z", ExpiresAtMs: 50}}
	if got.Partition != 3 || *got.CurrentKid != "cur" || len(got.Verifying) != 3 {
		t.Fatalf("ListPartition = %+v", got)
	}
	for i := range want {
		if got.Verifying[i] != want[i] {
			t.Fatalf("verifying[%d] = %+v, want %+v", i, got.Verifying[i], want[i])
		}
	}
}

func TestDiffKeys(t *testing.T) {
	k1, _, _, _ := PlanRotate(PartitionKeys{}, contracts.RotateArgs{NewKid: "a", NewSecret: secretOf(1)}, 0)
	k2, _, _, _ := PlanRotate(k1, contracts.RotateArgs{NewKid: "b", NewSecret: secretOf(2), GraceMs: 10}, 100)
	c := DiffKeys(k1, k2)
	if len(c.Deleted) != 0 || len(c.Expiry) != 1 || c.Expiry[0].Kid != "a" || *c.Expiry[0].ExpiresAtMs != 110 ||
		len(c.Inserted) != 1 || c.Inserted[0].Kid != "b" || c.Inserted[0].ExpiresAtMs != nil {
		t.Fatalf("rotation a->b: %+v", c)
	}
	k3, _, _, _ := PlanRotate(k2, contracts.RotateArgs{NewKid: "c", NewSecret: secretOf(3)}, 500) // collects a
	c = DiffKeys(k2, k3)
	if len(c.Deleted) != 1 || c.Deleted[0] != "a" || len(c.Expiry) != 1 || c.Expiry[0].Kid != "b" || len(c.Inserted) != 1 {
		t.Fatalf("rotation b->c collecting a: %+v", c)
	}
	if c := DiffKeys(k3, k3); len(c.Deleted)+len(c.Expiry)+len(c.Inserted) != 0 {
		t.Fatalf("no change: %+v", c)
	}
}
