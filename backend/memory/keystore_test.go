package memory

import (
	"context"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

func TestRegisteredScheme(t *testing.T) {
	for _, s := range engine.Schemes() {
		if s == Scheme {
			return
		}
	}
	t.Fatalf("engine.Schemes() = %v, want %q among them", engine.Schemes(), Scheme)
}

func TestCapabilities(t *testing.T) {
	if got := New().Capabilities(); got != (engine.Capabilities{Partitions: 1}) {
		t.Fatalf("Capabilities() = %+v, want one partition, not persistent, not shared", got)
	}
	if err := New().Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestSeed(t *testing.T) {
	tests := []struct {
		name  string
		given func(f *fixture)
		args  contracts.SeedArgs
		want  string
	}{
		{"EmptyKeystoreIsSeeded", func(*fixture) {},
			contracts.SeedArgs{Kid: "k1", Secret: secret('a')},
			`{"outcome":"seeded","kid":"k1","current_kid":"k1","same_secret":null}`},
		{"SameKidSameSecretIsAlreadySeeded", seedK1,
			contracts.SeedArgs{Kid: "k1", Secret: secret('a')},
			`{"outcome":"already_seeded","kid":"k1","current_kid":"k1","same_secret":true}`},
		{"SameKidOtherSecretReportsIt", seedK1,
			contracts.SeedArgs{Kid: "k1", Secret: secret('b')},
			`{"outcome":"already_seeded","kid":"k1","current_kid":"k1","same_secret":false}`},
		{"VerifyingKidIsAlreadySeeded", func(f *fixture) { seedK1(f); rotate(f, "k2", time.Hour) },
			contracts.SeedArgs{Kid: "k1", Secret: secret('a')},
			`{"outcome":"already_seeded","kid":"k1","current_kid":"k2","same_secret":true}`},
		{"CollectedKidIsAlreadyInitialized", func(f *fixture) {
			seedK1(f)
			rotate(f, "k2", 0)
			f.clock.advance(time.Millisecond)
			rotate(f, "k3", 0) // collects k1
		},
			contracts.SeedArgs{Kid: "k1", Secret: secret('a')},
			`{"outcome":"already_initialized","kid":"k1","current_kid":"k3","same_secret":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.given(f)
			got := try(f.eng.Seed(f.ctx, tt.args)).must(t)
			if s := jsonOf(t, got); s != tt.want {
				t.Fatalf("seed = %s\nwant   %s", s, tt.want)
			}
		})
	}
}

func TestSeedDoesNotAliasCallerSecret(t *testing.T) {
	f := newFixture(t)
	s := secret('a')
	f.must(f.eng.Seed(f.ctx, contracts.SeedArgs{Kid: "k1", Secret: s}))
	s[0] = 'z'
	got := try(f.eng.Sign(f.ctx, contracts.SignArgs{Message: []byte("m")})).must(t)
	if want := contracts.SignToken("k1", secret('a'), []byte("m")); got.Token != want {
		t.Fatal("the stored secret changed when the caller changed its slice")
	}
}

func TestRotateAll(t *testing.T) {
	tests := []struct {
		name    string
		given   func(f *fixture)
		args    contracts.RotateArgs
		want    string
		wantErr *contracts.Error
	}{
		{"EmptyKeystoreBootstraps", func(*fixture) {},
			contracts.RotateArgs{NewKid: "k1", NewSecret: secret('a'), GraceMs: 1000},
			`{"outcome":"rotated","previous_kid":null,"new_kid":"k1","gc_count":0}`, nil},
		{"CurrentBecomesVerifying", seedK1,
			contracts.RotateArgs{NewKid: "k2", NewSecret: secret('b'), GraceMs: 1000},
			`{"outcome":"rotated","previous_kid":"k1","new_kid":"k2","gc_count":0}`, nil},
		{"ReplayIsNoop", func(f *fixture) { seedK1(f); rotate(f, "k2", time.Second) },
			contracts.RotateArgs{NewKid: "k2", NewSecret: secret('b'), GraceMs: 1000},
			`{"outcome":"noop","kid":"k2"}`, nil},
		{"CurrentWithOtherSecretConflicts", seedK1,
			contracts.RotateArgs{NewKid: "k1", NewSecret: secret('b'), GraceMs: 1000},
			"", contracts.ErrRotationConflict},
		{"VerifyingKidIsNeverReused", func(f *fixture) { seedK1(f); rotate(f, "k2", time.Hour) },
			contracts.RotateArgs{NewKid: "k1", NewSecret: secret('a'), GraceMs: 1000},
			"", contracts.ErrRotationConflict},
		{"ExpiredVerifyingKidsAreCollected", func(f *fixture) {
			seedK1(f)
			rotate(f, "k2", time.Second)
			rotate(f, "k3", time.Hour)
			f.clock.advance(time.Second + time.Millisecond) // k1 expired, k2 not
		},
			contracts.RotateArgs{NewKid: "k4", NewSecret: secret('d'), GraceMs: 0},
			`{"outcome":"rotated","previous_kid":"k3","new_kid":"k4","gc_count":1}`, nil},
		{"KidExpiringNowIsKept", func(f *fixture) {
			seedK1(f)
			rotate(f, "k2", time.Second)
			f.clock.advance(time.Second) // k1 expires exactly now
		},
			contracts.RotateArgs{NewKid: "k3", NewSecret: secret('c'), GraceMs: 0},
			`{"outcome":"rotated","previous_kid":"k2","new_kid":"k3","gc_count":0}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.given(f)
			res := try(f.eng.RotateAll(f.ctx, tt.args)).must(t)
			if len(res.Entries) != 1 || res.Entries[0].Partition != 0 {
				t.Fatalf("entries = %s, want one for partition 0", jsonOf(t, res))
			}
			e := res.Entries[0]
			if tt.wantErr != nil {
				wantErr(t, e.Error, tt.wantErr)
				if e.Outcome != nil || !res.Failed() {
					t.Fatalf("failed entry = %s, want outcome null", jsonOf(t, e))
				}
				return
			}
			if e.Error != nil {
				t.Fatalf("entry error = %v", e.Error)
			}
			if s := jsonOf(t, e.Outcome); s != tt.want {
				t.Fatalf("outcome = %s\nwant      %s", s, tt.want)
			}
		})
	}
}

func TestRotateConflictWritesNothing(t *testing.T) {
	f := seeded(t)
	rotate(f, "k2", time.Hour)
	before := jsonOf(t, try(f.eng.ListKids(f.ctx)).must(t))
	res := try(f.eng.RotateAll(f.ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: secret('x')})).must(t)
	wantErr(t, res.Entries[0].Error, contracts.ErrRotationConflict)
	if after := jsonOf(t, try(f.eng.ListKids(f.ctx)).must(t)); after != before {
		t.Fatalf("keystore changed by a conflicting rotation:\n%s\n%s", before, after)
	}
}

func TestListKids(t *testing.T) {
	f := newFixture(t)
	if s := jsonOf(t, try(f.eng.ListKids(f.ctx)).must(t)); s != `{"partitions":[{"partition":0,"current_kid":null,"verifying":[]}]}` {
		t.Fatalf("empty list_kids = %s", s)
	}
	seedK1(f)
	rotate(f, "k2", 2*time.Second) // k1 expires at start+2000
	rotate(f, "k3", time.Second)   // k2 expires at start+1000
	rotate(f, "k4", 5*time.Second) // k3 expires at start+5000

	t.Run("SortedByExpiry", func(t *testing.T) {
		want := `{"partitions":[{"partition":0,"current_kid":"k4","verifying":[` +
			`{"kid":"k2","expires_at_ms":1767225601000},{"kid":"k1","expires_at_ms":1767225602000},` +
			`{"kid":"k3","expires_at_ms":1767225605000}]}]}`
		if s := jsonOf(t, try(f.eng.ListKids(f.ctx)).must(t)); s != want {
			t.Fatalf("list_kids = %s\nwant        %s", s, want)
		}
	})
	t.Run("ExpiredKidsLeftOutExpiringNowKept", func(t *testing.T) {
		f.clock.advance(2 * time.Second) // k2 expired, k1 expires exactly now
		want := `{"partitions":[{"partition":0,"current_kid":"k4","verifying":[` +
			`{"kid":"k1","expires_at_ms":1767225602000},{"kid":"k3","expires_at_ms":1767225605000}]}]}`
		if s := jsonOf(t, try(f.eng.ListKids(f.ctx)).must(t)); s != want {
			t.Fatalf("list_kids = %s\nwant        %s", s, want)
		}
	})
}

func TestSignAndVerify(t *testing.T) {
	msg := []byte("hello")
	t.Run("NoKeystore", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.eng.Sign(f.ctx, contracts.SignArgs{Scope: "s", Message: msg})
		wantErr(t, err, contracts.ErrHMACSecretNotInitialized)
		_, err = f.eng.Verify(f.ctx, contracts.VerifyArgs{Scope: "s", Message: msg, Token: contracts.SignToken("k1", secret('a'), msg)})
		wantErr(t, err, contracts.ErrHMACSecretNotInitialized)
	})
	t.Run("TokenIsTheContractToken", func(t *testing.T) {
		f := seeded(t)
		got := try(f.eng.Sign(f.ctx, contracts.SignArgs{Scope: "any scope", Message: msg})).must(t)
		if got.Kid != "k1" || got.Token != contracts.SignToken("k1", secret('a'), msg) {
			t.Fatalf("sign = %+v, want the token contracts.SignToken makes", got)
		}
		v := try(f.eng.Verify(f.ctx, contracts.VerifyArgs{Scope: "other", Message: msg, Token: got.Token})).must(t)
		if s := jsonOf(t, v); s != `{"valid":true,"kid":"k1"}` {
			t.Fatalf("verify = %s", s)
		}
	})

	// Given k1 rotated out with 1s grace and k2 current.
	f := seeded(t)
	old := try(f.eng.Sign(f.ctx, contracts.SignArgs{Message: msg})).must(t).Token
	rotate(f, "k2", time.Second)
	verify := func(token string) error {
		_, err := f.eng.Verify(f.ctx, contracts.VerifyArgs{Message: msg, Token: token})
		return err
	}
	tests := []struct {
		name    string
		token   string
		advance time.Duration
		want    *contracts.Error // nil: valid
	}{
		{"VerifyingKidInGrace", old, 0, nil},
		{"VerifyingKidExpiringNow", old, time.Second, nil},
		{"VerifyingKidPastGrace", old, time.Millisecond, contracts.ErrTokenExpired},
		{"CurrentKidNeverExpires", contracts.SignToken("k2", secret('b'), msg), 0, nil},
		{"UnknownKid", contracts.SignToken("k9", secret('b'), msg), 0, contracts.ErrUnknownKid},
		{"WrongSecret", contracts.SignToken("k2", secret('c'), msg), 0, contracts.ErrSignatureMismatch},
		{"KidSwapped", "k2" + old[2:], 0, contracts.ErrSignatureMismatch},
		{"Malformed", "k2:ABC", 0, contracts.ErrTokenMalformed},
	}
	for _, tt := range tests { // sequential: the clock only moves forward
		t.Run(tt.name, func(t *testing.T) {
			f.clock.advance(tt.advance)
			err := verify(tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				return
			}
			wantErr(t, err, tt.want)
		})
	}
}

func TestClosedBackendRefusesEveryOperation(t *testing.T) {
	f := seeded(t)
	if err := f.b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	ops := map[string]func() error{
		"Ping": func() error { return f.b.Ping(ctx) },
		"Seed": func() error { _, err := f.b.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret('a')}); return err },
		"Rotate": func() error {
			_, err := f.b.RotateAll(ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: secret('b')})
			return err
		},
		"ListKids": func() error { _, err := f.b.ListKids(ctx, contracts.ListKidsArgs{}); return err },
		"Sign":     func() error { _, err := f.b.Sign(ctx, contracts.SignArgs{}); return err },
		"Verify":   func() error { _, err := f.b.Verify(ctx, contracts.VerifyArgs{Token: "k1:" + zeros64}); return err },
		"Suspend":  func() error { _, err := f.b.Suspend(ctx, suspendArgs("e1", "a")); return err },
		"Deliver": func() error {
			_, err := f.b.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: contracts.NewID(), Token: "k1:" + zeros64, Name: "n"})
			return err
		},
		"Observe": func() error {
			_, err := f.b.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1"})
			return err
		},
		"List": func() error { _, err := f.b.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 1}); return err },
		"Claim": func() error {
			_, err := f.b.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 1})
			return err
		},
		"Complete": func() error {
			_, err := f.b.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: contracts.NewID()})
			return err
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) { wantErr(t, op(), contracts.ErrBackendClosed) })
	}
}

func TestCanceledContext(t *testing.T) {
	f := seeded(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.b.Sign(ctx, contracts.SignArgs{})
	wantErr(t, err, contracts.ErrCanceled)
}

const zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"

func seedK1(f *fixture) {
	f.t.Helper()
	f.must(f.eng.Seed(f.ctx, contracts.SeedArgs{Kid: "k1", Secret: secret('a')}))
}

// rotate rotates to kid with a secret derived from its last letter and fails
// the test on any error.
func rotate(f *fixture, kid string, grace time.Duration) {
	f.t.Helper()
	s := secret('a' + kid[len(kid)-1] - '1')
	res, err := f.eng.RotateAll(f.ctx, contracts.RotateArgs{NewKid: kid, NewSecret: s, GraceMs: grace.Milliseconds()})
	if err != nil || res.Failed() {
		f.t.Fatalf("rotate to %s: %v %s", kid, err, jsonOf(f.t, res))
	}
}

func TestOpenThroughRegistryGivesFreshStores(t *testing.T) {
	ctx := context.Background()
	first := try(engine.Open(ctx, "memory://")).must(t)
	defer first.Close()
	second := try(engine.Open(ctx, "memory://")).must(t)
	defer second.Close()
	try(first.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret('a')})).must(t)
	got := try(second.Seed(ctx, contracts.SeedArgs{Kid: "k2", Secret: secret('b')})).must(t)
	if got.Outcome != contracts.SeedSeeded {
		t.Fatalf("second store seed = %s, want seeded: stores are shared", jsonOf(t, got))
	}
}
