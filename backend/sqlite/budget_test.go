package sqlite

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/drivertest"
)

// storedCounters reads the budget counters of an execution around the
// driver: the latest suspension's signals and payload bytes, and each of
// its waitpoints' signals by key.
func storedCounters(t testing.TB, b *Backend, executionID string) (signals int, payloadBytes int64, perWaitpoint map[string]int) {
	t.Helper()
	require.NoError(t, b.db.QueryRow(`SELECT signal_count, payload_bytes FROM executions WHERE execution_id = ?`, executionID).Scan(&signals, &payloadBytes))
	rows, err := b.db.Query(`SELECT w.waitpoint_key, w.signal_count FROM waitpoints w JOIN executions e
        ON e.execution_id = w.execution_id AND e.suspension_id = w.suspension_id WHERE w.execution_id = ?`, executionID)
	require.NoError(t, err)
	defer rows.Close()
	perWaitpoint = map[string]int{}
	for rows.Next() {
		var k string
		var n int
		require.NoError(t, rows.Scan(&k, &n))
		perWaitpoint[k] = n
	}
	require.NoError(t, rows.Err())
	return signals, payloadBytes, perWaitpoint
}

// The budgets of docs/spec.md §8.3 are counters in the rows a delivery
// reads, advanced in its transaction and reset by the next suspend.
func TestBudgetCountersFollowDeliveries(t *testing.T) {
	f := harness.Seeded(t)
	b := f.B.(*Backend)
	drivertest.CheckBudgetCounters(t, f, func() (int, int64, map[string]int) { return storedCounters(t, b, "e1") })
}

// A database migrated from version 1 counts the payloads its open
// suspensions already hold: migration 0002 fills executions.payload_bytes
// from the signals, so the payload budget holds across the upgrade.
func TestMigrationCountsPayloadsOfOpenSuspensions(t *testing.T) {
	// given a file with a suspension holding 20 payload bytes
	clock := conformance.NewClock(startMs)
	b, path := openFile(t, WithClock(clock.Now))
	e := eng(b)
	ctx := context.Background()
	drivertest.Try(e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: drivertest.Secret('a')})).Must(t)
	s := drivertest.Try(e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e1", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})).Must(t)
	for range 2 {
		a := drivertest.DeliverArgs(s, 0, "")
		a.Payload = drivertest.PayloadOf(10)
		drivertest.Try(e.DeliverSignal(ctx, a)).Must(t)
	}
	// and the schema taken back to version 1
	_, err := b.db.Exec(`ALTER TABLE executions DROP COLUMN payload_bytes`)
	require.NoError(t, err)
	_, err = b.db.Exec(`DELETE FROM schema_migrations WHERE version = 2`)
	require.NoError(t, err)
	require.NoError(t, b.Close())

	// when the file is opened by this binary, which migrates it
	b2, err := Open(ctx, path, WithClock(clock.Now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b2.Close() })

	// then the open suspension's payload bytes are counted
	_, bytes, _ := storedCounters(t, b2, "e1")
	require.Equal(t, int64(20), bytes)
	lowered := engine.New(b2, engine.WithSignalLimits(contracts.SignalLimits{PayloadBytes: 25}))
	a := drivertest.DeliverArgs(s, 0, "")
	a.Payload = drivertest.PayloadOf(6)
	_, err = lowered.DeliverSignal(ctx, a)
	drivertest.WantErr(t, err, contracts.ErrSignalLimitExceeded)
	a.Payload = drivertest.PayloadOf(5)
	drivertest.Try(lowered.DeliverSignal(ctx, a)).Must(t)
}

// A suspend idempotency record keeps no token and no MAC (docs/spec.md §3),
// and a record written before tokens stopped being stored, holding whole
// tokens, still replays byte for byte.
func TestSuspendRecordsHoldNoTokenAndOldRecordsReplay(t *testing.T) {
	// given a suspend under an idempotency key
	f := harness.Seeded(t)
	b := f.B.(*Backend)
	a := drivertest.WithIdem(drivertest.SuspendArgs("e1", "a", "b"), "boot-1")
	first := f.Suspend(a)

	// then its record holds the kid, not the tokens
	var stored string
	require.NoError(t, b.db.QueryRow(`SELECT outcome FROM suspend_idempotency WHERE execution_id = 'e1'`).Scan(&stored))
	for _, w := range first.Waitpoints {
		require.NotContains(t, stored, w.Token[strings.IndexByte(w.Token, ':')+1:], "the record holds a MAC")
		require.Contains(t, stored, w.WaitpointID)
	}
	require.Contains(t, stored, `"token":"k1"`)

	// when the record is replaced by the old form, with whole tokens
	old, err := json.Marshal(first)
	require.NoError(t, err)
	_, err = b.db.Exec(`UPDATE suspend_idempotency SET outcome = ? WHERE execution_id = 'e1'`, old)
	require.NoError(t, err)

	// then a replay still answers the first outcome byte for byte
	f.Clock.Advance(1000)
	require.Equal(t, drivertest.JSONOf(t, first), drivertest.JSONOf(t, f.Suspend(a)))
}

// A page of observe_signals is one range read of signals_by_position,
// whatever the cursor's position: no scan of the suspension's signals.
func TestObservePageIsARangeRead(t *testing.T) {
	b, _ := openFile(t)
	rows, err := b.db.Query(`EXPLAIN QUERY PLAN `+selectSignalPage, "s", 5, 10)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	require.Len(t, plan, 1, "plan %q", plan)
	require.Contains(t, plan[0], "USING INDEX signals_by_position (suspension_id=? AND position>?)")
}
