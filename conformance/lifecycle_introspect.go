package conformance

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// introspectionScenarios cover get_waitpoint and tags (docs/spec.md §8.6).
func introspectionScenarios(t *testing.T, s sigSuite) {
	s.v2scenario(t, "WaitpointStatuses", getWaitpointStatuses)
	s.v2scenario(t, "NotFound", getWaitpointNotFound)
	s.v2scenario(t, "TagValidation", tagValidation)
	s.v2scenario(t, "ListByTagWhileResuming", listByTagWhileResuming)
}

// getWaitpointStatuses: a suspension's waitpoint is open, expired past the
// timeout, and closed once claimed; it shows its signal count, the
// suspend's tags, its expiry (the timeout) and the fingerprint of its token.
func getWaitpointStatuses(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	const exec = "get-1"
	a := suspendArgs(exec, contracts.ConditionAll, "a", "b")
	a.TimeoutMs = sigPtr(int64(200))
	a.Tags = []string{"ops", "region:eu"}
	s := w.mustSuspend("suspend", a)
	w.mustDeliver("deliver_a", signalTo(s, "a", "go", ""))
	info := w.mustGet("get_open", exec, waitpointOf(s, "a").WaitpointID, contracts.WaitpointOpen)
	require.Equal(t, 1, info.Signals, "get_open: signals")
	require.Equal(t, a.Tags, info.Tags, "get_open: the suspend's tags")
	require.Equal(t, s.TimeoutAtMs, info.ExpiresAtMs, "get_open: expires_at_ms is the suspension's timeout")
	require.Equal(t, "a", info.WaitpointKey, "get_open: waitpoint_key")
	checkFingerprint(t, "get_open", info, waitpointOf(s, "a").Token)

	w.pass(timeoutWait(w, 200))
	w.mustGet("get_timed_out", exec, waitpointOf(s, "b").WaitpointID, contracts.WaitpointExpired)
	w.mustClaim("claim", "worker-1", 60_000)
	w.mustGet("get_claimed", exec, waitpointOf(s, "b").WaitpointID, contracts.WaitpointClosed)

	n := suspendArgs("get-2", contracts.ConditionAny, "a")
	sn := w.mustSuspend("suspend_untagged", n)
	info = w.mustGet("get_untagged", "get-2", sn.Waitpoints[0].WaitpointID, contracts.WaitpointOpen)
	require.Nil(t, info.ExpiresAtMs, "get_untagged: no timeout, no expiry")
	require.Equal(t, []string{}, info.Tags, "get_untagged: tags")
	w.golden("lifecycle_get_waitpoint_statuses")
}

// getWaitpointNotFound: an unknown waitpoint and another execution's are
// the same waitpoint_not_found; a malformed id is invalid_input.
func getWaitpointNotFound(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("nf-1", contracts.ConditionAny, "a"))
	_, err := w.get("get_unknown", "nf-1", driver.NewID())
	sigWantErr(t, "get_unknown", err, contracts.ErrWaitpointNotFound)
	_, err = w.get("get_other_execution", "nf-2", s.Waitpoints[0].WaitpointID)
	sigWantErr(t, "get_other_execution", err, contracts.ErrWaitpointNotFound)
	_, err = w.get("get_malformed", "nf-1", "not-a-uuid")
	sigWantInvalid(t, "get_malformed", err, "waitpoint_id")
	w.golden("lifecycle_get_waitpoint_not_found")
}

// tagValidation: tags are 0–10 distinct strings of 1–64 bytes of
// [A-Za-z0-9._:-]; anything else is invalid_input naming tags (or tag, for
// the list filter) and writes nothing.
func tagValidation(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = fmt.Sprintf("t%d", i)
	}
	for _, c := range []struct {
		step string
		tags []string
	}{
		{"suspend_eleven_tags", eleven},
		{"suspend_repeated_tag", []string{"a", "a"}},
		{"suspend_empty_tag", []string{""}},
		{"suspend_long_tag", []string{strings.Repeat("t", 65)}},
		{"suspend_slash_tag", []string{"a/b"}},
		{"suspend_non_ascii_tag", []string{"café"}},
	} {
		a := suspendArgs("tags-1", contracts.ConditionAny, "a")
		a.Tags = c.tags
		_, err := w.suspend(c.step, a)
		sigWantInvalid(t, c.step, err, "tags")
	}
	_, err := w.list("list_bad_tag", contracts.ListSuspendedArgs{Limit: 10, Tag: "a b"})
	sigWantInvalid(t, "list_bad_tag", err, "tag")
	l := w.mustList("list_after_refusals", contracts.ListSuspendedArgs{Limit: 10})
	require.Empty(t, l.Executions, "list_after_refusals: nothing was written")
	a := suspendArgs("tags-1", contracts.ConditionAny, "a")
	a.Tags = append(eleven[:10:10], []string{}...)
	a.Tags[9] = strings.Repeat("T", 64)
	w.mustSuspend("suspend_ten_tags", a)
	w.golden("lifecycle_tag_validation")
}

// listByTagWhileResuming: a tag filter lists only the executions whose
// suspension carries the tag, in list_suspended order, and paging under the
// filter visits every one that stays suspended exactly once while others
// resume between pages.
func listByTagWhileResuming(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	var tagged []contracts.SuspendOutcome
	for i := range 7 {
		a := suspendArgs(fmt.Sprintf("lt-%d", i), contracts.ConditionAny, "a")
		if i%3 != 2 {
			a.Tags = []string{"batch:1"}
		} else {
			a.Tags = []string{"batch:2"}
		}
		s := w.mustSuspend(fmt.Sprintf("suspend_%d", i), a)
		if i%3 != 2 {
			tagged = append(tagged, s)
		}
		w.pass(2 * oneMs) // distinct suspended_at_ms in real time too
	}
	require.Len(t, tagged, 5, "given: five tagged executions")

	seen := map[string]int{}
	p1 := w.mustList("page_1", contracts.ListSuspendedArgs{Limit: 2, Tag: "batch:1"})
	require.Len(t, p1.Executions, 2, "page_1")
	require.NotNil(t, p1.NextCursor, "page_1: more follow")
	for _, e := range p1.Executions {
		seen[e.ExecutionID]++
		require.Equal(t, []string{"batch:1"}, e.Tags, "page_1: tags")
	}
	// one listed and one not yet listed resume between pages
	w.mustDeliver("resume_listed", signalTo(tagged[0], "a", "go", ""))
	w.mustDeliver("resume_unlisted", signalTo(tagged[2], "a", "go", ""))
	cursor := *p1.NextCursor
	for page := 2; ; page++ {
		p := w.mustList(fmt.Sprintf("page_%d", page), contracts.ListSuspendedArgs{Limit: 2, Tag: "batch:1", Cursor: cursor})
		for _, e := range p.Executions {
			seen[e.ExecutionID]++
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	for _, s := range tagged {
		switch s.ExecutionID {
		case tagged[2].ExecutionID:
			require.Zero(t, seen[s.ExecutionID], "resumed before its page: not listed")
		default:
			require.Equal(t, 1, seen[s.ExecutionID], "%s: listed exactly once", s.ExecutionID)
		}
	}
	require.Len(t, seen, 4, "only tagged executions are listed")
	other := w.mustList("list_other_tag", contracts.ListSuspendedArgs{Limit: 10, Tag: "batch:2"})
	require.Len(t, other.Executions, 2, "list_other_tag")
	none := w.mustList("list_unused_tag", contracts.ListSuspendedArgs{Limit: 10, Tag: "batch:3"})
	require.Empty(t, none.Executions, "list_unused_tag")
	w.golden("lifecycle_list_by_tag_while_resuming")
}
