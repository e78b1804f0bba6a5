package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// listScenarios cover list_kids (docs/spec.md §4): shape, order, expiry.
var listScenarios = []keystoreScenario{
	{name: "Empty", run: listEmpty},
	{name: "SortedByExpiryThenKid", run: listSortedByExpiryThenKid},
	{name: "ExcludesExpired", run: listExcludesExpired},
}

// Given an empty keystore, then list_kids shows every partition with
// current_kid null and verifying [] (never null).
func listEmpty(t *testing.T, k *keystoreEnv) {
	l := k.list()
	k.wantCurrent("empty keystore", l, nil)
	checkGolden(t, "keystore_list_empty", l)
}

// Given verifying kids kid-d (expires later) and kid-c, kid-b (expiring at
// the same ms under the manual clock), then list_kids sorts them by
// expires_at_ms, then kid — not by insertion order.
func listSortedByExpiryThenKid(t *testing.T, k *keystoreEnv) {
	k.mustSeed(fxA)
	k.mustRotate(fxD, 5*hourMs) // kid-a verifying, expires last
	k.mustRotate(fxC, hourMs)   // kid-d verifying
	k.mustRotate(fxB, hourMs)   // kid-c verifying, same expiry as kid-d under a manual clock
	k.mustRotate(fxE, hourMs)   // kid-b verifying
	l := k.list()
	for _, p := range l.Partitions {
		require.Len(t, p.Verifying, 4, "partition %d: verifying kids", p.Partition)
		for i := 1; i < len(p.Verifying); i++ {
			a, b := p.Verifying[i-1], p.Verifying[i]
			require.True(t, a.ExpiresAtMs < b.ExpiresAtMs || a.ExpiresAtMs == b.ExpiresAtMs && a.Kid < b.Kid,
				"partition %d: verifying %s is not sorted by (expires_at_ms, kid)", p.Partition, ksJSON(p.Verifying))
		}
		require.Equal(t, fxA.Kid, p.Verifying[3].Kid, "partition %d: last verifying kid, want kid-a (longest grace)", p.Partition)
	}
	if k.clock == nil {
		return // real time: the order of equal-grace kids depends on the ms they rotated in
	}
	k.wantCurrent("sorted", l, kidOf(fxE), fxB.Kid, fxC.Kid, fxD.Kid, fxA.Kid)
	checkGolden(t, "keystore_list_sorted", l)
}

// Given kid-a rotated away with grace 200 ms and kid-b with a long grace,
// when 200 ms pass, then list_kids leaves out expired kid-a (not yet
// collected: no rotation ran after it expired).
func listExcludesExpired(t *testing.T, k *keystoreEnv) {
	// With a real clock kid-a must still be remembered when kid-c is installed.
	withLongerGrace(t, k, 200*time.Millisecond, "two rotate_all calls", func(k *keystoreEnv, grace time.Duration) bool {
		return excludesExpiredAttempt(t, k, grace)
	})
}

// excludesExpiredAttempt runs the scenario once; it reports false when the
// second rotation already collected kid-a.
func excludesExpiredAttempt(t *testing.T, k *keystoreEnv, grace time.Duration) bool {
	var s steps
	k.mustSeed(fxA)
	k.mustRotate(fxB, grace.Milliseconds())
	r := k.mustRotate(fxC, hourMs)
	for _, e := range r.Entries {
		if e.Outcome != nil && e.Outcome.GCCount != 0 {
			return false
		}
	}
	k.pass(grace + time.Millisecond)
	l := k.list()
	s.add("list_kids after kid-a expired", l, nil)
	k.wantCurrent("after expiry", l, kidOf(fxC), fxB.Kid)
	// kid-a is remembered (a rotation to it conflicts) though not listed.
	r, err := k.rotate(fxA, hourMs)
	s.add("rotate to unlisted, remembered kid-a", r, err)
	k.wantEntryErr("rotate to expired kid", r, err, contracts.ErrRotationConflict)
	checkGolden(t, "keystore_list_excludes_expired", s)
	return true
}
