package postgres_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// migrateTo applies the binary's migrations up to version (inclusive) to
// the schema of rawURL and records them, as a binary of that version did.
func migrateTo(t *testing.T, c *pgx.Conn, version int) {
	t.Helper()
	ctx := context.Background()
	_, err := c.Exec(ctx, postgres.CreateMigrationsTableSQL)
	require.NoError(t, err)
	for _, m := range allMigrations(t)[:version] {
		_, err := c.Exec(ctx, m.SQL)
		require.NoError(t, err, "migration %04d", m.Version)
		_, err = c.Exec(ctx, postgres.RecordMigrationSQL, m.Version, m.Name, m.Checksum)
		require.NoError(t, err)
	}
}

// oldSuspension writes a suspension as the driver at schema 0003 did: the
// execution row (created, or moved to the new latest suspension), the
// waitpoints, and the idempotency record with whole tokens when idem is
// set. It returns the outcome, signed by kid-a (secret(1)).
func oldSuspension(t *testing.T, c *pgx.Conn, args contracts.SuspendArgs, nowMs int64, idem bool) contracts.SuspendOutcome {
	t.Helper()
	ctx := context.Background()
	out := driver.NewSuspension(args, driver.KidRecord{Kid: "kid-a", Secret: secret(1)}, nowMs)
	_, err := c.Exec(ctx, `INSERT INTO ff_executions (execution_id, state, suspension_id, suspended_at_ms, timeout_at_ms, condition, waitpoint_count)
		VALUES ($1, 'suspended', $2, $3, $4, $5, $6)
		ON CONFLICT (execution_id) DO UPDATE SET state = 'suspended', suspension_id = $2, suspended_at_ms = $3,
		    timeout_at_ms = $4, condition = $5, waitpoint_count = $6, signal_count = 0, signaled_count = 0,
		    lease_id = NULL, lease_expires_at_ms = NULL, reason = NULL`,
		args.ExecutionID, out.SuspensionID, nowMs, out.TimeoutAtMs, out.Condition, len(out.Waitpoints))
	require.NoError(t, err)
	for _, w := range out.Waitpoints {
		_, err := c.Exec(ctx, `INSERT INTO ff_waitpoints (waitpoint_id, waitpoint_key, execution_id, suspension_id, created_at_ms)
			VALUES ($1, $2, $3, $4, $5)`, w.WaitpointID, w.WaitpointKey, args.ExecutionID, out.SuspensionID, nowMs)
		require.NoError(t, err)
	}
	if idem {
		whole, err := json.Marshal(out)
		require.NoError(t, err)
		_, err = c.Exec(ctx, `INSERT INTO ff_suspend_requests (execution_id, idempotency_key, fingerprint, outcome) VALUES ($1, $2, $3, $4)`,
			args.ExecutionID, args.IdempotencyKey, args.Fingerprint(), whole)
		require.NoError(t, err)
	}
	return out
}

// oldSignal records a signal on w as the driver at schema 0003 did, counting
// it on the execution and the waitpoint; payload "" is none.
func oldSignal(t *testing.T, c *pgx.Conn, out contracts.SuspendOutcome, w contracts.WaitpointOutcome, payload string, nowMs int64) string {
	t.Helper()
	var p []byte
	if payload != "" {
		p = []byte(payload)
	}
	id := driver.NewID()
	_, err := c.Exec(context.Background(), `WITH e AS (
		UPDATE ff_executions SET next_seq = next_seq + 1, signal_count = signal_count + 1,
		    signaled_count = signaled_count + (SELECT CASE WHEN signal_count = 0 THEN 1 ELSE 0 END FROM ff_waitpoints WHERE waitpoint_id = $4)
		WHERE execution_id = $2 RETURNING next_seq
	), w AS (UPDATE ff_waitpoints SET signal_count = signal_count + 1 WHERE waitpoint_id = $4)
	INSERT INTO ff_signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key, seq, name, payload, delivered_at_ms)
	SELECT $1, $2, $3, $4, $5, e.next_seq, 'old', $6, $7 FROM e`,
		id, out.ExecutionID, out.SuspensionID, w.WaitpointID, w.WaitpointKey, p, nowMs)
	require.NoError(t, err)
	return id
}

// Given a schema at version 0003 holding executions, signals of an earlier
// and of the latest suspension, and an idempotency record with whole
// tokens, when 0004 is applied, then the budget counters and the ordinals
// are filled from the rows, the record keeps the kids but no MAC, the
// replay answers the first outcome, deliveries are checked against the
// budget used before the upgrade, observe_signals pages through the
// signals, and a record written with whole tokens after the upgrade (by a
// process of the previous version) still replays.
func TestMigration0004UpgradesDataAt0003(t *testing.T) {
	ctx := context.Background()
	plain := schemaURL(t)
	c := connect(t, plain)
	migrateTo(t, c, 3)
	_, err := c.Exec(ctx, `INSERT INTO ff_keys (kid, secret, installed_at_ms, expires_at_ms) VALUES ('kid-a', $1, 0, NULL)`, []byte(secret(1)))
	require.NoError(t, err)
	nowMs := time.Now().UnixMilli()

	// exec-1: an earlier suspension with two signals, claimed, then the
	// latest one ("all" of a and b) with three signals on a.
	earlier := oldSuspension(t, c, contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAny,
		Waitpoints: []contracts.WaitpointSpec{{Key: "x"}}}, nowMs-1000, false)
	oldSignal(t, c, earlier, earlier.Waitpoints[0], `{"old":1}`, nowMs-900)
	oldSignal(t, c, earlier, earlier.Waitpoints[0], `{"old":22}`, nowMs-800)
	_, err = c.Exec(ctx, `UPDATE ff_executions SET state = 'claimed', lease_id = 'l', lease_expires_at_ms = 0, reason = 'signal'
		WHERE execution_id = 'exec-1'`)
	require.NoError(t, err)
	args1 := contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAll, Waitpoints: twoWaitpoints, IdempotencyKey: "idem-1"}
	out1 := oldSuspension(t, c, args1, nowMs, true)
	latest := []string{`{"i":1}`, "", `"twelve----"`} // 7 + 0 + 12 bytes
	var ids []string
	for _, p := range latest {
		ids = append(ids, oldSignal(t, c, out1, out1.Waitpoints[0], p, nowMs))
	}
	// exec-2: suspended, no signal; its record is written after the upgrade.
	args2 := contracts.SuspendArgs{ExecutionID: "exec-2", Condition: contracts.ConditionAny, Waitpoints: twoWaitpoints, IdempotencyKey: "idem-2"}
	out2 := oldSuspension(t, c, args2, nowMs, false)
	before := rawSchema(t, plain)
	require.True(t, rawHolds(before, out1.Waitpoints[0].Token), "positive control: the record at 0003 holds whole tokens")

	// when
	applied, err := engine.Migrate(ctx, plain)
	require.NoError(t, err)
	require.Equal(t, []string{"0004_signal_budgets", "0005_lifecycle_v2", "0006_revoked_kids", "0007_claim_order", "0008_compact_rows"}, applied)

	// then the counters and ordinals are those of the rows
	b := readBudget(t, plain, "exec-1")
	requireExactCounters(t, b)
	require.Equal(t, int64(19), b.PayloadBytes)
	require.Equal(t, []int64{0, 1, 2}, b.Ordinals)
	var earlierOrdinals []int64
	require.NoError(t, c.QueryRow(ctx, `SELECT array_agg(ordinal ORDER BY seq) FROM ff_signals WHERE suspension_id = $1`,
		earlier.SuspensionID).Scan(&earlierOrdinals))
	require.Equal(t, []int64{0, 1}, earlierOrdinals)
	requireExactCounters(t, readBudget(t, plain, "exec-2"))

	// and the record holds the kids, no token and no MAC
	raw := rawSchema(t, plain)
	requireNoToken(t, raw, out1)
	require.True(t, rawHolds(raw, `"token":"kid-a"`))

	// and the replay answers the first outcome, with its tokens
	limits := contracts.SignalLimits{PerWaitpoint: 3, PayloadBytes: 19 + 10}
	e := engine.New(openURL(t, plain), engine.WithSignalLimits(limits))
	again, err := e.Suspend(ctx, args1)
	require.NoError(t, err)
	require.Equal(t, out1, again)

	// and deliveries are checked against the budget used before
	a, bw := out1.Waitpoints[0], out1.Waitpoints[1]
	deliver := func(w contracts.WaitpointOutcome, payload string) (contracts.DeliverSignalOutcome, error) {
		var p json.RawMessage
		if payload != "" {
			p = json.RawMessage(payload)
		}
		return e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: w.WaitpointID, Token: w.Token, Name: "new", Payload: p})
	}
	_, err = deliver(a, "")
	require.ErrorIs(t, err, contracts.ErrSignalLimitExceeded, "waitpoint a holds 3 signals, its limit")
	_, err = deliver(bw, `"123456789"`) // 11 bytes: 30 > 29
	require.ErrorIs(t, err, contracts.ErrSignalLimitExceeded, "19 payload bytes used, 29 allowed")
	out, err := deliver(bw, `"12345678"`) // 10 bytes: 29
	require.NoError(t, err)
	require.True(t, out.Resumed)
	ids = append(ids, out.SignalID)
	b = readBudget(t, plain, "exec-1")
	requireExactCounters(t, b)
	require.Equal(t, []int64{0, 1, 2, 3}, b.Ordinals)

	// and observe_signals pages through the latest suspension
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		require.Less(t, page, 3)
		o, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "exec-1", Limit: 3, Cursor: cursor})
		require.NoError(t, err)
		require.Equal(t, out1.SuspensionID, o.SuspensionID)
		for _, s := range o.Signals {
			got = append(got, s.SignalID)
		}
		if o.NextCursor == nil {
			break
		}
		cursor = *o.NextCursor
	}
	require.Equal(t, ids, got)

	// and a record with whole tokens written after the upgrade replays
	whole, err := json.Marshal(out2)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `INSERT INTO ff_suspend_requests (execution_id, idempotency_key, fingerprint, outcome) VALUES ($1, $2, $3, $4)`,
		"exec-2", "idem-2", args2.Fingerprint(), whole)
	require.NoError(t, err)
	again2, err := e.Suspend(ctx, args2)
	require.NoError(t, err)
	require.Equal(t, out2, again2)
}

// signal4 records a signal on w as the driver at schema 0004 did: at the
// next place of its suspension's delivery order, counted with its payload
// bytes on the execution and on the waitpoint. payload "" is none.
func signal4(t *testing.T, c *pgx.Conn, out contracts.SuspendOutcome, w contracts.WaitpointOutcome, payload string, nowMs int64) string {
	t.Helper()
	var p []byte
	if payload != "" {
		p = []byte(payload)
	}
	id := driver.NewID()
	_, err := c.Exec(context.Background(), `WITH e AS (
		UPDATE ff_executions SET next_seq = next_seq + 1, signal_count = signal_count + 1,
		    payload_bytes = payload_bytes + coalesce(octet_length($6::bytea), 0),
		    signaled_count = signaled_count + (SELECT CASE WHEN signal_count = 0 THEN 1 ELSE 0 END FROM ff_waitpoints WHERE waitpoint_id = $4)
		WHERE execution_id = $2 RETURNING next_seq, signal_count - 1 AS ordinal
	), w AS (UPDATE ff_waitpoints SET signal_count = signal_count + 1 WHERE waitpoint_id = $4)
	INSERT INTO ff_signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key, seq, name, payload, delivered_at_ms, ordinal)
	SELECT $1, $2, $3, $4, $5, e.next_seq, 'old', $6, $7, e.ordinal FROM e`,
		id, out.ExecutionID, out.SuspensionID, w.WaitpointID, w.WaitpointKey, p, nowMs)
	require.NoError(t, err)
	return id
}

// Given a schema at version 0004 holding an execution with an earlier
// suspension (timing out, with an idempotency record) and a latest one
// (condition all, timing out, one signal), and a claimed execution, when
// 0005 is applied, then the rows from before read as version 2 describes
// them: get_waitpoint shows no token fingerprint and no tags, the timeout
// of the latest suspension and of the earlier one (from its record) as
// expires_at_ms, and the signals counted; per-waitpoint payload bytes are
// those of the signals; list_suspended shows no tags; the old suspension
// resumes and is claimed as before; and the claimed execution takes a
// pending waitpoint under its lease, keeps a signal on it, and suspends on
// it with a count condition and a tag, listed by that tag.
func TestMigration0005UpgradesDataAt0004(t *testing.T) {
	ctx := context.Background()
	plain := schemaURL(t)
	c := connect(t, plain)
	migrateTo(t, c, 4)
	_, err := c.Exec(ctx, `INSERT INTO ff_keys (kid, secret, installed_at_ms, expires_at_ms) VALUES ('kid-a', $1, 0, NULL)`, []byte(secret(1)))
	require.NoError(t, err)
	nowMs := time.Now().UnixMilli()
	hour := int64(3_600_000)

	// exec-1: an earlier suspension timing out, with a record and a signal,
	// claimed; then the latest ("all" of a and b) with one signal on a.
	earlierTimeout := int64(5000)
	earlier := oldSuspension(t, c, contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAny,
		Waitpoints: []contracts.WaitpointSpec{{Key: "x"}}, TimeoutMs: &earlierTimeout, IdempotencyKey: "idem-0"}, nowMs-1000, true)
	signal4(t, c, earlier, earlier.Waitpoints[0], `{"old":1}`, nowMs-900)
	_, err = c.Exec(ctx, `UPDATE ff_executions SET state = 'claimed', lease_id = 'l', lease_expires_at_ms = 0, reason = 'signal'
		WHERE execution_id = 'exec-1'`)
	require.NoError(t, err)
	args1 := contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAll, Waitpoints: twoWaitpoints, TimeoutMs: &hour}
	out1 := oldSuspension(t, c, args1, nowMs, false)
	_, err = c.Exec(ctx, `UPDATE ff_executions SET payload_bytes = 0 WHERE execution_id = 'exec-1'`) // oldSuspension predates the column
	require.NoError(t, err)
	signal4(t, c, out1, out1.Waitpoints[0], `"abc"`, nowMs)
	// exec-2: claimed under lease2.
	out2 := oldSuspension(t, c, contracts.SuspendArgs{ExecutionID: "exec-2", Condition: contracts.ConditionAny,
		Waitpoints: []contracts.WaitpointSpec{{Key: "y"}}}, nowMs, false)
	lease2 := driver.NewID()
	_, err = c.Exec(ctx, `UPDATE ff_executions SET state = 'claimed', lease_id = $1, lease_expires_at_ms = $2, reason = 'signal'
		WHERE execution_id = 'exec-2'`, lease2, nowMs+hour)
	require.NoError(t, err)

	// when
	applied, err := engine.Migrate(ctx, plain)
	require.NoError(t, err)
	require.Equal(t, []string{"0005_lifecycle_v2", "0006_revoked_kids", "0007_claim_order", "0008_compact_rows"}, applied)

	// then get_waitpoint describes the waitpoints from before
	e := engine.New(openURL(t, plain))
	x, err := e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "exec-1", WaitpointID: earlier.Waitpoints[0].WaitpointID})
	require.NoError(t, err)
	require.Equal(t, contracts.WaitpointClosed, x.Status)
	require.Equal(t, earlier.TimeoutAtMs, x.ExpiresAtMs, "the earlier suspension's timeout, from its idempotency record")
	require.Nil(t, x.TokenFingerprint, "no fingerprint was kept before 0005")
	require.Equal(t, []string{}, x.Tags)
	require.Equal(t, 1, x.Signals)
	a, err := e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "exec-1", WaitpointID: out1.Waitpoints[0].WaitpointID})
	require.NoError(t, err)
	require.Equal(t, contracts.WaitpointInfo{
		ExecutionID: "exec-1", WaitpointID: out1.Waitpoints[0].WaitpointID, WaitpointKey: "a", Status: contracts.WaitpointOpen,
		CreatedAtMs: nowMs, ExpiresAtMs: out1.TimeoutAtMs, Signals: 1, Tags: []string{},
	}, a)
	var bytes []int64
	require.NoError(t, c.QueryRow(ctx, `SELECT array_agg(payload_bytes ORDER BY waitpoint_key) FROM ff_waitpoints WHERE execution_id = 'exec-1'`).Scan(&bytes))
	require.Equal(t, []int64{5, 0, 9}, bytes, "payload bytes of a, b and x")

	// and list_suspended shows the old suspension without tags
	list, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 10})
	require.NoError(t, err)
	require.Len(t, list.Executions, 1)
	require.Equal(t, "exec-1", list.Executions[0].ExecutionID)
	require.Equal(t, []string{}, list.Executions[0].Tags)

	// and the old suspension resumes and is claimed as before
	bw := out1.Waitpoints[1]
	d, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: bw.WaitpointID, Token: bw.Token, Name: "new"})
	require.NoError(t, err)
	require.True(t, d.Resumed)
	requireExactCounters(t, readBudget(t, plain, "exec-1"))
	claim, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
	require.NoError(t, err)
	require.Equal(t, "exec-1", claim.ExecutionID)
	require.Equal(t, contracts.ReasonSignal, claim.Reason)
	require.Len(t, claim.Signals, 2)

	// and the claimed execution takes a pending waitpoint under its lease
	p, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "exec-2", Key: "mail", ExpiresInMs: hour, LeaseID: &lease2, Tags: []string{"mail"}})
	require.NoError(t, err)
	sig, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "exec-2", WaitpointID: p.WaitpointID, Token: p.Token, Name: "early"})
	require.NoError(t, err)
	require.False(t, sig.Resumed)
	s2, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-2", LeaseID: &lease2, Condition: contracts.CountCondition(2),
		Waitpoints: []contracts.WaitpointSpec{{Pending: p.WaitpointID}, {Key: "y"}}, Tags: []string{"vip"}})
	require.NoError(t, err)
	require.Equal(t, contracts.OutcomeSuspended, s2.Outcome)
	require.Equal(t, p.Token, s2.Waitpoints[0].Token, "no rotation came between: the same token")
	require.NotEqual(t, out2.SuspensionID, s2.SuspensionID)
	byTag, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 10, Tag: "vip"})
	require.NoError(t, err)
	require.Len(t, byTag.Executions, 1)
	require.Equal(t, "exec-2", byTag.Executions[0].ExecutionID)
	require.Equal(t, []string{"vip"}, byTag.Executions[0].Tags)
	info, err := e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "exec-2", WaitpointID: p.WaitpointID})
	require.NoError(t, err)
	require.Equal(t, contracts.WaitpointOpen, info.Status)
	require.Equal(t, []string{"mail"}, info.Tags)
	require.NotNil(t, info.TokenFingerprint)
	require.Equal(t, driver.TokenFingerprint(p.Token), *info.TokenFingerprint)
	obs, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "exec-2", Limit: 10})
	require.NoError(t, err)
	require.Len(t, obs.Signals, 1, "the signal kept on the pending waitpoint joined the suspension")
	require.Equal(t, sig.SignalID, obs.Signals[0].SignalID)
	requireExactCounters(t, readBudget(t, plain, "exec-2"))
}

// Given one suspension holding 20,000 signals, an observe_signals page
// reads a range of the index on (suspension_id, ordinal), not the
// suspension's signals, and a page from a cursor deep into them holds the
// signals at the cursor's position; a cursor of another suspension gives an
// empty last page.
func TestObservePageIsAnIndexRange(t *testing.T) {
	// given
	e, plain := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	ctx := context.Background()
	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	require.NoError(t, err)
	w := s.Waitpoints[0]
	c := connect(t, plain)
	const n = 20000
	_, err = c.Exec(ctx, `INSERT INTO ff_signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key, seq, name, delivered_at_ms, ordinal)
		SELECT 'sig-' || i, 'exec-1', $1::uuid, $2::uuid, 'a', i + 1, 'n' || i, 0, i FROM generate_series(0, $3::int - 1) i`,
		s.SuspensionID, w.WaitpointID, n)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `UPDATE ff_executions SET signal_count = $1::int, next_seq = $1::int`, n)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `ANALYZE ff_signals`)
	require.NoError(t, err)

	// when
	var plan strings.Builder
	rows, err := c.Query(ctx, `EXPLAIN `+postgres.ObserveSQL, "exec-1", s.SuspensionID, int64(15000), 101)
	require.NoError(t, err)
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan.WriteString(line + "\n")
	}
	require.NoError(t, rows.Err())
	cursor := contracts.EncodeSignalCursor(contracts.SignalCursor{SuspensionID: s.SuspensionID, Position: 15000})
	page, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "exec-1", Limit: 3, Cursor: cursor})
	require.NoError(t, err)
	stale := contracts.EncodeSignalCursor(contracts.SignalCursor{SuspensionID: driver.NewID(), Position: 1})
	other, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "exec-1", Limit: 3, Cursor: stale})
	require.NoError(t, err)

	// then
	require.Contains(t, plan.String(), "ff_signals_suspension_ordinal", "plan:\n%s", plan.String())
	require.NotContains(t, plan.String(), "Seq Scan on ff_signals", "plan:\n%s", plan.String())
	var names []string
	for _, sig := range page.Signals {
		names = append(names, sig.Name)
	}
	require.Equal(t, []string{"n15000", "n15001", "n15002"}, names)
	require.NotNil(t, page.NextCursor)
	next, err := contracts.DecodeSignalCursor(*page.NextCursor)
	require.NoError(t, err)
	require.Equal(t, contracts.SignalCursor{SuspensionID: s.SuspensionID, Position: 15003}, next)
	require.Equal(t, s.SuspensionID, other.SuspensionID)
	require.Empty(t, other.Signals)
	require.Nil(t, other.NextCursor)
}
