package contracts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEnvelopesKeepEveryField(t *testing.T) {
	prev := "k1"
	tm := int64(7)
	cases := []struct {
		v    any
		want string
	}{
		{SeedOutcome{Outcome: SeedAlreadyInitialized, Kid: "k2", CurrentKid: "k1"},
			`{"outcome":"already_initialized","kid":"k2","current_kid":"k1","same_secret":null}`},
		{RotateOutcome{Outcome: RotateNoop, Kid: "k1"}, `{"outcome":"noop","kid":"k1"}`},
		{RotateOutcome{Outcome: RotateRotated, NewKid: "k1"},
			`{"outcome":"rotated","previous_kid":null,"new_kid":"k1","gc_count":0}`},
		{RotateAllResult{Entries: []RotateEntry{{Partition: 0, Error: ErrRotationConflict.With("new_kid: x")}}},
			`{"entries":[{"partition":0,"outcome":null,"error":{"kind":"conflict","code":"rotation_conflict","reason":null,"detail":"new_kid: x","retryable":false}}]}`},
		{PartitionKids{Partition: 0, Verifying: []VerifyingKid{}}, `{"partition":0,"current_kid":null,"verifying":[]}`},
		{RotateOutcome{Outcome: RotateRotated, PreviousKid: &prev, NewKid: "k2", GCCount: 1},
			`{"outcome":"rotated","previous_kid":"k1","new_kid":"k2","gc_count":1}`},
		{DeliverSignalOutcome{Outcome: OutcomeDuplicate, SignalID: "s"}, `{"outcome":"duplicate","signal_id":"s"}`},
		{DeliverSignalOutcome{Outcome: OutcomeAccepted, SignalID: "s"}, `{"outcome":"accepted","signal_id":"s","resumed":false}`},
		{ClaimOutcome{Outcome: OutcomeNone}, `{"outcome":"none"}`},
		{ClaimOutcome{Outcome: OutcomeClaimed, ExecutionID: "e", Reason: ReasonTimeout},
			`{"outcome":"claimed","execution_id":"e","suspension_id":"","reason":"timeout","lease_id":"","lease_expires_at_ms":0,"signals":[]}`},
		{Signal{SignalID: "s", Name: "n", DeliveredAtMs: 1},
			`{"signal_id":"s","waitpoint_id":"","waitpoint_key":"","name":"n","payload":null,"idempotency_key":null,"delivered_at_ms":1}`},
		{SuspendedExecution{ExecutionID: "e", TimeoutAtMs: &tm},
			`{"execution_id":"e","suspension_id":"","suspended_at_ms":0,"timeout_at_ms":7,"waitpoints":0,"tags":[]}`},
		{SuspendOutcome{Outcome: OutcomeSuspended, ExecutionID: "e", Condition: CountCondition(2), Tags: []string{"t"}},
			`{"outcome":"suspended","execution_id":"e","suspension_id":"","suspended_at_ms":0,"timeout_at_ms":null,"condition":{"count":2},"waitpoints":[],"tags":["t"]}`},
		{SuspendOutcome{Outcome: OutcomeSuspended, ExecutionID: "e", Condition: ConditionAll},
			`{"outcome":"suspended","execution_id":"e","suspension_id":"","suspended_at_ms":0,"timeout_at_ms":null,"condition":"all","waitpoints":[],"tags":[]}`},
		{SuspendOutcome{Outcome: OutcomeAlreadySatisfied, ExecutionID: "e", SuspensionID: "s", Condition: ConditionAny},
			`{"outcome":"already_satisfied","execution_id":"e","suspension_id":"s","signals":[]}`},
		{WaitpointInfo{ExecutionID: "e", Status: WaitpointPending},
			`{"execution_id":"e","waitpoint_id":"","waitpoint_key":"","status":"pending","created_at_ms":0,"expires_at_ms":null,"signals":0,"token_fingerprint":null,"tags":null}`},
		{ExecutionInfo{ExecutionID: "e", State: StateNone},
			`{"execution_id":"e","state":"none","claimable":false,"reason":null,"suspension_id":null,"suspended_at_ms":null,"timeout_at_ms":null,"lease_expires_at_ms":null,"tags":[],"waitpoints":[]}`},
		{ExecutionCounts{Suspended: 1, LeaseExpired: 2},
			`{"suspended":1,"timed_out":0,"resumed":0,"claimed":0,"lease_expired":2}`},
		{ErrorEnvelope{ErrUnknownKid.With("token: kid \"x\" is not known")},
			`{"error":{"kind":"validation","code":"invalid_token","reason":"unknown_kid","detail":"token: kid \"x\" is not known","retryable":false}}`},
	}
	for _, c := range cases {
		if got := mustJSON(t, c.v); got != c.want {
			t.Errorf("%T:\n got %s\nwant %s", c.v, got, c.want)
		}
	}
}

func TestEnvelopesRoundTrip(t *testing.T) {
	prev := "k1"
	for _, v := range []any{
		&RotateOutcome{Outcome: RotateRotated, PreviousKid: &prev, NewKid: "k2", GCCount: 3},
		&RotateOutcome{Outcome: RotateNoop, Kid: "k2"},
		&DeliverSignalOutcome{Outcome: OutcomeAccepted, SignalID: "s", Resumed: true},
		&Signal{SignalID: "s", Payload: json.RawMessage(`{"a":1}`), IdempotencyKey: "i"},
		&ClaimOutcome{Outcome: OutcomeClaimed, Signals: []Signal{{SignalID: "s"}}},
	} {
		b := mustJSON(t, v)
		into := newOf(v)
		if err := json.Unmarshal([]byte(b), into); err != nil {
			t.Fatal(err)
		}
		if again := mustJSON(t, into); again != b {
			t.Errorf("%T round trip:\n got %s\nwant %s", v, again, b)
		}
	}
}

func newOf(v any) any {
	switch v.(type) {
	case *RotateOutcome:
		return new(RotateOutcome)
	case *DeliverSignalOutcome:
		return new(DeliverSignalOutcome)
	case *Signal:
		return new(Signal)
	case *ClaimOutcome:
		return new(ClaimOutcome)
	}
	panic(fmt.Sprintf("no constructor for %T", v))
}

func TestErrorIs(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", ErrSignatureMismatch.With("token: signature does not match"))
	if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, ErrSignatureMismatch) {
		t.Fatal("a reasoned error must match its code sentinel and its reason sentinel")
	}
	if errors.Is(err, ErrUnknownKid) || errors.Is(err, ErrTokenExpired) {
		t.Fatal("an error must not match another reason or code")
	}
	native := errors.New("connection refused")
	wrapped := ErrBackendUnreachable.With("backend unreachable").Wrapping(native)
	if !errors.Is(wrapped, native) || !wrapped.Retryable {
		t.Fatal("Wrapping keeps the native error reachable and the sentinel's retryability")
	}
	if ErrBackendUnreachable.Error() != "transport/backend_unreachable" {
		t.Fatalf("With/Wrapping changed the sentinel: %q", ErrBackendUnreachable.Error())
	}
}

// TestSentinelsCannotBeChanged: a sentinel is a value whose fields are
// unexported, so an *Error built from it is a copy; changing that copy
// changes nothing for other callers.
func TestSentinelsCannotBeChanged(t *testing.T) {
	e := ErrInternal.With("first")
	e.Detail, e.Code, e.Kind = "changed", "other", KindValidation
	again := ErrInternal.With("second")
	if again.Code != CodeInternal || again.Kind != KindUnavailable || again.Detail != "second" {
		t.Fatalf("a sentinel changed after a caller modified an error built from it: %+v", again)
	}
	if !errors.Is(again, ErrInternal) || errors.Is(e, ErrInternal) {
		t.Fatal("errors.Is must compare kind and code")
	}
	if ErrInternal.Kind() != KindUnavailable || ErrInternal.Code() != CodeInternal || ErrInternal.Retryable() {
		t.Fatal("sentinel accessors")
	}
}

func TestAsError(t *testing.T) {
	if AsError(nil) != nil {
		t.Fatal("AsError(nil) must be nil")
	}
	if e := AsError(context.DeadlineExceeded); e.Kind != KindTransport || !e.Retryable {
		t.Fatalf("deadline: %+v", e)
	}
	if e := AsError(errors.New("boom")); e.Code != CodeInternal || !errors.Is(e, e.Err) {
		t.Fatalf("unknown: %+v", e)
	}
	orig := ErrLeaseMismatch.With("lease_id: x")
	if AsError(fmt.Errorf("ctx: %w", orig)) != orig {
		t.Fatal("contract errors pass through")
	}
}

func TestErrorUnmarshal(t *testing.T) {
	var env ErrorEnvelope
	in := `{"error":{"kind":"validation","code":"invalid_token","reason":"malformed","detail":"d","retryable":false}}`
	if err := json.Unmarshal([]byte(in), &env); err != nil || !errors.Is(env.Error, ErrTokenMalformed) {
		t.Fatalf("unmarshal: %v %+v", err, env.Error)
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(env)
	if got := bytes.TrimSpace(buf.Bytes()); string(got) != in {
		t.Fatalf("re-encoded %s", got)
	}
}

func TestEnvelopesDoNotEscapeHTML(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(ErrorEnvelope{ErrTokenMalformed.With("token: must be <kid>:<hex> & more")})
	if !bytes.Contains(buf.Bytes(), []byte(`"token: must be <kid>:<hex> & more"`)) {
		t.Fatalf("error detail escaped: %s", buf.String())
	}
	buf.Reset()
	_ = enc.Encode(Signal{Payload: json.RawMessage(`{"by":"<alice>"}`)})
	if !bytes.Contains(buf.Bytes(), []byte(`{"by":"<alice>"}`)) {
		t.Fatalf("payload escaped: %s", buf.String())
	}
}
