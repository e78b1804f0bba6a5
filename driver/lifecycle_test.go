package driver

import (
	"errors"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
)

func TestDescribeWaitpointStatus(t *testing.T) {
	timeout := int64(200)
	for _, c := range []struct {
		name string
		rec  WaitpointRecord
		now  int64
		want string
	}{
		{"pending before expiry", WaitpointRecord{Pending: true, PendingExpiresAtMs: 100}, 99, contracts.WaitpointPending},
		{"pending at expiry", WaitpointRecord{Pending: true, PendingExpiresAtMs: 100}, 100, contracts.WaitpointPending},
		{"pending past expiry", WaitpointRecord{Pending: true, PendingExpiresAtMs: 100}, 101, contracts.WaitpointExpired},
		{"open", WaitpointRecord{TimeoutAtMs: &timeout}, 200, contracts.WaitpointOpen},
		{"past timeout", WaitpointRecord{TimeoutAtMs: &timeout}, 201, contracts.WaitpointExpired},
		{"closed wins over timeout", WaitpointRecord{TimeoutAtMs: &timeout, SuspensionClosed: true}, 500, contracts.WaitpointClosed},
		{"open without timeout", WaitpointRecord{}, 1 << 50, contracts.WaitpointOpen},
	} {
		got := DescribeWaitpoint(c.rec, c.now)
		if got.Status != c.want {
			t.Errorf("%s: status %q, want %q", c.name, got.Status, c.want)
		}
		if got.Tags == nil {
			t.Errorf("%s: tags nil, want []", c.name)
		}
	}
	info := DescribeWaitpoint(WaitpointRecord{TokenFingerprint: "ab"}, 0)
	if info.TokenFingerprint == nil || *info.TokenFingerprint != "ab" || info.ExpiresAtMs != nil {
		t.Errorf("fingerprint/expiry: %+v", info)
	}
	if DescribeWaitpoint(WaitpointRecord{}, 0).TokenFingerprint != nil {
		t.Error("an unknown fingerprint must be null")
	}
}

func TestCheckPendingUse(t *testing.T) {
	const exec = "e"
	live := &PendingWaitpoint{ID: "p1", ExecutionID: exec, Key: "a", ExpiresAtMs: 100}
	used := &PendingWaitpoint{ID: "p2", ExecutionID: exec, Key: "b", ExpiresAtMs: 100, Used: true}
	other := &PendingWaitpoint{ID: "p3", ExecutionID: "x", Key: "c", ExpiresAtMs: 100}
	old := &PendingWaitpoint{ID: "p4", ExecutionID: exec, Key: "d", ExpiresAtMs: 10}
	found := map[string]*PendingWaitpoint{"p1": live, "p2": used, "p3": other, "p4": old}
	args := func(items ...contracts.WaitpointSpec) contracts.SuspendArgs {
		return contracts.SuspendArgs{ExecutionID: exec, Waitpoints: items}
	}
	for _, c := range []struct {
		name string
		a    contracts.SuspendArgs
		want error
	}{
		{"live", args(contracts.WaitpointSpec{Pending: "p1"}, contracts.WaitpointSpec{Key: "z"}), nil},
		{"unknown", args(contracts.WaitpointSpec{Pending: "p9"}), contracts.ErrPendingWaitpointUnavailable},
		{"used", args(contracts.WaitpointSpec{Pending: "p2"}), contracts.ErrPendingWaitpointUnavailable},
		{"other execution", args(contracts.WaitpointSpec{Pending: "p3"}), contracts.ErrPendingWaitpointUnavailable},
		{"expired", args(contracts.WaitpointSpec{Pending: "p4"}), contracts.ErrPendingWaitpointUnavailable},
		{"key clash", args(contracts.WaitpointSpec{Key: "a"}, contracts.WaitpointSpec{Pending: "p1"}), contracts.ErrInvalidInput},
	} {
		err := CheckPendingUse(c.a, found, 50)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// The first unavailable item in argument order is the one reported.
	err := CheckPendingUse(args(contracts.WaitpointSpec{Pending: "p4"}, contracts.WaitpointSpec{Pending: "p2"}), found, 50)
	var ce *contracts.Error
	if !errors.As(err, &ce) || ce.Detail != `waitpoints.pending: "p4" expired before this suspend` {
		t.Errorf("order: %v", err)
	}
}

func TestPendingSatisfiedAndBudget(t *testing.T) {
	found := map[string]*PendingWaitpoint{
		"p1": {ID: "p1", Signals: 2, PayloadBytes: 10},
		"p2": {ID: "p2", Signals: 0},
	}
	a := contracts.SuspendArgs{Waitpoints: []contracts.WaitpointSpec{{Pending: "p1"}, {Pending: "p2"}, {Key: "k"}}}
	for cond, want := range map[string]bool{
		contracts.ConditionAny: true, contracts.ConditionAll: false,
		contracts.CountCondition(1): true, contracts.CountCondition(2): false,
	} {
		a.Condition = cond
		if got := PendingSatisfied(a, found); got != want {
			t.Errorf("%s: satisfied %v, want %v", cond, got, want)
		}
	}
	if s, b, n := PendingBudget(a, found); s != 2 || b != 10 || n != 1 {
		t.Errorf("PendingBudget = %d, %d, %d", s, b, n)
	}
}

func TestCheckPendingDeliverable(t *testing.T) {
	args := contracts.DeliverSignalArgs{Limits: contracts.SignalLimits{PerWaitpoint: 2, PerSuspension: 3, PayloadBytes: 4}, Payload: []byte(`12`)}
	p := PendingWaitpoint{ExpiresAtMs: 100, Signals: 1}
	if err := CheckPendingDeliverable(p, SignalBudget{SuspensionSignals: 2, PayloadBytes: 2}, args, 100); err != nil {
		t.Errorf("within every budget at expires_at_ms: %v", err)
	}
	if err := CheckPendingDeliverable(p, SignalBudget{}, args, 101); !errors.Is(err, contracts.ErrWaitpointClosed) {
		t.Errorf("past expiry: %v", err)
	}
	if err := CheckPendingDeliverable(p, SignalBudget{SuspensionSignals: 3}, args, 0); !errors.Is(err, contracts.ErrSignalLimitExceeded) {
		t.Errorf("pool signals: %v", err)
	}
	if err := CheckPendingDeliverable(p, SignalBudget{PayloadBytes: 3}, args, 0); !errors.Is(err, contracts.ErrSignalLimitExceeded) {
		t.Errorf("pool bytes: %v", err)
	}
	p.Signals = 2
	if err := CheckPendingDeliverable(p, SignalBudget{}, args, 0); !errors.Is(err, contracts.ErrSignalLimitExceeded) {
		t.Errorf("waitpoint count: %v", err)
	}
}

func TestLeaseAndCancelRules(t *testing.T) {
	claimed := &ExecutionState{ID: "e", State: contracts.StateClaimed, LeaseID: "l", LeaseExpiresAtMs: 10, Reason: contracts.ReasonTimeout}
	if err := CheckLeaseHolder(claimed, "e", "l"); err != nil {
		t.Errorf("holder: %v", err)
	}
	for name, c := range map[string]struct {
		e    *ExecutionState
		want contracts.Sentinel
	}{
		"unknown":    {nil, contracts.ErrExecutionNotFound},
		"none known": {&ExecutionState{ID: "e"}, contracts.ErrLeaseMismatch},
		"suspended":  {&ExecutionState{ID: "e", State: contracts.StateSuspended}, contracts.ErrLeaseMismatch},
	} {
		if err := CheckLeaseHolder(c.e, "e", "l"); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	id, exp := ReleasedLease(1000)
	released := *claimed
	released.LeaseID, released.LeaseExpiresAtMs = id, exp
	if reason, ok := released.Claimable(1000); !ok || reason != contracts.ReasonTimeout {
		t.Errorf("released: claimable %v reason %q, want at once with its reason", ok, reason)
	}
	if id == claimed.LeaseID || contracts.ValidateUUID("lease_id", id) != nil {
		t.Errorf("released lease id %q", id)
	}
	cancelled := ExecutionState{State: contracts.StateResumed, Reason: contracts.ReasonCancelled}
	if reason, ok := cancelled.Claimable(0); !ok || reason != contracts.ReasonCancelled {
		t.Errorf("cancelled: %v %q", ok, reason)
	}
	if err := CheckCancel(&ExecutionState{ID: "e", State: contracts.StateResumed}, "e"); !errors.Is(err, contracts.ErrNotSuspended) {
		t.Errorf("cancel resumed: %v", err)
	}
	if err := CheckCancel(nil, "e"); !errors.Is(err, contracts.ErrExecutionNotFound) {
		t.Errorf("cancel unknown: %v", err)
	}
	if err := CheckSuspend(&ExecutionState{ID: "e"}, nil); err != nil {
		t.Errorf("suspend of an execution remembered in state none: %v", err)
	}
	if !ForgetsExpiredPending("", 10, 11) || ForgetsExpiredPending("", 10, 10) || ForgetsExpiredPending(contracts.StateClaimed, 10, 11) {
		t.Error("ForgetsExpiredPending: strictly past the last expiry, state none only")
	}
}
