package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// budgetCounters is what the schema keeps of a suspension's budget
// (docs/spec.md §8.3), next to what its signal rows add up to.
type budgetCounters struct {
	SignalCount, CountedSignals   int   // ff_executions.signal_count; count of the rows
	PayloadBytes, CountedBytes    int64 // ff_executions.payload_bytes; sum of len(payload)
	WaitpointCounts, CountedPerWp map[string]int
	Ordinals                      []int64 // of the suspension's signals in delivery order
}

// readBudget reads the counters of executionID's latest suspension and
// recounts them from its signals, on a connection of its own.
func readBudget(t *testing.T, rawURL, executionID string) budgetCounters {
	t.Helper()
	ctx := context.Background()
	c := connect(t, rawURL)
	b := budgetCounters{WaitpointCounts: map[string]int{}, CountedPerWp: map[string]int{}}
	var suspensionID string
	require.NoError(t, c.QueryRow(ctx, `SELECT suspension_id, signal_count, payload_bytes FROM ff_executions WHERE execution_id = $1`,
		executionID).Scan(&suspensionID, &b.SignalCount, &b.PayloadBytes))
	require.NoError(t, c.QueryRow(ctx, `SELECT count(*), coalesce(sum(octet_length(payload)), 0),
		coalesce(array_agg(ordinal ORDER BY seq), '{}') FROM ff_signals WHERE suspension_id = $1`,
		suspensionID).Scan(&b.CountedSignals, &b.CountedBytes, &b.Ordinals))
	rows, err := c.Query(ctx, `SELECT w.waitpoint_key, w.signal_count, count(s.signal_id)
		FROM ff_waitpoints w LEFT JOIN ff_signals s ON s.waitpoint_id = w.waitpoint_id
		WHERE w.suspension_id = $1 GROUP BY w.waitpoint_key, w.signal_count`, suspensionID)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var key string
		var kept, counted int
		require.NoError(t, rows.Scan(&key, &kept, &counted))
		b.WaitpointCounts[key], b.CountedPerWp[key] = kept, counted
	}
	require.NoError(t, rows.Err())
	return b
}

// requireExactCounters checks that every counter equals what the rows add
// up to and that the ordinals number the signals 0, 1, 2, ... in delivery
// order.
func requireExactCounters(t *testing.T, b budgetCounters) {
	t.Helper()
	require.Equal(t, b.CountedSignals, b.SignalCount, "ff_executions.signal_count")
	require.Equal(t, b.CountedBytes, b.PayloadBytes, "ff_executions.payload_bytes")
	require.Equal(t, b.CountedPerWp, b.WaitpointCounts, "ff_waitpoints.signal_count")
	for i, o := range b.Ordinals {
		require.Equal(t, int64(i), o, "ordinal of the signal delivered #%d", i)
	}
}

// Given a suspension of three waitpoints that does not resume and an Engine
// with small budgets, when 16 goroutines deliver to two of its waitpoints
// (eight each) with distinct keys until each is refused, then exactly the
// budget's signals are accepted, every refusal is signal_limit_exceeded,
// and the counters in the rows equal what the signal rows add up to.
func TestConcurrentDeliveriesKeepBudgetCountersExact(t *testing.T) {
	payload := json.RawMessage(`{"pad":"` + strings.Repeat("x", 90) + `"}`) // 100 bytes
	require.Len(t, payload, 100)
	cases := []struct {
		name         string
		limits       contracts.SignalLimits
		payload      json.RawMessage
		wantPerWp    int // accepted on each of the two waitpoints; 0: not fixed
		wantAccepted int
	}{
		{"PerWaitpoint", contracts.SignalLimits{PerWaitpoint: 40, PerSuspension: 1000}, nil, 40, 80},
		{"PerSuspension", contracts.SignalLimits{PerWaitpoint: 100, PerSuspension: 130}, nil, 0, 130},
		{"PayloadBytes", contracts.SignalLimits{PerWaitpoint: 100, PerSuspension: 1000, PayloadBytes: 3050}, payload, 0, 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// given
			plain := schemaURL(t)
			e := engine.New(openURL(t, withParam(t, plain, postgres.ParamMigrate, postgres.MigrateAuto)), engine.WithSignalLimits(c.limits))
			seed(t, e, "kid-a", 0x01)
			ctx := context.Background()
			s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAll,
				Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}, {Key: "never"}}})
			require.NoError(t, err)

			// when
			const goroutines = 16
			var (
				mu       sync.Mutex
				accepted = map[string]int{}
				wg       sync.WaitGroup
			)
			errs := make(chan error, goroutines)
			for g := range goroutines {
				wg.Go(func() {
					w := s.Waitpoints[g%2]
					for i := 0; ; i++ {
						out, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: w.WaitpointID,
							Token: w.Token, Name: "tick", Payload: c.payload, IdempotencyKey: fmt.Sprintf("g%02d-%04d", g, i)})
						switch {
						case errors.Is(err, contracts.ErrSignalLimitExceeded):
							return
						case err != nil:
							errs <- err
							return
						case out.Outcome != contracts.OutcomeAccepted || out.Resumed:
							errs <- fmt.Errorf("delivery %d of goroutine %d: %+v", i, g, out)
							return
						}
						mu.Lock()
						accepted[w.WaitpointKey]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}

			// then
			require.Equal(t, c.wantAccepted, accepted["a"]+accepted["b"], "accepted deliveries")
			if c.wantPerWp > 0 {
				require.Equal(t, map[string]int{"a": c.wantPerWp, "b": c.wantPerWp}, accepted, "accepted per waitpoint")
			}
			b := readBudget(t, plain, "exec-1")
			requireExactCounters(t, b)
			require.Equal(t, c.wantAccepted, b.SignalCount, "signals recorded")
			require.Equal(t, int64(c.wantAccepted*len(c.payload)), b.PayloadBytes, "payload bytes recorded")
			require.Equal(t, map[string]int{"a": accepted["a"], "b": accepted["b"], "never": 0}, b.WaitpointCounts)
		})
	}
}

// Given a suspension with budget counters in use, when the execution is
// claimed and suspends again, then the new suspension starts from zero:
// signal count, payload bytes and ordinals.
func TestResuspendResetsBudgetCounters(t *testing.T) {
	// given
	e, plain := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	ctx := context.Background()
	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
	require.NoError(t, err)
	for i, w := range s.Waitpoints {
		_, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: w.WaitpointID,
			Token: w.Token, Name: "go", Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		require.NoError(t, err)
	}
	c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
	require.NoError(t, err)
	require.Equal(t, contracts.OutcomeClaimed, c.Outcome)

	// when
	s2, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", LeaseID: &c.LeaseID,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}, Condition: contracts.ConditionAll})
	require.NoError(t, err)

	// then
	b := readBudget(t, plain, "exec-1")
	require.Zero(t, b.SignalCount)
	require.Zero(t, b.PayloadBytes)
	_, err = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: s2.Waitpoints[1].WaitpointID,
		Token: s2.Waitpoints[1].Token, Name: "go", Payload: json.RawMessage(`"abc"`)})
	require.NoError(t, err)
	b = readBudget(t, plain, "exec-1")
	requireExactCounters(t, b)
	require.Equal(t, []int64{0}, b.Ordinals)
	require.Equal(t, int64(5), b.PayloadBytes)
}
