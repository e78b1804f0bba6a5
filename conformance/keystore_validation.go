package conformance

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// validationScenarios cover the rules of docs/spec.md §2 that the keystore
// operations take: every violation is validation / invalid_input naming the
// field, and a rejected call changes nothing.
var validationScenarios = []keystoreScenario{
	{name: "RejectedSeedLeavesStoreEmpty", run: validationSeedOnEmpty},
	{name: "SeedAndRotateArguments", run: validationSeedRotate},
	{name: "SecretHex", run: validationSecretHex},
	{name: "SignAndVerifyArguments", run: validationSignVerify},
	{name: "AcceptsBoundaries", run: validationBoundaries},
}

// wantInvalidField checks that err is validation / invalid_input, not
// retryable, whose detail names field.
func wantInvalidField(t *testing.T, what string, err error, field string) {
	t.Helper()
	ce := ksWantErr(t, what, err, contracts.ErrInvalidInput)
	require.True(t, strings.HasPrefix(ce.Detail, field+":"), "%s: detail %q does not name the field %q", what, ce.Detail, field)
	require.Empty(t, ce.Reason, "%s: want no reason", what)
}

// badKids are kids that break the kid rule, by what is wrong.
func badKids() [][2]string {
	return [][2]string{
		{"empty", ""},
		{"65 bytes", strings.Repeat("k", 65)},
		{"colon", "kid:a"},
		{"space", "kid a"},
		{"slash", "kid/a"},
		{"non-ASCII", "kid-é"},
		{"NUL byte", "kid\x00"},
	}
}

// badSecrets are secrets (as bytes) of the wrong length.
func badSecrets() [][2]any {
	return [][2]any{
		{"nil", contracts.Secret(nil)},
		{"31 bytes", fxA.Secret[:31]},
		{"65 bytes", contracts.Secret(append(append([]byte{}, fxLong.Secret...), 0xab))},
	}
}

// badGraces are grace_ms values out of 0..2^53-1.
var badGraces = []int64{-1, -hourMs, contracts.MaxGraceMs + 1, 1<<63 - 1}

// Given an empty keystore, when every kind of invalid seed is rejected, then
// the keystore is still empty: list_kids shows no kid and sign is
// hmac_secret_not_initialized.
func validationSeedOnEmpty(t *testing.T, k *keystoreEnv) {
	var s steps
	for _, c := range badKids() {
		_, err := k.seedArgs(contracts.SeedArgs{Kid: c[1], Secret: fxA.Secret})
		s.add("seed with kid: "+c[0], nil, err)
		wantInvalidField(t, "seed kid "+c[0], err, "kid")
	}
	for _, c := range badSecrets() {
		_, err := k.seedArgs(contracts.SeedArgs{Kid: fxA.Kid, Secret: c[1].(contracts.Secret)})
		s.add("seed with secret: "+c[0].(string), nil, err)
		wantInvalidField(t, "seed secret "+c[0].(string), err, "secret")
	}
	k.wantCurrent("after rejected seeds", k.list(), nil)
	_, err := k.sign("s", []byte("m"))
	ksWantErr(t, "sign after rejected seeds", err, contracts.ErrHMACSecretNotInitialized)
	checkGolden(t, "keystore_validation_seed", s)
}

// Given kid-b current and kid-a verifying, when seeds and rotations with
// invalid kids, secrets or grace are rejected, then list_kids is unchanged.
func validationSeedRotate(t *testing.T, k *keystoreEnv) {
	var s steps
	k.mustSeed(fxA)
	k.mustRotate(fxB, hourMs)
	before := k.list()
	for _, c := range badKids() {
		_, err := k.seedArgs(contracts.SeedArgs{Kid: c[1], Secret: fxC.Secret})
		wantInvalidField(t, "seed kid "+c[0], err, "kid")
		_, err = k.rotateArgs(contracts.RotateArgs{NewKid: c[1], NewSecret: fxC.Secret, GraceMs: 1})
		s.add("rotate with new_kid: "+c[0], nil, err)
		wantInvalidField(t, "rotate new_kid "+c[0], err, "new_kid")
	}
	for _, c := range badSecrets() {
		_, err := k.rotateArgs(contracts.RotateArgs{NewKid: fxC.Kid, NewSecret: c[1].(contracts.Secret), GraceMs: 1})
		s.add("rotate with new_secret: "+c[0].(string), nil, err)
		wantInvalidField(t, "rotate new_secret "+c[0].(string), err, "new_secret")
	}
	for _, g := range badGraces {
		_, err := k.rotateArgs(contracts.RotateArgs{NewKid: fxC.Kid, NewSecret: fxC.Secret, GraceMs: g})
		s.add(fmt.Sprintf("rotate with grace_ms %d", g), nil, err)
		wantInvalidField(t, "rotate grace_ms", err, "grace_ms")
	}
	k.sameKids("rejected seeds and rotations", before, k.list())
	checkGolden(t, "keystore_validation_rotate", s)
}

// When a secret is given as hex (as the CLI and HTTP API take it), then odd
// length, non-hex digits, too few and too many bytes are invalid_input
// naming the field, and the error never quotes the input.
func validationSecretHex(t *testing.T, k *keystoreEnv) {
	var s steps
	cases := [][2]string{
		{"odd length", fxA.Hex + "0"},
		{"non-hex digit", fxA.Hex[:62] + "zz"},
		{"31 bytes", fxA.Hex[:62]},
		{"65 bytes", fxLong.Hex + "ab"},
		{"empty", ""},
		{"spaces", " " + fxA.Hex[:62] + " "},
		{"0x prefix", "0x" + fxA.Hex},
	}
	for _, c := range cases {
		_, err := contracts.ParseSecretHex("secret_hex", c[1])
		k.rec.err(err)
		s.add("secret_hex: "+c[0], nil, err)
		wantInvalidField(t, "secret_hex "+c[0], err, "secret_hex")
	}
	for _, h := range []string{fxA.Hex, strings.ToUpper(fxE.Hex), fxLong.Hex} {
		_, err := contracts.ParseSecretHex("secret_hex", h)
		require.NoError(t, err, "a valid secret was rejected")
	}
	checkGolden(t, "keystore_validation_secret_hex", s)
}

// When sign or verify get a scope over 256 bytes or a message over 64 KiB,
// then invalid_input naming the field, checked before the token and before
// the keystore (so also on an empty keystore).
func validationSignVerify(t *testing.T, k *keystoreEnv) {
	var s steps
	longScope := strings.Repeat("s", contracts.MaxScopeLen+1)
	longMsg := make([]byte, contracts.MaxMessageLen+1)
	tok := expectedToken(fxA, "", []byte("m"))
	for _, seeded := range []bool{false, true} {
		if seeded {
			k.mustSeed(fxA)
		}
		_, err := k.sign(longScope, []byte("m"))
		wantInvalidField(t, "sign scope", err, "scope")
		_, err = k.sign("s", longMsg)
		wantInvalidField(t, "sign message", err, "message")
		_, err = k.verify(longScope, []byte("m"), tok)
		wantInvalidField(t, "verify scope", err, "scope")
		_, err = k.verify("s", longMsg, tok)
		wantInvalidField(t, "verify message", err, "message")
		_, err = k.verify(longScope, []byte("m"), "not a token")
		wantInvalidField(t, "verify scope before token", err, "scope")
		if seeded {
			for _, c := range []struct {
				name string
				err  error
			}{
				{"sign with a 257-byte scope", errOf(k.sign(longScope, []byte("m")))},
				{"sign a 65537-byte message", errOf(k.sign("s", longMsg))},
				{"verify with a 257-byte scope", errOf(k.verify(longScope, []byte("m"), tok))},
				{"verify a 65537-byte message", errOf(k.verify("s", longMsg, tok))},
			} {
				s.add(c.name, nil, c.err)
			}
		}
	}
	checkGolden(t, "keystore_validation_sign_verify", s)
}

func errOf[T any](_ T, err error) error { return err }

// Given values exactly at the limits (64-byte kid of every allowed
// character class, 64-byte secret, grace 0 and 2^53-1, 256-byte scope,
// 64 KiB message, empty scope and message), then every call succeeds.
func validationBoundaries(t *testing.T, k *keystoreEnv) {
	kid64 := strings.Repeat("Az09._-", 9) + "x"
	require.Len(t, kid64, contracts.MaxKidLen, "test bug: the kid at the limit")
	f := fxLong.withKid(kid64)
	scope := strings.Repeat("s", contracts.MaxScopeLen)
	msg := make([]byte, contracts.MaxMessageLen)
	k.mustSeed(f)
	signAndVerify := func(cur fixture) {
		for _, c := range []struct {
			scope string
			msg   []byte
		}{{scope, msg}, {"", nil}, {"", []byte{}}} {
			out := k.mustSign(c.scope, c.msg)
			require.Equal(t, expectedToken(cur, c.scope, c.msg), out.Token, "sign at the limits under %.8s…: unexpected token", cur.Kid)
			k.mustVerify(c.scope, c.msg, out.Token, cur.Kid)
		}
	}
	signAndVerify(f)
	k.mustRotate(fxA, 0)
	k.mustRotate(fxB, contracts.MaxGraceMs)
	signAndVerify(fxB)
	if k.clock == nil {
		return
	}
	for _, p := range k.list().Partitions {
		last := p.Verifying[len(p.Verifying)-1]
		require.Equal(t, fxA.Kid, last.Kid, "partition %d: %s, want kid-a last", p.Partition, ksJSON(p.Verifying))
		require.Equal(t, k.clock.NowMs()+contracts.MaxGraceMs, last.ExpiresAtMs, "partition %d: want kid-a expiring at now + 2^53-1", p.Partition)
	}
}
