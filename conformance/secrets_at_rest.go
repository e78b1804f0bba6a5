package conformance

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/kek"
)

// RunSecretsAtRest runs the secrets-at-rest scenarios (package kek) against
// drivers that implement driver.SecretSealer: every operation works the same
// with a KEK, a store sealed under a KEK holds no secret bytes (when
// Harness.Raw is set), a missing or wrong KEK fails with kek_mismatch and
// changes nothing, and RewrapSecrets moves every secret to another KEK
// without changing a kid. Drivers without SecretSealer skip them: OpenBackend
// refuses a kek_file for those. One scenario also runs without
// SecretSealer: no store, plain or sealed, holds a waitpoint token or its
// MAC (docs/spec.md §3, "Where tokens are kept").
func RunSecretsAtRest(t *testing.T, h Harness) {
	t.Helper()
	rec := newRecorder()
	t.Run("SecretsAtRest", func(t *testing.T) {
		runKeystoreScenarios(t, h, rec, "Sealed", sealingScenarios)
	})
	t.Run("SecretsAtRestHygiene", func(t *testing.T) { rec.check(t) })
}

var sealingScenarios = []keystoreScenario{
	{name: "EveryOperationWorks", run: sealedEveryOperationWorks},
	{name: "StoreHoldsNoSecret", run: sealedStoreHoldsNoSecret},
	{name: "StoreHoldsNoToken", run: storeHoldsNoToken},
	{name: "PlainStoreControl", run: sealedPlainStoreControl},
	{name: "ComparesOpenedSecrets", run: sealedComparesOpenedSecrets},
	{name: "MissingOrWrongKEK", run: sealedMissingOrWrongKEK},
	{name: "RewrapMovesEverySecret", run: sealedRewrapMovesEverySecret},
	{name: "RewrapSealsPlainStore", run: sealedRewrapSealsPlainStore},
	{name: "PreviousKEKOpens", run: sealedPreviousKEKOpens},
}

// The suite's KEKs: fixed, so that failures reproduce; they protect nothing.
var (
	kekA = mustKEK(0x5a)
	kekB = mustKEK(0xa5)
)

func mustKEK(fill byte) *kek.Key {
	k, err := kek.New(bytes.Repeat([]byte{fill}, kek.Size))
	if err != nil {
		panic(err)
	}
	return k
}

// sealer returns k's backend as a driver.SecretSealer, or skips.
func (k *keystoreEnv) sealer() driver.SecretSealer {
	k.t.Helper()
	s, ok := k.e.Backend().(driver.SecretSealer)
	if !ok {
		k.t.Skip("the backend does not implement driver.SecretSealer (secrets at rest)")
	}
	return s
}

// sealWith installs r (nil: no KEK) and returns an Engine without keystore
// cache over the same backend, so every later call reads the store through
// r. (The cached Engine of k keeps opened secrets for up to its TTL.)
func (k *keystoreEnv) sealWith(r *kek.Keyring) *keystoreEnv {
	k.t.Helper()
	k.sealer().SetKeyring(r)
	u := *k
	u.e = engine.New(k.e.Backend(), engine.WithKeystoreCache(0)) // shares k's backend: never closed
	return &u
}

// cached returns an Engine with a fresh keystore cache over k's backend, so
// that sign and verify go through the driver's KeystoreSnapshot.
func (k *keystoreEnv) cached() *keystoreEnv {
	u := *k
	u.e = engine.New(k.e.Backend())
	return &u
}

// rewrap re-seals the store under to through the driver and checks the
// counts: rewrapped and unchanged secrets per partition.
func (k *keystoreEnv) rewrap(to *kek.Keyring, rewrapped, unchanged int) {
	k.t.Helper()
	r, err := k.sealer().RewrapSecrets(ctx(), to)
	k.rec.call(r, err)
	require.NoError(k.t, err, "RewrapSecrets(%v)", to)
	want := contracts.RewrapResult{Partitions: k.parts, Rewrapped: rewrapped * k.parts, Unchanged: unchanged * k.parts}
	require.Equal(k.t, want, r, "RewrapSecrets(%v)", to)
}

// wantKEKMismatch requires err to be kek_mismatch whose detail mentions
// every fragment (fingerprints, "no kek_file").
func wantKEKMismatch(t *testing.T, what string, err error, fragments ...string) {
	t.Helper()
	ce := ksWantErr(t, what, err, contracts.ErrKEKMismatch)
	for _, f := range fragments {
		require.Contains(t, ce.Detail, f, "%s: the detail must mention %q", what, f)
	}
}

// rawForms are the encodings a store might keep a secret in: the bytes, hex
// in either case, base64 (standard and URL, padded or not).
func rawForms(s contracts.Secret) [][]byte {
	h := hex.EncodeToString(s)
	forms := [][]byte{s, []byte(h), []byte(strings.ToUpper(h))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		// Any 24 consecutive secret bytes encode to the same 32 characters
		// wherever the secret starts in a base64 stream (at a 3-byte boundary).
		for off := 0; off < 3; off++ {
			forms = append(forms, []byte(enc.EncodeToString(s[off : off+24])[:32]))
		}
	}
	return forms
}

// raw returns Harness.Raw of k's backend, or nil without it.
func (k *keystoreEnv) raw() []byte {
	if k.h.Raw == nil {
		return nil
	}
	return k.h.Raw(k.t, k.e.Backend())
}

// rawHolds reports whether the store holds f's secret in any form.
func rawHolds(raw []byte, f fixture) bool {
	for _, form := range rawForms(f.Secret) {
		if bytes.Contains(raw, form) {
			return true
		}
	}
	return false
}

// wantRawWithout requires the raw store to hold none of fs's secrets.
func (k *keystoreEnv) wantRawWithout(what string, fs ...fixture) {
	k.t.Helper()
	raw := k.raw()
	if raw == nil {
		return
	}
	for _, f := range fs {
		require.False(k.t, rawHolds(raw, f), "%s: the raw store (%d bytes) holds %s's secret", what, len(raw), f.Kid)
	}
}

// wantRawWith requires the raw store to hold every one of fs's secrets: the
// positive control that Raw sees what the driver stores.
func (k *keystoreEnv) wantRawWith(what string, fs ...fixture) {
	k.t.Helper()
	raw := k.raw()
	if raw == nil {
		return
	}
	for _, f := range fs {
		require.True(k.t, rawHolds(raw, f), "%s: the raw store (%d bytes) does not hold %s's secret stored in plain: Harness.Raw does not see the stored secrets", what, len(raw), f.Kid)
	}
}

// suspendAndDeliver suspends an execution (suspend signs its waitpoint
// token with the current kid) and delivers a signal with that token
// (deliver verifies it), requiring both to succeed.
func (k *keystoreEnv) suspendAndDeliver(exec string) {
	k.t.Helper()
	s, err := k.e.Suspend(ctx(), contracts.SuspendArgs{ExecutionID: exec, Waitpoints: []contracts.WaitpointSpec{{Key: "wp"}}})
	k.rec.call(s, err)
	require.NoError(k.t, err, "suspend %s", exec)
	d, err := k.e.DeliverSignal(ctx(), contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: s.Waitpoints[0].WaitpointID, Token: s.Waitpoints[0].Token, Name: "go"})
	k.rec.call(d, err)
	require.NoError(k.t, err, "deliver to %s", exec)
	require.Equal(k.t, contracts.OutcomeAccepted, d.Outcome, "deliver to %s: outcome", exec)
	require.True(k.t, d.Resumed, "deliver to %s: want resumed", exec)
}

// Given a store sealed under a KEK, then seed, rotate, list, sign, verify,
// suspend and deliver answer exactly as without one (tokens do not depend on
// the KEK), through the driver and through the keystore cache.
func sealedEveryOperationWorks(t *testing.T, k *keystoreEnv) {
	s := k.sealWith(kek.NewKeyring(kekA))
	s.mustSeed(fxA)
	msg := []byte("sealed")
	tokA := s.mustSign("scope", msg).Token
	require.Equal(t, expectedToken(fxA, "scope", msg), tokA, "sign under a KEK: token differs from the plain HMAC of the secret")
	s.mustRotate(fxB, hourMs)
	s.wantCurrent("list_kids under a KEK", s.list(), kidOf(fxB), fxA.Kid)
	for _, e := range []*keystoreEnv{s, s.cached()} {
		require.Equal(t, expectedToken(fxB, "scope", msg), e.mustSign("scope", msg).Token, "sign after rotation under a KEK: not the new kid's token")
		e.mustVerify("scope", msg, tokA, fxA.Kid)
		e.mustVerify("scope", msg, expectedToken(fxB, "scope", msg), fxB.Kid)
		_, err := e.verify("scope", msg, expectedToken(fxC.withKid(fxB.Kid), "scope", msg))
		ksWantErr(t, "verify a forged token under a KEK", err, contracts.ErrSignatureMismatch)
	}
	s.suspendAndDeliver("exec-sealed")
}

// Given a store sealed under a KEK from its first write, then the raw store
// holds none of its secrets in any encoding.
func sealedStoreHoldsNoSecret(t *testing.T, k *keystoreEnv) {
	if k.h.Raw == nil {
		t.Skip("needs Harness.Raw")
	}
	s := k.sealWith(kek.NewKeyring(kekA))
	s.mustSeed(fxA)
	s.mustRotate(fxB, hourMs)
	s.mustRotate(fxLong, hourMs)
	s.suspendAndDeliver("exec-raw")
	s.wantRawWithout("sealed store", fxA, fxB, fxLong)
}

// Given a store without a KEK, then the raw store does hold its secrets:
// the control showing that Harness.Raw sees what the driver stores.
func sealedPlainStoreControl(t *testing.T, k *keystoreEnv) {
	if k.h.Raw == nil {
		t.Skip("needs Harness.Raw")
	}
	k.sealer() // skip drivers without SecretSealer, like the other scenarios
	k.mustSeed(fxA)
	k.mustRotate(fxLong, hourMs)
	k.wantRawWith("plain store", fxA, fxLong)
}

// Given a store sealed under KEK A, read under a keyring with KEK B primary
// and A previous, then re-running the seed and the rotation compares the
// opened secrets: already_seeded with same_secret true, noop; another
// secret is still same_secret false and rotation_conflict.
func sealedComparesOpenedSecrets(t *testing.T, k *keystoreEnv) {
	s := k.sealWith(kek.NewKeyring(kekA))
	s.mustSeed(fxA)
	s.mustRotate(fxB, hourMs)
	before := s.list()
	s = k.sealWith(kek.NewKeyring(kekB, kekA))
	out, err := s.seed(fxA)
	s.wantSeed("re-seed under another primary KEK", out, err, seedAlready(fxA, fxB, true))
	out, err = s.seed(fxA.withSecret(fxC))
	s.wantSeed("seed the kid with another secret", out, err, seedAlready(fxA, fxB, false))
	r, err := s.rotate(fxB, hourMs)
	s.wantOutcome("re-run the rotation under another primary KEK", r, err, contracts.RotateOutcome{Outcome: contracts.RotateNoop, Kid: fxB.Kid})
	r, err = s.rotate(fxB.withSecret(fxC), hourMs)
	s.wantEntryErr("rotate the current kid to another secret", r, err, contracts.ErrRotationConflict)
	s.sameKids("the re-runs", before, s.list())
}

// Given a store sealed under KEK A, then reading it without a KEK or under
// KEK B fails with kek_mismatch naming the fingerprints, through the driver
// and the cache, and changes nothing: under A again every token verifies.
func sealedMissingOrWrongKEK(t *testing.T, k *keystoreEnv) {
	s := k.sealWith(kek.NewKeyring(kekA))
	s.mustSeed(fxA)
	msg := []byte("m")
	tok := s.mustSign("scope", msg).Token
	before := s.list()
	for _, c := range []struct {
		name      string
		ring      *kek.Keyring
		fragments []string
	}{
		{"no KEK", nil, []string{kekA.Fingerprint(), "no kek_file"}},
		{"another KEK", kek.NewKeyring(kekB), []string{kekA.Fingerprint(), kekB.Fingerprint()}},
	} {
		w := k.sealWith(c.ring)
		for _, e := range []*keystoreEnv{w, w.cached()} {
			_, err := e.sign("scope", msg)
			wantKEKMismatch(t, c.name+": sign", err, c.fragments...)
			_, err = e.verify("scope", msg, tok)
			wantKEKMismatch(t, c.name+": verify", err, c.fragments...)
		}
		sus, err := w.e.Suspend(ctx(), contracts.SuspendArgs{ExecutionID: "exec-" + strings.ReplaceAll(c.name, " ", "-"), Waitpoints: []contracts.WaitpointSpec{{Key: "wp"}}})
		w.rec.call(sus, err)
		wantKEKMismatch(t, c.name+": suspend", err, c.fragments...)
		// list_kids reads no secret: it answers.
		w.sameKids(c.name+": list_kids", before, w.list())
	}
	s = k.sealWith(kek.NewKeyring(kekA))
	s.mustVerify("scope", msg, tok, fxA.Kid)
	s.suspendAndDeliver("exec-after")
	s.sameKids("the refused calls", before, s.list())
}

// Given a store sealed under KEK A, then RewrapSecrets to KEK B re-seals
// every secret (the store no longer opens under A alone), keeps every kid,
// expiry and token, is a no-op when re-run, and rewrapping to no KEK stores
// the secrets in plain again.
func sealedRewrapMovesEverySecret(t *testing.T, k *keystoreEnv) {
	s := k.sealWith(kek.NewKeyring(kekA))
	s.mustSeed(fxA)
	s.mustRotate(fxB, hourMs)
	msg := []byte("rewrap")
	tokA, tokB := expectedToken(fxA, "scope", msg), expectedToken(fxB, "scope", msg)
	before := s.list()

	s.rewrap(kek.NewKeyring(kekB), 2, 0)
	_, err := s.sign("scope", msg)
	wantKEKMismatch(t, "sign under A after the rewrap to B", err, kekB.Fingerprint(), kekA.Fingerprint())

	s = k.sealWith(kek.NewKeyring(kekB))
	s.mustVerify("scope", msg, tokA, fxA.Kid)
	s.mustVerify("scope", msg, tokB, fxB.Kid)
	require.Equal(t, tokB, s.mustSign("scope", msg).Token, "sign after the rewrap: another token")
	s.sameKids("the rewrap", before, s.list())
	s.wantRawWithout("store rewrapped from A to B", fxA, fxB)
	s.rewrap(kek.NewKeyring(kekB), 0, 2) // re-run: nothing to do

	s.rewrap(nil, 2, 0)
	s = k.sealWith(nil)
	s.mustVerify("scope", msg, tokA, fxA.Kid)
	s.sameKids("the rewrap to plain", before, s.list())
	s.wantRawWith("store rewrapped to plain", fxA, fxB)
}

// Given a store written without a KEK, then a keyring reads its plain
// secrets, seals what it writes, and RewrapSecrets seals the rest; the
// Engine's RewrapSecrets installs the new keyring.
func sealedRewrapSealsPlainStore(t *testing.T, k *keystoreEnv) {
	k.sealer()
	k.mustSeed(fxA)
	s := k.sealWith(kek.NewKeyring(kekA))
	msg := []byte("plain")
	s.mustVerify("scope", msg, expectedToken(fxA, "scope", msg), fxA.Kid)
	s.mustRotate(fxB, hourMs)
	r, err := s.e.RewrapSecrets(ctx(), kek.NewKeyring(kekA))
	s.rec.call(r, err)
	require.NoError(t, err, "Engine.RewrapSecrets of a half-plain store")
	require.Equal(t, contracts.RewrapResult{Partitions: s.parts, Rewrapped: s.parts, Unchanged: s.parts}, r, "Engine.RewrapSecrets of a half-plain store")
	s.mustVerify("scope", msg, expectedToken(fxA, "scope", msg), fxA.Kid)
	s.mustVerify("scope", msg, expectedToken(fxB, "scope", msg), fxB.Kid)
	_, err = k.sealWith(nil).sign("scope", msg)
	wantKEKMismatch(t, "sign without a KEK after sealing", err, kekA.Fingerprint(), "no kek_file")
}

// Given a store sealed under KEK A, then a keyring with B primary and A
// previous opens it and seals new secrets under B; B alone opens only
// those.
func sealedPreviousKEKOpens(t *testing.T, k *keystoreEnv) {
	s := k.sealWith(kek.NewKeyring(kekA))
	s.mustSeed(fxA)
	s = k.sealWith(kek.NewKeyring(kekB, kekA))
	msg := []byte("previous")
	s.mustVerify("scope", msg, expectedToken(fxA, "scope", msg), fxA.Kid)
	s.mustRotate(fxC, hourMs)
	s = k.sealWith(kek.NewKeyring(kekB))
	require.Equal(t, expectedToken(fxC, "scope", msg), s.mustSign("scope", msg).Token, "sign under B with the kid sealed under B: another token")
	_, err := s.verify("scope", msg, expectedToken(fxA, "scope", msg))
	require.ErrorIs(t, err, contracts.ErrKEKMismatch, "verify a token of the kid sealed under A, under B alone")
}

// tokenForms are the encodings a store might keep a waitpoint token in: the
// token itself, and its MAC as raw bytes, hex in either case and base64
// (rawForms of the 32 MAC bytes).
func tokenForms(t testing.TB, token string) [][]byte {
	t.Helper()
	_, err := contracts.ParseToken("token", token)
	require.NoError(t, err, "a token suspend issued")
	mac, err := hex.DecodeString(macOf(token))
	require.NoError(t, err, "the MAC of a token suspend issued")
	return append([][]byte{[]byte(token)}, rawForms(contracts.Secret(mac))...)
}

// suspendTwice suspends exec on two waitpoints under an idempotency key,
// replays the suspend (which must answer the same bytes), and delivers a
// signal with the first waitpoint's token under a signal idempotency key;
// it returns the outcome.
func (k *keystoreEnv) suspendTwice(exec string) contracts.SuspendOutcome {
	k.t.Helper()
	a := contracts.SuspendArgs{ExecutionID: exec, Condition: contracts.ConditionAll, IdempotencyKey: "suspend-" + exec,
		Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}, {Key: "reject"}}}
	first, err := k.e.Suspend(ctx(), a)
	k.rec.call(first, err)
	require.NoError(k.t, err, "suspend %s", exec)
	replay, err := k.e.Suspend(ctx(), a)
	k.rec.call(replay, err)
	require.NoError(k.t, err, "replay the suspend of %s", exec)
	require.Equal(k.t, ksJSON(first), ksJSON(replay), "replay the suspend of %s: want the first outcome byte for byte", exec)
	wp := first.Waitpoints[0]
	d, err := k.e.DeliverSignal(ctx(), contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "go", IdempotencyKey: "deliver-" + exec})
	k.rec.call(d, err)
	require.NoError(k.t, err, "deliver to %s", exec)
	require.Equal(k.t, contracts.OutcomeAccepted, d.Outcome, "deliver to %s: outcome", exec)
	return first
}

// wantRawWithoutTokens requires the raw store to hold none of the tokens
// of outs, in any form, and (the control that Raw sees the suspensions)
// every one of their waitpoint ids.
func (k *keystoreEnv) wantRawWithoutTokens(what string, outs ...contracts.SuspendOutcome) {
	k.t.Helper()
	raw := k.raw()
	for _, out := range outs {
		for _, wp := range out.Waitpoints {
			require.True(k.t, bytes.Contains(raw, []byte(wp.WaitpointID)), "%s: the raw store (%d bytes) does not hold waitpoint %s: Harness.Raw does not see the suspensions", what, len(raw), wp.WaitpointID)
			for i, form := range tokenForms(k.t, wp.Token) {
				require.False(k.t, bytes.Contains(raw, form), "%s: the raw store (%d bytes) holds the token of waitpoint %s of %s, or its MAC (form %d)", what, len(raw), wp.WaitpointKey, out.ExecutionID, i)
			}
		}
	}
}

// Given suspends with idempotency keys (replayed, and a delivery with each
// first token), on a store without a KEK and then under one, with a
// rotation in between, then the raw store holds no waitpoint token and no
// MAC in any encoding: suspend records keep each token's kid only, and a
// replay signs the tokens again, byte for byte the same, also for a record
// written before the KEK and the rotation.
func storeHoldsNoToken(t *testing.T, k *keystoreEnv) {
	if k.h.Raw == nil {
		t.Skip("needs Harness.Raw")
	}
	k.mustSeed(fxA)
	plain := k.suspendTwice("exec-token-plain")
	k.wantRawWithoutTokens("plain store", plain)
	if _, ok := k.e.Backend().(driver.SecretSealer); !ok {
		return // the sealed half needs driver.SecretSealer
	}
	s := k.sealWith(kek.NewKeyring(kekA))
	s.mustRotate(fxB, hourMs)
	sealed := s.suspendTwice("exec-token-sealed")
	require.Equal(t, fxB.Kid, sealed.Waitpoints[0].Token[:len(fxB.Kid)], "a suspend after the rotation signs with kid-b")
	a := contracts.SuspendArgs{ExecutionID: plain.ExecutionID, Condition: contracts.ConditionAll, IdempotencyKey: "suspend-" + plain.ExecutionID,
		Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}, {Key: "reject"}}}
	again, err := s.e.Suspend(ctx(), a)
	s.rec.call(again, err)
	require.NoError(t, err, "replay the plain store's suspend under a KEK, kid-a in its grace")
	require.Equal(t, ksJSON(plain), ksJSON(again), "replay the plain store's suspend under a KEK: want the first outcome byte for byte")
	s.wantRawWithoutTokens("sealed store", plain, sealed)
}
