package memory

import (
	"context"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
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
	if got := New().Capabilities(); got != (driver.Capabilities{Partitions: 1}) {
		t.Fatalf("Capabilities() = %+v, want one partition, not persistent, not shared", got)
	}
	if err := New().Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestSeed(t *testing.T) {
	tests := []struct {
		name  string
		given func(f *drivertest.Fixture)
		args  contracts.SeedArgs
		want  string
	}{
		{"EmptyKeystoreIsSeeded", func(*drivertest.Fixture) {},
			contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')},
			`{"outcome":"seeded","kid":"k1","current_kid":"k1","same_secret":null}`},
		{"SameKidSameSecretIsAlreadySeeded", seedK1,
			contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')},
			`{"outcome":"already_seeded","kid":"k1","current_kid":"k1","same_secret":true}`},
		{"SameKidOtherSecretReportsIt", seedK1,
			contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('b')},
			`{"outcome":"already_seeded","kid":"k1","current_kid":"k1","same_secret":false}`},
		{"VerifyingKidIsAlreadySeeded", func(f *drivertest.Fixture) { seedK1(f); f.Rotate("k2", time.Hour) },
			contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')},
			`{"outcome":"already_seeded","kid":"k1","current_kid":"k2","same_secret":true}`},
		{"CollectedKidIsAlreadyInitialized", func(f *drivertest.Fixture) {
			seedK1(f)
			f.Rotate("k2", 0)
			f.Clock.Advance(time.Millisecond)
			f.Rotate("k3", 0) // collects k1
		},
			contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')},
			`{"outcome":"already_initialized","kid":"k1","current_kid":"k3","same_secret":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := harness.NewFixture(t)
			tt.given(f)
			got := drivertest.Try(f.Eng.Seed(f.Ctx, tt.args)).Must(t)
			if s := drivertest.JSONOf(t, got); s != tt.want {
				t.Fatalf("seed = %s\nwant   %s", s, tt.want)
			}
		})
	}
}

func TestSeedDoesNotAliasCallerSecret(t *testing.T) {
	f := harness.NewFixture(t)
	s := drivertest.Secret('a')
	f.Must(f.Eng.Seed(f.Ctx, contracts.SeedArgs{Kid: "k1", Secret: s}))
	s[0] = 'z'
	got := drivertest.Try(f.Eng.Sign(f.Ctx, contracts.SignArgs{Message: []byte("m")})).Must(t)
	if want := driver.SignToken("k1", drivertest.Secret('a'), driver.SignatureInput("k1", "", []byte("m"))); got.Token != want {
		t.Fatal("the stored secret changed when the caller changed its slice")
	}
}

func TestRotateAll(t *testing.T) {
	tests := []struct {
		name    string
		given   func(f *drivertest.Fixture)
		args    contracts.RotateArgs
		want    string
		wantErr error
	}{
		{"EmptyKeystoreBootstraps", func(*drivertest.Fixture) {},
			contracts.RotateArgs{NewKid: "k1", NewSecret: drivertest.Secret('a'), GraceMs: 1000},
			`{"outcome":"rotated","previous_kid":null,"new_kid":"k1","gc_count":0}`, nil},
		{"CurrentBecomesVerifying", seedK1,
			contracts.RotateArgs{NewKid: "k2", NewSecret: drivertest.Secret('b'), GraceMs: 1000},
			`{"outcome":"rotated","previous_kid":"k1","new_kid":"k2","gc_count":0}`, nil},
		{"ReplayIsNoop", func(f *drivertest.Fixture) { seedK1(f); f.Rotate("k2", time.Second) },
			contracts.RotateArgs{NewKid: "k2", NewSecret: drivertest.Secret('b'), GraceMs: 1000},
			`{"outcome":"noop","kid":"k2"}`, nil},
		{"CurrentWithOtherSecretConflicts", seedK1,
			contracts.RotateArgs{NewKid: "k1", NewSecret: drivertest.Secret('b'), GraceMs: 1000},
			"", contracts.ErrRotationConflict},
		{"VerifyingKidIsNeverReused", func(f *drivertest.Fixture) { seedK1(f); f.Rotate("k2", time.Hour) },
			contracts.RotateArgs{NewKid: "k1", NewSecret: drivertest.Secret('a'), GraceMs: 1000},
			"", contracts.ErrRotationConflict},
		{"ExpiredVerifyingKidsAreCollected", func(f *drivertest.Fixture) {
			seedK1(f)
			f.Rotate("k2", time.Second)
			f.Rotate("k3", time.Hour)
			f.Clock.Advance(time.Second + time.Millisecond) // k1 expired, k2 not
		},
			contracts.RotateArgs{NewKid: "k4", NewSecret: drivertest.Secret('d'), GraceMs: 0},
			`{"outcome":"rotated","previous_kid":"k3","new_kid":"k4","gc_count":1}`, nil},
		{"KidExpiringNowIsKept", func(f *drivertest.Fixture) {
			seedK1(f)
			f.Rotate("k2", time.Second)
			f.Clock.Advance(time.Second) // k1 expires exactly now
		},
			contracts.RotateArgs{NewKid: "k3", NewSecret: drivertest.Secret('c'), GraceMs: 0},
			`{"outcome":"rotated","previous_kid":"k2","new_kid":"k3","gc_count":0}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := harness.NewFixture(t)
			tt.given(f)
			res := drivertest.Try(f.Eng.RotateAll(f.Ctx, tt.args)).Must(t)
			if len(res.Entries) != 1 || res.Entries[0].Partition != 0 {
				t.Fatalf("entries = %s, want one for partition 0", drivertest.JSONOf(t, res))
			}
			e := res.Entries[0]
			if tt.wantErr != nil {
				drivertest.WantErr(t, e.Error, tt.wantErr)
				if e.Outcome != nil || !res.Failed() {
					t.Fatalf("failed entry = %s, want outcome null", drivertest.JSONOf(t, e))
				}
				return
			}
			if e.Error != nil {
				t.Fatalf("entry error = %v", e.Error)
			}
			if s := drivertest.JSONOf(t, e.Outcome); s != tt.want {
				t.Fatalf("outcome = %s\nwant      %s", s, tt.want)
			}
		})
	}
}

func TestRotateConflictWritesNothing(t *testing.T) {
	f := harness.Seeded(t)
	f.Rotate("k2", time.Hour)
	before := drivertest.JSONOf(t, drivertest.Try(f.Eng.ListKids(f.Ctx)).Must(t))
	res := drivertest.Try(f.Eng.RotateAll(f.Ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: drivertest.Secret('x')})).Must(t)
	drivertest.WantErr(t, res.Entries[0].Error, contracts.ErrRotationConflict)
	if after := drivertest.JSONOf(t, drivertest.Try(f.Eng.ListKids(f.Ctx)).Must(t)); after != before {
		t.Fatalf("keystore changed by a conflicting rotation:\n%s\n%s", before, after)
	}
}

func TestListKids(t *testing.T) {
	f := harness.NewFixture(t)
	if s := drivertest.JSONOf(t, drivertest.Try(f.Eng.ListKids(f.Ctx)).Must(t)); s != `{"partitions":[{"partition":0,"current_kid":null,"verifying":[]}]}` {
		t.Fatalf("empty list_kids = %s", s)
	}
	seedK1(f)
	f.Rotate("k2", 2*time.Second) // k1 expires at start+2000
	f.Rotate("k3", time.Second)   // k2 expires at start+1000
	f.Rotate("k4", 5*time.Second) // k3 expires at start+5000

	t.Run("SortedByExpiry", func(t *testing.T) {
		want := `{"partitions":[{"partition":0,"current_kid":"k4","verifying":[` +
			`{"kid":"k2","expires_at_ms":1767225601000},{"kid":"k1","expires_at_ms":1767225602000},` +
			`{"kid":"k3","expires_at_ms":1767225605000}]}]}`
		if s := drivertest.JSONOf(t, drivertest.Try(f.Eng.ListKids(f.Ctx)).Must(t)); s != want {
			t.Fatalf("list_kids = %s\nwant        %s", s, want)
		}
	})
	t.Run("ExpiredKidsLeftOutExpiringNowKept", func(t *testing.T) {
		f.Clock.Advance(2 * time.Second) // k2 expired, k1 expires exactly now
		want := `{"partitions":[{"partition":0,"current_kid":"k4","verifying":[` +
			`{"kid":"k1","expires_at_ms":1767225602000},{"kid":"k3","expires_at_ms":1767225605000}]}]}`
		if s := drivertest.JSONOf(t, drivertest.Try(f.Eng.ListKids(f.Ctx)).Must(t)); s != want {
			t.Fatalf("list_kids = %s\nwant        %s", s, want)
		}
	})
}

func TestSignAndVerify(t *testing.T) {
	msg := []byte("hello")
	t.Run("NoKeystore", func(t *testing.T) {
		f := harness.NewFixture(t)
		_, err := f.Eng.Sign(f.Ctx, contracts.SignArgs{Scope: "s", Message: msg})
		drivertest.WantErr(t, err, contracts.ErrHMACSecretNotInitialized)
		_, err = f.Eng.Verify(f.Ctx, contracts.VerifyArgs{Scope: "s", Message: msg, Token: driver.SignToken("k1", drivertest.Secret('a'), driver.SignatureInput("k1", "s", msg))})
		drivertest.WantErr(t, err, contracts.ErrHMACSecretNotInitialized)
	})
	t.Run("TokenIsTheContractToken", func(t *testing.T) {
		f := harness.Seeded(t)
		got := drivertest.Try(f.Eng.Sign(f.Ctx, contracts.SignArgs{Scope: "any scope", Message: msg})).Must(t)
		if got.Kid != "k1" || got.Token != driver.SignToken("k1", drivertest.Secret('a'), driver.SignatureInput("k1", "any scope", msg)) {
			t.Fatalf("sign = %+v, want the token driver.SignToken makes", got)
		}
		v := drivertest.Try(f.Eng.Verify(f.Ctx, contracts.VerifyArgs{Scope: "any scope", Message: msg, Token: got.Token})).Must(t)
		if s := drivertest.JSONOf(t, v); s != `{"valid":true,"kid":"k1"}` {
			t.Fatalf("verify = %s", s)
		}
		// The scope is bound into the signature: another scope does not verify it.
		_, err := f.Eng.Verify(f.Ctx, contracts.VerifyArgs{Scope: "other", Message: msg, Token: got.Token})
		drivertest.WantErr(t, err, contracts.ErrSignatureMismatch)
	})

	// Given k1 rotated out with 1s grace and k2 current.
	f := harness.Seeded(t)
	old := drivertest.Try(f.Eng.Sign(f.Ctx, contracts.SignArgs{Message: msg})).Must(t).Token
	f.Rotate("k2", time.Second)
	verify := func(token string) error {
		_, err := f.Eng.Verify(f.Ctx, contracts.VerifyArgs{Message: msg, Token: token})
		return err
	}
	tests := []struct {
		name    string
		token   string
		advance time.Duration
		want    error // nil: valid
	}{
		{"VerifyingKidInGrace", old, 0, nil},
		{"VerifyingKidExpiringNow", old, time.Second, nil},
		{"VerifyingKidPastGrace", old, time.Millisecond, contracts.ErrTokenExpired},
		{"CurrentKidNeverExpires", driver.SignToken("k2", drivertest.Secret('b'), driver.SignatureInput("k2", "", msg)), 0, nil},
		{"UnknownKid", driver.SignToken("k9", drivertest.Secret('b'), driver.SignatureInput("k9", "", msg)), 0, contracts.ErrUnknownKid},
		{"WrongSecret", driver.SignToken("k2", drivertest.Secret('c'), driver.SignatureInput("k2", "", msg)), 0, contracts.ErrSignatureMismatch},
		{"KidSwapped", "k2" + old[2:], 0, contracts.ErrSignatureMismatch},
		{"Malformed", "k2:ABC", 0, contracts.ErrTokenMalformed},
	}
	for _, tt := range tests { // sequential: the clock only moves forward
		t.Run(tt.name, func(t *testing.T) {
			f.Clock.Advance(tt.advance)
			err := verify(tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				return
			}
			drivertest.WantErr(t, err, tt.want)
		})
	}
}

func TestClosedBackendRefusesEveryOperation(t *testing.T) {
	f := harness.Seeded(t)
	if err := f.B.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.B.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	ops := map[string]func() error{
		"Ping": func() error { return f.B.Ping(ctx) },
		"Seed": func() error {
			_, err := f.B.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')})
			return err
		},
		"Rotate": func() error {
			_, err := f.B.RotateAll(ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: drivertest.Secret('b')})
			return err
		},
		"ListKids": func() error { _, err := f.B.ListKids(ctx, contracts.ListKidsArgs{}); return err },
		"Sign":     func() error { _, err := f.B.Sign(ctx, contracts.SignArgs{}); return err },
		"Verify":   func() error { _, err := f.B.Verify(ctx, contracts.VerifyArgs{Token: "k1:" + zeros64}); return err },
		"Suspend":  func() error { _, err := f.B.Suspend(ctx, drivertest.SuspendArgs("e1", "a")); return err },
		"Deliver": func() error {
			_, err := f.B.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: driver.NewID(), Token: "k1:" + zeros64, Name: "n"})
			return err
		},
		"Observe": func() error {
			_, err := f.B.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1"})
			return err
		},
		"List": func() error { _, err := f.B.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 1}); return err },
		"Claim": func() error {
			_, err := f.B.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 1})
			return err
		},
		"Complete": func() error {
			_, err := f.B.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: driver.NewID()})
			return err
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) { drivertest.WantErr(t, op(), contracts.ErrBackendClosed) })
	}
}

func TestCanceledContext(t *testing.T) {
	f := harness.Seeded(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.B.Sign(ctx, contracts.SignArgs{})
	drivertest.WantErr(t, err, contracts.ErrCanceled)
}

const zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"

func seedK1(f *drivertest.Fixture) {
	f.T.Helper()
	f.Must(f.Eng.Seed(f.Ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')}))
}

func TestOpenThroughRegistryGivesFreshStores(t *testing.T) {
	ctx := context.Background()
	first := drivertest.Try(engine.Open(ctx, "memory://")).Must(t)
	defer first.Close()
	second := drivertest.Try(engine.Open(ctx, "memory://")).Must(t)
	defer second.Close()
	drivertest.Try(first.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')})).Must(t)
	got := drivertest.Try(second.Seed(ctx, contracts.SeedArgs{Kid: "k2", Secret: drivertest.Secret('b')})).Must(t)
	if got.Outcome != contracts.SeedSeeded {
		t.Fatalf("second store seed = %s, want seeded: stores are shared", drivertest.JSONOf(t, got))
	}
}
