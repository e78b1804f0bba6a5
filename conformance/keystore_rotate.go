package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// rotateScenarios cover rotate_all (docs/spec.md §4): every outcome, garbage
// collection, the grace window and the per-partition result shape.
var rotateScenarios = []keystoreScenario{
	{name: "Bootstrap", run: rotateBootstrap},
	{name: "Rotated", run: rotateRotated},
	{name: "NoopOnReplay", run: rotateNoopOnReplay},
	{name: "NoopSecretLetterCase", run: rotateNoopSecretLetterCase},
	{name: "ConflictCurrentOtherSecret", run: rotateConflictCurrentOtherSecret},
	{name: "ConflictVerifyingKidReuse", run: rotateConflictVerifyingKidReuse},
	{name: "ConflictExpiredRememberedKid", run: rotateConflictExpiredRememberedKid},
	{name: "GCCount", run: rotateGCCount},
	{name: "ChainWithinGrace", run: rotateChainWithinGrace},
	{name: "GraceBoundary", clock: true, run: rotateGraceBoundary},
	{name: "GraceBoundaryRealTime", realTime: true, run: rotateGraceBoundaryRealTime},
	{name: "OneEntryPerPartition", run: rotateOneEntryPerPartition},
}

const hourMs = 3_600_000

func rotated(prev *string, newKid string, gc int) contracts.RotateOutcome {
	return contracts.RotateOutcome{Outcome: contracts.RotateRotated, PreviousKid: prev, NewKid: newKid, GCCount: gc}
}

func noop(kid string) contracts.RotateOutcome {
	return contracts.RotateOutcome{Outcome: contracts.RotateNoop, Kid: kid}
}

// Given an empty keystore, when rotating to kid-a, then the rotation
// bootstraps it: rotated with previous_kid null, and a later seed of kid-a
// is already_seeded.
func rotateBootstrap(t *testing.T, k *keystoreEnv) {
	var s steps
	r, err := k.rotate(fxA, 1000)
	s.add("rotate kid-a on an empty keystore", r, err)
	k.wantOutcome("bootstrap rotate", r, err, rotated(nil, fxA.Kid, 0))
	require.Contains(t, ksJSON(r), `"previous_kid":null`, "bootstrap envelope: previous_kid must be present and null")
	l := k.list()
	s.add("list_kids", l, nil)
	k.wantCurrent("after bootstrap", l, kidOf(fxA))
	out, err := k.seed(fxA)
	s.add("seed kid-a after the bootstrap", out, err)
	k.wantSeed("seed after bootstrap", out, err, contracts.SeedOutcome{Outcome: contracts.SeedAlreadySeeded, Kid: fxA.Kid, CurrentKid: fxA.Kid, SameSecret: boolPtr(true)})
	checkGolden(t, "keystore_rotate_bootstrap", s)
}

// Given kid-a current, when rotating to kid-b with grace 60s, then kid-b is
// current and kid-a verifies until now + 60s.
func rotateRotated(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	r, err := k.rotate(fxB, 60_000)
	s.add("rotate kid-a -> kid-b, grace 60000", r, err)
	k.wantOutcome("rotate", r, err, rotated(kidOf(fxA), fxB.Kid, 0))
	l := k.list()
	s.add("list_kids", l, nil)
	k.wantCurrent("after rotate", l, kidOf(fxB), fxA.Kid)
	if k.clock != nil {
		for _, p := range l.Partitions {
			require.Equal(t, int64(ClockStartMs+60_000), p.Verifying[0].ExpiresAtMs, "partition %d: kid-a expires_at_ms, want now + grace", p.Partition)
		}
	}
	checkGolden(t, "keystore_rotate_rotated", s)
}

// Given a rotation to kid-b done, when the same rotation runs again (with
// any grace), then every partition answers noop and nothing changes.
func rotateNoopOnReplay(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	k.mustRotate(fxB, 60_000)
	before := k.list()
	r, err := k.rotate(fxB, 60_000)
	s.add("replay rotate to kid-b", r, err)
	k.wantOutcome("replay", r, err, noop(fxB.Kid))
	r, err = k.rotate(fxB, 5)
	s.add("replay rotate to kid-b with another grace", r, err)
	k.wantOutcome("replay with other grace", r, err, noop(fxB.Kid))
	k.sameKids("a noop rotation", before, k.list())
	checkGolden(t, "keystore_rotate_noop_on_replay", s)
}

// Given kid-e current, when rotating to kid-e with its secret given as
// upper-case hex, then noop: secrets compare as bytes.
func rotateNoopSecretLetterCase(t *testing.T, k *keystoreEnv) {
	var s steps
	lower, err := contracts.ParseSecretHex("new_secret_hex", strings.ToLower(fxE.Hex))
	require.NoError(t, err)
	upper, err := contracts.ParseSecretHex("new_secret_hex", strings.ToUpper(fxE.Hex))
	require.NoError(t, err)
	k.mustSeed(fxA)
	r, err := k.rotateArgs(contracts.RotateArgs{NewKid: fxE.Kid, NewSecret: lower, GraceMs: 60_000})
	s.add("rotate to kid-e, lower-case hex", r, err)
	k.wantOutcome("rotate lower", r, err, rotated(kidOf(fxA), fxE.Kid, 0))
	before := k.list()
	r, err = k.rotateArgs(contracts.RotateArgs{NewKid: fxE.Kid, NewSecret: upper, GraceMs: 60_000})
	s.add("rotate to kid-e again, upper-case hex", r, err)
	k.wantOutcome("rotate upper", r, err, noop(fxE.Kid))
	k.sameKids("a noop rotation", before, k.list())
	checkGolden(t, "keystore_rotate_noop_secret_letter_case", s)
}

// Given kid-a current, when rotating to kid-a with another secret, then
// every partition fails with rotation_conflict and the keystore is unchanged.
func rotateConflictCurrentOtherSecret(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	before := k.list()
	r, err := k.rotate(fxA.withSecret(fxB), 60_000)
	s.add("rotate to current kid-a with another secret", r, err)
	k.wantEntryErr("rotate current kid, other secret", r, err, contracts.ErrRotationConflict)
	k.sameKids("a conflicting rotation", before, k.list())
	msg := []byte("m")
	require.Equal(t, expectedToken(fxA, "s", msg), k.mustSign("s", msg).Token, "after a conflicting rotation the current secret changed")
	checkGolden(t, "keystore_rotate_conflict_current_other_secret", s)
}

// Given kid-a verifying, when rotating to kid-a again (same or other
// secret), then rotation_conflict: kid names are never reused while
// remembered.
func rotateConflictVerifyingKidReuse(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	k.mustRotate(fxB, hourMs)
	before := k.list()
	r, err := k.rotate(fxA, hourMs)
	s.add("rotate back to verifying kid-a, same secret", r, err)
	k.wantEntryErr("reuse verifying kid", r, err, contracts.ErrRotationConflict)
	r, err = k.rotate(fxA.withSecret(fxC), hourMs)
	s.add("rotate back to verifying kid-a, other secret", r, err)
	k.wantEntryErr("reuse verifying kid, other secret", r, err, contracts.ErrRotationConflict)
	k.sameKids("a conflicting rotation", before, k.list())
	checkGolden(t, "keystore_rotate_conflict_verifying_kid", s)
}

// Given kid-a past its grace but not yet collected, when rotating to kid-a,
// then rotation_conflict (still remembered) and nothing is collected.
func rotateConflictExpiredRememberedKid(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	k.mustRotate(fxB, 0)
	k.pass(time.Millisecond)
	before := k.list()
	k.wantCurrent("kid-a expired", before, kidOf(fxB))
	r, err := k.rotate(fxA, hourMs)
	s.add("rotate to expired, uncollected kid-a", r, err)
	k.wantEntryErr("reuse expired kid", r, err, contracts.ErrRotationConflict)
	r = k.mustRotate(fxC, hourMs)
	s.add("rotate to kid-c collects kid-a", r, nil)
	k.wantOutcome("collecting rotation", r, nil, rotated(kidOf(fxB), fxC.Kid, 1))
	checkGolden(t, "keystore_rotate_conflict_expired_kid", s)
}

// Given kid-a and kid-b past their grace, when rotating to kid-d, then both
// are deleted (gc_count 2) and their tokens become unknown_kid.
func rotateGCCount(t *testing.T, k *keystoreEnv) {
	// With a real clock the two rotations must both start within the grace.
	withLongerGrace(t, k, 200*time.Millisecond, "two rotate_all calls", func(k *keystoreEnv, grace time.Duration) bool {
		return gcCountAttempt(t, k, grace)
	})
}

// gcCountAttempt runs the collection scenario once with the given grace; it
// reports false when the second rotation may have started after the grace.
func gcCountAttempt(t *testing.T, k *keystoreEnv, grace time.Duration) bool {
	var s steps
	msg := []byte("collected")
	k.mustSeed(fxA)
	tokA := k.mustSign("s", msg).Token
	start := time.Now()
	r := k.mustRotate(fxB, grace.Milliseconds())
	s.add("rotate kid-a -> kid-b, short grace", r, nil)
	r = k.mustRotate(fxC, grace.Milliseconds())
	if k.clock == nil && time.Since(start) >= grace {
		return false
	}
	s.add("rotate kid-b -> kid-c, short grace (kid-a not yet expired)", r, nil)
	k.wantOutcome("second rotation", r, nil, rotated(kidOf(fxB), fxC.Kid, 0))
	k.pass(grace + time.Millisecond)
	r = k.mustRotate(fxD, hourMs)
	s.add("rotate kid-c -> kid-d after both graces", r, nil)
	k.wantOutcome("collecting rotation", r, nil, rotated(kidOf(fxC), fxD.Kid, 2))
	l := k.list()
	s.add("list_kids", l, nil)
	k.wantCurrent("after gc", l, kidOf(fxD), fxC.Kid)
	_, err := k.verify("s", msg, tokA)
	s.add("verify a token of collected kid-a", nil, err)
	ksWantErr(t, "token of collected kid", err, contracts.ErrUnknownKid)
	checkGolden(t, "keystore_rotate_gc_count", s)
	return true
}

// Given rotations kid-a -> kid-b -> kid-c within one grace window, then
// tokens of all three verify and list_kids shows kid-a, kid-b verifying.
func rotateChainWithinGrace(t *testing.T, k *keystoreEnv) {
	var s steps
	msg := []byte("chain")
	k.mustSeed(fxA)
	tokA := k.mustSign("s", msg).Token
	k.mustRotate(fxB, hourMs)
	tokB := k.mustSign("s", msg).Token
	k.mustRotate(fxC, hourMs)
	tokC := k.mustSign("s", msg).Token
	for _, c := range []struct {
		f   fixture
		tok string
	}{{fxA, tokA}, {fxB, tokB}, {fxC, tokC}} {
		require.Equal(t, expectedToken(c.f, "s", msg), c.tok, "sign while %s was current: token is not the signature under %s", c.f.Kid, c.f.Kid)
		out := k.mustVerify("s", msg, c.tok, c.f.Kid)
		s.add("verify token of "+c.f.Kid, out, nil)
	}
	l := k.list()
	s.add("list_kids", l, nil)
	k.wantCurrent("after chain", l, kidOf(fxC), fxA.Kid, fxB.Kid)
	checkGolden(t, "keystore_rotate_chain_within_grace", s)
}

// Given kid-a rotated away with grace 1000 ms, then at expires_at_ms == now
// its token verifies and it is listed; one ms later it is token_expired and
// no longer listed.
func rotateGraceBoundary(t *testing.T, k *keystoreEnv) {
	s, msg, tok := graceSetup(k, 1000)
	k.clock.Advance(1000 * time.Millisecond)
	l := graceAtBoundary(k, &s, msg, tok)
	require.Equal(t, k.clock.NowMs(), l.Partitions[0].Verifying[0].ExpiresAtMs, "kid-a expires_at_ms, want now")
	k.clock.Advance(time.Millisecond)
	graceAfter(k, &s, msg, tok)
	checkGolden(t, "keystore_rotate_grace_boundary", s)
}

// The real-time variant of GraceBoundary, with margins: grace 300 ms; the
// token verifies at once and is token_expired after twice the grace. The
// "at once" checks are conclusive only if they finish within the grace of
// the rotation's start; on a backend whose rotate_all takes longer (many
// partitions, a slow server) the scenario retries on a fresh backend with a
// four times longer grace.
func rotateGraceBoundaryRealTime(t *testing.T, k *keystoreEnv) {
	withLongerGrace(t, k, 300*time.Millisecond, "rotate_all, verify and list_kids", func(k *keystoreEnv, grace time.Duration) bool {
		return graceRealTimeAttempt(t, k, grace)
	})
}

// graceRealTimeAttempt runs the real-time grace scenario once; it reports
// false when the within-grace checks finished too late to be conclusive.
func graceRealTimeAttempt(t *testing.T, k *keystoreEnv, grace time.Duration) bool {
	var s steps
	msg := []byte("grace")
	k.mustSeed(fxA)
	tok := k.mustSign("s", msg).Token
	start := time.Now()
	k.mustRotate(fxB, grace.Milliseconds())
	out, verr := k.verify("s", msg, tok)
	l, lerr := k.e.ListKids(ctx())
	k.rec.call(l, lerr)
	if time.Since(start) >= grace {
		return false
	}
	require.NoError(t, verr, "verify kid-a token within grace")
	s.add("verify kid-a token within grace", out, nil)
	require.NoError(t, lerr, "list_kids")
	s.add("list_kids within grace", l, nil)
	k.wantCurrent("within grace", l, kidOf(fxB), fxA.Kid)
	time.Sleep(2 * grace)
	graceAfter(k, &s, msg, tok)
	checkGolden(t, "keystore_rotate_grace_boundary", s)
	return true
}

func graceSetup(k *keystoreEnv, graceMs int64) (steps, []byte, string) {
	msg := []byte("grace")
	k.mustSeed(fxA)
	tok := k.mustSign("s", msg).Token
	k.mustRotate(fxB, graceMs)
	return steps{}, msg, tok
}

func graceAtBoundary(k *keystoreEnv, s *steps, msg []byte, tok string) contracts.ListKidsResult {
	k.t.Helper()
	out := k.mustVerify("s", msg, tok, fxA.Kid)
	s.add("verify kid-a token within grace", out, nil)
	l := k.list()
	s.add("list_kids within grace", l, nil)
	k.wantCurrent("within grace", l, kidOf(fxB), fxA.Kid)
	return l
}

func graceAfter(k *keystoreEnv, s *steps, msg []byte, tok string) {
	k.t.Helper()
	_, err := k.verify("s", msg, tok)
	s.add("verify kid-a token after grace", nil, err)
	ksWantErr(k.t, "token after grace", err, contracts.ErrTokenExpired)
	l := k.list()
	s.add("list_kids after grace", l, nil)
	k.wantCurrent("after grace", l, kidOf(fxB))
}

// Given any backend, rotate_all answers one entry per partition
// (Capabilities().Partitions), in partition order, for successes and
// per-partition errors alike.
func rotateOneEntryPerPartition(t *testing.T, k *keystoreEnv) {
	var s steps
	r, err := k.rotate(fxA, hourMs)
	s.add("bootstrap kid-a", r, err)
	k.wantOutcome("bootstrap", r, err, rotated(nil, fxA.Kid, 0))
	r, err = k.rotate(fxA.withSecret(fxB), hourMs)
	s.add("conflicting rotation", r, err)
	k.wantEntryErr("conflict", r, err, contracts.ErrRotationConflict)
	for i, e := range r.Entries {
		require.Contains(t, ksJSON(e), `"outcome":null`, "entry %d of a failed partition must carry \"outcome\":null", i)
	}
	require.Len(t, r.Entries, k.e.Capabilities().Partitions, "want Capabilities().Partitions entries")
	checkGolden(t, "keystore_rotate_one_entry_per_partition", s)
}
