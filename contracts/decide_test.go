package contracts

import (
	"errors"
	"testing"
)

func TestCheckSuspend(t *testing.T) {
	lease, other := NewID(), NewID()
	claimed := &ExecutionState{ID: "e", State: StateClaimed, LeaseID: lease}
	cases := []struct {
		name  string
		e     *ExecutionState
		lease *string
		want  error
	}{
		{"none", nil, nil, nil},
		{"none with lease", nil, &lease, ErrLeaseMismatch},
		{"suspended", &ExecutionState{ID: "e", State: StateSuspended}, nil, ErrAlreadySuspended},
		{"resumed", &ExecutionState{ID: "e", State: StateResumed}, &lease, ErrAlreadySuspended},
		{"claimed, right lease", claimed, &lease, nil},
		{"claimed, other lease", claimed, &other, ErrLeaseMismatch},
		{"claimed, no lease", claimed, nil, ErrLeaseMismatch},
	}
	for _, c := range cases {
		if err := CheckSuspend(c.e, c.lease); c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestCheckDeliverableOrderAndBoundaries(t *testing.T) {
	at := int64(100)
	if err := CheckDeliverable(true, &at, SignalLimit, 500); !errors.Is(err, ErrWaitpointClosed) {
		t.Fatalf("closed first: %v", err)
	}
	if err := CheckDeliverable(false, &at, SignalLimit, 101); !errors.Is(err, ErrSuspensionTimedOut) {
		t.Fatalf("timeout before limit: %v", err)
	}
	if err := CheckDeliverable(false, &at, SignalLimit, 100); !errors.Is(err, ErrSignalLimitExceeded) {
		t.Fatalf("limit at the timeout boundary: %v", err)
	}
	if err := CheckDeliverable(false, &at, SignalLimit-1, 100); err != nil {
		t.Fatalf("deliverable: %v", err)
	}
}

func TestClaimable(t *testing.T) {
	at := int64(100)
	cases := []struct {
		e      ExecutionState
		now    int64
		reason string
		ok     bool
	}{
		{ExecutionState{State: StateResumed}, 0, ReasonSignal, true},
		{ExecutionState{State: StateSuspended, TimeoutAtMs: &at}, 100, ReasonTimeout, false},
		{ExecutionState{State: StateSuspended, TimeoutAtMs: &at}, 101, ReasonTimeout, true},
		{ExecutionState{State: StateSuspended}, 1 << 60, ReasonTimeout, false},
		{ExecutionState{State: StateClaimed, LeaseExpiresAtMs: 100, Reason: ReasonTimeout}, 100, ReasonTimeout, false},
		{ExecutionState{State: StateClaimed, LeaseExpiresAtMs: 100, Reason: ReasonTimeout}, 101, ReasonTimeout, true},
	}
	for i, c := range cases {
		if reason, ok := c.e.Claimable(c.now); ok != c.ok || ok && reason != c.reason {
			t.Errorf("case %d: Claimable = %q %v, want %q %v", i, reason, ok, c.reason, c.ok)
		}
	}
}

func TestAuthorizeSignalAnswersAlikeForEveryForgery(t *testing.T) {
	secret := secretOf(7)
	keys := PartitionKeys{Current: &KidRecord{Kid: "k1", Secret: secret}}
	w := &WaitpointRef{ExecutionID: "e1", WaitpointID: NewID(), WaitpointKey: "a", CreatedAtMs: 5}
	token := SignToken("k1", secret, WaitpointMessage(w.ExecutionID, w.WaitpointID, w.WaitpointKey, w.CreatedAtMs))
	args := DeliverSignalArgs{ExecutionID: "e1", WaitpointID: w.WaitpointID, Token: token, Name: "n"}
	if err := AuthorizeSignal(args, keys, w, 0); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	foreign := args
	foreign.ExecutionID = "e2"
	tampered := args
	tampered.Token = SignToken("k1", secretOf(8), []byte("m"))
	want := SignatureMismatch().Error()
	for name, c := range map[string]struct {
		args DeliverSignalArgs
		w    *WaitpointRef
	}{"missing waitpoint": {args, nil}, "other execution": {foreign, w}, "wrong MAC": {tampered, w}} {
		if err := AuthorizeSignal(c.args, keys, c.w, 0); err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %s", name, err, want)
		}
	}
	unknown := args
	unknown.Token = SignToken("k9", secret, nil)
	if err := AuthorizeSignal(unknown, keys, nil, 0); !errors.Is(err, ErrUnknownKid) {
		t.Fatalf("unknown kid is reported before the waitpoint lookup: %v", err)
	}
}

func TestPageSuspended(t *testing.T) {
	rows := []SuspendedExecution{{ExecutionID: "a", SuspendedAtMs: 1}, {ExecutionID: "b", SuspendedAtMs: 1}, {ExecutionID: "c", SuspendedAtMs: 2}}
	p := PageSuspended(rows, 2)
	if len(p.Executions) != 2 || p.NextCursor == nil {
		t.Fatalf("page = %+v", p)
	}
	if c, _ := DecodeCursor(*p.NextCursor); c != (Cursor{1, "b"}) {
		t.Fatalf("cursor = %+v", c)
	}
	if p := PageSuspended(rows, 3); p.NextCursor != nil || len(p.Executions) != 3 {
		t.Fatalf("full last page = %+v", p)
	}
	if p := PageSuspended(nil, 3); p.Executions == nil {
		t.Fatal("executions must never be nil")
	}
}

func TestCheckComplete(t *testing.T) {
	lease := NewID()
	if err := CheckComplete(nil, CompleteArgs{ExecutionID: "e", LeaseID: lease}); !errors.Is(err, ErrExecutionNotFound) {
		t.Fatal(err)
	}
	if err := CheckComplete(&ExecutionState{ID: "e", State: StateResumed, LeaseID: lease}, CompleteArgs{ExecutionID: "e", LeaseID: lease}); !errors.Is(err, ErrLeaseMismatch) {
		t.Fatal(err)
	}
	if err := CheckComplete(&ExecutionState{ID: "e", State: StateClaimed, LeaseID: lease}, CompleteArgs{ExecutionID: "e", LeaseID: lease}); err != nil {
		t.Fatal(err)
	}
}
