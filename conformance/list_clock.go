package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// sigListClockScenarios are the list_suspended scenarios of the
// clock-controlled group (docs/spec.md §5.4).
func sigListClockScenarios(t *testing.T, s sigSuite) {
	s.clockScenario(t, "PagesAtLimitBoundaries", "suspensions placed on exact milliseconds", listPagesAtBoundaries)
}

// listPagesAtBoundaries: five suspended executions over three
// milliseconds, suspended out of order, page by (suspended_at_ms,
// execution_id) for limits below, at and above their number: next_cursor is
// set exactly when more follow (none when a page holds exactly limit rows);
// resumed and claimed executions are not listed, timed-out unclaimed ones
// are; a row carries the suspension's times; a cursor stays exclusive and
// stable when an execution sorting before it arrives; and the driver itself
// answers invalid_input for a cursor it never gave (the Engine validates
// first, so the driver is called directly).
func listPagesAtBoundaries(t *testing.T, suite sigSuite) {
	w := suite.open(t)

	// given five suspended executions over three milliseconds, suspended out
	// of order, and two that are not suspended
	at := func(ms int64, ids ...string) {
		w.clock.Set(ClockStartMs + ms)
		for _, id := range ids {
			a := suspendArgs(id, contracts.ConditionAny, "a", "b")
			a.TimeoutMs = sigPtr(time.Hour.Milliseconds())
			w.mustSuspend("suspend_"+id, a)
		}
	}
	at(2, "e5")
	at(1, "e3", "e1", "e4")
	at(0, "e2")
	w.clock.Set(ClockStartMs + 3)
	r := w.mustSuspend("suspend_r", suspendArgs("r", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver_r", signalTo(r, "a", "go", ""))
	c := w.mustSuspend("suspend_c", suspendArgs("c", contracts.ConditionAny, "a"))
	w.mustDeliver("deliver_c", signalTo(c, "a", "go", ""))
	claimed := w.mustClaim("claim_c", "worker-1", 60_000)
	require.Equal(t, "c", claimed.ExecutionID, "claim_c: same suspended_at_ms, lowest execution_id")
	all := []string{"e2", "e1", "e3", "e4", "e5"} // by (suspended_at_ms, execution_id)
	w.pass(2 * time.Hour)                         // every suspension timed out, none claimed: still listed

	// when paging with limits below, at and above the number of executions,
	// then the pages follow the order and only pages with more after them
	// carry next_cursor
	for _, tt := range []struct {
		limit int
		pages [][]string
	}{
		{2, [][]string{{"e2", "e1"}, {"e3", "e4"}, {"e5"}}},
		{5, [][]string{all}},
		{4, [][]string{{"e2", "e1", "e3", "e4"}, {"e5"}}},
		{1000, [][]string{all}},
	} {
		cursor := ""
		for i, want := range tt.pages {
			step := fmt.Sprintf("list_limit_%d_page_%d", tt.limit, i)
			p := w.mustList(step, contracts.ListSuspendedArgs{Limit: tt.limit, Cursor: cursor})
			require.Equal(t, want, listedIDs(p), "%s: execution ids", step)
			if i == len(tt.pages)-1 {
				require.Nil(t, p.NextCursor, "%s: the last page carries next_cursor null", step)
				continue
			}
			require.NotNil(t, p.NextCursor, "%s: a page with more after it carries next_cursor", step)
			cursor = *p.NextCursor
		}
	}

	// and a row carries the suspension's times and its number of waitpoints
	row := w.mustList("list_first_row", contracts.ListSuspendedArgs{Limit: 1}).Executions[0]
	require.Equal(t, "e2", row.ExecutionID, "list_first_row: execution_id")
	require.Equal(t, int64(ClockStartMs), row.SuspendedAtMs, "list_first_row: suspended_at_ms")
	require.Equal(t, sigPtr(ClockStartMs+time.Hour.Milliseconds()), row.TimeoutAtMs, "list_first_row: timeout_at_ms")
	require.Equal(t, 2, row.Waitpoints, "list_first_row: waitpoints")

	// and the cursor after e1 stays exclusive and stable when an execution
	// sorting before it arrives
	p := w.mustList("list_limit_2", contracts.ListSuspendedArgs{Limit: 2})
	require.NotNil(t, p.NextCursor, "list_limit_2: next_cursor")
	w.clock.Set(ClockStartMs)
	w.mustSuspend("suspend_e0_before_the_cursor", suspendArgs("e0", contracts.ConditionAny, "a"))
	after := w.mustList("list_after_the_cursor", contracts.ListSuspendedArgs{Limit: 10, Cursor: *p.NextCursor})
	require.Equal(t, []string{"e3", "e4", "e5"}, listedIDs(after), "list_after_the_cursor: execution ids")

	// and the driver answers invalid_input for a cursor it never gave
	for _, c := range []struct{ step, cursor string }{
		{"driver_cursor_not_base64", "!!"},
		{"driver_cursor_no_fields", "djE6"},
		{"driver_cursor_bad_execution_id", contracts.EncodeCursor(contracts.Cursor{ExecutionID: "bad id"})},
	} {
		out, err := w.e.Backend().ListSuspended(ctx(), contracts.ListSuspendedArgs{Limit: 10, Cursor: c.cursor})
		w.record(c.step, out, err)
		sigWantErr(t, c.step, err, contracts.ErrInvalidInput)
	}
	w.golden("signals_list_pages_at_limit_boundaries")
}

// listedIDs lists a page's execution ids in order.
func listedIDs(r contracts.ListSuspendedResult) []string {
	out := []string{}
	for _, e := range r.Executions {
		out = append(out, e.ExecutionID)
	}
	return out
}
