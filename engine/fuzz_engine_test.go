package engine_test

// FuzzEngineVerifyForgery is the forgery check through the whole verify
// path (validation, the keystore cache, the memory driver): it mutates
// tokens and messages signed by a rotated keystore and asserts that
// Engine.Verify accepts a token only when it is exactly the token the
// keystore would sign for that (kid, message) with a kid still in grace.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// fuzzForgeryClockMs is the memory backend's fixed clock.
const fuzzForgeryClockMs = int64(1767225600000)

// fuzzForgerySecrets are the kids of the fuzzed keystore: k-expired (grace
// over), k-old (in grace) and k-current.
var fuzzForgerySecrets = map[string]contracts.Secret{
	"k-expired": contracts.Secret(strings.Repeat("x", 32)),
	"k-old":     contracts.Secret(strings.Repeat("o", 48)),
	"k-current": contracts.Secret(strings.Repeat("c", 64)),
}

// fuzzForgeryEngines returns a cached and an uncached Engine over one
// memory backend holding k-current, k-old (in grace) and k-expired.
func fuzzForgeryEngines(f *testing.F) []*engine.Engine {
	now := fuzzForgeryClockMs
	b := memory.New(memory.WithClock(func() time.Time { return time.UnixMilli(now) }))
	ctx := context.Background()
	setup := engine.New(b, engine.WithKeystoreCache(0))
	steps := []contracts.RotateArgs{
		{NewKid: "k-expired", NewSecret: fuzzForgerySecrets["k-expired"], GraceMs: 0},
		{NewKid: "k-old", NewSecret: fuzzForgerySecrets["k-old"], GraceMs: 0},
		{NewKid: "k-current", NewSecret: fuzzForgerySecrets["k-current"], GraceMs: 60_000},
	}
	for i, a := range steps {
		if _, err := setup.RotateAll(ctx, a); err != nil {
			f.Fatal(err)
		}
		if i == 1 {
			now++ // k-expired's grace (0 ms) is now over
		}
	}
	return []*engine.Engine{setup, engine.New(b, engine.WithKeystoreCache(time.Hour))}
}

func FuzzEngineVerifyForgery(f *testing.F) {
	engines := fuzzForgeryEngines(f)
	for kid, s := range fuzzForgerySecrets {
		for _, m := range []string{"", "m", "exec-1|wp|approve|1", "'); DROP TABLE ff_keys; --"} {
			f.Add("scope", []byte(m), driver.SignToken(kid, s, driver.SignatureInput(kid, "scope", []byte(m))))
		}
	}
	cur := driver.SignToken("k-current", fuzzForgerySecrets["k-current"], driver.SignatureInput("k-current", "scope", []byte("m")))
	f.Add("scope", []byte("m"), "k-old"+cur[len("k-current"):])
	f.Add("other-scope", []byte("m2"), cur)
	f.Fuzz(func(t *testing.T, scope string, message []byte, token string) {
		a := contracts.VerifyArgs{Scope: scope, Message: message, Token: token}
		for i, e := range engines {
			res, err := e.Verify(context.Background(), a)
			if err == nil {
				s, known := fuzzForgerySecrets[res.Kid]
				if !res.Valid || !known || res.Kid == "k-expired" || token != driver.SignToken(res.Kid, s, driver.SignatureInput(res.Kid, scope, message)) {
					t.Fatalf("engine %d: FORGERY accepted: token %q message %q -> %+v", i, token, message, res)
				}
				continue
			}
			if signedInGrace(token, scope, message) && len(scope) <= contracts.MaxScopeLen && len(message) <= contracts.MaxMessageLen {
				t.Fatalf("engine %d: the signed pair %q is rejected: %v", i, token, err)
			}
			var ce *contracts.Error
			if !errors.As(err, &ce) || ce.Kind != contracts.KindValidation {
				t.Fatalf("engine %d: rejection %v is not a validation error", i, err)
			}
			// Kids are not secret and may be quoted; the MAC never is.
			if tok, perr := contracts.ParseToken("token", token); perr == nil &&
				strings.Contains(strings.ReplaceAll(err.Error(), tok.Kid, ""), token[len(token)-64:]) {
				t.Fatalf("engine %d: error quotes the MAC: %v", i, err)
			}
		}
	})
}

// signedInGrace reports whether token is the signature of message in scope
// under a kid that is still in grace (k-old or k-current).
func signedInGrace(token, scope string, message []byte) bool {
	for _, kid := range []string{"k-old", "k-current"} {
		if len(scope) <= contracts.MaxScopeLen && token == driver.SignToken(kid, fuzzForgerySecrets[kid], driver.SignatureInput(kid, scope, message)) {
			return true
		}
	}
	return false
}
