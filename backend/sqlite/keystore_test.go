package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

func TestSeedRotateListSignVerify(t *testing.T) {
	clock := conformance.NewClock(conformance.ClockStartMs)
	b, _ := openFile(t, WithClock(clock.Now))
	e, ctx := eng(b), context.Background()
	s1, s2 := newSecret(t), newSecret(t)

	_, err := e.Sign(ctx, contracts.SignArgs{Scope: "x", Message: []byte("m")})
	drivertest.WantErr(t, err, contracts.ErrHMACSecretNotInitialized)

	seed := drivertest.Try(e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: s1})).Must(t)
	if seed.Outcome != contracts.SeedSeeded || seed.CurrentKid != "k1" {
		t.Fatalf("seed = %+v", seed)
	}
	again := drivertest.Try(e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: s2})).Must(t)
	if again.Outcome != contracts.SeedAlreadySeeded || *again.SameSecret {
		t.Fatalf("seed again with another secret = %+v", again)
	}
	signed := drivertest.Try(e.Sign(ctx, contracts.SignArgs{Scope: "x", Message: []byte("m")})).Must(t)

	rot := drivertest.Try(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: s2, GraceMs: 1000})).Must(t)
	got, _ := json.Marshal(rot)
	if want := `{"entries":[{"partition":0,"outcome":{"outcome":"rotated","previous_kid":"k1","new_kid":"k2","gc_count":0},"error":null}]}`; string(got) != want {
		t.Fatalf("rotate = %s, want %s", got, want)
	}
	noop := drivertest.Try(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: s2, GraceMs: 1000})).Must(t)
	if noop.Entries[0].Outcome.Outcome != contracts.RotateNoop {
		t.Fatalf("replayed rotation = %+v", noop.Entries[0])
	}
	conflict := drivertest.Try(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k1", NewSecret: s1, GraceMs: 1000})).Must(t)
	drivertest.WantErr(t, conflict.Entries[0].Error, contracts.ErrRotationConflict)

	list := drivertest.Try(e.ListKids(ctx)).Must(t)
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
	drivertest.WantErr(t, verify(), contracts.ErrTokenExpired)

	rot = drivertest.Try(e.RotateAll(ctx, contracts.RotateArgs{NewKid: "k3", NewSecret: newSecret(t), GraceMs: 0})).Must(t)
	if o := rot.Entries[0].Outcome; o.GCCount != 1 || *o.PreviousKid != "k2" {
		t.Fatalf("rotation collecting k1 = %+v", o)
	}
	drivertest.WantErr(t, verify(), contracts.ErrUnknownKid)
}

func TestStateSurvivesReopen(t *testing.T) {
	b, path := openFile(t)
	ctx := context.Background()
	s := newSecret(t)
	drivertest.Try(eng(b).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: s})).Must(t)
	signed := drivertest.Try(eng(b).Sign(ctx, contracts.SignArgs{Message: []byte("m")})).Must(t)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := eng(b).ListKids(ctx)
	drivertest.WantErr(t, err, contracts.ErrBackendClosed)

	b2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	seed := drivertest.Try(eng(b2).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: s})).Must(t)
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
	drivertest.Try(eng(b).Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: newSecret(t)})).Must(t)
	_, err := b.db.ExecContext(ctx, insertKey, "k2", []byte(newSecret(t)), 0, sql.NullInt64{})
	if err == nil {
		t.Fatal("a second current kid was inserted")
	}
}
