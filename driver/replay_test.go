package driver

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// A stored outcome holds no token and no MAC, and a replay gives the first
// outcome back byte for byte while its kid verifies.
func TestStoredOutcomeReplays(t *testing.T) {
	secret := secretOf(3)
	keys := PartitionKeys{Current: &KidRecord{Kid: "k1", Secret: secret}}
	out := NewSuspension(contracts.SuspendArgs{ExecutionID: "e1", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}, Condition: "any"}, *keys.Current, 1000)
	stored, err := StoredSuspendOutcome(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range out.Waitpoints {
		if mac := w.Token[strings.IndexByte(w.Token, ':')+1:]; strings.Contains(string(stored), mac) {
			t.Fatal("the stored outcome holds a MAC")
		}
	}
	if kid, err := StoredOutcomeKid(stored); err != nil || kid != "k1" {
		t.Fatalf("StoredOutcomeKid = %q, %v", kid, err)
	}
	got, err := ReplaySuspendOutcome(stored, keys, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, got), mustJSON(t, out); a != b {
		t.Fatalf("replay %s\nwant   %s", a, b)
	}
	// The kid rotated out and past its grace, or collected: the tokens are gone.
	exp := int64(4000)
	rotated := PartitionKeys{Current: &KidRecord{Kid: "k2", Secret: secretOf(4)}, Verifying: []KidRecord{{Kid: "k1", Secret: secret, ExpiresAtMs: &exp}}}
	if _, err := ReplaySuspendOutcome(stored, rotated, 4000); err != nil {
		t.Fatalf("replay in grace: %v", err)
	}
	for name, k := range map[string]PartitionKeys{"expired": rotated, "collected": {Current: rotated.Current}} {
		if _, err := ReplaySuspendOutcome(stored, k, 4001); !errors.Is(err, contracts.ErrSuspendReplayExpired) {
			t.Errorf("%s: %v, want suspend_replay_expired", name, err)
		}
	}
}

func TestPageSignals(t *testing.T) {
	rows := make([]contracts.Signal, 3)
	p := PageSignals("e", "0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f", rows, 4, 2)
	if len(p.Signals) != 2 || p.NextCursor == nil {
		t.Fatalf("page = %+v", p)
	}
	c, err := contracts.DecodeSignalCursor(*p.NextCursor)
	if err != nil || c.Position != 6 || c.SuspensionID != p.SuspensionID {
		t.Fatalf("cursor = %+v, %v", c, err)
	}
	args := contracts.ObserveSignalsArgs{ExecutionID: "e", Limit: 2, Cursor: *p.NextCursor}
	if start, ok := ObserveStart(args, p.SuspensionID); !ok || start != 6 {
		t.Fatalf("ObserveStart = %d, %v", start, ok)
	}
	if _, ok := ObserveStart(args, "1b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f"); ok {
		t.Fatal("a cursor of another suspension must not apply")
	}
	last := PageSignals("e", p.SuspensionID, rows[:2], 0, 2)
	if last.NextCursor != nil || last.Signals == nil {
		t.Fatalf("last page = %+v", last)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An already_satisfied outcome keeps its payloads as they were delivered:
// its stored form is not HTML-escaped, so a replay answers the same bytes.
func TestStoredSatisfiedOutcomeKeepsPayloadBytes(t *testing.T) {
	payload := `{"a":"<b>&"}`
	out := contracts.SuspendOutcome{Outcome: contracts.OutcomeAlreadySatisfied, ExecutionID: "e", SuspensionID: "s",
		Signals: []contracts.Signal{{SignalID: "x", Name: "n", Payload: json.RawMessage(payload), DeliveredAtMs: 1}}}
	stored, err := StoredSuspendOutcome(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stored), payload) {
		t.Fatalf("stored form escapes the payload: %s", stored)
	}
	back, err := ReplaySuspendOutcome(stored, PartitionKeys{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Signals) != 1 || string(back.Signals[0].Payload) != payload {
		t.Fatalf("replayed payload %s, want %s", back.Signals[0].Payload, payload)
	}
}
