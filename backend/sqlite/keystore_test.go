package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

func TestSeedRotateListSignVerify(t *testing.T) {
	clock := newClock(clockStartMs)
	b, _ := openFile(t, WithClock(clock.Now))
	e, ctx := eng(b), context.Background()
	s1, s2 := newSecret(t), newSecret(t)

	_, err := e.Sign(ctx, contracts.SignArgs{Scope: "x", Message: []byte("m")})
	wantErr(t, err, contracts.ErrHMACSecretNotInitialized)

	seed := must[contracts.SeedOutcome](t)(e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: s1}))
	if seed.Outcome != contracts.SeedSeeded || seed.CurrentKid != "k1" {
		t.Fatalf("seed = %+v", seed)
	}
	again := must[contracts.SeedOutcome](t)(e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: s2}))
	if again.Outcome != contracts.SeedAlreadySeeded || *again.SameSecret {
		t.Fatalf("seed again with another secret = %+v", again)
	}
	signed := must[contracts.SignResult](t)(e.Sign(ctx, contracts.SignArgs{Scope: "x", Message: []byte("m")}))

	rot := must[contracts.RotateAllResult](t)(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: s2, GraceMs: 1000}))
	got, _ := json.Marshal(rot)
	if want := `{"entries":[{"partition":0,"outcome":{"outcome":"rotated","previous_kid":"k1","new_kid":"k2","gc_count":0},"error":null}]}`; string(got) != want {
		t.Fatalf("rotate = %s, want %s", got, want)
	}
	noop := must[contracts.RotateAllResult](t)(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: s2, GraceMs: 1000}))
	if noop.Entries[0].Outcome.Outcome != contracts.RotateNoop {
		t.Fatalf("replayed rotation = %+v", noop.Entries[0])
	}
	conflict := must[contracts.RotateAllResult](t)(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k1", NewSecret: s1, GraceMs: 1000}))
	wantErr(t, conflict.Entries[0].Error, contracts.ErrRotationConflict)

	list := must[contracts.ListKidsResult](t)(e.ListKids(ctx))
	got, _ = json.Marshal(list)
	if want := `{"partitions":[{"partition":0,"current_kid":"k2","verifying":[{"kid":"k1","expires_at_ms":1767225601000}]}]}`; string(got) != want {
		t.Fatalf("list = %s, want %s", got, want)
	}

	verify := func() error {
		_, err := e.Verify(ctx, contracts.VerifyArgs{Scope: "x", Message: []byte("m"), Token: signed.Token})
		return err
	}
	clock.Advance(time.Second) // expires_at_ms == now: still valid
	if err := verify(); err != nil {
		t.Fatalf("verify at the end of grace: %v", err)
	}
	clock.Advance(time.Millisecond)
	wantErr(t, verify(), contracts.ErrTokenExpired)

	rot = must[contracts.RotateAllResult](t)(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k3", NewSecret: newSecret(t), GraceMs: 0}))
	if o := rot.Entries[0].Outcome; o.GCCount != 1 || *o.PreviousKid != "k2" {
		t.Fatalf("rotation collecting k1 = %+v", o)
	}
	wantErr(t, verify(), contracts.ErrUnknownKid)
}

func TestStateSurvivesReopen(t *testing.T) {
	b, path := openFile(t)
	ctx := context.Background()
	s := newSecret(t)
	must[contracts.SeedOutcome](t)(eng(b).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: s}))
	signed := must[contracts.SignResult](t)(eng(b).Sign(ctx, contracts.SignArgs{Message: []byte("m")}))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := eng(b).ListKids(ctx)
	wantErr(t, err, contracts.ErrBackendClosed)

	b2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	seed := must[contracts.SeedOutcome](t)(eng(b2).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: s}))
	if seed.Outcome != contracts.SeedAlreadySeeded || !*seed.SameSecret {
		t.Fatalf("seed after reopen = %+v", seed)
	}
	if _, err := eng(b2).Verify(ctx, contracts.VerifyArgs{Message: []byte("m"), Token: signed.Token}); err != nil {
		t.Fatalf("verify after reopen: %v", err)
	}
	if c := b2.Capabilities(); c.Partitions != 1 || !c.Persistent || !c.SharedAcrossProcesses {
		t.Fatalf("capabilities = %+v", c)
	}
}

func TestMemoryIsOneSharedDatabase(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, MemoryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if c := b.Capabilities(); c.Persistent || c.SharedAcrossProcesses || c.Partitions != 1 {
		t.Fatalf("capabilities = %+v", c)
	}
	e := eng(b)
	var wg sync.WaitGroup
	outcomes := make(chan string, 16)
	for i := range 16 {
		wg.Go(func() {
			o, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k" + string(rune('a'+i)), Secret: newSecret(t)})
			if err != nil {
				t.Error(err)
				return
			}
			outcomes <- o.Outcome
		})
	}
	wg.Wait()
	close(outcomes)
	seeded := 0
	for o := range outcomes {
		if o == contracts.SeedSeeded {
			seeded++
		}
	}
	if seeded != 1 {
		t.Fatalf("%d concurrent seeds answered seeded, want exactly 1", seeded)
	}
}

func TestOneCurrentKidIsEnforcedBySchema(t *testing.T) {
	b, _ := openFile(t)
	ctx := context.Background()
	must[contracts.SeedOutcome](t)(eng(b).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: newSecret(t)}))
	_, err := b.db.ExecContext(ctx, insertKey, "k2", []byte(newSecret(t)), 0, sql.NullInt64{})
	if err == nil {
		t.Fatal("a second current kid was inserted")
	}
}
