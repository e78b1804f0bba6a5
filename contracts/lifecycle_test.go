package contracts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

func TestConditionForms(t *testing.T) {
	for _, c := range []struct {
		raw, want string
	}{
		{`"any"`, ConditionAny},
		{`"all"`, ConditionAll},
		{`{"count":2}`, CountCondition(2)},
		{` { "count" : 16 } `, CountCondition(16)},
		{`null`, ""},
		{``, ""},
	} {
		got, err := ParseConditionJSON("condition", json.RawMessage(c.raw))
		if err != nil || got != c.want {
			t.Errorf("ParseConditionJSON(%s) = %q, %v; want %q", c.raw, got, err, c.want)
		}
	}
	for _, raw := range []string{`"some"`, `"ANY"`, `{"count":0}`, `{"count":-1}`, `{"count":1.5}`, `{"count":"2"}`,
		`{"count":2,"extra":1}`, `{}`, `[2]`, `2`, `{"count":99999999999}`} {
		if _, err := ParseConditionJSON("condition", json.RawMessage(raw)); err == nil || !strings.HasPrefix(err.(*Error).Detail, "condition") {
			t.Errorf("ParseConditionJSON(%s): want invalid_input naming condition, got %v", raw, err)
		}
	}
}

func TestValidateConditionBounds(t *testing.T) {
	for _, c := range []struct {
		cond  string
		m     int
		field string // "" valid
	}{
		{ConditionAny, 1, ""}, {ConditionAll, 3, ""}, {CountCondition(1), 3, ""}, {CountCondition(3), 3, ""},
		{CountCondition(4), 3, "condition.count"}, {"count:0", 3, "condition"}, {"count:01", 3, "condition"},
		{"count:", 3, "condition"}, {"count:+1", 3, "condition"}, {"", 1, "condition"},
	} {
		err := ValidateCondition("condition", c.cond, c.m)
		switch {
		case c.field == "" && err != nil:
			t.Errorf("ValidateCondition(%q, %d) = %v, want nil", c.cond, c.m, err)
		case c.field != "" && (err == nil || !strings.HasPrefix(err.(*Error).Detail, c.field+":")):
			t.Errorf("ValidateCondition(%q, %d) = %v, want an error naming %s", c.cond, c.m, err, c.field)
		}
	}
	if n := ConditionCount(CountCondition(2), 3); n != 2 {
		t.Errorf("ConditionCount(count 2 of 3) = %d", n)
	}
	if n := ConditionCount("nonsense", 3); n != 0 {
		t.Errorf("ConditionCount(nonsense) = %d, want 0", n)
	}
}

func TestValidateTags(t *testing.T) {
	ten := make([]string, 10)
	for i := range ten {
		ten[i] = "t" + strings.Repeat("x", i)
	}
	for _, ok := range [][]string{nil, {}, ten, {strings.Repeat("a", 64)}, {"a.b:c-d_e"}} {
		if err := ValidateTags("tags", ok); err != nil {
			t.Errorf("ValidateTags(%q) = %v", ok, err)
		}
	}
	for _, bad := range [][]string{append(ten, "z"), {""}, {strings.Repeat("a", 65)}, {"a b"}, {"a/b"}, {"x", "x"}, {"é"}} {
		if err := ValidateTags("tags", bad); err == nil || !strings.HasPrefix(err.(*Error).Detail, "tags:") {
			t.Errorf("ValidateTags(%q): want invalid_input naming tags, got %v", bad, err)
		}
	}
}

func TestSuspendArgsVersion2Items(t *testing.T) {
	id := "0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f"
	base := SuspendArgs{ExecutionID: "e", Condition: ConditionAny}
	for name, c := range map[string]struct {
		wps   []WaitpointSpec
		field string
	}{
		"pending and key":  {[]WaitpointSpec{{Key: "a", Pending: id}}, "waitpoints"},
		"pending not uuid": {[]WaitpointSpec{{Pending: "p-1"}}, "waitpoints.pending"},
		"pending twice":    {[]WaitpointSpec{{Pending: id}, {Pending: id}}, "waitpoints.pending"},
		"neither":          {[]WaitpointSpec{{}}, "waitpoints.key"},
	} {
		a := base
		a.Waitpoints = c.wps
		if err := a.Validate(); err == nil || !strings.HasPrefix(err.(*Error).Detail, c.field+":") {
			t.Errorf("%s: want invalid_input naming %s, got %v", name, c.field, err)
		}
	}
	a := base
	a.Waitpoints = []WaitpointSpec{{Pending: id}, {Key: "a"}}
	a.Condition = CountCondition(2)
	if err := a.Validate(); err != nil {
		t.Fatalf("pending and key items with count 2: %v", err)
	}
	if !a.UsesVersion2() {
		t.Error("UsesVersion2: false for a pending item")
	}
	if (SuspendArgs{Waitpoints: []WaitpointSpec{{Key: "a"}}, Condition: ConditionAll}).UsesVersion2() {
		t.Error("UsesVersion2: true for version 1 arguments")
	}
}

// Fingerprints stored before version 2 must still match a replay with the
// same version 1 arguments, and version 2 arguments must change them.
func TestFingerprintVersion2(t *testing.T) {
	v1 := SuspendArgs{ExecutionID: "e", Waitpoints: []WaitpointSpec{{Key: "a"}}, Condition: "any", IdempotencyKey: "i"}
	// The fingerprint of v1 as version 1 computed it: SHA-256 over
	// length-prefixed fields (execution, condition, keys, "|", timeout or
	// "-", lease or "-", idempotency key).
	sum := sha256.Sum256([]byte("1:e3:any1:a1:|1:-1:-1:i"))
	if got, want := v1.Fingerprint(), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("the fingerprint of version 1 arguments changed: %s, want %s (stored idempotency records would stop matching)", got, want)
	}
	tagged := v1
	tagged.Tags = []string{"t"}
	pending := v1
	pending.Waitpoints = []WaitpointSpec{{Pending: "0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f"}}
	count := v1
	count.Condition = CountCondition(1)
	seen := map[string]string{v1.Fingerprint(): "v1"}
	for name, a := range map[string]SuspendArgs{"tags": tagged, "pending": pending, "count": count} {
		f := a.Fingerprint()
		if prev, dup := seen[f]; dup {
			t.Errorf("%s has the fingerprint of %s", name, prev)
		}
		seen[f] = name
	}
}

func TestSuspendOutcomeRoundTrip(t *testing.T) {
	tm := int64(9)
	for _, o := range []SuspendOutcome{
		{Outcome: OutcomeSuspended, ExecutionID: "e", SuspensionID: "s", SuspendedAtMs: 1, TimeoutAtMs: &tm,
			Condition: CountCondition(2), Waitpoints: []WaitpointOutcome{{WaitpointID: "w", WaitpointKey: "k", CreatedAtMs: 1, Token: "t"}}, Tags: []string{"a"}},
		{Outcome: OutcomeAlreadySatisfied, ExecutionID: "e", SuspensionID: "s",
			Signals: []Signal{{SignalID: "x", Name: "n", Payload: json.RawMessage(`{"a":1}`), DeliveredAtMs: 3}}},
	} {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var back SuspendOutcome
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		b2, _ := json.Marshal(back)
		if string(b) != string(b2) {
			t.Errorf("round trip changed the envelope:\n%s\n%s", b, b2)
		}
	}
}
