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
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
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

// identRuleHolds restates the identifier rule: 1-128 bytes of
// [A-Za-z0-9._:-], but not "." or ".." (they cannot be a URL path segment).
func identRuleHolds(s string) bool {
	return reIdentifier.MatchString(s) && s != "." && s != ".."
}

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
	if !identRuleHolds(a.ExecutionID) || len(a.Waitpoints) < 1 || len(a.Waitpoints) > 16 {
		return false
	}
	seen := map[string]bool{}
	for _, w := range a.Waitpoints {
		if !identRuleHolds(w.Key) || seen[w.Key] {
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
		fieldsOK := identRuleHolds(exec) && reToken.MatchString(token) && identRuleHolds(name) &&
			len(payload) <= 64<<10 && (len(payload) == 0 || len(refPayloadFaults(payload)) == 0) && idemRuleHolds(idem)
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
		if want := identRuleHolds(worker) && leaseMs >= 1 && leaseMs <= 1<<53-1; want != (err == nil) {
			t.Fatalf("ClaimArgs.Validate = %v, rule holds: %v", err, want)
		}
		err = contracts.CompleteArgs{ExecutionID: exec, LeaseID: leaseID}.Validate()
		if want := identRuleHolds(exec) && reUUID.MatchString(leaseID); want != (err == nil) {
			t.Fatalf("CompleteArgs.Validate = %v, rule holds: %v", err, want)
		}
		err = contracts.ObserveSignalsArgs{ExecutionID: exec, Limit: limit, Cursor: cursor}.Validate()
		_, sigCurErr := contracts.DecodeSignalCursor(cursor)
		if want := identRuleHolds(exec) && limit >= 1 && limit <= 1000 && (cursor == "" || sigCurErr == nil); want != (err == nil) {
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
		valid := ms >= 0 && identRuleHolds(id)
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

// Fault classes of the payload rule, as refPayloadFaults names them.
const (
	refSyntax    = "syntax"
	refUTF8      = "utf8"
	refSurrogate = "surrogate"
	refDuplicate = "duplicate"
	refDepth     = "depth"
)

// refPayloadFaults is a slow restatement of the payload rule of
// docs/spec.md §2 (one I-JSON value: valid UTF-8, no unpaired surrogate
// escape, no member name twice in an object, nesting at most 64 deep),
// built on encoding/json's token stream with checks of its own. It returns
// the classes of the first fault it finds, empty when p is valid: those of
// the first token that breaks a rule (or syntax, where the decoder stops),
// and utf8 when an invalid UTF-8 sequence comes before that point.
func refPayloadFaults(p []byte) map[string]bool {
	found := map[string]bool{}
	stop := len(p) // the end of the token at fault
	type frame struct {
		object, wantKey bool
		names           map[string]bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	values := 0
	for len(found) == 0 {
		before := int(dec.InputOffset())
		tok, err := dec.Token()
		if err == io.EOF {
			if values == 0 || len(stack) > 0 { // nothing, or an unclosed array or object
				found[refSyntax] = true
			}
			break
		}
		if err != nil {
			found[refSyntax] = true
			var se *json.SyntaxError
			if errors.As(err, &se) {
				// Token's offset counts from where this token's scan began.
				stop = min(before+int(se.Offset), len(p))
			}
			break
		}
		end := int(dec.InputOffset())
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		} else if values++; values > 1 {
			found[refSyntax] = true // a second top-level value
			stop = end
			break
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '}' || t == ']' {
				stack = stack[:len(stack)-1]
				break
			}
			if top != nil && top.object {
				top.wantKey = true // after this member's value, a name
			}
			if len(stack) == 64 {
				found[refDepth] = true
			}
			stack = append(stack, &frame{object: t == '{', wantKey: true, names: map[string]bool{}})
		case string:
			start := before
			for p[start] != '"' { // whitespace, ',' or ':' come first
				start++
			}
			if refLoneSurrogate(p[start:end]) {
				found[refSurrogate] = true
			}
			if top != nil && top.object && top.wantKey {
				if top.names[t] {
					found[refDuplicate] = true
				}
				top.names[t] = true
				top.wantKey = false
			} else if top != nil && top.object {
				top.wantKey = true
			}
		default:
			if top != nil && top.object {
				top.wantKey = true
			}
		}
		if len(found) > 0 {
			stop = end
		}
	}
	for i := 0; i < len(p) && i < stop; {
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			found[refUTF8] = true
			break
		}
		i += size
	}
	return found
}

// refLoneSurrogate reports whether the JSON string raw (quotes included,
// already found well-formed) has a \u escape of a surrogate that is not a
// high one followed at once by a \u escape of a low one.
func refLoneSurrogate(raw []byte) bool {
	type escape struct {
		at   int
		unit rune
	}
	var units []escape
	for i := 1; i < len(raw)-1; i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++
			continue
		}
		v, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		if err == nil {
			units = append(units, escape{i, rune(v)})
		}
		i += 5
	}
	for k := 0; k < len(units); k++ {
		u := units[k]
		if !utf16.IsSurrogate(u.unit) {
			continue
		}
		if u.unit < 0xdc00 && k+1 < len(units) && units[k+1].at == u.at+6 && units[k+1].unit >= 0xdc00 && units[k+1].unit <= 0xdfff {
			k++
			continue
		}
		return true
	}
	return false
}

// payloadFaultClass names the class of a ValidatePayload error by its detail.
func payloadFaultClass(detail string) string {
	for _, c := range [][2]string{
		{"must be a single JSON value", refSyntax}, {"valid UTF-8", refUTF8}, {"surrogate", refSurrogate},
		{"member name twice", refDuplicate}, {"nested at most 64", refDepth},
	} {
		if strings.Contains(detail, c[0]) {
			return c[1]
		}
	}
	return "unknown: " + detail
}

// FuzzValidatePayload checks ValidatePayload's one-pass scanner against
// refPayloadFaults: the same verdict, and when both refuse, a fault class
// the reference also finds first. A payload it accepts is also accepted as
// the member of a request body at field depth 1.
func FuzzValidatePayload(f *testing.F) {
	deep := func(n int, open, close string) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	for _, s := range []string{
		`{"a":[1,2]}`, ` [true, false, null, -0.5e+10, 0, 1E-2, "s"] `, `"\ud83d\ude00"`, `"\uD83D\uDE00\uDBFF\uDFFF"`,
		"\"\uFFFD\\ufffd\"", `{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, `{"":1,"a":2}`, `{"a\/b":1,"a\\b":2}`,
		deep(64, "[", "]"), deep(65, "[", "]"), strings.Repeat(`{"a":`, 64) + "{}" + strings.Repeat("}", 64),
		"\"pay-\xff\"", "{\"\xfe\":1}", "\"\xed\xa0\x80\"", "\"\xc0\xaf\"", `"\ud800"`, `{"\ud800":1}`, `["\udc00"]`,
		`"\ud800x"`, `"\ud800\ud800"`, `"\udbff\u0041"`, `"\ude00\ud83d"`, `"\ud800\n"`, `"\ud800\u12"`,
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `[{"a":1,"b":{"a":2},"a":3}]`, `{"😀":1,"\ud83d\ude00":2}`,
		`{"m0":0,"m1":1,"m2":2,"m3":3,"m4":4,"m5":5,"m6":6,"m7":7,"m8":8,"m9":9,"m10":0,"m11":1,"m12":2,"m13":3,"m14":4,"m15":5,"m16":6,"m17":7,"m3":1}`,
		`{"a":`, `1 2`, `[1,]`, `{"a":1,}`, `01`, `"\x"`, `"\u12"`, "\"a\x01\"", `"\ud800`, "\"\xff", "[1,\xff]",
		`tru`, `nulls`, ` `, `[1}`, "\ufeff1", `1x`, `[1]]`, `{"a" 1}`, `-`, `1.`, `1e`, `-01`, `"\ud800"x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) == 0 || len(p) > contracts.MaxPayloadLen {
			return // absent, or refused by length before any scan
		}
		err := contracts.ValidatePayload("payload", p)
		want := refPayloadFaults(p)
		if (len(want) == 0) != (err == nil) {
			t.Fatalf("ValidatePayload(%q) = %v; reference faults %v", p, err, want)
		}
		if err != nil {
			checkInvalidInput(t, err, "payload: ")
			if c := payloadFaultClass(err.(*contracts.Error).Detail); !want[c] {
				t.Fatalf("ValidatePayload(%q) = %v (%s); reference faults %v", p, err, c, want)
			}
			return
		}
		body := append(append([]byte(`{"name":"n","payload":`), p...), '}')
		if fault, bad := contracts.FindJSONFault(body, 1); bad {
			t.Fatalf("payload %q accepted, but not as a body member: %+v", p, fault)
		}
	})
}
