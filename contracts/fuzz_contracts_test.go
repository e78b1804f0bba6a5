package contracts_test

// Fuzz targets for every validator of the contract and for token
// verification as a forgery check. Each target checks the validator against
// an independent statement of its rule (docs/spec.md §2), written here with
// regular expressions and plain length checks rather than by calling the
// helpers under test, so that "accepted" really means "satisfies the rule".
//
// Run one for longer with, e.g.,
//
//	go test ./contracts -run '^$' -fuzz '^FuzzCheckTokenForgery$' -fuzztime 60s
//
// or all of them with scripts/fuzz.sh.

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// The rules of docs/spec.md §2, restated independently of validate.go.
var (
	reKid        = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	reIdentifier = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	reUUID       = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	reToken      = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}:[0-9a-f]{64}$`)
	reSecretHex  = regexp.MustCompile(`^(?:[0-9a-fA-F]{2}){32,64}$`)
)

// fzValidUUID is a fixed well-formed lease or waitpoint id for seeds.
const fzValidUUID = "0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f"

// fzSecretHex is the hex of a valid 32-byte secret used only by these seeds.
var fzSecretHex = strings.Repeat("5e", 32)

// hostileStrings are seeds every string-typed target starts from: quotes,
// SQL and Lua injection, long brackets, CRLF (the redis protocol), NUL,
// unicode (combining, RTL, invalid UTF-8), and boundary lengths.
var hostileStrings = []string{
	"", "a", "'", `"`, "'); DROP TABLE ff_keys; --", `"; DROP TABLE ff_signals; --`,
	"]]", "[[", "[==[x]==]", "]==]", "redis.call('FLUSHALL')", "\x00", "a\x00b",
	"\r\n*1\r\n$8\r\nFLUSHALL\r\n", "€", "é", "\u202e", "\xff\xfe", "%s%x%n",
	strings.Repeat("a", 64), strings.Repeat("a", 65), strings.Repeat("a", 128), strings.Repeat("a", 129),
	strings.Repeat("a", 256), strings.Repeat("a", 257), "exec:1", "k.1_a-B", fzValidUUID,
}

// checkInvalidInput fails unless err is validation / invalid_input whose
// detail names field.
func checkInvalidInput(t *testing.T, err error, field string) {
	t.Helper()
	var ce *contracts.Error
	if !errors.As(err, &ce) || !errors.Is(err, contracts.ErrInvalidInput) {
		t.Fatalf("error %v is not validation / invalid_input", err)
	}
	if !strings.HasPrefix(ce.Detail, field) {
		t.Fatalf("detail %q does not name %s", ce.Detail, field)
	}
}

// splitKeys turns one fuzzed string into waitpoint specs (comma-separated).
func splitKeys(s string) []contracts.WaitpointSpec {
	var out []contracts.WaitpointSpec
	for _, k := range strings.Split(s, ",") {
		out = append(out, contracts.WaitpointSpec{Key: k})
	}
	return out
}

func suspendRuleHolds(a contracts.SuspendArgs) bool {
	if !reIdentifier.MatchString(a.ExecutionID) || len(a.Waitpoints) < 1 || len(a.Waitpoints) > 16 {
		return false
	}
	seen := map[string]bool{}
	for _, w := range a.Waitpoints {
		if !reIdentifier.MatchString(w.Key) || seen[w.Key] {
			return false
		}
		seen[w.Key] = true
	}
	if a.Condition != "any" && a.Condition != "all" {
		return false
	}
	if a.TimeoutMs != nil && (*a.TimeoutMs < 1 || *a.TimeoutMs > 1<<53-1) {
		return false
	}
	if !idemRuleHolds(a.IdempotencyKey) {
		return false
	}
	return a.LeaseID == nil || reUUID.MatchString(*a.LeaseID)
}

// idemRuleHolds restates the idempotency_key rule: at most 256 bytes of
// valid UTF-8 without NUL.
func idemRuleHolds(k string) bool {
	return len(k) <= 256 && utf8.ValidString(k) && !strings.Contains(k, "\x00")
}

func FuzzSuspendArgsValidate(f *testing.F) {
	f.Add("exec-1", "approve,reject", "any", int64(1000), true, "idem", fzValidUUID, true)
	f.Add("exec-1", "a,a", "all", int64(0), false, "", "", false)
	f.Add("exec-1", strings.Repeat("k,", 16)+"k", "all", int64(1<<53), true, "", "", false)
	for _, s := range hostileStrings {
		f.Add(s, s, s, int64(-1), true, s, s, true)
	}
	f.Fuzz(func(t *testing.T, exec, keys, cond string, timeout int64, hasTimeout bool, idem, lease string, hasLease bool) {
		a := contracts.SuspendArgs{ExecutionID: exec, Waitpoints: splitKeys(keys), Condition: cond, IdempotencyKey: idem}
		if hasTimeout {
			a.TimeoutMs = &timeout
		}
		if hasLease {
			a.LeaseID = &lease
		}
		err := a.Validate()
		if want := suspendRuleHolds(a); want != (err == nil) {
			t.Fatalf("Validate(%+v) = %v, rule holds: %v", a, err, want)
		}
		if err != nil {
			checkInvalidInput(t, err, "")
			return
		}
		// An accepted suspend has a stable fingerprint that changes with the key.
		b := a
		b.IdempotencyKey += "x"
		if a.Fingerprint() != a.Fingerprint() || a.Fingerprint() == b.Fingerprint() {
			t.Fatalf("fingerprint is not stable or ignores the idempotency key")
		}
	})
}

func FuzzDeliverSignalArgsValidate(f *testing.F) {
	tok := driver.SignToken("k1", make([]byte, 32), []byte("m"))
	f.Add("exec-1", fzValidUUID, tok, "approved", []byte(`{"by":"ann"}`), "idem")
	f.Add("exec-1", strings.ToUpper(fzValidUUID), tok, "n", []byte(nil), "")
	f.Add("exec-1", fzValidUUID, tok, "n", []byte(`"\u0000"`), strings.Repeat("i", 257))
	f.Add("exec-1", fzValidUUID, tok, "n", []byte(`{"a":1} {"b":2}`), "")
	for _, s := range hostileStrings {
		f.Add(s, s, s, s, []byte(s), s)
	}
	f.Fuzz(func(t *testing.T, exec, wp, token, name string, payload []byte, idem string) {
		a := contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: wp, Token: token, Name: name, Payload: payload, IdempotencyKey: idem}
		err := a.Validate()
		fieldsOK := reIdentifier.MatchString(exec) && reToken.MatchString(token) && reIdentifier.MatchString(name) &&
			len(payload) <= 64<<10 && (len(payload) == 0 || json.Valid(payload)) && idemRuleHolds(idem)
		want := fieldsOK && reUUID.MatchString(wp)
		if want != (err == nil) {
			t.Fatalf("Validate(%+v) = %v, rule holds: %v", a, err, want)
		}
		if fieldsOK && !want && !errors.Is(err, contracts.ErrSignatureMismatch) {
			// A waitpoint_id that is not a UUID answers like a wrong MAC.
			t.Fatalf("bad waitpoint_id answered %v, want invalid_token / signature_mismatch", err)
		}
		if err != nil && strings.Contains(err.Error(), token) && len(token) >= 64 {
			t.Fatalf("error quotes the token: %v", err)
		}
	})
}

func FuzzSignVerifyArgsValidate(f *testing.F) {
	tok := driver.SignToken("k1", make([]byte, 32), []byte("m"))
	f.Add("scope", []byte("message"), tok)
	f.Add(strings.Repeat("s", 257), []byte(nil), "k1:")
	for _, s := range hostileStrings {
		f.Add(s, []byte(s), s)
	}
	f.Fuzz(func(t *testing.T, scope string, message []byte, token string) {
		signErr := contracts.SignArgs{Scope: scope, Message: message}.Validate()
		signOK := len(scope) <= 256 && len(message) <= 64<<10
		if signOK != (signErr == nil) {
			t.Fatalf("SignArgs.Validate(len %d, len %d) = %v, rule holds: %v", len(scope), len(message), signErr, signOK)
		}
		verifyErr := contracts.VerifyArgs{Scope: scope, Message: message, Token: token}.Validate()
		if want := signOK && reToken.MatchString(token); want != (verifyErr == nil) {
			t.Fatalf("VerifyArgs.Validate = %v, rule holds: %v", verifyErr, want)
		}
		if signOK && verifyErr != nil && !errors.Is(verifyErr, contracts.ErrTokenMalformed) {
			t.Fatalf("a bad token answered %v, want invalid_token / malformed", verifyErr)
		}
	})
}

func FuzzKeystoreArgsValidate(f *testing.F) {
	f.Add("k1", fzSecretHex, int64(0))
	f.Add("k1", strings.ToUpper(fzSecretHex), int64(1<<53-1))
	f.Add("k:1", fzSecretHex+"0", int64(1<<53))
	f.Add("k1", strings.Repeat("ab", 64), int64(-1))
	f.Add("k1", strings.Repeat("ab", 65), int64(5))
	for _, s := range hostileStrings {
		f.Add(s, s, int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, kid, secretHex string, grace int64) {
		secret, err := contracts.ParseSecretHex("secret_hex", secretHex)
		if want := reSecretHex.MatchString(secretHex); want != (err == nil) {
			t.Fatalf("ParseSecretHex(len %d) = %v, rule holds: %v", len(secretHex), err, want)
		}
		if err != nil {
			checkInvalidInput(t, err, "secret_hex")
			if len(secretHex) >= 16 && strings.Contains(err.Error(), secretHex) {
				t.Fatalf("error quotes the secret: %v", err)
			}
			return
		}
		// The secret never prints, in any verb or encoding.
		lower := strings.ToLower(secretHex)
		shown := fmt.Sprintf("%v %s %x %X %q %+v %#v", secret, secret, secret, secret, secret, secret, secret)
		js, _ := json.Marshal(struct{ S contracts.Secret }{secret})
		for _, out := range []string{shown, string(js), strings.ToLower(shown)} {
			if strings.Contains(strings.ToLower(out), lower[:16]) {
				t.Fatalf("secret bytes shown in %q", out)
			}
		}
		if hex.EncodeToString(secret) != lower {
			t.Fatalf("secret does not decode to the given bytes")
		}
		seedErr := contracts.SeedArgs{Kid: kid, Secret: secret}.Validate()
		if want := reKid.MatchString(kid); want != (seedErr == nil) {
			t.Fatalf("SeedArgs.Validate(kid %q) = %v, rule holds: %v", kid, seedErr, want)
		}
		rotErr := contracts.RotateArgs{NewKid: kid, NewSecret: secret, GraceMs: grace}.Validate()
		if want := reKid.MatchString(kid) && grace >= 0 && grace <= 1<<53-1; want != (rotErr == nil) {
			t.Fatalf("RotateArgs.Validate(kid %q, grace %d) = %v, rule holds: %v", kid, grace, rotErr, want)
		}
	})
}

func FuzzOtherArgsValidate(f *testing.F) {
	cur := contracts.EncodeCursor(contracts.Cursor{SuspendedAtMs: 5, ExecutionID: "e"})
	f.Add("worker-1", int64(30000), "exec-1", fzValidUUID, 100, cur)
	f.Add("w", int64(0), "e", "", 0, "")
	f.Add("w", int64(1<<53), "e", strings.ToUpper(fzValidUUID), 1001, "!!")
	for _, s := range hostileStrings {
		f.Add(s, int64(len(s)), s, s, len(s), s)
	}
	f.Fuzz(func(t *testing.T, worker string, leaseMs int64, exec, leaseID string, limit int, cursor string) {
		err := contracts.ClaimArgs{WorkerID: worker, LeaseMs: leaseMs}.Validate()
		if want := reIdentifier.MatchString(worker) && leaseMs >= 1 && leaseMs <= 1<<53-1; want != (err == nil) {
			t.Fatalf("ClaimArgs.Validate = %v, rule holds: %v", err, want)
		}
		err = contracts.CompleteArgs{ExecutionID: exec, LeaseID: leaseID}.Validate()
		if want := reIdentifier.MatchString(exec) && reUUID.MatchString(leaseID); want != (err == nil) {
			t.Fatalf("CompleteArgs.Validate = %v, rule holds: %v", err, want)
		}
		err = contracts.ObserveSignalsArgs{ExecutionID: exec, Limit: limit, Cursor: cursor}.Validate()
		_, sigCurErr := contracts.DecodeSignalCursor(cursor)
		if want := reIdentifier.MatchString(exec) && limit >= 1 && limit <= 1000 && (cursor == "" || sigCurErr == nil); want != (err == nil) {
			t.Fatalf("ObserveSignalsArgs.Validate = %v, rule holds: %v", err, want)
		}
		err = contracts.ListSuspendedArgs{Limit: limit, Cursor: cursor}.Validate()
		_, curErr := contracts.DecodeCursor(cursor)
		if want := limit >= 1 && limit <= 1000 && (cursor == "" || curErr == nil); want != (err == nil) {
			t.Fatalf("ListSuspendedArgs.Validate = %v, rule holds: %v", err, want)
		}
		if err != nil {
			checkInvalidInput(t, err, "")
		}
	})
}

func FuzzCursorRoundTrip(f *testing.F) {
	f.Add(int64(1767225600123), "wf:1")
	f.Add(int64(-1), "e")
	f.Add(int64(0), "")
	f.Add(int64(1<<62), "a:b:c")
	for _, s := range hostileStrings {
		f.Add(int64(len(s)), s)
	}
	f.Fuzz(func(t *testing.T, ms int64, id string) {
		c := contracts.Cursor{SuspendedAtMs: ms, ExecutionID: id}
		enc := contracts.EncodeCursor(c)
		got, err := contracts.DecodeCursor(enc)
		valid := ms >= 0 && reIdentifier.MatchString(id)
		if valid != (err == nil) {
			t.Fatalf("DecodeCursor(EncodeCursor(%+v)) = %v, valid position: %v", c, err, valid)
		}
		if err == nil && got != c {
			t.Fatalf("round trip %+v -> %+v", c, got)
		}
		if strings.ContainsAny(enc, "+/=") {
			t.Fatalf("cursor %q is not raw URL-safe base64", enc)
		}
	})
}
