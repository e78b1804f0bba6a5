package postgres_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// kidA is the current kid of the stores written by hand below (secret(1)).
var kidA = driver.KidRecord{Kid: "kid-a", Secret: secret(1)}

// suspend7 writes a suspension as the driver at schema 0007 did (its
// insertExecutionSQL or resuspendSQL, insertWaitpointsSQL, insertTagsSQL and
// insertSuspendRequestSQL, ids as text): the execution, suspended; its
// waitpoints with their token fingerprints and tags; its tag rows; and its
// idempotency record without tokens when args has a key.
func suspend7(t *testing.T, c *pgx.Conn, args contracts.SuspendArgs, nowMs int64) contracts.SuspendOutcome {
	t.Helper()
	ctx := context.Background()
	out := driver.NewSuspension(args, kidA, nowMs)
	_, err := c.Exec(ctx, `INSERT INTO ff_executions
    (execution_id, state, suspension_id, suspended_at_ms, timeout_at_ms, condition, waitpoint_count, tags)
VALUES ($1, 'suspended', $2, $3, $4, $5, $6, $7)
ON CONFLICT (execution_id) DO UPDATE SET state = 'suspended', suspension_id = $2, suspended_at_ms = $3, timeout_at_ms = $4,
    condition = $5, waitpoint_count = $6, tags = $7, signal_count = 0, signaled_count = 0, payload_bytes = 0,
    lease_id = NULL, lease_expires_at_ms = NULL, reason = NULL`,
		args.ExecutionID, out.SuspensionID, out.SuspendedAtMs, out.TimeoutAtMs, out.Condition, len(out.Waitpoints), out.Tags)
	require.NoError(t, err)
	var ids, keys, fps []string
	for _, w := range out.Waitpoints {
		ids, keys, fps = append(ids, w.WaitpointID), append(keys, w.WaitpointKey), append(fps, driver.TokenFingerprint(w.Token))
	}
	_, err = c.Exec(ctx, `INSERT INTO ff_waitpoints (waitpoint_id, waitpoint_key, token_fingerprint, execution_id, suspension_id,
                           created_at_ms, timeout_at_ms, tags)
SELECT w.id, w.key, w.fp, $4, $5, $6, $7, $8 FROM unnest($1::text[], $2::text[], $3::text[]) AS w(id, key, fp)`,
		ids, keys, fps, args.ExecutionID, out.SuspensionID, nowMs, out.TimeoutAtMs, out.Tags)
	require.NoError(t, err)
	if len(out.Tags) > 0 {
		_, err = c.Exec(ctx, `INSERT INTO ff_suspension_tags (execution_id, tag, suspended_at_ms) SELECT $1, t, $2 FROM unnest($3::text[]) AS t`,
			args.ExecutionID, nowMs, out.Tags)
		require.NoError(t, err)
	}
	if args.IdempotencyKey != "" {
		stored, err := driver.StoredSuspendOutcome(out)
		require.NoError(t, err)
		_, err = c.Exec(ctx, `INSERT INTO ff_suspend_requests (execution_id, idempotency_key, fingerprint, outcome) VALUES ($1, $2, $3, $4)`,
			args.ExecutionID, args.IdempotencyKey, args.Fingerprint(), stored)
		require.NoError(t, err)
	}
	return out
}

// pending7 writes a pending waitpoint of executionID as create_waitpoint at
// schema 0007 did (insertPendingSQL), the execution remembered by the
// caller.
func pending7(t *testing.T, c *pgx.Conn, args contracts.CreateWaitpointArgs, nowMs int64) contracts.CreateWaitpointOutcome {
	t.Helper()
	out := driver.NewPendingWaitpoint(args, kidA, nowMs)
	_, err := c.Exec(context.Background(), `INSERT INTO ff_waitpoints (waitpoint_id, waitpoint_key, execution_id, suspension_id, created_at_ms,
                           expires_at_ms, token_fingerprint, tags)
VALUES ($1, $2, $3, NULL, $4, $5, $6, $7)`,
		out.WaitpointID, out.WaitpointKey, args.ExecutionID, out.CreatedAtMs, out.ExpiresAtMs, driver.TokenFingerprint(out.Token), out.Tags)
	require.NoError(t, err)
	return out
}

// signal7 records a signal on waitpoint w of executionID as deliver_signal
// at schema 0007 did (recordSignalSQL, or recordPendingSQL when
// suspensionID is empty: kept without suspension nor ordinal), counted on
// the execution and the waitpoint; resumes sets the state resumed.
func signal7(t *testing.T, c *pgx.Conn, executionID, suspensionID, waitpointID, key, idem, payload string, resumes bool, nowMs int64) string {
	t.Helper()
	var p []byte
	if payload != "" {
		p = []byte(payload)
	}
	var susp, idemp *string
	if suspensionID != "" {
		susp = &suspensionID
	}
	if idem != "" {
		idemp = &idem
	}
	id := driver.NewID()
	_, err := c.Exec(context.Background(), `WITH e AS (
    UPDATE ff_executions SET next_seq = next_seq + 1,
        signal_count = signal_count + CASE WHEN $3::text IS NULL THEN 0 ELSE 1 END,
        signaled_count = signaled_count + CASE WHEN $3::text IS NULL THEN 0 ELSE
            (SELECT CASE WHEN signal_count = 0 THEN 1 ELSE 0 END FROM ff_waitpoints WHERE waitpoint_id = $4) END,
        payload_bytes = payload_bytes + CASE WHEN $3::text IS NULL THEN 0 ELSE coalesce(octet_length($7::bytea), 0) END,
        state = CASE WHEN $9 THEN 'resumed' ELSE state END
    WHERE execution_id = $2 RETURNING next_seq, signal_count - 1 AS ordinal
), w AS (
    UPDATE ff_waitpoints SET signal_count = signal_count + 1, payload_bytes = payload_bytes + coalesce(octet_length($7::bytea), 0)
    WHERE waitpoint_id = $4
)
INSERT INTO ff_signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key, seq, name, payload, idempotency_key,
                        delivered_at_ms, ordinal)
SELECT $1, $2, $3, $4, $5, e.next_seq, 'old', $7, $6, $8, CASE WHEN $3::text IS NULL THEN NULL ELSE e.ordinal END FROM e`,
		id, executionID, susp, waitpointID, key, idemp, p, nowMs, resumes)
	require.NoError(t, err)
	if resumes {
		_, err = c.Exec(context.Background(), `DELETE FROM ff_suspension_tags WHERE execution_id = $1`, executionID)
		require.NoError(t, err)
	}
	return id
}

// Given a schema at version 0007 holding what its driver wrote (a
// suspension with tags, an idempotency record and a signal with an
// idempotency key; a claimed execution with a closed earlier suspension and
// a pending waitpoint holding a buffered signal; a resumed execution), when
// 0008 is applied, then the store answers as before: list_suspended (by tag
// too), the replay, a duplicate and a resuming delivery with tokens issued
// before, observe_signals, get_waitpoint and describe_execution (token
// fingerprints and tags as written), a delivery to the pending waitpoint
// and a suspend that uses it, claims in claim order with their signals, and
// complete.
func TestMigration0008UpgradesDataAt0007(t *testing.T) {
	ctx := context.Background()
	plain := schemaURL(t)
	c := connect(t, plain)
	migrateTo(t, c, 7)
	_, err := c.Exec(ctx, `INSERT INTO ff_keys (kid, secret, installed_at_ms, expires_at_ms) VALUES ('kid-a', $1, 0, NULL)`, []byte(secret(1)))
	require.NoError(t, err)
	nowMs := time.Now().UnixMilli()
	hour := int64(3_600_000)

	// exec-3: resumed by a signal, the oldest.
	out3 := suspend7(t, c, contracts.SuspendArgs{ExecutionID: "exec-3", Condition: contracts.ConditionAny,
		Waitpoints: []contracts.WaitpointSpec{{Key: "z"}}}, nowMs-3000)
	sig3 := signal7(t, c, "exec-3", out3.SuspensionID, out3.Waitpoints[0].WaitpointID, "z", "", `{"z":3}`, true, nowMs-2900)
	// exec-1: suspended on a and b (all), tagged, with a record and a
	// signal on a under idempotency key k1.
	args1 := contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAll, Waitpoints: twoWaitpoints,
		IdempotencyKey: "idem-1", Tags: []string{"vip"}}
	out1 := suspend7(t, c, args1, nowMs-2000)
	a1, b1 := out1.Waitpoints[0], out1.Waitpoints[1]
	sigA := signal7(t, c, "exec-1", out1.SuspensionID, a1.WaitpointID, "a", "k1", `{"n":1}`, false, nowMs-1900)
	// exec-2: an earlier suspension resumed by a signal on x and claimed
	// under lease2, then a pending waitpoint p holding a buffered signal.
	earlier := suspend7(t, c, contracts.SuspendArgs{ExecutionID: "exec-2", Condition: contracts.ConditionAny,
		Waitpoints: []contracts.WaitpointSpec{{Key: "x"}}}, nowMs-1000)
	sigX := signal7(t, c, "exec-2", earlier.SuspensionID, earlier.Waitpoints[0].WaitpointID, "x", "", "", true, nowMs-900)
	lease2 := driver.NewID()
	_, err = c.Exec(ctx, `UPDATE ff_executions SET state = 'claimed', lease_id = $1, lease_expires_at_ms = $2, reason = 'signal'
		WHERE execution_id = 'exec-2'`, lease2, nowMs+hour)
	require.NoError(t, err)
	p := pending7(t, c, contracts.CreateWaitpointArgs{ExecutionID: "exec-2", Key: "mail", ExpiresInMs: hour, LeaseID: &lease2,
		Tags: []string{"mail"}}, nowMs-800)
	sigP := signal7(t, c, "exec-2", "", p.WaitpointID, "mail", "", `"early"`, false, nowMs-700)

	// when
	applied, err := engine.Migrate(ctx, plain)
	require.NoError(t, err)
	require.Equal(t, []string{"0008_compact_rows"}, applied)

	// then list_suspended shows exec-1 with its tags, by tag too
	e := engine.New(openURL(t, plain))
	for _, tag := range []string{"", "vip"} {
		list, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 10, Tag: tag})
		require.NoError(t, err)
		require.Equal(t, []contracts.SuspendedExecution{{ExecutionID: "exec-1", SuspensionID: out1.SuspensionID,
			SuspendedAtMs: nowMs - 2000, Waitpoints: 2, Tags: []string{"vip"}}}, list.Executions, "tag %q", tag)
	}

	// and the replay answers the first outcome, its tokens signed again
	again, err := e.Suspend(ctx, args1)
	require.NoError(t, err)
	require.Equal(t, out1, again)

	// and deliveries with the tokens issued before: a duplicate, then the
	// signal that resumes exec-1
	dup, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: a1.WaitpointID, Token: a1.Token,
		Name: "again", IdempotencyKey: "k1"})
	require.NoError(t, err)
	require.Equal(t, contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: sigA}, dup)
	res, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: b1.WaitpointID, Token: b1.Token, Name: "new"})
	require.NoError(t, err)
	require.True(t, res.Resumed)
	requireExactCounters(t, readBudget(t, plain, "exec-1"))
	obs, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "exec-1", Limit: 1})
	require.NoError(t, err)
	require.Equal(t, out1.SuspensionID, obs.SuspensionID)
	require.Len(t, obs.Signals, 1)
	require.Equal(t, contracts.Signal{SignalID: sigA, WaitpointID: a1.WaitpointID, WaitpointKey: "a", Name: "old",
		Payload: json.RawMessage(`{"n":1}`), IdempotencyKey: "k1", DeliveredAtMs: nowMs - 1900}, obs.Signals[0])
	require.NotNil(t, obs.NextCursor)
	obs, err = e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "exec-1", Limit: 1, Cursor: *obs.NextCursor})
	require.NoError(t, err)
	require.Len(t, obs.Signals, 1)
	require.Equal(t, res.SignalID, obs.Signals[0].SignalID)
	require.Nil(t, obs.NextCursor)

	// and exec-2's waitpoints read as written: the earlier one closed, the
	// pending one with its fingerprint, tags and buffered signal (describe
	// shows the waitpoints of its latest suspension, claimed, too)
	x, err := e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "exec-2", WaitpointID: earlier.Waitpoints[0].WaitpointID})
	require.NoError(t, err)
	fpX := driver.TokenFingerprint(earlier.Waitpoints[0].Token)
	require.Equal(t, contracts.WaitpointInfo{ExecutionID: "exec-2", WaitpointID: earlier.Waitpoints[0].WaitpointID, WaitpointKey: "x",
		Status: contracts.WaitpointClosed, CreatedAtMs: nowMs - 1000, Signals: 1, TokenFingerprint: &fpX, Tags: []string{}}, x)
	d2, err := e.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: "exec-2"})
	require.NoError(t, err)
	require.Equal(t, contracts.StateClaimed, d2.State)
	require.Equal(t, earlier.SuspensionID, *d2.SuspensionID)
	require.Equal(t, []string{}, d2.Tags)
	fpP := driver.TokenFingerprint(p.Token)
	expiresP := p.ExpiresAtMs
	require.Equal(t, []contracts.WaitpointInfo{x,
		{ExecutionID: "exec-2", WaitpointID: p.WaitpointID, WaitpointKey: "mail", Status: contracts.WaitpointPending,
			CreatedAtMs: nowMs - 800, ExpiresAtMs: &expiresP, Signals: 1, TokenFingerprint: &fpP, Tags: []string{"mail"}},
	}, d2.Waitpoints)

	// and the pending waitpoint takes a signal with its token, and exec-2
	// suspends on it under its lease, its signals joining the suspension
	sigP2, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-2", WaitpointID: p.WaitpointID, Token: p.Token, Name: "later"})
	require.NoError(t, err)
	require.False(t, sigP2.Resumed)
	s2, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-2", LeaseID: &lease2, Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Pending: p.WaitpointID}, {Key: "y"}}})
	require.NoError(t, err)
	require.Equal(t, contracts.OutcomeSuspended, s2.Outcome)
	require.Equal(t, p.Token, s2.Waitpoints[0].Token)
	obs2, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "exec-2", Limit: 10})
	require.NoError(t, err)
	var got []string
	for _, s := range obs2.Signals {
		got = append(got, s.SignalID)
	}
	require.Equal(t, []string{sigP, sigP2.SignalID}, got)
	requireExactCounters(t, readBudget(t, plain, "exec-2"))

	// and claims take exec-3, then exec-1, with their signals, and complete
	cl3, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
	require.NoError(t, err)
	require.Equal(t, "exec-3", cl3.ExecutionID)
	require.Equal(t, out3.SuspensionID, cl3.SuspensionID)
	require.Len(t, cl3.Signals, 1)
	require.Equal(t, sig3, cl3.Signals[0].SignalID)
	require.Equal(t, out3.Waitpoints[0].WaitpointID, cl3.Signals[0].WaitpointID)
	cl1, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
	require.NoError(t, err)
	require.Equal(t, "exec-1", cl1.ExecutionID)
	require.Len(t, cl1.Signals, 2)
	for _, cl := range []contracts.ClaimOutcome{cl3, cl1} {
		_, err := e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: cl.ExecutionID, LeaseID: cl.LeaseID})
		require.NoError(t, err)
	}
	_, err = e.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: "exec-1"})
	require.ErrorIs(t, err, contracts.ErrExecutionNotFound)
	counts, err := e.CountExecutions(ctx, contracts.CountExecutionsArgs{})
	require.NoError(t, err)
	require.Equal(t, contracts.ExecutionCounts{Suspended: 1}, counts)
	var left int
	require.NoError(t, c.QueryRow(ctx, `SELECT count(*) FROM ff_signals WHERE signal_id = $1`, sigX).Scan(&left))
	require.Equal(t, 1, left, "exec-2's earlier signals stay until it completes")
}

// hostileIDs are strings a caller may send where a waitpoint id or a
// suspension id is expected, none of them a UUID in canonical lowercase
// form; "%s" stands for an existing waitpoint's id.
var hostileIDs = []string{
	"nonsense", "", "'; DELETE FROM ff_waitpoints; --", "00000000-0000-0000-0000-00000000000g",
	"%upper", "{%s}", "%nohyphens", "%s ", " %s", "%s\u00a0",
}

// hostile turns a template of hostileIDs into the string it stands for
// around the existing waitpoint id w.
func hostile(template, w string) string {
	switch template {
	case "%upper":
		return strings.ToUpper(w)
	case "%nohyphens":
		return strings.ReplaceAll(w, "-", "")
	}
	return strings.ReplaceAll(template, "%s", w)
}

// requireContractError checks that err is the contract error want, with
// the same detail once the quoted id stands for the quoted unknownID, and
// that it did not come from the server (no PgError inside): nothing of the
// input reached a uuid cast.
func requireContractError(t *testing.T, want, err error, id, unknownID string) {
	t.Helper()
	var got, w *contracts.Error
	require.True(t, errors.As(err, &got), "%v", err)
	require.True(t, errors.As(want, &w), "%v", want)
	require.Equal(t, w.Kind, got.Kind)
	require.Equal(t, w.Code, got.Code)
	require.Equal(t, w.Reason, got.Reason)
	require.Equal(t, w.Detail, strings.ReplaceAll(got.Detail, strconv.Quote(id), strconv.Quote(unknownID)))
	var pe *pgconn.PgError
	require.False(t, errors.As(err, &pe), "a server error: %v", err)
}

// requireNotHolding checks that err's text does not hold id.
func requireNotHolding(t *testing.T, err error, id string) {
	t.Helper()
	if id = strings.TrimSpace(id); id != "" {
		require.NotContains(t, err.Error(), id)
	}
}

// Given a store with a suspended execution holding a signal and an
// execution holding a pending waitpoint, when the driver is called directly
// (no Engine validation) with ids that are not UUIDs in canonical lowercase
// form where a waitpoint id or a suspension id is expected (deliver_signal,
// get_waitpoint, a suspend's pending item, an observe_signals cursor),
// then each answers what the same call answers for a well-formed unknown
// id (the same error, the input in place of the id where the detail names
// it, as it does today), none answers from a server error (whose text
// would hold the input), deliver_signal's and observe_signals' errors do
// not hold the input, and the store is unchanged; in particular an
// upper-case or otherwise altered form of an existing waitpoint's id does
// not find it.
func TestNonUUIDIdsAnswerAsUnknownAndChangeNothing(t *testing.T) {
	ctx := context.Background()
	e, plain := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	b := openURL(t, plain)
	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAll, Waitpoints: twoWaitpoints})
	require.NoError(t, err)
	w := s.Waitpoints[0]
	_, err = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: w.WaitpointID, Token: w.Token, Name: "one"})
	require.NoError(t, err)
	p, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "exec-2", Key: "mail", ExpiresInMs: 3_600_000})
	require.NoError(t, err)
	before := rawSchema(t, plain)
	unknown := driver.NewID()

	type target struct{ executionID, waitpointID, token string }
	deliver := func(x target, id string) error {
		_, err := b.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: x.executionID, WaitpointID: id, Token: x.token, Name: "n", IdempotencyKey: "i"})
		return err
	}
	get := func(x target, id string) error {
		_, err := b.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: x.executionID, WaitpointID: id})
		return err
	}
	usePending := func(id string) error {
		_, err := b.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-2", Condition: contracts.ConditionAny,
			Waitpoints: []contracts.WaitpointSpec{{Pending: id}}})
		return err
	}
	observe := func(id string) error {
		cursor := base64.RawURLEncoding.EncodeToString([]byte("s1:1:" + id))
		_, err := b.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "exec-1", Limit: 10, Cursor: cursor})
		return err
	}
	for _, x := range []target{{"exec-1", w.WaitpointID, w.Token}, {"exec-2", p.WaitpointID, p.Token}} {
		wantDeliver, wantGet, wantPending := deliver(x, unknown), get(x, unknown), usePending(unknown)
		require.ErrorIs(t, wantDeliver, contracts.ErrInvalidToken)
		require.ErrorIs(t, wantGet, contracts.ErrWaitpointNotFound)
		require.ErrorIs(t, wantPending, contracts.ErrPendingWaitpointUnavailable)
		for _, template := range hostileIDs {
			id := hostile(template, x.waitpointID)
			t.Run(x.executionID+"/"+template, func(t *testing.T) {
				err := deliver(x, id)
				requireContractError(t, wantDeliver, err, id, unknown)
				requireNotHolding(t, err, id)
				requireContractError(t, wantGet, get(x, id), id, unknown)
				if id != "" { // an item without pending is a new key
					requireContractError(t, wantPending, usePending(id), id, unknown)
				}
				err = observe(id)
				require.ErrorIs(t, err, contracts.ErrInvalidInput)
				requireNotHolding(t, err, id)
			})
		}
	}
	require.Equal(t, string(before), string(rawSchema(t, plain)), "the store changed")
}
