package driver_test

// Fuzz targets for the token kit: waitpoint messages are injective and no
// forged token passes CheckToken (docs/spec.md §3).
//
//	go test ./driver -run '^$' -fuzz '^FuzzCheckTokenForgery$' -fuzztime 60s

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// The identifier rules of docs/spec.md §2, restated independently of the code.
var (
	reIdentifier = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	reUUID       = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// fzValidUUID is a fixed well-formed waitpoint id for seeds.
const fzValidUUID = "0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f"

// FuzzWaitpointMessageInjective checks that two different valid waitpoint
// identities never share a signed message, so that a token opens exactly one
// waitpoint of exactly one execution (docs/spec.md §3).
func FuzzWaitpointMessageInjective(f *testing.F) {
	f.Add("e", fzValidUUID, "k", int64(1), "e", fzValidUUID, "k", int64(1))
	f.Add("e|x", fzValidUUID, "k", int64(1), "e", fzValidUUID, "x|k", int64(1))
	f.Add("e:1", fzValidUUID, "k-1", int64(12), "e:1", fzValidUUID, "k-11", int64(2))
	f.Fuzz(func(t *testing.T, e1, w1, k1 string, c1 int64, e2, w2, k2 string, c2 int64) {
		valid := func(e, w, k string) bool {
			return reIdentifier.MatchString(e) && reUUID.MatchString(w) && reIdentifier.MatchString(k)
		}
		if !valid(e1, w1, k1) || !valid(e2, w2, k2) {
			return
		}
		same := string(driver.WaitpointMessage(e1, w1, k1, c1)) == string(driver.WaitpointMessage(e2, w2, k2, c2))
		if same != (e1 == e2 && w1 == w2 && k1 == k2 && c1 == c2) {
			t.Fatalf("messages collide: (%q %q %q %d) and (%q %q %q %d)", e1, w1, k1, c1, e2, w2, k2, c2)
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
// that driver.CheckToken accepts exactly the tokens that are the HMAC of
// their own (kid, message) under that kid's secret, for a usable kid: no
// other token, however close, is ever accepted, and the signed pair always is.
func FuzzCheckTokenForgery(f *testing.F) {
	for kid, s := range forgerySecrets {
		for _, msg := range []string{"", "m", "exec-1|" + fzValidUUID + "|approve|1767225600000", "\x00\xff"} {
			f.Add(driver.SignToken(kid, s, []byte(msg)), []byte(msg))
		}
	}
	// A token signed by one kid's secret relabelled as another kid.
	good := driver.SignToken("k-current", forgerySecrets["k-current"], []byte("m"))
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
		err = driver.CheckToken(tok, message, true, rec, forgeryNow)
		if err == nil {
			if rec == nil || token != driver.SignToken(tok.Kid, rec.Secret, message) {
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
			real, _ := contracts.ParseToken("token", driver.SignToken(tok.Kid, rec.Secret, message))
			if driver.CheckToken(real, message, true, rec, forgeryNow) != nil {
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
