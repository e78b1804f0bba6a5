package conformance

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// sigObservePagingScenarios cover observe_signals' pages (docs/spec.md §5.3,
// §8.3): limits, cursors, and cursors that name another suspension.
func sigObservePagingScenarios(t *testing.T, s sigSuite) {
	s.scenario(t, "PagesVisitEverySignalOnce", observePaging)
	s.scenario(t, "CursorOfEarlierSuspension", observeCursorOfEarlierSuspension)
	s.scenario(t, "CursorAndLimitValidation", observePagingValidation)
}

// signalIDs returns the signal_ids of signals in order.
func signalIDs(signals []contracts.Signal) []string {
	out := []string{}
	for _, sg := range signals {
		out = append(out, sg.SignalID)
	}
	return out
}

// walkPages observes execution page by page with limit, recording each
// page as <step>_page_<n>, until next_cursor is null; it checks every page
// holds limit signals but the last, and returns the signal ids in order.
func (w *sigWorld) walkPages(step, executionID string, limit int) []string {
	w.t.Helper()
	var ids []string
	a := contracts.ObserveSignalsArgs{ExecutionID: executionID, Limit: limit}
	for n := 1; ; n++ {
		name := fmt.Sprintf("%s_page_%d", step, n)
		p, err := w.observePage(name, a)
		require.NoError(w.t, err, name)
		require.LessOrEqual(w.t, len(p.Signals), limit, "%s: a page holds at most limit signals", name)
		ids = append(ids, signalIDs(p.Signals)...)
		if p.NextCursor == nil {
			return ids
		}
		require.Len(w.t, p.Signals, limit, "%s: a page followed by another is full", name)
		require.Less(w.t, n, 100, "%s: too many pages", name)
		a.Cursor = *p.NextCursor
	}
}

// observePaging: five signals on two waitpoints are paged with limits
// 1000, 5, 2 and 1: each walk visits every signal exactly once in delivery
// order, and next_cursor is null exactly on the last page (a page that ends
// on the last signal included). A cursor taken before more signals arrive
// continues with them.
func observePaging(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("paging-1", contracts.ConditionAll, "a", "b", "never"))
	var want []string
	for i, key := range []string{"a", "b", "a", "b", "a"} {
		d := w.mustDeliver(fmt.Sprintf("deliver_%d", i+1), signalTo(s, key, "tick", fmt.Sprintf("p-%d", i+1)))
		want = append(want, d.SignalID)
	}

	// when every signal fits one page, then next_cursor is null
	all, err := w.observePage("observe_limit_1000", contracts.ObserveSignalsArgs{ExecutionID: "paging-1", Limit: 1000})
	require.NoError(t, err, "observe_limit_1000")
	require.Equal(t, want, signalIDs(all.Signals), "observe_limit_1000: every signal in delivery order")
	require.Nil(t, all.NextCursor, "observe_limit_1000: next_cursor")

	// and with smaller limits every walk visits each signal exactly once
	for _, limit := range []int{5, 2, 1} {
		got := w.walkPages(fmt.Sprintf("limit_%d", limit), "paging-1", limit)
		require.Equal(t, want, got, "limit %d: the pages hold every signal once, in delivery order", limit)
	}

	// when more signals arrive after a page, then its cursor continues with them
	p1, err := w.observePage("limit_3_page_1", contracts.ObserveSignalsArgs{ExecutionID: "paging-1", Limit: 3})
	require.NoError(t, err, "limit_3_page_1")
	require.NotNil(t, p1.NextCursor, "limit_3_page_1: next_cursor")
	for i, key := range []string{"b", "a"} {
		d := w.mustDeliver(fmt.Sprintf("deliver_%d", 6+i), signalTo(s, key, "tick", fmt.Sprintf("p-%d", 6+i)))
		want = append(want, d.SignalID)
	}
	got := signalIDs(p1.Signals)
	a := contracts.ObserveSignalsArgs{ExecutionID: "paging-1", Limit: 3, Cursor: *p1.NextCursor}
	for n := 2; ; n++ {
		p, err := w.observePage(fmt.Sprintf("limit_3_page_%d", n), a)
		require.NoError(t, err, "limit_3_page_%d", n)
		got = append(got, signalIDs(p.Signals)...)
		if p.NextCursor == nil {
			break
		}
		require.Less(t, n, 10, "too many pages")
		a.Cursor = *p.NextCursor
	}
	require.Equal(t, want, got, "limit 3: the pages hold every signal once, the later ones included")
	w.golden("signals_observe_paging")
}

// observeCursorOfEarlierSuspension: a cursor of a suspension that is no
// longer the latest answers an empty last page of the latest suspension
// (next_cursor null), never signals of the earlier one.
func observeCursorOfEarlierSuspension(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("paging-2", contracts.ConditionAll, "a", "b"))
	w.mustDeliver("deliver_a_1", signalTo(s, "a", "tick", ""))
	w.mustDeliver("deliver_a_2", signalTo(s, "a", "tick", ""))
	w.mustDeliver("deliver_b", signalTo(s, "b", "done", ""))
	p, err := w.observePage("observe_limit_2", contracts.ObserveSignalsArgs{ExecutionID: "paging-2", Limit: 2})
	require.NoError(t, err, "observe_limit_2")
	require.NotNil(t, p.NextCursor, "observe_limit_2: next_cursor")
	old := *p.NextCursor

	// given the execution was claimed and suspended again, with one signal
	c := w.mustClaim("claim", "worker-1", 60_000)
	again := suspendArgs("paging-2", contracts.ConditionAll, "a", "never")
	again.LeaseID = &c.LeaseID
	s2 := w.mustSuspend("suspend_again", again)
	d := w.mustDeliver("deliver_again", signalTo(s2, "a", "tick", ""))

	// when observed with the earlier suspension's cursor
	o, err := w.observePage("observe_with_cursor_of_earlier_suspension", contracts.ObserveSignalsArgs{ExecutionID: "paging-2", Limit: 2, Cursor: old})
	require.NoError(t, err, "observe_with_cursor_of_earlier_suspension")

	// then the page is the latest suspension's, empty and last
	require.Equal(t, s2.SuspensionID, o.SuspensionID, "observe_with_cursor_of_earlier_suspension: suspension_id")
	require.Empty(t, o.Signals, "observe_with_cursor_of_earlier_suspension: signals")
	require.Nil(t, o.NextCursor, "observe_with_cursor_of_earlier_suspension: next_cursor")
	fresh := w.mustObserve("observe_from_the_start", "paging-2")
	require.Equal(t, []string{d.SignalID}, signalIDs(fresh.Signals), "observe_from_the_start: the latest suspension's signal")
	w.golden("signals_observe_cursor_of_earlier_suspension")
}

// observePagingValidation: a cursor that observe_signals did not make
// (garbage, a list_suspended cursor, a position of 0, a suspension that is
// not a UUID) and a limit outside 1–1000 are validation / invalid_input
// naming the field; limit 0 is the default.
func observePagingValidation(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("paging-3", contracts.ConditionAll, "a", "b"))
	w.mustDeliver("deliver", signalTo(s, "a", "tick", ""))
	enc := func(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }
	for _, c := range []struct {
		step, field string
		args        contracts.ObserveSignalsArgs
	}{
		{"cursor_not_base64", "cursor", contracts.ObserveSignalsArgs{Cursor: "not a cursor!"}},
		{"cursor_of_list_suspended", "cursor", contracts.ObserveSignalsArgs{Cursor: contracts.EncodeCursor(contracts.Cursor{SuspendedAtMs: 1, ExecutionID: "paging-3"})}},
		{"cursor_position_0", "cursor", contracts.ObserveSignalsArgs{Cursor: enc("s1:0:" + s.SuspensionID)}},
		{"cursor_position_negative", "cursor", contracts.ObserveSignalsArgs{Cursor: enc("s1:-1:" + s.SuspensionID)}},
		{"cursor_suspension_not_a_uuid", "cursor", contracts.ObserveSignalsArgs{Cursor: enc("s1:1:paging-3")}},
		{"limit_1001", "limit", contracts.ObserveSignalsArgs{Limit: contracts.MaxObserveLimit + 1}},
		{"limit_negative", "limit", contracts.ObserveSignalsArgs{Limit: -1}},
	} {
		c.args.ExecutionID = "paging-3"
		_, err := w.observePage(c.step, c.args)
		sigWantInvalid(t, c.step, err, c.field)
	}
	o, err := w.observePage("limit_0_is_the_default", contracts.ObserveSignalsArgs{ExecutionID: "paging-3"})
	require.NoError(t, err, "limit_0_is_the_default")
	require.Len(t, o.Signals, 1, "limit_0_is_the_default: the signal")
	require.Nil(t, o.NextCursor, "limit_0_is_the_default: next_cursor")
	w.golden("signals_observe_paging_validation")
}
