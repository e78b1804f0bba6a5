package conformance

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// signVerifyScenarios cover sign and verify (docs/spec.md §3): the exact
// token, every rejection code, and routing by scope.
var signVerifyScenarios = []keystoreScenario{
	{name: "KnownToken", run: signKnownToken},
	{name: "PublishedVectors", run: signPublishedVectors},
	{name: "SameTokenAcrossBackends", run: signSameTokenAcrossBackends},
	{name: "Malformed", run: verifyMalformed},
	{name: "UnknownKid", run: verifyUnknownKid},
	{name: "Expired", run: verifyExpired},
	{name: "Tampered", run: verifyTampered},
	{name: "WrongMessage", run: verifyWrongMessage},
	{name: "KidBinding", run: verifyKidBinding},
	{name: "NotInitialized", run: signVerifyNotInitialized},
	{name: "ScopeRoutesToEveryPartition", run: signScopeRouting},
}

// knownMessage is the message of the known-token golden file.
var knownMessage = []byte("conformance|known-token|message")

// Given kid-a seeded, when signing a fixed message (and the empty message),
// then the token is exactly the signature of docs/spec.md §3 as computed
// here (tokens.go) and as recorded literally in the golden file, and
// verifies.
func signKnownToken(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	for _, msg := range [][]byte{knownMessage, {}} {
		out := k.mustSign("tenant-1", msg)
		s.add(fmt.Sprintf("sign %q", msg), out, nil)
		require.Equal(t, fxA.Kid, out.Kid, "sign %q: kid", msg)
		require.Equal(t, expectedToken(fxA, "tenant-1", msg), out.Token, "sign %q: token is not the signature of docs/spec.md §3", msg)
		v := k.mustVerify("tenant-1", msg, out.Token, fxA.Kid)
		s.add(fmt.Sprintf("verify %q", msg), v, nil)
	}
	checkGolden(t, "keystore_sign_known_token", s, keepTokens())
}

// Given two independent backends seeded with the same 64-byte secret, then
// a token signed through one verifies through the other, and equals the
// independently computed token.
func signSameTokenAcrossBackends(t *testing.T, k *keystoreEnv) {
	var s steps
	other := k.other()
	k.mustSeed(fxLong)
	other.mustSeed(fxLong)
	out := k.mustSign("tenant-2", knownMessage)
	s.add("sign on backend 1", out, nil)
	require.Equal(t, expectedToken(fxLong, "tenant-2", knownMessage), out.Token, "sign: token is not the signature of docs/spec.md §3")
	require.Equal(t, out, other.mustSign("tenant-2", knownMessage), "two backends with one keystore signed differently")
	v := other.mustVerify("tenant-2", knownMessage, out.Token, fxLong.Kid)
	s.add("verify on backend 2", v, nil)
	checkGolden(t, "keystore_sign_same_token_across_backends", s, keepTokens())
}

// malformedTokens are token strings of the wrong format, by what is wrong.
func malformedTokens() [][2]string {
	mac := strings.Repeat("0123456789abcdef", 4)
	return [][2]string{
		{"empty", ""},
		{"no colon", "kid-a" + mac},
		{"no mac", "kid-a:"},
		{"63 hex digits", "kid-a:" + mac[:63]},
		{"65 hex digits", "kid-a:" + mac + "0"},
		{"upper-case hex", "kid-a:" + strings.ToUpper(mac)},
		{"non-hex digit", "kid-a:" + mac[:63] + "g"},
		{"empty kid", ":" + mac},
		{"kid with a colon", "kid:a:" + mac},
		{"kid with a space", "kid a:" + mac},
		{"kid of 65 bytes", strings.Repeat("k", 65) + ":" + mac},
	}
}

// Given any keystore (seeded or empty), when verifying a token of the wrong
// format, then invalid_token / malformed.
func verifyMalformed(t *testing.T, k *keystoreEnv) {
	var s steps
	for _, c := range malformedTokens() {
		_, err := k.verify("s", []byte("m"), c[1])
		ksWantErr(t, "empty keystore, "+c[0], err, contracts.ErrTokenMalformed)
	}
	k.mustSeed(fxA)
	for _, c := range malformedTokens() {
		_, err := k.verify("s", []byte("m"), c[1])
		s.add("verify token: "+c[0], nil, err)
		ksWantErr(t, c[0], err, contracts.ErrTokenMalformed)
	}
	checkGolden(t, "keystore_verify_malformed", s)
}

// Given kid-a seeded, when verifying a well-formed token of a kid the
// keystore never held (even one correctly signed elsewhere), then
// invalid_token / unknown_kid.
func verifyUnknownKid(t *testing.T, k *keystoreEnv) {
	var s steps
	msg := []byte("m")
	k.mustSeed(fxA)
	_, err := k.verify("s", msg, expectedToken(fxB, "s", msg))
	s.add("verify a correctly signed token of unknown kid-b", nil, err)
	ksWantErr(t, "unknown kid", err, contracts.ErrUnknownKid)
	checkGolden(t, "keystore_verify_unknown_kid", s)
}

// Given kid-a rotated away with grace 0, when time passes, then its token
// is token_expired (the kid is known, not yet collected).
func verifyExpired(t *testing.T, k *keystoreEnv) {
	var s steps
	msg := []byte("m")
	k.mustSeed(fxA)
	tok := k.mustSign("s", msg).Token
	k.mustRotate(fxB, 0)
	k.pass(time.Millisecond)
	_, err := k.verify("s", msg, tok)
	s.add("verify kid-a token after its grace", nil, err)
	ksWantErr(t, "expired", err, contracts.ErrTokenExpired)
	checkGolden(t, "keystore_verify_expired", s)
}

// flipHex changes the hex digit at i of s to another hex digit.
func flipHex(s string, i int) string {
	c := byte('0')
	if s[i] == '0' {
		c = '1'
	}
	return s[:i] + string(c) + s[i+1:]
}

// Given a valid token, when one hex digit of its MAC changes (first or
// last), then invalid_token / signature_mismatch.
func verifyTampered(t *testing.T, k *keystoreEnv) {
	var s steps
	msg := []byte("m")
	k.mustSeed(fxA)
	tok := k.mustSign("s", msg).Token
	for _, i := range []int{len(fxA.Kid) + 1, len(tok) - 1} {
		_, err := k.verify("s", msg, flipHex(tok, i))
		s.add(fmt.Sprintf("verify with hex digit %d flipped", i), nil, err)
		ksWantErr(t, "tampered", err, contracts.ErrSignatureMismatch)
	}
	checkGolden(t, "keystore_verify_tampered", s)
}

// Given a valid token for one message, when verifying it for another (one
// byte more, empty), then invalid_token / signature_mismatch.
func verifyWrongMessage(t *testing.T, k *keystoreEnv) {
	var s steps
	msg := []byte("approve order 17")
	k.mustSeed(fxA)
	tok := k.mustSign("s", msg).Token
	for _, other := range [][]byte{[]byte("approve order 18"), append(append([]byte{}, msg...), '!'), {}} {
		_, err := k.verify("s", other, tok)
		s.add(fmt.Sprintf("verify for message %q", other), nil, err)
		ksWantErr(t, "wrong message", err, contracts.ErrSignatureMismatch)
	}
	checkGolden(t, "keystore_verify_wrong_message", s)
}

// Given kid-a verifying and kid-b current, when a token carries kid-b but a
// MAC made under kid-a, or a MAC over the message without the kid, then
// signature_mismatch: the MAC binds the kid.
func verifyKidBinding(t *testing.T, k *keystoreEnv) {
	var s steps
	msg := []byte("m")
	k.mustSeed(fxA)
	tokA := k.mustSign("s", msg).Token
	k.mustRotate(fxB, hourMs)
	relabeled := fxB.Kid + tokA[len(fxA.Kid):]
	_, err := k.verify("s", msg, relabeled)
	s.add("verify kid-a's MAC relabeled as kid-b", nil, err)
	ksWantErr(t, "relabeled token", err, contracts.ErrSignatureMismatch)
	m := hmac.New(sha256.New, fxB.Secret)
	m.Write(msg)
	unbound := fxB.Kid + ":" + hex.EncodeToString(m.Sum(nil))
	_, err = k.verify("s", msg, unbound)
	s.add("verify a MAC over the message without the kid", nil, err)
	ksWantErr(t, "MAC without kid", err, contracts.ErrSignatureMismatch)
	checkGolden(t, "keystore_verify_kid_binding", s)
}

// Given an empty keystore, then sign and verify (of a well-formed token)
// fail with state / hmac_secret_not_initialized.
func signVerifyNotInitialized(t *testing.T, k *keystoreEnv) {
	var s steps
	msg := []byte("m")
	_, err := k.sign("s", msg)
	s.add("sign on an empty keystore", nil, err)
	ksWantErr(t, "sign", err, contracts.ErrHMACSecretNotInitialized)
	_, err = k.verify("s", msg, expectedToken(fxA, "s", msg))
	s.add("verify on an empty keystore", nil, err)
	ksWantErr(t, "verify", err, contracts.ErrHMACSecretNotInitialized)
	checkGolden(t, "keystore_sign_verify_not_initialized", s)
}

// scopesOverPartitions returns, for each of up to 8 distinct partitions, a
// scope that routes there (CRC16-XMODEM(scope) mod P).
func scopesOverPartitions(p int) []string {
	seen := map[int]bool{}
	var scopes []string
	for i := 0; len(scopes) < min(p, 8) && i < 100_000; i++ {
		sc := fmt.Sprintf("scope-%d", i)
		if part := driver.PartitionOf(sc, p); !seen[part] {
			seen[part] = true
			scopes = append(scopes, sc)
		}
	}
	return append(scopes, "", strings.Repeat("s", contracts.MaxScopeLen))
}

// Given a seeded keystore and scopes that route to different partitions,
// then each signs with the current kid, tokens for one message are equal
// whatever the scope (they bind kid and message, not scope), and a token
// verifies under every scope, before and after a rotation.
func signScopeRouting(t *testing.T, k *keystoreEnv) {
	msg := []byte("routed")
	scopes := scopesOverPartitions(k.parts)
	k.mustSeed(fxA)
	k.mustRotate(fxB, hourMs)
	for _, f := range []fixture{fxA, fxB} {
		for _, sc := range scopes {
			k.mustVerify(sc, msg, expectedToken(f, sc, msg), f.Kid)
		}
	}
	for _, sc := range scopes {
		got := k.mustSign(sc, msg)
		require.Equal(t, fxB.Kid, got.Kid, "sign with scope %q (partition %d): want current kid-b", sc, driver.PartitionOf(sc, k.parts))
		require.Equal(t, expectedToken(fxB, sc, msg), got.Token, "sign with scope %q (partition %d): want kid-b's token", sc, driver.PartitionOf(sc, k.parts))
	}
}
