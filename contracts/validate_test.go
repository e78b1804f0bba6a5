package contracts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValidateKid(t *testing.T) {
	for _, ok := range []string{"a", "K-1.2_z", strings.Repeat("k", 64)} {
		if err := ValidateKid("kid", ok); err != nil {
			t.Errorf("ValidateKid(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("k", 65), "a:b", "a b", "é", "a/b"} {
		err := ValidateKid("kid", bad)
		if !errors.Is(err, ErrInvalidInput) || !strings.HasPrefix(err.(*Error).Detail, "kid: ") {
			t.Errorf("ValidateKid(%q) = %v, want invalid_input naming kid", bad, err)
		}
	}
}

func TestValidateIdentifierAllowsColon(t *testing.T) {
	if err := ValidateIdentifier("execution_id", "wf:run:1"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", strings.Repeat("e", 129), "a|b", "a\x00"} {
		if err := ValidateIdentifier("execution_id", bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ValidateIdentifier(%q) = %v", bad, err)
		}
	}
}

func TestParseSecretHex(t *testing.T) {
	lower := strings.Repeat("ab", 32)
	a, err := ParseSecretHex("secret", lower)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSecretHex("secret", strings.ToUpper(lower))
	if err != nil || !a.Equal(b) {
		t.Fatalf("upper-case hex must decode to the same bytes: %v", err)
	}
	if _, err := ParseSecretHex("secret", strings.Repeat("ab", 64)); err != nil {
		t.Fatalf("64 bytes must be accepted: %v", err)
	}
	for name, bad := range map[string]string{
		"odd length": strings.Repeat("a", 65),
		"non-hex":    strings.Repeat("zz", 32),
		"too short":  strings.Repeat("ab", 31),
		"too long":   strings.Repeat("ab", 65),
		"empty":      "",
	} {
		_, err := ParseSecretHex("secret", bad)
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v", name, err)
			continue
		}
		if bad != "" && strings.Contains(strings.ToLower(err.Error()), bad[:16]) {
			t.Errorf("%s: error quotes the secret: %v", name, err)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret(bytes.Repeat([]byte{0xab}, 32))
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "secret", s)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s)
	j, _ := json.Marshal(struct{ S Secret }{s})
	outputs := []string{
		fmt.Sprint(s), fmt.Sprintf("%x %X %v %+v %#v %s %q", s, s, s, s, s, s, s),
		string(j), logged.String(),
	}
	for _, o := range outputs {
		if strings.Contains(strings.ToLower(o), "abab") || strings.Contains(o, "\xab") {
			t.Fatalf("secret bytes leaked: %q", o)
		}
	}
}

func TestValidatePayload(t *testing.T) {
	if err := ValidatePayload("payload", json.RawMessage(`{"a":[1,2]}`)); err != nil {
		t.Fatal(err)
	}
	if err := ValidatePayload("payload", nil); err != nil {
		t.Fatal(err)
	}
	if err := ValidatePayload("payload", json.RawMessage(`{"a":`)); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("invalid JSON: %v", err)
	}
	if err := ValidatePayload("payload", json.RawMessage(`1 2`)); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("two values: %v", err)
	}
	big := json.RawMessage(`"` + strings.Repeat("x", MaxPayloadLen) + `"`)
	if err := ValidatePayload("payload", big); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("oversized: %v", err)
	}
}

func TestArgsValidateNamesField(t *testing.T) {
	secret := Secret(bytes.Repeat([]byte{1}, 32))
	neg := int64(-1)
	cases := map[string]struct {
		err   error
		field string
	}{
		"grace":     {RotateArgs{NewKid: "k", NewSecret: secret, GraceMs: -1}.Validate(), "grace_ms"},
		"grace max": {RotateArgs{NewKid: "k", NewSecret: secret, GraceMs: MaxGraceMs + 1}.Validate(), "grace_ms"},
		"scope":     {SignArgs{Scope: strings.Repeat("s", 257)}.Validate(), "scope"},
		"message":   {SignArgs{Message: make([]byte, MaxMessageLen+1)}.Validate(), "message"},
		"timeout":   {SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "a"}}, Condition: "any", TimeoutMs: &neg}.Validate(), "timeout_ms"},
		"no wps":    {SuspendArgs{ExecutionID: "e", Condition: "any"}.Validate(), "waitpoints"},
		"dup wps":   {SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "a"}, {Key: "a"}}, Condition: "any"}.Validate(), "waitpoints.key"},
		"condition": {SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "a"}}, Condition: "some"}.Validate(), "condition"},
		"limit":     {ListSuspendedArgs{Limit: 1001}.Validate(), "limit"},
		"cursor":    {ListSuspendedArgs{Limit: 1, Cursor: "!!"}.Validate(), "cursor"},
		"lease_ms":  {ClaimArgs{WorkerID: "w", LeaseMs: 0}.Validate(), "lease_ms"},
		"lease_id":  {CompleteArgs{ExecutionID: "e", LeaseID: "x"}.Validate(), "lease_id"},
		"worker":    {ClaimArgs{WorkerID: "", LeaseMs: 1}.Validate(), "worker_id"},
		"idem":      {SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "a"}}, Condition: "any", IdempotencyKey: strings.Repeat("i", 257)}.Validate(), "idempotency_key"},
		"signal":    {DeliverSignalArgs{ExecutionID: "e", Token: wellFormedToken, Name: "", WaitpointID: "0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f"}.Validate(), "name"},
	}
	for name, c := range cases {
		var ce *Error
		if !errors.As(c.err, &ce) || ce.Code != CodeInvalidInput || !strings.HasPrefix(ce.Detail, c.field+": ") {
			t.Errorf("%s: err = %v, want invalid_input naming %s", name, c.err, c.field)
		}
	}
}

func TestDeliverUnknownWaitpointFormatLooksLikeBadSignature(t *testing.T) {
	a := DeliverSignalArgs{ExecutionID: "e", WaitpointID: "not-a-uuid", Token: wellFormedToken, Name: "n"}
	if err := a.Validate(); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("err = %v, want invalid_token/signature_mismatch", err)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := Cursor{SuspendedAtMs: 1767225600123, ExecutionID: "wf:1"}
	got, err := DecodeCursor(EncodeCursor(c))
	if err != nil || got != c {
		t.Fatalf("DecodeCursor(EncodeCursor(%v)) = %v, %v", c, got, err)
	}
	if !c.After(c.SuspendedAtMs, "wf:2") || c.After(c.SuspendedAtMs, "wf:1") || !c.After(c.SuspendedAtMs+1, "a") {
		t.Fatal("Cursor.After must be strict and ordered by (ms, id)")
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(Cursor{SuspendedAtMs: 5, ExecutionID: "e"}))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if again, err := DecodeCursor(EncodeCursor(c)); err != nil || again != c {
			t.Fatalf("re-encoding %v failed: %v", c, err)
		}
	})
}

// wellFormedToken passes ParseToken; whether its MAC matches is a driver's question.
var wellFormedToken = "k:" + strings.Repeat("ab", 32)

func TestValidateIdentifierRefusesDotSegments(t *testing.T) {
	for _, bad := range []string{".", ".."} {
		for _, field := range []string{"execution_id", "waitpoints.key", "name", "worker_id"} {
			err := ValidateIdentifier(field, bad)
			var ce *Error
			if !errors.As(err, &ce) || ce.Code != CodeInvalidInput || ce.Detail != field+`: must not be "." or ".."` {
				t.Errorf("ValidateIdentifier(%q, %q) = %v", field, bad, err)
			}
		}
	}
	for _, ok := range []string{"...", ".a", "a.", "a..b", "..:", ":.", "._"} {
		if err := ValidateIdentifier("execution_id", ok); err != nil {
			t.Errorf("ValidateIdentifier(%q) = %v, want accepted", ok, err)
		}
	}
	// Every operation that takes an identifier refuses them.
	tok, wp := wellFormedToken, "0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f"
	for name, err := range map[string]error{
		"suspend execution": SuspendArgs{ExecutionID: ".", Waitpoints: []WaitpointSpec{{Key: "a"}}, Condition: "any"}.Validate(),
		"suspend key":       SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: ".."}}, Condition: "any"}.Validate(),
		"deliver name":      DeliverSignalArgs{ExecutionID: "e", WaitpointID: wp, Token: tok, Name: ".."}.Validate(),
		"deliver execution": DeliverSignalArgs{ExecutionID: "..", WaitpointID: wp, Token: tok, Name: "n"}.Validate(),
		"observe":           ObserveSignalsArgs{ExecutionID: ".", Limit: 1}.Validate(),
		"claim":             ClaimArgs{WorkerID: "..", LeaseMs: 1}.Validate(),
		"complete":          CompleteArgs{ExecutionID: ".", LeaseID: wp}.Validate(),
		"cursor":            ListSuspendedArgs{Limit: 1, Cursor: EncodeCursor(Cursor{SuspendedAtMs: 1, ExecutionID: ".."})}.Validate(),
	} {
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v, want invalid_input", name, err)
		}
	}
}

// nest returns v inside depth arrays (open "[" / close "]") or objects.
func nest(depth int, open, close, v string) string {
	return strings.Repeat(open, depth) + v + strings.Repeat(close, depth)
}

func manyMembers(n int, last string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, `"m%d":%d,`, i, i)
	}
	b.WriteString(last + "}")
	return b.String()
}

// payloadCases are payloads and the rule ValidatePayload must name ("" when
// it must accept them).
var payloadCases = []struct{ name, payload, rule string }{
	{"object", `{"a":[1,2]}`, ""},
	{"scalars", ` [true, false, null, -0.5e+10, 0, 1E-2, "s"] `, ""},
	{"surrogate pair", `"\ud83d\ude00"`, ""},
	{"surrogate pair upper case", `"\uD83D\uDE00 and \uDBFF\uDFFF"`, ""},
	{"replacement character", "\"\uFFFD \\ufffd é \\u00e9\"", ""},
	{"same name in different objects", `{"a":{"a":1},"b":[{"a":1},{"a":2}],"c":{"b":{"a":3}}}`, ""},
	{"empty name", `{"":1,"a":2}`, ""},
	{"names differing by escape", `{"a\/b":1,"a\\b":2,"a\nb":3}`, ""},
	{"many members", manyMembers(40, `"x":1`), ""},
	{"depth 64 arrays", nest(64, "[", "]", "1"), ""},
	{"depth 64 objects", nest(63, `{"a":`, "}", `{}`), ""},
	{"depth 64 mixed", nest(32, `[{"a":`, "}]", "null"), ""},

	{"invalid UTF-8 in a value", "\"pay-\xff\"", ruleJSONUTF8},
	{"invalid UTF-8 in a name", "{\"\xfe\":1}", ruleJSONUTF8},
	{"UTF-8 encoded surrogate", "\"\xed\xa0\x80\"", ruleJSONUTF8},
	{"overlong UTF-8", "\"\xc0\xaf\"", ruleJSONUTF8},
	{"truncated UTF-8", "[\"\xe2\x82\"]", ruleJSONUTF8},
	{"lone high surrogate", `"\ud800"`, ruleJSONSurrogate},
	{"lone high surrogate in a name", `{"\ud800":1}`, ruleJSONSurrogate},
	{"lone low surrogate", `["\udc00"]`, ruleJSONSurrogate},
	{"high then text", `"\ud800x"`, ruleJSONSurrogate},
	{"high then high", `"\ud800\ud800"`, ruleJSONSurrogate},
	{"high then BMP escape", `"\udbff\u0041"`, ruleJSONSurrogate},
	{"pair in the wrong order", `"\ude00\ud83d"`, ruleJSONSurrogate},
	{"high then other escape", `"\ud800\n"`, ruleJSONSurrogate},
	{"duplicate member", `{"a":1,"a":2}`, ruleJSONDuplicate},
	{"duplicate through an escape", `{"a":1,"\u0061":2}`, ruleJSONDuplicate},
	{"duplicate through a solidus escape", `{"a/b":1,"a\/b":2}`, ruleJSONDuplicate},
	{"duplicate after a nested object", `[{"a":1,"b":{"a":2},"a":3}]`, ruleJSONDuplicate},
	{"duplicate among many members", manyMembers(40, `"m7":1`), ruleJSONDuplicate},
	{"duplicate surrogate pair name", `{"😀":1,"\ud83d\ude00":2}`, ruleJSONDuplicate},
	{"depth 65 arrays", nest(65, "[", "]", ""), ruleJSONDepth},
	{"depth 65 objects", nest(64, `{"a":`, "}", "{}"), ruleJSONDepth},
	{"depth 9000", nest(9000, "[", "]", ""), ruleJSONDepth},

	{"truncated", `{"a":`, ruleJSONValue},
	{"two values", `1 2`, ruleJSONValue},
	{"trailing comma", `[1,]`, ruleJSONValue},
	{"trailing comma in an object", `{"a":1,}`, ruleJSONValue},
	{"leading zero", `01`, ruleJSONValue},
	{"bad escape", `"\x"`, ruleJSONValue},
	{"short unicode escape", `"\u12"`, ruleJSONValue},
	{"control character", "\"a\x01\"", ruleJSONValue},
	{"unterminated string with a lone surrogate", `"\ud800`, ruleJSONValue},
	{"unterminated string with invalid UTF-8", "\"\xff", ruleJSONValue},
	{"invalid UTF-8 outside strings", "[1,\xff]", ruleJSONValue},
	{"bad literal", `tru`, ruleJSONValue},
	{"literal with a tail", `nulls`, ruleJSONValue},
	{"whitespace only", ` `, ruleJSONValue},
	{"mismatched brackets", `[1}`, ruleJSONValue},
	{"byte order mark", "\ufeff1", ruleJSONValue},
}

func TestValidatePayloadIJSON(t *testing.T) {
	for _, c := range payloadCases {
		err := ValidatePayload("payload", json.RawMessage(c.payload))
		if c.rule == "" {
			if err != nil {
				t.Errorf("%s: %v, want accepted", c.name, err)
			}
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != CodeInvalidInput || ce.Detail != "payload: "+c.rule {
			t.Errorf("%s: err = %v, want invalid_input %q", c.name, err, "payload: "+c.rule)
		}
	}
}

func TestFindJSONFaultOffsetAndFieldDepth(t *testing.T) {
	for _, c := range []struct {
		text string
		at   int
		rule string
	}{
		{`{"a":1,"a":2}`, 7, ruleJSONDuplicate},
		{`["ok","\ud800"]`, 7, ruleJSONSurrogate},
		{"[\"ok\",\"a\xff\"]", 8, ruleJSONUTF8},
		{nest(65, "[", "]", ""), 64, ruleJSONDepth},
		{`[1,]`, 3, ruleJSONValue},
		{`{"a":`, 5, ruleJSONValue},
	} {
		f, bad := FindJSONFault([]byte(c.text), 0)
		if !bad || f.Offset != c.at || f.Rule != c.rule || f.Syntax != (c.rule == ruleJSONValue) {
			t.Errorf("FindJSONFault(%.40q) = %+v, %v; want offset %d, %q", c.text, f, bad, c.at, c.rule)
		}
	}
	// A body's members are the values at field depth 1.
	deep := func(d int) []byte { return []byte(`{"name":"n","payload":` + nest(d, "[", "]", "") + `}`) }
	if f, bad := FindJSONFault(deep(64), 1); bad {
		t.Fatalf("member nested 64 deep: %+v", f)
	}
	if f, bad := FindJSONFault(deep(65), 1); !bad || f.Rule != ruleJSONDepth || f.Offset != len(`{"name":"n","payload":`)+64 {
		t.Fatalf("member nested 65 deep: %+v %v", f, bad)
	}
	if _, bad := FindJSONFault(deep(64), 0); !bad {
		t.Fatal("the body itself nests 65 deep at field depth 0")
	}
}

func TestValidatePayloadDoesNotAllocate(t *testing.T) {
	if raceDetector {
		t.Skip("sync.Pool drops items at random under -race")
	}
	p := json.RawMessage(`{"order":{"id":"o-1","lines":[{"sku":"a","qty":1},{"sku":"b","qty":2}]},"by":"ann","ok":true}`)
	if n := testing.AllocsPerRun(100, func() { _ = ValidatePayload("payload", p) }); n != 0 {
		t.Fatalf("ValidatePayload allocates %v times per call", n)
	}
}

// benchPayloads are 64 KiB payloads of several shapes.
func benchPayloads() map[string][]byte {
	fill := func(open, item, sep, close string) []byte {
		var b bytes.Buffer
		b.WriteString(open)
		for i := 0; ; i++ {
			s := fmt.Sprintf(item, i)
			if b.Len()+len(s)+len(sep)+len(close) > MaxPayloadLen {
				break
			}
			if i > 0 {
				b.WriteString(sep)
			}
			b.WriteString(s)
		}
		b.WriteString(close)
		return b.Bytes()
	}
	return map[string][]byte{
		"string":       []byte(`"` + strings.Repeat("payload text ", (MaxPayloadLen-2)/13) + `"`),
		"unicode":      []byte(`"` + strings.Repeat("é€😀\\u00e9\\ud83d\\ude00", (MaxPayloadLen-2)/30) + `"`),
		"numbers":      fill("[", "%d.5e3", ",", "]"),
		"records":      fill("[", `{"id":"rec-%d","qty":1,"ok":true,"tags":["a","b"]}`, ",", "]"),
		"wide_object":  fill("{", `"key-%d":null`, ",", "}"),
		"escaped_keys": fill("{", `"k\u0065y-%d":1`, ",", "}"),
	}
}

// BenchmarkValidatePayload measures ValidatePayload on 64 KiB payloads;
// the json_valid sub-benchmarks are encoding/json's syntax check alone, for
// scale.
func BenchmarkValidatePayload(b *testing.B) {
	payloads := benchPayloads()
	for _, name := range []string{"string", "unicode", "numbers", "records", "wide_object", "escaped_keys"} {
		p := payloads[name]
		if err := ValidatePayload("payload", p); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				_ = ValidatePayload("payload", p)
			}
		})
		b.Run(name+"/json_valid", func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				_ = json.Valid(p)
			}
		})
	}
}
