package driver_test

// Fuzz targets for the token kit: waitpoint messages are injective and no
// forged token passes CheckToken (docs/spec.md §3).
//
//	go test ./driver -run '^$' -fuzz '^FuzzCheckTokenForgery$' -fuzztime 60s

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// The identifier rules of docs/spec.md §2, restated independently of the code.
var (
	reKid        = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	reIdentifier = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	reUUID       = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// fzValidUUID is a fixed well-formed waitpoint id for seeds.
const fzValidUUID = "0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f"

// FuzzWaitpointInputInjective checks that two different valid waitpoint
// identities never share a MAC input, so that a token opens exactly one
// waitpoint of exactly one execution (docs/spec.md §3).
func FuzzWaitpointInputInjective(f *testing.F) {
	f.Add("k1", "e", fzValidUUID, "k", int64(1), "k1", "e", fzValidUUID, "k", int64(1))
	f.Add("k1", "e|x", fzValidUUID, "k", int64(1), "k1", "e", fzValidUUID, "x|k", int64(1))
	f.Add("k1", "ab", fzValidUUID, "c", int64(1), "k1", "a", fzValidUUID, "bc", int64(1))
	f.Add("k1e", "x", fzValidUUID, "k", int64(12), "k1", "ex", fzValidUUID, "k", int64(12))
	f.Fuzz(func(t *testing.T, kid1, e1, w1, k1 string, c1 int64, kid2, e2, w2, k2 string, c2 int64) {
		valid := func(kid, e, w, k string) bool {
			return reKid.MatchString(kid) && reIdentifier.MatchString(e) && reUUID.MatchString(w) && reIdentifier.MatchString(k)
		}
		if !valid(kid1, e1, w1, k1) || !valid(kid2, e2, w2, k2) {
			return
		}
		same := bytes.Equal(driver.WaitpointInput(kid1, e1, w1, k1, c1), driver.WaitpointInput(kid2, e2, w2, k2, c2))
		if same != (kid1 == kid2 && e1 == e2 && w1 == w2 && k1 == k2 && c1 == c2) {
			t.Fatalf("inputs collide: (%q %q %q %q %d) and (%q %q %q %q %d)", kid1, e1, w1, k1, c1, kid2, e2, w2, k2, c2)
		}
	})
}

// FuzzPurposesNeverCross checks, through an Engine on the memory backend,
// that no output of sign is accepted by deliver_signal, whatever scope and
// message are signed, and that no waitpoint token is accepted by verify
// (docs/spec.md §3); and, for the kit itself, that no signature input is
// ever a waitpoint input.
func FuzzPurposesNeverCross(f *testing.F) {
	ctx := context.Background()
	eng := engine.New(memory.New())
	secret := contracts.Secret(bytes.Repeat([]byte{7}, 32))
	if _, err := eng.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret}); err != nil {
		f.Fatal(err)
	}
	sus, err := eng.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}}, Condition: contracts.ConditionAny})
	if err != nil {
		f.Fatal(err)
	}
	wp := sus.Waitpoints[0]
	legacy := "exec-1|" + wp.WaitpointID + "|approve|" + strconv.FormatInt(wp.CreatedAtMs, 10)
	f.Add("exec-1", []byte(legacy))
	f.Add("", []byte(legacy))
	f.Add("exec-1", driver.WaitpointInput("k1", "exec-1", wp.WaitpointID, "approve", wp.CreatedAtMs))
	f.Add("exec-1", []byte{})
	f.Fuzz(func(t *testing.T, scope string, message []byte) {
		if len(scope) > contracts.MaxScopeLen || len(message) > contracts.MaxMessageLen {
			return
		}
		sig, err := eng.Sign(ctx, contracts.SignArgs{Scope: scope, Message: message})
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		_, err = eng.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: wp.WaitpointID, Token: sig.Token, Name: "forged"})
		if !errors.Is(err, contracts.ErrSignatureMismatch) {
			t.Fatalf("deliver of a signature over %q in scope %q answered %v", message, scope, err)
		}
		if _, err := eng.Verify(ctx, contracts.VerifyArgs{Scope: scope, Message: message, Token: wp.Token}); !errors.Is(err, contracts.ErrSignatureMismatch) {
			t.Fatalf("verify of the waitpoint token over %q in scope %q answered %v", message, scope, err)
		}
		if bytes.Equal(driver.SignatureInput("k1", scope, message), driver.WaitpointInput("k1", "exec-1", wp.WaitpointID, "approve", wp.CreatedAtMs)) {
			t.Fatal("a signature input equals a waitpoint input")
		}
	})
}

// forgeryKeystore is the keystore of FuzzCheckTokenForgery: a current kid
// and a verifying kid whose grace ends at forgeryNow.
var (
	forgeryNow     = int64(1767225600000)
	forgerySecrets = map[string]contracts.Secret{
		"k-current": contracts.Secret(strings.Repeat("c", 32)),
		"k-old":     contracts.Secret(strings.Repeat("o", 64)),
		"k-expired": contracts.Secret(strings.Repeat("x", 48)),
	}
	forgeryExpiry = map[string]int64{"k-old": forgeryNow, "k-expired": forgeryNow - 1}
)

func forgeryRecord(kid string) *driver.KidRecord {
	s, ok := forgerySecrets[kid]
	if !ok {
		return nil
	}
	rec := &driver.KidRecord{Kid: kid, Secret: s}
	if exp, ok := forgeryExpiry[kid]; ok {
		rec.ExpiresAtMs = &exp
	}
	return rec
}

// FuzzCheckTokenForgery mutates valid (token, message) pairs and checks
// that driver.CheckToken accepts exactly the tokens that are the MAC of the
// signature input of their own (kid, scope "s", message) under that kid's
// secret, for a usable kid: no
// other token, however close, is ever accepted, and the signed pair always is.
func FuzzCheckTokenForgery(f *testing.F) {
	for kid, s := range forgerySecrets {
		for _, msg := range []string{"", "m", "exec-1|" + fzValidUUID + "|approve|1767225600000", "\x00\xff"} {
			f.Add(driver.SignToken(kid, s, driver.SignatureInput(kid, "s", []byte(msg))), []byte(msg))
		}
	}
	// A token signed by one kid's secret relabelled as another kid.
	good := driver.SignToken("k-current", forgerySecrets["k-current"], driver.SignatureInput("k-current", "s", []byte("m")))
	f.Add("k-old"+good[len("k-current"):], []byte("m"))
	f.Add("k-unknown"+good[len("k-current"):], []byte("m"))
	f.Fuzz(func(t *testing.T, token string, message []byte) {
		tok, err := contracts.ParseToken("token", token)
		if err != nil {
			if !errors.Is(err, contracts.ErrTokenMalformed) {
				t.Fatalf("ParseToken error %v is not invalid_token / malformed", err)
			}
			return
		}
		rec := forgeryRecord(tok.Kid)
		err = driver.CheckToken(tok, driver.SignatureInput(tok.Kid, "s", message), true, rec, forgeryNow)
		if err == nil {
			if rec == nil || token != driver.SignToken(tok.Kid, rec.Secret, driver.SignatureInput(tok.Kid, "s", message)) {
				t.Fatalf("FORGERY accepted: token %q for message %q", token, message)
			}
			return
		}
		switch {
		case rec == nil:
			if !errors.Is(err, contracts.ErrUnknownKid) {
				t.Fatalf("unknown kid answered %v", err)
			}
		case !rec.Usable(forgeryNow):
			if !errors.Is(err, contracts.ErrTokenExpired) {
				t.Fatalf("expired kid answered %v", err)
			}
		default:
			if !errors.Is(err, contracts.ErrSignatureMismatch) {
				t.Fatalf("wrong MAC answered %v", err)
			}
			// Completeness: the real token of this (kid, message) verifies.
			in := driver.SignatureInput(tok.Kid, "s", message)
			real, _ := contracts.ParseToken("token", driver.SignToken(tok.Kid, rec.Secret, in))
			if driver.CheckToken(real, in, true, rec, forgeryNow) != nil {
				t.Fatalf("the signed pair (%q, %q) is rejected", tok.Kid, message)
			}
		}
		// Kids are not secret and may be quoted; the MAC never is (a kid of
		// 64 hex digits equal to the MAC is the kid, not a leak).
		if strings.Contains(strings.ReplaceAll(err.Error(), tok.Kid, ""), token[len(token)-64:]) {
			t.Fatalf("error quotes the MAC: %v", err)
		}
	})
}
