package drivertest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// BudgetCounters reads what a driver stores for the budgets of execution
// "e1"'s latest suspension (docs/spec.md §8.3): its signals, its payload
// bytes, and the signals of each waitpoint by key.
type BudgetCounters func() (signals int, payloadBytes int64, perWaitpoint map[string]int)

// CheckBudgetCounters runs the history that shows a driver's budget
// counters follow what is recorded, on a seeded fixture, reading them with
// read: waitpoint a of a two-waitpoint suspension gets two payloads and one
// signal without, then a duplicate and a delivery refused by a lowered
// limit change nothing (3 signals, 17 bytes, a:3, b:0); a new suspension
// starts from zero.
func CheckBudgetCounters(t testing.TB, f *Fixture, read BudgetCounters) {
	t.Helper()
	s := f.Suspend(contracts.SuspendArgs{ExecutionID: "e1", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
	for i, p := range []json.RawMessage{PayloadOf(10), nil, PayloadOf(7)} {
		a := DeliverArgs(s, 0, fmt.Sprintf("k%d", i))
		a.Payload = p
		Try(f.Eng.DeliverSignal(f.Ctx, a)).Must(t)
	}
	f.Deliver(s, 0, "k0")
	lowered := engine.New(f.B, engine.WithSignalLimits(contracts.SignalLimits{PerWaitpoint: 3}))
	_, err := lowered.DeliverSignal(f.Ctx, DeliverArgs(s, 0, ""))
	WantErr(t, err, contracts.ErrSignalLimitExceeded)

	signals, bytes, per := read()
	require.Equal(t, 3, signals)
	require.Equal(t, int64(17), bytes)
	require.Equal(t, map[string]int{"a": 3, "b": 0}, per)

	f.Deliver(s, 1, "")
	c := Try(f.Eng.ClaimResumedExecution(f.Ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})).Must(t)
	f.Suspend(contracts.SuspendArgs{ExecutionID: "e1", Condition: contracts.ConditionAny, LeaseID: &c.LeaseID,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	signals, bytes, per = read()
	require.Equal(t, 0, signals)
	require.Equal(t, int64(0), bytes)
	require.Equal(t, map[string]int{"a": 0}, per)
}
