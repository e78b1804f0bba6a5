package conformance

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// sigListScenarios cover list_suspended paging (docs/spec.md §5).
func sigListScenarios(t *testing.T, s sigSuite) {
	s.scenario(t, "PagingWhileResuming", listPaging)
	s.scenario(t, "MalformedCursor", listMalformedCursor)
}

// listPaging: limit 7 over 50 suspended executions while some resume
// between pages: every execution that stayed suspended is listed exactly
// once, pages ascend by (suspended_at_ms, execution_id), every page but the
// last is full and carries next_cursor, the last carries null.
func listPaging(t *testing.T, suite sigSuite) {
	w := suite.open(t)

	// given 50 suspended executions, some sharing a millisecond
	susp := map[string]contracts.SuspendOutcome{}
	var order []string
	for i := range 50 {
		id := fmt.Sprintf("page-%02d", i)
		a := suspendArgs(id, contracts.ConditionAny, "a", "b")
		if i%4 == 0 {
			a.TimeoutMs = sigPtr[int64](86_400_000)
		}
		out, err := w.e.Suspend(ctx(), a)
		require.NoError(t, err, "given: suspend %s", id)
		susp[id], order = out, append(order, id)
		if w.manual() && i%3 == 2 {
			w.pass(oneMs)
		}
	}

	// when paging with limit 7 and resuming two executions between pages:
	// the row the cursor points at, and one not yet listed
	resumed := map[string]bool{}
	seen := map[string]int{}
	var listed []contracts.SuspendedExecution
	cursor := ""
	for page := 0; ; page++ {
		out := w.mustList(fmt.Sprintf("page_%d", page), contracts.ListSuspendedArgs{Limit: 7, Cursor: cursor})
		for _, e := range out.Executions {
			seen[e.ExecutionID]++
			listed = append(listed, e)
			checkListed(t, e, susp[e.ExecutionID])
		}
		if out.NextCursor == nil {
			break
		}
		require.Len(t, out.Executions, 7, "page %d: a page with next_cursor must be full", page)
		require.LessOrEqual(t, page, 10, "page %d: paging does not end", page)
		// the page's last row (the cursor's own row) and one further on
		cursorRow := out.Executions[len(out.Executions)-1].ExecutionID
		for _, id := range []string{cursorRow, order[min(page*7+10, 49)]} {
			if !resumed[id] {
				w.mustDeliver(fmt.Sprintf("deliver_%s", id), signalTo(susp[id], "a", "go", ""))
				resumed[id] = true
			}
		}
		cursor = *out.NextCursor
	}

	// then no execution appears twice, and every one that stayed suspended appears
	for i := 1; i < len(listed); i++ {
		p, c := listed[i-1], listed[i]
		require.True(t, p.SuspendedAtMs < c.SuspendedAtMs || p.SuspendedAtMs == c.SuspendedAtMs && p.ExecutionID < c.ExecutionID,
			"listing is not ascending by (suspended_at_ms, execution_id): %+v then %+v", p, c)
	}
	for _, id := range order {
		require.LessOrEqual(t, seen[id], 1, "%s listed more than once", id)
		if !resumed[id] {
			require.Equal(t, 1, seen[id], "%s stayed suspended but was not listed", id)
		}
	}
	w.note("resumed_between_pages", len(resumed))
	all := w.mustList("list_default_limit", contracts.ListSuspendedArgs{})
	require.Len(t, all.Executions, 50-len(resumed), "list_default_limit: want every execution still suspended")
	require.Nil(t, all.NextCursor, "list_default_limit: want next_cursor null")
	w.golden("signals_list_paging")
}

// checkListed checks one list entry against the suspend outcome.
func checkListed(t testing.TB, e contracts.SuspendedExecution, s contracts.SuspendOutcome) {
	t.Helper()
	require.Equal(t, s.SuspensionID, e.SuspensionID, "list entry of %s: suspension_id", e.ExecutionID)
	require.Equal(t, s.SuspendedAtMs, e.SuspendedAtMs, "list entry of %s: suspended_at_ms", e.ExecutionID)
	require.Len(t, s.Waitpoints, e.Waitpoints, "list entry of %s: waitpoints", e.ExecutionID)
	require.Equal(t, s.TimeoutAtMs, e.TimeoutAtMs, "list entry of %s: timeout_at_ms", e.ExecutionID)
}

// listMalformedCursor: anything but a cursor list_suspended returned is
// validation / invalid_input naming the cursor.
func listMalformedCursor(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	w.mustSuspend("suspend", suspendArgs("cursor-1", contracts.ConditionAny, "a"))
	enc := base64.RawURLEncoding.EncodeToString
	for _, c := range []struct{ step, cursor string }{
		{"not_base64", "***"},
		{"padded_base64", "djE6MTox=="},
		{"wrong_version", enc([]byte("v2:1:exec"))},
		{"no_execution", enc([]byte("v1:1"))},
		{"negative_ms", enc([]byte("v1:-1:exec"))},
		{"bad_execution_id", enc([]byte("v1:1:bad id"))},
	} {
		_, err := w.list(c.step, contracts.ListSuspendedArgs{Limit: 7, Cursor: c.cursor})
		sigWantInvalid(t, c.step, err, "cursor")
	}
	// a well-formed cursor past the end is an empty last page
	end := contracts.EncodeCursor(contracts.Cursor{SuspendedAtMs: 1<<53 - 1, ExecutionID: "zzz"})
	out := w.mustList("cursor_past_the_end", contracts.ListSuspendedArgs{Cursor: end})
	require.Empty(t, out.Executions, "cursor_past_the_end: want an empty last page")
	require.Nil(t, out.NextCursor, "cursor_past_the_end: want an empty last page")
	w.golden("signals_list_malformed_cursor")
}
