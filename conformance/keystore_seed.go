package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// seedScenarios cover every outcome of seed (docs/spec.md §4).
var seedScenarios = []keystoreScenario{
	{name: "Seeded", run: seedSeeded},
	{name: "AlreadySeededSameSecret", run: seedAlreadySeededSameSecret},
	{name: "AlreadySeededOtherSecret", run: seedAlreadySeededOtherSecret},
	{name: "AlreadySeededWhileVerifying", run: seedAlreadySeededWhileVerifying},
	{name: "AlreadyInitializedOtherKid", run: seedAlreadyInitializedOtherKid},
	{name: "AlreadyInitializedAfterCollection", run: seedAlreadyInitializedAfterCollection},
}

// wantSeed checks a seed outcome field by field (as its envelope).
func (k *keystoreEnv) wantSeed(what string, out contracts.SeedOutcome, err error, want contracts.SeedOutcome) {
	k.t.Helper()
	require.NoError(k.t, err, "%s: want %s", what, ksJSON(want))
	require.JSONEq(k.t, ksJSON(want), ksJSON(out), what)
}

// seedAlready is the already_seeded outcome of seeding f while cur is current.
func seedAlready(f, cur fixture, same bool) contracts.SeedOutcome {
	return contracts.SeedOutcome{Outcome: contracts.SeedAlreadySeeded, Kid: f.Kid, CurrentKid: cur.Kid, SameSecret: boolPtr(same)}
}

// wantCurrent requires every partition's current kid to be kid (nil: none)
// and its verifying kids to be exactly verifying, in that order.
func (k *keystoreEnv) wantCurrent(what string, r contracts.ListKidsResult, kid *string, verifying ...string) {
	k.t.Helper()
	for _, p := range r.Partitions {
		require.Equal(k.t, kid, p.CurrentKid, "%s: partition %d: current_kid", what, p.Partition)
		got := []string{}
		for _, v := range p.Verifying {
			got = append(got, v.Kid)
		}
		require.Equal(k.t, append([]string{}, verifying...), got, "%s: partition %d: verifying kids", what, p.Partition)
	}
}

func boolPtr(b bool) *bool    { return &b }
func strPtr(s string) *string { return &s }

// kidOf is f's kid as a nullable kid.
func kidOf(f fixture) *string { return strPtr(f.Kid) }

// Given an empty keystore, when seeding kid-a, then every partition has
// kid-a current and no verifying kids, and signing uses kid-a.
func seedSeeded(t *testing.T, k *keystoreEnv) {
	var s steps
	out, err := k.seed(fxA)
	s.add("seed kid-a on an empty keystore", out, err)
	k.wantSeed("seed", out, err, contracts.SeedOutcome{Outcome: contracts.SeedSeeded, Kid: fxA.Kid, CurrentKid: fxA.Kid})
	l := k.list()
	s.add("list_kids", l, nil)
	k.wantCurrent("after seed", l, kidOf(fxA))
	got := k.mustSign("any-scope", []byte("m"))
	require.Equal(t, fxA.Kid, got.Kid, "sign after seed: kid")
	checkGolden(t, "keystore_seed_seeded", s)
}

// Given kid-e seeded, when seeding it again with the same secret (also
// given as upper-case hex), then already_seeded with same_secret true.
func seedAlreadySeededSameSecret(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxE)
	before := k.list()
	out, err := k.seed(fxE)
	s.add("seed kid-e again, same secret", out, err)
	want := contracts.SeedOutcome{Outcome: contracts.SeedAlreadySeeded, Kid: fxE.Kid, CurrentKid: fxE.Kid, SameSecret: boolPtr(true)}
	k.wantSeed("second seed", out, err, want)

	upper, err := contracts.ParseSecretHex("secret_hex", strings.ToUpper(fxE.Hex))
	require.NoError(t, err, "ParseSecretHex(upper-case hex)")
	out, err = k.seedArgs(contracts.SeedArgs{Kid: fxE.Kid, Secret: upper})
	s.add("seed kid-e again, secret as upper-case hex", out, err)
	k.wantSeed("seed with upper-case hex", out, err, want)
	k.sameKids("an already_seeded seed", before, k.list())
	checkGolden(t, "keystore_seed_already_seeded_same_secret", s)
}

// Given kid-a seeded, when seeding kid-a with another secret, then
// already_seeded with same_secret false, and the stored secret is unchanged.
func seedAlreadySeededOtherSecret(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	before := k.list()
	out, err := k.seed(fxA.withSecret(fxB))
	s.add("seed kid-a with another secret", out, err)
	k.wantSeed("seed other secret", out, err, contracts.SeedOutcome{Outcome: contracts.SeedAlreadySeeded, Kid: fxA.Kid, CurrentKid: fxA.Kid, SameSecret: boolPtr(false)})
	k.sameKids("an already_seeded seed", before, k.list())
	msg := []byte("still the first secret")
	require.Equal(t, expectedToken(fxA, "s", msg), k.mustSign("s", msg).Token,
		"sign after a mismatched seed: the stored secret changed (token differs from HMAC under the first secret)")
	checkGolden(t, "keystore_seed_already_seeded_other_secret", s)
}

// Given kid-a rotated to verifying (kid-b current), when seeding kid-a, then
// already_seeded naming kid-b as current, same_secret telling whether the
// secret matches.
func seedAlreadySeededWhileVerifying(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	k.mustRotate(fxB, 3_600_000)
	before := k.list()
	out, err := k.seed(fxA)
	s.add("seed verifying kid-a, same secret", out, err)
	k.wantSeed("seed verifying kid, same secret", out, err, contracts.SeedOutcome{Outcome: contracts.SeedAlreadySeeded, Kid: fxA.Kid, CurrentKid: fxB.Kid, SameSecret: boolPtr(true)})
	out, err = k.seed(fxA.withSecret(fxC))
	s.add("seed verifying kid-a, other secret", out, err)
	k.wantSeed("seed verifying kid, other secret", out, err, contracts.SeedOutcome{Outcome: contracts.SeedAlreadySeeded, Kid: fxA.Kid, CurrentKid: fxB.Kid, SameSecret: boolPtr(false)})
	k.sameKids("an already_seeded seed", before, k.list())
	checkGolden(t, "keystore_seed_already_seeded_verifying", s)
}

// Given kid-a current, when seeding a kid never seen, then
// already_initialized with same_secret null and nothing written.
func seedAlreadyInitializedOtherKid(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	before := k.list()
	out, err := k.seed(fxB)
	s.add("seed unknown kid-b while kid-a is current", out, err)
	k.wantSeed("seed other kid", out, err, contracts.SeedOutcome{Outcome: contracts.SeedAlreadyInitialized, Kid: fxB.Kid, CurrentKid: fxA.Kid})
	k.sameKids("an already_initialized seed", before, k.list())
	checkGolden(t, "keystore_seed_already_initialized_other_kid", s)
}

// Given kid-a seeded, rotated away with grace 0 and collected by a later
// rotation, when seeding kid-a again, then already_initialized (kid-a is
// forgotten), same_secret null, current kid-c, and nothing written.
func seedAlreadyInitializedAfterCollection(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	k.mustRotate(fxB, 0)
	k.pass(time.Millisecond)
	r := k.mustRotate(fxC, 3_600_000)
	s.add("rotate to kid-c after kid-a expired", r, nil)
	for _, e := range r.Entries {
		require.Equal(t, 1, e.Outcome.GCCount, "rotate to kid-c: partition %d: gc_count (kid-a expired)", e.Partition)
	}
	before := k.list()
	k.wantCurrent("after collection", before, kidOf(fxC), fxB.Kid)
	out, err := k.seed(fxA)
	s.add("seed collected kid-a", out, err)
	k.wantSeed("seed collected kid", out, err, contracts.SeedOutcome{Outcome: contracts.SeedAlreadyInitialized, Kid: fxA.Kid, CurrentKid: fxC.Kid})
	require.Contains(t, ksJSON(out), `"same_secret":null`, "already_initialized envelope: same_secret must be present and null")
	k.sameKids("an already_initialized seed", before, k.list())
	checkGolden(t, "keystore_seed_already_initialized_after_collection", s)
}
