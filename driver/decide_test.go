package driver

import (
	"errors"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
)

func TestCheckSuspend(t *testing.T) {
	lease, other := NewID(), NewID()
	claimed := &ExecutionState{ID: "e", State: contracts.StateClaimed, LeaseID: lease}
	cases := []struct {
		name  string
		e     *ExecutionState
		lease *string
		want  error
	}{
		{"none", nil, nil, nil},
		{"none with lease", nil, &lease, contracts.ErrLeaseMismatch},
		{"suspended", &ExecutionState{ID: "e", State: contracts.StateSuspended}, nil, contracts.ErrAlreadySuspended},
		{"resumed", &ExecutionState{ID: "e", State: contracts.StateResumed}, &lease, contracts.ErrAlreadySuspended},
		{"claimed, right lease", claimed, &lease, nil},
		{"claimed, other lease", claimed, &other, contracts.ErrLeaseMismatch},
		{"claimed, no lease", claimed, nil, contracts.ErrLeaseMismatch},
	}
	for _, c := range cases {
		if err := CheckSuspend(c.e, c.lease); c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestCheckDeliverableOrderAndBoundaries(t *testing.T) {
	at := int64(100)
	full := SignalBudget{SuspensionSignals: contracts.SignalLimit}
	none := contracts.DeliverSignalArgs{}
	if err := CheckDeliverable(true, &at, full, none, 500); !errors.Is(err, contracts.ErrWaitpointClosed) {
		t.Fatalf("closed first: %v", err)
	}
	if err := CheckDeliverable(false, &at, full, none, 101); !errors.Is(err, contracts.ErrSuspensionTimedOut) {
		t.Fatalf("timeout before limit: %v", err)
	}
	if err := CheckDeliverable(false, &at, full, none, 100); !errors.Is(err, contracts.ErrSignalLimitExceeded) {
		t.Fatalf("limit at the timeout boundary: %v", err)
	}
	if err := CheckDeliverable(false, &at, SignalBudget{SuspensionSignals: contracts.SignalLimit - 1}, none, 100); err != nil {
		t.Fatalf("deliverable: %v", err)
	}
}

// Each budget of docs/spec.md §8.3 is checked on its own, at its boundary,
// with the default limits and with lowered ones; the detail names the limit.
func TestCheckDeliverableBudgets(t *testing.T) {
	payload := func(n int) contracts.DeliverSignalArgs {
		return contracts.DeliverSignalArgs{Payload: []byte(strings.Repeat("1", n))}
	}
	cases := []struct {
		name   string
		used   SignalBudget
		args   contracts.DeliverSignalArgs
		detail string // "" when deliverable
	}{
		{"waitpoint below", SignalBudget{WaitpointSignals: contracts.WaitpointSignalLimit - 1}, payload(0), ""},
		{"waitpoint at", SignalBudget{WaitpointSignals: contracts.WaitpointSignalLimit}, payload(0), "the waitpoint already holds 1000 signals"},
		{"suspension at", SignalBudget{SuspensionSignals: contracts.SignalLimit}, payload(0), "the suspension already holds 10000 signals"},
		{"bytes exactly at", SignalBudget{PayloadBytes: contracts.PayloadBudgetBytes - 10}, payload(10), ""},
		{"bytes one over", SignalBudget{PayloadBytes: contracts.PayloadBudgetBytes - 10}, payload(11), "would exceed 1048576 bytes"},
		{"lowered waitpoint", SignalBudget{WaitpointSignals: 2}, contracts.DeliverSignalArgs{Limits: contracts.SignalLimits{PerWaitpoint: 2}}, "holds 2 signals"},
		{"lowered bytes", SignalBudget{}, contracts.DeliverSignalArgs{Payload: []byte("123"), Limits: contracts.SignalLimits{PayloadBytes: 2}}, "exceed 2 bytes"},
	}
	for _, c := range cases {
		err := CheckDeliverable(false, nil, c.used, c.args, 0)
		switch {
		case c.detail == "" && err != nil:
			t.Errorf("%s: %v, want deliverable", c.name, err)
		case c.detail != "" && (!errors.Is(err, contracts.ErrSignalLimitExceeded) || !strings.Contains(err.Error(), c.detail)):
			t.Errorf("%s: %v, want signal_limit_exceeded naming %q", c.name, err, c.detail)
		}
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
		{ExecutionState{State: contracts.StateResumed}, 0, contracts.ReasonSignal, true},
		{ExecutionState{State: contracts.StateSuspended, TimeoutAtMs: &at}, 100, contracts.ReasonTimeout, false},
		{ExecutionState{State: contracts.StateSuspended, TimeoutAtMs: &at}, 101, contracts.ReasonTimeout, true},
		{ExecutionState{State: contracts.StateSuspended}, 1 << 60, contracts.ReasonTimeout, false},
		{ExecutionState{State: contracts.StateClaimed, LeaseExpiresAtMs: 100, Reason: contracts.ReasonTimeout}, 100, contracts.ReasonTimeout, false},
		{ExecutionState{State: contracts.StateClaimed, LeaseExpiresAtMs: 100, Reason: contracts.ReasonTimeout}, 101, contracts.ReasonTimeout, true},
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
	token := SignToken("k1", secret, WaitpointInput("k1", w.ExecutionID, w.WaitpointID, w.WaitpointKey, w.CreatedAtMs))
	args := contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: w.WaitpointID, Token: token, Name: "n"}
	if err := AuthorizeSignal(args, keys, w, 0); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	foreign := args
	foreign.ExecutionID = "e2"
	tampered := args
	tampered.Token = SignToken("k1", secretOf(8), []byte("m"))
	want := SignatureMismatch().Error()
	for name, c := range map[string]struct {
		args contracts.DeliverSignalArgs
		w    *WaitpointRef
	}{"missing waitpoint": {args, nil}, "other execution": {foreign, w}, "wrong MAC": {tampered, w}} {
		if err := AuthorizeSignal(c.args, keys, c.w, 0); err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %s", name, err, want)
		}
	}
	unknown := args
	unknown.Token = SignToken("k9", secret, nil)
	if err := AuthorizeSignal(unknown, keys, nil, 0); !errors.Is(err, contracts.ErrUnknownKid) {
		t.Fatalf("unknown kid is reported before the waitpoint lookup: %v", err)
	}
}

func TestPageSuspended(t *testing.T) {
	rows := []contracts.SuspendedExecution{{ExecutionID: "a", SuspendedAtMs: 1}, {ExecutionID: "b", SuspendedAtMs: 1}, {ExecutionID: "c", SuspendedAtMs: 2}}
	p := PageSuspended(rows, 2)
	if len(p.Executions) != 2 || p.NextCursor == nil {
		t.Fatalf("page = %+v", p)
	}
	if c, _ := contracts.DecodeCursor(*p.NextCursor); c != (contracts.Cursor{SuspendedAtMs: 1, ExecutionID: "b"}) {
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
	if err := CheckComplete(nil, contracts.CompleteArgs{ExecutionID: "e", LeaseID: lease}); !errors.Is(err, contracts.ErrExecutionNotFound) {
		t.Fatal(err)
	}
	if err := CheckComplete(&ExecutionState{ID: "e", State: contracts.StateResumed, LeaseID: lease}, contracts.CompleteArgs{ExecutionID: "e", LeaseID: lease}); !errors.Is(err, contracts.ErrLeaseMismatch) {
		t.Fatal(err)
	}
	if err := CheckComplete(&ExecutionState{ID: "e", State: contracts.StateClaimed, LeaseID: lease}, contracts.CompleteArgs{ExecutionID: "e", LeaseID: lease}); err != nil {
		t.Fatal(err)
	}
}
