package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// revokeScenarios cover revoke_kid (docs/spec.md §8.7). A driver that does
// not implement driver.KidRevoker skips them, naming the interface.
var revokeScenarios = []keystoreScenario{
	{name: "RevokedStopsVerifying", run: revokeStopsVerifying},
	{name: "Rules", run: revokeRules},
	{name: "NeverReused", run: revokeNeverReused},
	{name: "SeenByAnotherEngine", run: revokeSeenByAnotherEngine},
}

func (k *keystoreEnv) revoke(kid string) (contracts.RevokeKidResult, error) {
	k.t.Helper()
	if _, ok := k.e.Backend().(driver.KidRevoker); !ok {
		k.t.Skip("needs driver.KidRevoker (revoke_kid, docs/spec.md §8.7)")
	}
	out, err := k.e.RevokeKid(ctx(), contracts.RevokeKidArgs{Kid: kid})
	k.rec.call(out, err)
	if err == nil {
		require.Len(k.t, out.Entries, k.parts, "revoke_kid: want one entry per partition")
		for i, e := range out.Entries {
			require.Equal(k.t, i, e.Partition, "revoke_kid: entry %d: partition order", i)
			require.True(k.t, (e.Outcome == nil) != (e.Error == nil), "revoke_kid: entry %d: exactly one of outcome and error: %s", i, ksJSON(e))
		}
	}
	return out, err
}

// wantRevoke requires every entry to carry outcome word for kid.
func (k *keystoreEnv) wantRevoke(what string, r contracts.RevokeKidResult, err error, word, kid string) {
	k.t.Helper()
	require.NoError(k.t, err, what)
	for _, e := range r.Entries {
		require.Nil(k.t, e.Error, "%s: partition %d", what, e.Partition)
		require.Equal(k.t, contracts.RevokeOutcome{Outcome: word, Kid: kid}, *e.Outcome, "%s: partition %d", what, e.Partition)
	}
}

// Given kid-a rotated out with an hour of grace and a signature and a
// waitpoint token of kid-a, when kid-a is revoked, then both answer
// token_expired on the next call through the same Engine, kid-a leaves
// list_kids, and kid-b's tokens still verify.
func revokeStopsVerifying(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	msg := []byte("leaked")
	old := k.mustSign("s", msg)
	sus, err := k.e.Suspend(ctx(), suspendArgs("revoke-1", contracts.ConditionAny, "a"))
	require.NoError(t, err, "given: a suspension signed by kid-a")
	k.mustRotate(fxB, hourMs)
	k.mustVerify("s", msg, old.Token, fxA.Kid)
	fresh := k.mustSign("s", msg)

	r, err := k.revoke(fxA.Kid)
	s.add("revoke kid-a", r, err)
	k.wantRevoke("revoke kid-a", r, err, contracts.RevokeRevoked, fxA.Kid)
	_, err = k.verify("s", msg, old.Token)
	s.add("verify a kid-a signature", nil, err)
	ce := ksWantErr(t, "verify a kid-a signature after revoke", err, contracts.ErrTokenExpired)
	require.Contains(t, ce.Detail, "revoked", "the detail says why")
	_, err = k.e.DeliverSignal(ctx(), signalTo(sus, "a", "go", ""))
	k.rec.call(nil, err)
	s.add("deliver with a kid-a waitpoint token", nil, err)
	ksWantErr(t, "deliver with a kid-a token after revoke", err, contracts.ErrTokenExpired)
	k.mustVerify("s", msg, fresh.Token, fxB.Kid)
	l := k.list()
	s.add("list_kids", l, nil)
	k.wantCurrent("after revoke", l, kidOf(fxB))
	checkGolden(t, "keystore_revoke_stops_verifying", s)
}

// Revoking the current kid is kid_is_current (rotate first); revoking
// twice, an unknown kid or an expired one is noop; a malformed kid is
// invalid_input. None of them changes the keystore.
func revokeRules(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	k.mustRotate(fxB, 0) // kid-a expires at once
	k.pass(2 * time.Millisecond)
	k.mustRotate(fxC, hourMs)
	before := k.list()
	r, err := k.revoke(fxC.Kid)
	s.add("revoke the current kid", r, err)
	require.NoError(t, err, "revoke the current kid: the error is per partition")
	for _, e := range r.Entries {
		require.NotNil(t, e.Error, "revoke the current kid: partition %d", e.Partition)
		ksWantErr(t, "revoke the current kid", e.Error, contracts.ErrKidIsCurrent)
	}
	r, err = k.revoke("kid-unknown")
	s.add("revoke an unknown kid", r, err)
	k.wantRevoke("revoke an unknown kid", r, err, contracts.RevokeNoop, "kid-unknown")
	r, err = k.revoke(fxA.Kid)
	s.add("revoke an expired kid", r, err)
	k.wantRevoke("revoke an expired kid", r, err, contracts.RevokeNoop, fxA.Kid)
	_, err = k.revoke("a:b")
	s.add("revoke a malformed kid", nil, err)
	ksWantErr(t, "revoke a malformed kid", err, contracts.ErrInvalidInput)
	k.sameKids("refused and noop revocations", before, k.list())

	r, err = k.revoke(fxB.Kid)
	k.wantRevoke("revoke kid-b", r, err, contracts.RevokeRevoked, fxB.Kid)
	s.add("revoke kid-b", r, err)
	r, err = k.revoke(fxB.Kid)
	s.add("revoke kid-b again", r, err)
	k.wantRevoke("revoke kid-b again", r, err, contracts.RevokeNoop, fxB.Kid)
	checkGolden(t, "keystore_revoke_rules", s)
}

// A revoked kid's name is never reused: rotate to it is rotation_conflict,
// also after later rotations collected every expired kid.
func revokeNeverReused(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	k.mustRotate(fxB, hourMs)
	r, err := k.revoke(fxA.Kid)
	k.wantRevoke("revoke kid-a", r, err, contracts.RevokeRevoked, fxA.Kid)
	rr, err := k.rotate(fxA, hourMs)
	s.add("rotate back to kid-a", rr, err)
	k.wantEntryErr("rotate back to kid-a", rr, err, contracts.ErrRotationConflict)
	k.mustRotate(fxC, 0)
	k.pass(2 * time.Millisecond)
	k.mustRotate(fxD, 0) // collects kid-b
	k.pass(2 * time.Millisecond)
	rr, err = k.rotate(fxA, hourMs)
	s.add("rotate to kid-a after collections", rr, err)
	k.wantEntryErr("rotate to kid-a after collections", rr, err, contracts.ErrRotationConflict)
	checkGolden(t, "keystore_revoke_never_reused", s)
}

// A second Engine on the same store, whose keystore cache holds kid-a,
// sees the revocation within the cache's push latency, or its TTL where the
// driver pushes nothing; the bound checked is the TTL plus a margin, and
// the latency is logged.
func revokeSeenByAnotherEngine(t *testing.T, k *keystoreEnv) {
	k2 := k.reopen()
	k.mustSeed(fxA)
	msg := []byte("leaked")
	old := k.mustSign("s", msg)
	k.mustRotate(fxB, hourMs)
	k2.mustVerify("s", msg, old.Token, fxA.Kid) // k2's cache now holds kid-a
	r, err := k.revoke(fxA.Kid)
	k.wantRevoke("revoke kid-a", r, err, contracts.RevokeRevoked, fxA.Kid)
	start := time.Now()
	bound := engine.DefaultKeystoreCacheTTL + 2*time.Second
	for {
		_, err := k2.verify("s", msg, old.Token)
		if err != nil {
			ksWantErr(t, "verify through the second Engine", err, contracts.ErrTokenExpired)
			t.Logf("the second Engine refused kid-a %v after the revocation", time.Since(start).Round(time.Millisecond))
			return
		}
		require.Less(t, time.Since(start), bound, "the second Engine still accepts a revoked kid after %v", bound)
		time.Sleep(5 * time.Millisecond)
	}
}
