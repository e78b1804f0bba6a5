package memory

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
	"github.com/flowfabric/flowfabric-go/kek"
)

// A suspend replay opens the secret of the kid that signed its tokens only
// while that kid verifies (docs/spec.md §3): under a KEK it replays byte for
// byte; without the KEK that sealed the kid it is kek_mismatch; once the kid
// is past its grace it is suspend_replay_expired whatever the keyring, and
// nothing is written.
func TestSuspendReplayOpensOnlyAUsableKid(t *testing.T) {
	// given a suspend under an idempotency key on a store sealed under KEK A,
	// its kid k1 then rotated out for an hour
	f := harness.NewFixture(t)
	b := f.B.(*Backend)
	b.SetKeyring(kek.NewKeyring(testKEKA))
	f.Eng = engine.New(b, engine.WithKeystoreCache(0))
	f.Must(f.Eng.Seed(f.Ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')}))
	a := drivertest.SuspendArgs("e1", "a", "b")
	a.IdempotencyKey = "boot-1"
	first := f.Suspend(a)
	f.Rotate("k2", time.Hour)

	// when replayed under KEK A, then it answers the first outcome
	require.Equal(t, drivertest.JSONOf(t, first), drivertest.JSONOf(t, f.Suspend(a)))

	// when replayed without a KEK, then k1's secret does not open
	b.SetKeyring(nil)
	_, err := f.Eng.Suspend(f.Ctx, a)
	drivertest.WantErr(t, err, contracts.ErrKEKMismatch)

	// when k1's grace has passed, then the replay expired, with or without the KEK
	f.Clock.Advance(time.Hour + time.Millisecond)
	for _, ring := range []*kek.Keyring{nil, kek.NewKeyring(testKEKA)} {
		b.SetKeyring(ring)
		_, err = f.Eng.Suspend(f.Ctx, a)
		drivertest.WantErr(t, err, contracts.ErrSuspendReplayExpired)
	}
	o := drivertest.Try(f.Eng.ObserveSignals(f.Ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1"})).Must(t)
	require.Equal(t, first.SuspensionID, o.SuspensionID, "an expired replay writes nothing")
}

// The budget counters follow what is recorded: a duplicate and a refused
// delivery count nothing, and a new suspension starts from zero.
func TestBudgetCountersFollowDeliveries(t *testing.T) {
	f := harness.Seeded(t)
	b := f.B.(*Backend)
	drivertest.CheckBudgetCounters(t, f, func() (int, int64, map[string]int) {
		b.mu.Lock()
		defer b.mu.Unlock()
		sp := b.execs["e1"].latest
		per := map[string]int{}
		for _, w := range sp.waitpoints {
			per[w.key] = w.signals
		}
		return len(sp.signals), sp.payloadBytes, per
	})
}

// The budgets bound what one suspension costs its readers (docs/spec.md
// §8.3): see drivertest.ReadsStayBounded.
func TestConcurrentReadsOfAFullSuspensionStayBounded(t *testing.T) {
	f := harness.Seeded(t)
	drivertest.ReadsStayBounded(t, f.Eng, "full", f.Clock.Advance)
}
