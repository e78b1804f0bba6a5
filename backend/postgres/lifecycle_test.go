package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
)

// tagRows returns the executions ff_suspension_tags lists under tag, in
// list order.
func tagRows(t *testing.T, rawURL, tag string) []string {
	t.Helper()
	var ids []string
	require.NoError(t, connect(t, rawURL).QueryRow(context.Background(),
		`SELECT coalesce(array_agg(execution_id ORDER BY suspended_at_ms, execution_id), '{}') FROM ff_suspension_tags WHERE tag = $1`,
		tag).Scan(&ids))
	return ids
}

// Given five executions suspended with tag "t", when one resumes by a
// signal, one is cancelled, one times out and is claimed, and one is
// claimed and completed, then ff_suspension_tags lists only the one still
// suspended, and list_suspended by "t" answers it alone: the tag rows
// exist exactly while an execution is suspended (docs/spec.md §8.6).
func TestTagRowsFollowTheSuspendedState(t *testing.T) {
	e, plain := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	ctx := context.Background()
	suspend := func(id string, timeoutMs *int64) contracts.SuspendOutcome {
		s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "a"}},
			TimeoutMs: timeoutMs, Tags: []string{"t", "u"}})
		require.NoError(t, err)
		return s
	}
	deliver := func(s contracts.SuspendOutcome) {
		w := s.Waitpoints[0]
		out, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: s.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go"})
		require.NoError(t, err)
		require.True(t, out.Resumed)
	}
	short := int64(1)
	timedOut := suspend("e-timeout", &short)
	resumed := suspend("e-resumed", nil)
	cancelled := suspend("e-cancelled", nil)
	completed := suspend("e-completed", nil)
	waiting := suspend("e-waiting", nil)
	require.ElementsMatch(t, []string{"e-timeout", "e-resumed", "e-cancelled", "e-completed", "e-waiting"}, tagRows(t, plain, "t"))

	// when
	time.Sleep(5 * time.Millisecond)
	c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
	require.NoError(t, err)
	require.Equal(t, timedOut.ExecutionID, c.ExecutionID)
	require.Equal(t, contracts.ReasonTimeout, c.Reason)
	deliver(resumed)
	_, err = e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: cancelled.ExecutionID})
	require.NoError(t, err)
	deliver(completed)
	done := false
	for range 3 { // e-resumed, e-cancelled, e-completed
		c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
		require.NoError(t, err)
		if c.ExecutionID == completed.ExecutionID {
			_, err = e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID})
			require.NoError(t, err)
			done = true
		}
	}
	require.True(t, done, "e-completed was claimed and completed")

	// then
	require.Equal(t, []string{waiting.ExecutionID}, tagRows(t, plain, "t"))
	require.Equal(t, []string{waiting.ExecutionID}, tagRows(t, plain, "u"))
	list, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 10, Tag: "t"})
	require.NoError(t, err)
	require.Len(t, list.Executions, 1)
	require.Equal(t, waiting.ExecutionID, list.Executions[0].ExecutionID)
	require.Equal(t, []string{"t", "u"}, list.Executions[0].Tags)
}

// Given 20,000 suspended executions of which 40 carry tag "rare", a page of
// list_suspended by "rare" reads a range of the tag index
// ff_suspension_tags_page and the executions it names, never every
// suspended execution: its plan holds no sequential scan, and paging by
// the engine visits exactly the 40, in list order.
func TestListByTagReadsMatchingRowsOnly(t *testing.T) {
	e, plain := newEngine(t)
	ctx := context.Background()
	c := connect(t, plain)
	_, err := c.Exec(ctx, `INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, condition, waitpoint_count, tags)
		SELECT 'wait-' || lpad(i::text, 5, '0'), 'suspended', gen_random_uuid(), i, 'any', 1,
		       CASE WHEN i % 500 = 0 THEN ARRAY['rare', 'common'] ELSE ARRAY['common'] END
		FROM generate_series(1, 20000) i`)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `INSERT INTO ff_suspension_tags (execution_id, tag, suspended_at_ms)
		SELECT execution_id, unnest(tags), suspended_at_ms FROM ff_executions`)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `ANALYZE ff_executions; ANALYZE ff_suspension_tags`)
	require.NoError(t, err)

	// when
	var plan strings.Builder
	rows, err := c.Query(ctx, `EXPLAIN `+postgres.ListByTagSQL, int64(-1), "", 101, "rare")
	require.NoError(t, err)
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan.WriteString(line + "\n")
	}
	require.NoError(t, rows.Err())
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		require.Less(t, page, 10)
		list, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 7, Cursor: cursor, Tag: "rare"})
		require.NoError(t, err)
		for _, x := range list.Executions {
			got = append(got, x.ExecutionID)
			require.Equal(t, []string{"rare", "common"}, x.Tags)
		}
		if list.NextCursor == nil {
			break
		}
		cursor = *list.NextCursor
	}

	// then
	require.Contains(t, plan.String(), "ff_suspension_tags_page", "plan:\n%s", plan.String())
	require.NotContains(t, plan.String(), "Seq Scan", "plan:\n%s", plan.String())
	var want []string
	for i := 500; i <= 20000; i += 500 {
		want = append(want, fmt.Sprintf("wait-%05d", i))
	}
	require.Equal(t, want, got)
}

// expirePending moves the expiry of pending waitpoint id into the past of
// the server's clock, as time passing would.
func expirePending(t *testing.T, rawURL, id string) {
	t.Helper()
	_, err := connect(t, rawURL).Exec(context.Background(),
		`UPDATE ff_waitpoints SET expires_at_ms = floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1000 WHERE waitpoint_id = $1`, id)
	require.NoError(t, err)
}

// Given executions in state none whose pending waitpoints all expired (the
// expiry moved into the past in the table), then a delivery to one is
// waitpoint_closed and get_waitpoint answers expired; a suspend naming it
// and a create_waitpoint with a lease fail and forget nothing; the next
// create_waitpoint forgets the execution first (its old waitpoint is
// waitpoint_not_found, its token signature_mismatch), and so does the next
// suspend, idempotency records and kept signals included (docs/spec.md
// §8.1, Forgetting).
func TestExpiredPendingExecutionIsForgottenByTheNextWrite(t *testing.T) {
	e, plain := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	ctx := context.Background()
	hour := int64(3_600_000)
	p, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "x-1", Key: "approve", ExpiresInMs: hour})
	require.NoError(t, err)
	expirePending(t, plain, p.WaitpointID)

	_, err = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "x-1", WaitpointID: p.WaitpointID, Token: p.Token, Name: "late"})
	require.ErrorIs(t, err, contracts.ErrWaitpointClosed)
	info, err := e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "x-1", WaitpointID: p.WaitpointID})
	require.NoError(t, err)
	require.Equal(t, contracts.WaitpointExpired, info.Status)
	_, err = e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "x-1", Waitpoints: []contracts.WaitpointSpec{{Pending: p.WaitpointID}}})
	require.ErrorIs(t, err, contracts.ErrPendingWaitpointUnavailable)
	lease := "00000000-0000-4000-8000-000000000001"
	_, err = e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "x-1", Key: "other", ExpiresInMs: hour, LeaseID: &lease})
	require.ErrorIs(t, err, contracts.ErrLeaseMismatch)
	_, err = e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "x-1", WaitpointID: p.WaitpointID})
	require.NoError(t, err, "failed calls forget nothing")

	_, err = e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "x-1", Key: "approve", ExpiresInMs: hour})
	require.NoError(t, err)
	_, err = e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "x-1", WaitpointID: p.WaitpointID})
	require.ErrorIs(t, err, contracts.ErrWaitpointNotFound)
	_, err = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "x-1", WaitpointID: p.WaitpointID, Token: p.Token, Name: "late"})
	require.ErrorIs(t, err, contracts.ErrSignatureMismatch)

	// an already_satisfied suspension, its record and its signal, forgotten
	// by the next suspend once the pending waitpoint expired
	q, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "x-2", Key: "approve", ExpiresInMs: hour})
	require.NoError(t, err)
	_, err = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "x-2", WaitpointID: q.WaitpointID, Token: q.Token, Name: "early"})
	require.NoError(t, err)
	args := contracts.SuspendArgs{ExecutionID: "x-2", Waitpoints: []contracts.WaitpointSpec{{Pending: q.WaitpointID}}, IdempotencyKey: "once"}
	sat, err := e.Suspend(ctx, args)
	require.NoError(t, err)
	require.Equal(t, contracts.OutcomeAlreadySatisfied, sat.Outcome)
	expirePending(t, plain, q.WaitpointID)
	fresh, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "x-2", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, IdempotencyKey: "once"})
	require.NoError(t, err, "the record of the forgotten execution no longer holds the key")
	require.Equal(t, contracts.OutcomeSuspended, fresh.Outcome)
	obs, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "x-2", Limit: 10})
	require.NoError(t, err)
	require.Equal(t, fresh.SuspensionID, obs.SuspensionID)
	require.Empty(t, obs.Signals)
	var left int
	require.NoError(t, connect(t, plain).QueryRow(ctx, `SELECT (SELECT count(*) FROM ff_waitpoints WHERE waitpoint_id = $1)
		+ (SELECT count(*) FROM ff_signals WHERE execution_id = 'x-2')`, q.WaitpointID).Scan(&left))
	require.Zero(t, left, "the old waitpoint and its signal are forgotten")
}
