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
		"timeout":   {SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{"a"}}, Condition: "any", TimeoutMs: &neg}.Validate(), "timeout_ms"},
		"no wps":    {SuspendArgs{ExecutionID: "e", Condition: "any"}.Validate(), "waitpoints"},
		"dup wps":   {SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{"a"}, {"a"}}, Condition: "any"}.Validate(), "waitpoints.key"},
		"condition": {SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{"a"}}, Condition: "some"}.Validate(), "condition"},
		"limit":     {ListSuspendedArgs{Limit: 1001}.Validate(), "limit"},
		"cursor":    {ListSuspendedArgs{Limit: 1, Cursor: "!!"}.Validate(), "cursor"},
		"lease_ms":  {ClaimArgs{WorkerID: "w", LeaseMs: 0}.Validate(), "lease_ms"},
		"lease_id":  {CompleteArgs{ExecutionID: "e", LeaseID: "x"}.Validate(), "lease_id"},
		"worker":    {ClaimArgs{WorkerID: "", LeaseMs: 1}.Validate(), "worker_id"},
		"idem":      {SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{"a"}}, Condition: "any", IdempotencyKey: strings.Repeat("i", 257)}.Validate(), "idempotency_key"},
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
