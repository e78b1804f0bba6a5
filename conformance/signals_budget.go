package conformance

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// sigBudgetScenarios cover the budgets of one suspension's token holders
// (docs/spec.md §8.3): signals per waitpoint, signals per suspension and
// payload bytes per suspension, at the defaults and at limits an Engine
// lowered (engine.WithSignalLimits).
func sigBudgetScenarios(t *testing.T, s sigSuite) {
	s.scenario(t, "PerWaitpoint", budgetPerWaitpoint)
	s.scenario(t, "PayloadBytes", budgetPayloadBytes)
	s.scenario(t, "PerSuspensionLowered", budgetPerSuspensionLowered)
	s.scenario(t, "NewSuspensionNewBudget", budgetNewSuspension)
}

// payloadOf returns a JSON string of exactly n bytes (n >= 2), which the
// Engine's compaction leaves as it is.
func payloadOf(n int) json.RawMessage {
	return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
}

// withPayload returns a with payload p.
func withPayload(a contracts.DeliverSignalArgs, p json.RawMessage) contracts.DeliverSignalArgs {
	a.Payload = p
	return a
}

// fill delivers n signals with idempotency keys <prefix>-0000… to the
// waitpoint wpKey of s through the scenario's Engine, requiring each to be
// accepted without resuming. The deliveries are not steps of the golden
// file; the scenario notes their count.
func (w *sigWorld) fill(s contracts.SuspendOutcome, wpKey, prefix string, n int, payload json.RawMessage) {
	w.t.Helper()
	for i := range n {
		a := withPayload(signalTo(s, wpKey, "tick", fmt.Sprintf("%s-%04d", prefix, i)), payload)
		out, err := w.e.DeliverSignal(ctx(), a)
		require.NoError(w.t, err, "given: delivery %d of %d to waitpoint %s", i+1, n, wpKey)
		require.Equal(w.t, contracts.OutcomeAccepted, out.Outcome, "given: delivery %d to waitpoint %s: outcome", i+1, wpKey)
		require.False(w.t, out.Resumed, "given: delivery %d to waitpoint %s resumed the suspension", i+1, wpKey)
	}
}

// wantLimit requires err to be state / signal_limit_exceeded whose detail
// names the budget (docs/spec.md §8.3 gives the texts).
func wantLimit(t testing.TB, step string, err error, detail string) {
	t.Helper()
	ce := sigWantErr(t, step, err, contracts.ErrSignalLimitExceeded)
	require.Equal(t, "waitpoint_id: "+detail, ce.Detail, "%s: detail", step)
	require.False(t, ce.Retryable, "%s: retryable", step)
}

// pageNote is what a golden file keeps of a large observe_signals page: its
// suspension, how many signals it holds and its next_cursor.
type pageNote struct {
	SuspensionID string  `json:"suspension_id"`
	Signals      int     `json:"signals"`
	NextCursor   *string `json:"next_cursor"`
}

func noteOf(p contracts.ObserveSignalsResult) pageNote {
	return pageNote{p.SuspensionID, len(p.Signals), p.NextCursor}
}

// budgetPerWaitpoint: the holder of waitpoint a delivers the default 1,000
// signals; the 1,001st is signal_limit_exceeded naming the waitpoint's
// limit (with or without an idempotency key), a recorded key still answers
// duplicate, and the holder of waitpoint b still delivers and resumes the
// suspension: one holder cannot use up another's budget. observe_signals
// then pages at its default limit: 1,000 signals and a cursor, then the
// last one.
func budgetPerWaitpoint(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("budget-waitpoint", contracts.ConditionAll, "a", "b"))

	// given a's holder delivered the waitpoint's limit
	w.fill(s, "a", "a", contracts.WaitpointSignalLimit, nil)
	w.note("accepted_on_a", contracts.WaitpointSignalLimit)

	// when a's holder delivers once more, then the waitpoint's budget is spent
	_, err := w.deliver("deliver_a_past_its_limit", signalTo(s, "a", "tick", "a-1000"))
	wantLimit(t, "deliver_a_past_its_limit", err, "the waitpoint already holds 1000 signals, its limit")
	_, err = w.deliver("deliver_a_past_its_limit_without_key", signalTo(s, "a", "tick", ""))
	wantLimit(t, "deliver_a_past_its_limit_without_key", err, "the waitpoint already holds 1000 signals, its limit")
	d, err := w.deliver("redeliver_recorded_key_on_a", signalTo(s, "a", "tick", "a-0007"))
	require.NoError(t, err, "redeliver_recorded_key_on_a")
	require.Equal(t, contracts.OutcomeDuplicate, d.Outcome, "redeliver_recorded_key_on_a: a recorded key answers duplicate past the limit")

	// then b's holder still delivers, and resumes the suspension
	b := w.mustDeliver("deliver_b", signalTo(s, "b", "done", "b-1"))
	require.True(t, b.Resumed, "deliver_b: want resumed")

	// and observe_signals pages at its default limit
	first, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: "budget-waitpoint"})
	require.NoError(t, err, "observe")
	require.Len(t, first.Signals, contracts.DefaultObserveLimit, "observe: the first page holds the default limit")
	require.NotNil(t, first.NextCursor, "observe: another page follows")
	w.note("observe_first_page", noteOf(first))
	last, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: "budget-waitpoint", Cursor: *first.NextCursor})
	require.NoError(t, err, "observe_next_page")
	require.Len(t, last.Signals, 1, "observe_next_page: the last signal")
	require.Equal(t, b.SignalID, last.Signals[0].SignalID, "observe_next_page: b's signal, delivered last")
	w.record("observe_next_page", last, nil)
	w.golden("signals_budget_per_waitpoint")
}

// Payload sizes of budgetPayloadBytes: 16 payloads of 64 KiB less one byte
// leave 16 bytes of the 1 MiB budget.
const (
	bigPayload    = contracts.MaxPayloadLen - 1
	bigPayloads   = 16
	payloadRemain = contracts.PayloadBudgetBytes - bigPayloads*bigPayload
)

// budgetPayloadBytes: 16 payloads of 65,535 bytes on waitpoints a and b
// leave 16 bytes of the suspension's 1 MiB; a 64 KiB payload is then
// refused on any waitpoint, naming the payload budget; a 16-byte payload
// fits exactly; after it one byte more is refused, and a signal without
// payload (0 bytes) is still accepted. observe_signals returns every payload
// byte that was accepted.
func budgetPayloadBytes(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("budget-payload", contracts.ConditionAll, "a", "b", "c"))

	// given 16 large payloads, half on a, half on b
	w.fill(s, "a", "big-a", bigPayloads/2, payloadOf(bigPayload))
	w.fill(s, "b", "big-b", bigPayloads/2, payloadOf(bigPayload))
	w.note("payload_bytes_accepted", bigPayloads*bigPayload)

	// when a 64 KiB payload would pass the budget, then it is refused, on c too
	const detail = "the suspension's payloads would exceed 1048576 bytes, its limit"
	_, err := w.deliver("deliver_64_kib_past_the_budget", withPayload(signalTo(s, "a", "big", "big-a-9"), payloadOf(contracts.MaxPayloadLen)))
	wantLimit(t, "deliver_64_kib_past_the_budget", err, detail)
	_, err = w.deliver("deliver_64_kib_to_c_past_the_budget", withPayload(signalTo(s, "c", "big", ""), payloadOf(contracts.MaxPayloadLen)))
	wantLimit(t, "deliver_64_kib_to_c_past_the_budget", err, detail)

	// then a smaller payload that fits is accepted, filling the budget exactly
	w.mustDeliver("deliver_16_bytes_fits", withPayload(signalTo(s, "a", "small", "small-1"), payloadOf(payloadRemain)))
	_, err = w.deliver("deliver_1_byte_past_the_budget", withPayload(signalTo(s, "b", "small", ""), json.RawMessage(`1`)))
	wantLimit(t, "deliver_1_byte_past_the_budget", err, detail)
	// and a signal without payload uses no payload budget
	last := w.mustDeliver("deliver_c_without_payload", signalTo(s, "c", "done", ""))
	require.True(t, last.Resumed, "deliver_c_without_payload: want resumed")

	// and the stored payloads are exactly the accepted ones
	o, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: "budget-payload"})
	require.NoError(t, err, "observe")
	require.Len(t, o.Signals, bigPayloads+2, "observe: the accepted signals")
	total := 0
	for _, sg := range o.Signals {
		if sg.Payload != nil {
			total += len(sg.Payload)
		}
	}
	require.Equal(t, contracts.PayloadBudgetBytes, total, "observe: payload bytes")
	w.note("payload_bytes_observed", total)
	w.golden("signals_budget_payload_bytes")
}

// budgetPerSuspensionLowered: through an Engine with lowered limits (4
// signals per waitpoint, 10 per suspension, 64 payload bytes), the
// waitpoint limit answers first, then the suspension's count stops every
// holder, including one that has delivered nothing; a recorded key still
// answers duplicate. On another suspension the lowered payload budget
// refuses what would pass 64 bytes and accepts what fits exactly.
func budgetPerSuspensionLowered(t *testing.T, suite sigSuite) {
	w := suite.openWithLimits(t, contracts.SignalLimits{PerWaitpoint: 4, PerSuspension: 10, PayloadBytes: 64})
	s := w.mustSuspend("suspend", suspendArgs("budget-suspension", contracts.ConditionAll, "a", "b", "c", "d"))

	// given a's holder delivered its 4 signals
	w.fill(s, "a", "a", 4, nil)
	_, err := w.deliver("deliver_a_past_its_limit", signalTo(s, "a", "tick", "a-0004"))
	wantLimit(t, "deliver_a_past_its_limit", err, "the waitpoint already holds 4 signals, its limit")

	// when b and c bring the suspension to its 10 signals
	w.fill(s, "b", "b", 4, nil)
	w.fill(s, "c", "c", 2, nil)
	w.note("accepted", 10)

	// then every holder is refused, d's too, naming the suspension's limit
	_, err = w.deliver("deliver_c_past_the_suspension_limit", signalTo(s, "c", "tick", "c-0002"))
	wantLimit(t, "deliver_c_past_the_suspension_limit", err, "the suspension already holds 10 signals, its limit")
	_, err = w.deliver("deliver_d_past_the_suspension_limit", signalTo(s, "d", "tick", ""))
	wantLimit(t, "deliver_d_past_the_suspension_limit", err, "the suspension already holds 10 signals, its limit")
	d, err := w.deliver("redeliver_recorded_key_on_c", signalTo(s, "c", "tick", "c-0001"))
	require.NoError(t, err, "redeliver_recorded_key_on_c")
	require.Equal(t, contracts.OutcomeDuplicate, d.Outcome, "redeliver_recorded_key_on_c: outcome")
	o := w.mustObserve("observe_count", "budget-suspension")
	require.Len(t, o.Signals, 10, "observe: the suspension's 10 signals")
	w.steps = w.steps[:len(w.steps)-1]
	w.note("observed_signals", len(o.Signals))

	// and the lowered payload budget of another suspension
	p := w.mustSuspend("suspend_payload", suspendArgs("budget-bytes", contracts.ConditionAll, "a", "b"))
	w.mustDeliver("deliver_60_bytes", withPayload(signalTo(p, "a", "note", ""), payloadOf(60)))
	_, err = w.deliver("deliver_5_bytes_past_the_budget", withPayload(signalTo(p, "a", "note", ""), payloadOf(5)))
	wantLimit(t, "deliver_5_bytes_past_the_budget", err, "the suspension's payloads would exceed 64 bytes, its limit")
	w.mustDeliver("deliver_4_bytes_fits", withPayload(signalTo(p, "a", "note", ""), payloadOf(4)))
	w.golden("signals_budget_per_suspension_lowered")
}

// budgetNewSuspension: the budgets belong to one suspension. With 2
// signals per waitpoint, a's holder is refused its third signal; once b
// resumed the execution and a worker suspended it again under its lease,
// the new suspension's waitpoint a accepts 2 signals again.
func budgetNewSuspension(t *testing.T, suite sigSuite) {
	w := suite.openWithLimits(t, contracts.SignalLimits{PerWaitpoint: 2})
	s := w.mustSuspend("suspend", suspendArgs("budget-again", contracts.ConditionAll, "a", "b"))
	w.fill(s, "a", "first", 2, nil)
	_, err := w.deliver("deliver_a_past_its_limit", signalTo(s, "a", "tick", ""))
	wantLimit(t, "deliver_a_past_its_limit", err, "the waitpoint already holds 2 signals, its limit")
	w.mustDeliver("deliver_b", signalTo(s, "b", "done", ""))
	c := w.mustClaim("claim", "worker-1", 60_000)
	require.Len(t, c.Signals, 3, "claim: the suspension's signals")

	// when the worker suspends again, then waitpoint a has a fresh budget
	again := suspendArgs("budget-again", contracts.ConditionAll, "a", "b")
	again.LeaseID = &c.LeaseID
	s2 := w.mustSuspend("suspend_again", again)
	w.fill(s2, "a", "second", 2, nil)
	w.note("accepted_on_new_a", 2)
	_, err = w.deliver("deliver_new_a_past_its_limit", signalTo(s2, "a", "tick", ""))
	wantLimit(t, "deliver_new_a_past_its_limit", err, "the waitpoint already holds 2 signals, its limit")
	w.golden("signals_budget_new_suspension")
}
