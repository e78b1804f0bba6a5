package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// currentKeySQL reads the clock and the current kid (NULLs when the
// keystore is empty) in one statement.
const currentKeySQL = `SELECT n.now_ms, k.kid, k.secret
FROM (SELECT ` + nowMsExpr + ` AS now_ms) n
LEFT JOIN ff_keys k ON k.expires_at_ms IS NULL`

// insertExecutionSQL creates the execution suspended on its first
// suspension. The suspend's load found no row under the execution's lock,
// so a conflict is not expected: it fails (ff_executions_pkey) rather than
// being ignored, so that the waitpoints queued after it never land
// without their execution.
const insertExecutionSQL = `INSERT INTO ff_executions
    (execution_id, state, suspension_id, suspended_at_ms, timeout_at_ms, condition, waitpoint_count, tags)
VALUES ($1, 'suspended', $2, $3, $4, $5, $6, nullif($7::text[], '{}'))`

// suspendLoadSQL reads everything suspend decides on, in one statement:
// the clock; the current kid (NULLs when the keystore is empty); whether
// the execution is remembered and, if so, its state and lease, the
// idempotency record of (execution_id, idempotency_key) ($2 NULL: none)
// and, in state none (the empty state), the latest expires_at_ms of its
// pending waitpoints, used or not (0 without any), which decides whether
// it is forgotten first (driver.ForgetsExpiredPending). The CASE reads
// ff_waitpoints only in state none.
const suspendLoadSQL = `SELECT n.now_ms, k.kid, k.secret, e.execution_id IS NOT NULL, coalesce(e.state, ''), e.lease_id,
       r.fingerprint, r.outcome,
       CASE WHEN e.state = '' THEN ` + lastPendingExpirySQL + ` END
FROM (SELECT ` + nowMsExpr + ` AS now_ms) n
LEFT JOIN ff_keys k ON k.expires_at_ms IS NULL
LEFT JOIN ff_executions e ON e.execution_id = $1
LEFT JOIN ff_suspend_requests r ON r.execution_id = e.execution_id AND r.idempotency_key = $2`

// lastPendingExpirySQL is the latest expires_at_ms of the pending
// waitpoints, used or not, of execution e (0 without any): the top of one
// range of ff_waitpoints_pending.
const lastPendingExpirySQL = `(SELECT coalesce(max(expires_at_ms), 0) FROM ff_waitpoints
       WHERE execution_id = e.execution_id AND expires_at_ms IS NOT NULL)`

// kidSQL reads one kid's stored secret, expiry and revoked flag (no row:
// unknown or collected; no secret: revoked), for the replay of a suspend
// whose tokens another kid than the current one signed.
const kidSQL = `SELECT secret, expires_at_ms, revoked FROM ff_keys WHERE kid = $1`

// resuspendSQL suspends an existing execution on a new latest suspension,
// setting the suspension columns (its budget counters to what its pending
// waitpoints bring: $8 signals, $9 signaled waitpoints, $10 payload bytes)
// and, unless $11 (already satisfied: the state, lease and reason stay),
// the state suspended without lease or reason; next_seq continues, so
// delivery order spans suspensions.
const resuspendSQL = `UPDATE ff_executions SET
    suspension_id = $2, suspended_at_ms = $3, timeout_at_ms = $4,
    condition = $5, waitpoint_count = $6, tags = nullif($7::text[], '{}'),
    signal_count = $8, signaled_count = $9, payload_bytes = $10,
    state = CASE WHEN $11 THEN state ELSE 'suspended' END,
    lease_id = CASE WHEN $11 THEN lease_id END,
    lease_expires_at_ms = CASE WHEN $11 THEN lease_expires_at_ms END,
    reason = CASE WHEN $11 THEN reason END
WHERE execution_id = $1`

// insertWaitpointsSQL opens the suspension's new waitpoints ($1 ids, $2
// keys, $3 token fingerprints, in the same order), each with the
// suspension's timeout ($7) and tags ($8).
const insertWaitpointsSQL = `INSERT INTO ff_waitpoints (waitpoint_id, waitpoint_key, token_fingerprint, execution_id, suspension_id,
                           created_at_ms, timeout_at_ms, tags)
SELECT w.id::uuid, w.key, ff_fingerprint_in(w.fp), $4, $5, $6, $7, nullif($8::text[], '{}')
FROM unnest($1::text[], $2::text[], $3::text[]) AS w(id, key, fp)`

// usePendingSQL hands the pending waitpoints a suspend uses ($1 ids, $2
// fingerprints of the tokens the outcome holds) to suspension $3, timing
// out at $4. Their pending expiry stays: it only decides forgetting from
// now on (driver.ForgetsExpiredPending).
const usePendingSQL = `UPDATE ff_waitpoints w SET suspension_id = $3, timeout_at_ms = $4, token_fingerprint = ff_fingerprint_in(u.fp)
FROM unnest($1::text[]::uuid[], $2::text[]) AS u(id, fp)
WHERE w.waitpoint_id = u.id`

// joinBufferedSQL moves the signals kept on the pending waitpoints $3 of
// execution $2 into suspension $1, numbering them in delivery order (seq)
// from 0: they are the first signals of the suspension. It reads the
// partial index ff_signals_buffered.
const joinBufferedSQL = `UPDATE ff_signals s SET suspension_id = $1, ordinal = o.ordinal
FROM (SELECT signal_id, row_number() OVER (ORDER BY seq) - 1 AS ordinal
      FROM ff_signals WHERE execution_id = $2 AND suspension_id IS NULL AND waitpoint_id = ANY($3::text[]::uuid[])) o
WHERE s.signal_id = o.signal_id`

// insertTagsSQL lists suspended execution $1 under each of its
// suspension's tags $3, for list_suspended by tag; the rows go when the
// execution leaves state suspended (untagSQL).
const insertTagsSQL = `INSERT INTO ff_suspension_tags (execution_id, tag, suspended_at_ms)
SELECT $1, t, $2 FROM unnest($3::text[]) AS t`

// untagSQL delists execution $1 from list_suspended by tag: it leaves
// state suspended.
const untagSQL = `DELETE FROM ff_suspension_tags WHERE execution_id = $1`

// pendingSQL reads the pending waitpoints (made by create_waitpoint,
// expires_at_ms set) among ids $1, by primary key: what
// driver.CheckPendingUse decides on.
const pendingSQL = `SELECT waitpoint_id, execution_id, waitpoint_key, created_at_ms, expires_at_ms,
       suspension_id IS NOT NULL, signal_count, payload_bytes
FROM ff_waitpoints WHERE waitpoint_id = ANY (ARRAY(SELECT ff_uuid(id) FROM unnest($1::text[]) AS id)) AND expires_at_ms IS NOT NULL`

// insertSuspendRequestSQL stores a suspend outcome under its idempotency
// key, in the form driver.StoredSuspendOutcome gives: each token replaced
// by its kid, so that no table holds a token or a MAC.
const insertSuspendRequestSQL = `INSERT INTO ff_suspend_requests (execution_id, idempotency_key, fingerprint, outcome)
VALUES ($1, $2, $3, $4)`

// deliverLoadSQL reads everything deliver_signal decides on but the
// duplicate check, in one round trip: the clock; whether a current kid
// exists and the token's kid (no secret when revoked); the waitpoint if it belongs to the execution
// and its signal count; whether it is open (its suspension is the latest
// and not yet resumed) with the suspension's timeout, condition and
// counters (signals, waitpoints holding one, payload bytes: with the
// waitpoint's count, the budget of docs/spec.md §8.3), the execution's
// delivery sequence and whether its suspension has tags. For a pending
// waitpoint no suspend used (suspension_id NULL) it also reads its expiry
// and the signals and payload bytes of the execution's live pending
// waitpoints, the budget of the suspension they will join (docs/spec.md
// §8.1): counters of at most a few waitpoints, never signals. The
// execution's locks keep these stable until commit.
const deliverLoadSQL = `SELECT n.now_ms,
       EXISTS (SELECT 1 FROM ff_keys WHERE expires_at_ms IS NULL),
       k.kid IS NOT NULL, k.secret, k.expires_at_ms, coalesce(k.revoked, false),
       w.waitpoint_id IS NOT NULL, w.waitpoint_key, w.created_at_ms, w.suspension_id, w.signal_count,
       coalesce(e.suspension_id = w.suspension_id AND e.state = 'suspended', false),
       e.timeout_at_ms, e.condition, e.waitpoint_count, e.signal_count, e.signaled_count, e.payload_bytes,
       e.next_seq, coalesce(cardinality(e.tags) > 0, false), w.expires_at_ms,
       CASE WHEN w.waitpoint_id IS NOT NULL AND w.suspension_id IS NULL THEN
           (SELECT ARRAY[coalesce(sum(p.signal_count), 0), coalesce(sum(p.payload_bytes), 0)]::bigint[]
            FROM ff_waitpoints p
            WHERE p.execution_id = w.execution_id AND p.expires_at_ms >= n.now_ms AND p.suspension_id IS NULL)
       END
FROM (SELECT ` + nowMsExpr + ` AS now_ms) n
LEFT JOIN ff_keys k ON k.kid = $1
LEFT JOIN ff_waitpoints w ON w.waitpoint_id = ff_uuid($2) AND w.execution_id = $3
LEFT JOIN ff_executions e ON e.execution_id = w.execution_id`

// recordSignalSQL records an accepted signal in one statement: it inserts
// the signal at place $13 of its suspension's delivery order and, only if
// it was inserted, counts it and its $14 payload bytes on the execution
// ($11 = 1 when it is its waitpoint's first), advances the delivery
// sequence to $6, resumes the execution when $12 (state resumed, reason
// none: a signal resumed it; delisted from list_suspended by tag when $15,
// its suspension has tags), and counts it and its bytes on the waitpoint.
// The counters are the budget the next delivery reads. With
// an idempotency key the insert is also the duplicate check: the unique
// index on (waitpoint_id, idempotency_key) admits one signal per key
// whatever the isolation level, and for a key already recorded DO NOTHING
// inserts nothing and the statement answers the recorded signal
// (recordedSQL). It answers (signal_id, accepted).
const recordSignalSQL = `WITH ins AS (
    INSERT INTO ff_signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key, seq,
                            name, payload, idempotency_key, delivered_at_ms, ordinal)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $13)
    ON CONFLICT (waitpoint_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING signal_id
), e AS (
    UPDATE ff_executions
    SET next_seq = $6, signal_count = signal_count + 1, signaled_count = signaled_count + $11,
        payload_bytes = payload_bytes + $14,
        state = CASE WHEN $12 THEN 'resumed' ELSE state END,
        reason = CASE WHEN $12 THEN NULL ELSE reason END
    WHERE execution_id = $2 AND EXISTS (SELECT 1 FROM ins)
), w AS (
    UPDATE ff_waitpoints SET signal_count = signal_count + 1, payload_bytes = payload_bytes + $14
    WHERE waitpoint_id = $4 AND EXISTS (SELECT 1 FROM ins)
), t AS (
    DELETE FROM ff_suspension_tags
    WHERE $12 AND $15 AND execution_id = $2 AND EXISTS (SELECT 1 FROM ins)
)
` + recordedSQL

// recordPendingSQL records an accepted signal on a pending waitpoint no
// suspend used yet (docs/spec.md §8.1), in one statement as
// recordSignalSQL does: the signal without suspension or ordinal (it joins
// the suspension that uses the waitpoint, in delivery order), the delivery
// sequence advanced to $5, and the waitpoint's signal count and payload
// bytes ($10), which stand for its share of that suspension's budget. It
// resumes nothing. The unique index on (waitpoint_id, idempotency_key)
// makes it the duplicate check too, answered as recordSignalSQL does.
const recordPendingSQL = `WITH ins AS (
    INSERT INTO ff_signals (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key, seq,
                            name, payload, idempotency_key, delivered_at_ms, ordinal)
    VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8, $9, NULL)
    ON CONFLICT (waitpoint_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING signal_id
), e AS (
    UPDATE ff_executions SET next_seq = $5
    WHERE execution_id = $2 AND EXISTS (SELECT 1 FROM ins)
), w AS (
    UPDATE ff_waitpoints SET signal_count = signal_count + 1, payload_bytes = payload_bytes + $10
    WHERE waitpoint_id = $3 AND EXISTS (SELECT 1 FROM ins)
)
` + recordedPendingSQL

// recordedSQL ends recordSignalSQL: the inserted signal (true), or, when
// the idempotency key was recorded already (the insert did nothing), the
// signal recorded under it (false): the duplicate. The execution's lock
// orders the delivery after the one that recorded it, so the statement's
// snapshot holds that row. The second branch reads only when the first is
// empty (a one-time filter).
const recordedSQL = `SELECT signal_id, true FROM ins
UNION ALL
SELECT signal_id, false FROM ff_signals
WHERE waitpoint_id = $4 AND idempotency_key = $9 AND NOT EXISTS (SELECT 1 FROM ins)`

// recordedPendingSQL is recordedSQL for recordPendingSQL's parameters.
const recordedPendingSQL = `SELECT signal_id, true FROM ins
UNION ALL
SELECT signal_id, false FROM ff_signals
WHERE waitpoint_id = $3 AND idempotency_key = $8 AND NOT EXISTS (SELECT 1 FROM ins)`

// recordedSignalSQL finds the signal recorded under (waitpoint_id,
// idempotency_key).
const recordedSignalSQL = `SELECT signal_id FROM ff_signals WHERE waitpoint_id = $1 AND idempotency_key = $2`

// observeSQL reads the latest suspension of an execution and at most $4 of
// its signals in delivery order from place $3 on, in one statement (one
// snapshot): a range of the index on (suspension_id, ordinal). $2 is the
// cursor's suspension (NULL: no cursor); another one than the latest
// selects no signal. No row: unknown, or remembered without a suspension
// (only pending waitpoints: nothing to observe, docs/spec.md §8.1).
const observeSQL = `SELECT e.suspension_id, s.signal_id, s.waitpoint_id, s.waitpoint_key, s.name,
       s.payload, s.idempotency_key, s.delivered_at_ms
FROM ff_executions e
LEFT JOIN LATERAL (
    SELECT signal_id, waitpoint_id, waitpoint_key, name, payload, idempotency_key, delivered_at_ms, ordinal
    FROM ff_signals
    WHERE suspension_id = e.suspension_id AND ordinal >= $3 AND ($2::text IS NULL OR $2::text = e.suspension_id::text)
    ORDER BY ordinal
    LIMIT $4
) s ON true
WHERE e.execution_id = $1 AND e.suspension_id IS NOT NULL
ORDER BY s.ordinal`

// listSuspendedSQL reads one page of suspended executions strictly after
// the cursor ($1, $2), oldest first; the caller asks for one row more than
// the page to know whether another page follows.
const listSuspendedSQL = `SELECT execution_id, suspension_id, suspended_at_ms, timeout_at_ms, waitpoint_count, coalesce(tags, '{}')
FROM ff_executions
WHERE state = 'suspended' AND (suspended_at_ms, execution_id) > ($1, $2)
ORDER BY suspended_at_ms, execution_id
LIMIT $3`

// listByTagSQL is listSuspendedSQL for the executions whose suspension
// carries tag $4 (docs/spec.md §8.6): a range of ff_suspension_tags_page in
// list order, which holds the suspended executions only, so a page reads
// $3 matching rows and their executions by primary key, never the
// executions without the tag.
const listByTagSQL = `SELECT e.execution_id, e.suspension_id, e.suspended_at_ms, e.timeout_at_ms, e.waitpoint_count, coalesce(e.tags, '{}')
FROM ff_suspension_tags t
JOIN ff_executions e ON e.execution_id = t.execution_id
WHERE t.tag = $4 AND (t.suspended_at_ms, t.execution_id) > ($1, $2) AND e.state = 'suspended'
ORDER BY t.suspended_at_ms, t.execution_id
LIMIT $3`

// execGateSQL is the gate of execution writers: ROW EXCLUSIVE on
// ff_claim_lock, which does not conflict with itself, so writers pass it
// in parallel, but conflicts with the SHARE lock keystore writers take
// (lockKeysSQL): a keystore change waits for the writers in flight, and
// writers that come after it wait for it and read it. LOCK TABLE takes no
// snapshot. Claims do not pass the gate (claimSQL).
const execGateSQL = `LOCK TABLE ff_claim_lock IN ROW EXCLUSIVE MODE`

// claimSQL leases the oldest claimable execution in one statement, at one
// reading of the clock, and reads its suspension's signals (signalArraysSQL:
// a resumed, timed-out or expired-lease suspension gets no more signals,
// so the statement's snapshot holds them all). The candidates are the oldest execution of each
// claimable kind, each found through its partial index: resumed (reason
// signal, or cancelled after cancel_suspension), suspended past its
// timeout (reason timeout), claimed with an expired lease (reason kept:
// driver.ExecutionState.Claimable); the oldest of them by (suspended_at_ms,
// execution_id) is taken, and delisted from list_suspended by tag (only a
// timed-out one was listed). No row: nothing claimable.
//
// Each branch is a walk of a partial index in claim order (migration 0007:
// ff_executions_resumed, ff_executions_timeouts_by_age,
// ff_executions_leases_by_age) that stops at its first candidate, so a
// claim reads a few index entries however many executions wait. The
// timed-out and expired-lease walks check the expiry in the index entry
// and pass over the entries not yet past it; each runs only when the
// earliest expiry of its kind is past (its gate: the first entry of
// ff_executions_timeouts or ff_executions_leases, read once per statement
// on the statement's snapshot and clock; it is past exactly when some row
// of the kind is, so it changes no answer), so a claim with nothing of
// that kind to take walks nothing. Their ORDER BY ends with the expiry,
// which orders nothing (execution ids are unique) but makes the walk's
// index the only one that gives the order without a sort: the claim
// transaction prices sorts out (claimSettingsSQL), so the planner walks
// these indexes whatever its statistics say. The gates are ORDER BY ...
// LIMIT 1 rather than min() or EXISTS for the same reason: an aggregate or
// an EXISTS may be answered by a scan of another index or of the table,
// with no sort to price out. The picked execution is updated and delisted
// through scalar subqueries, read once, so each is one primary key lookup:
// as joins with pick, on statistics of an empty table (an ANALYZE before
// the executions came) the planner scanned all of ff_executions for the
// one row.
//
// Claims run at READ COMMITTED without a table lock: each candidate is
// locked FOR UPDATE SKIP LOCKED, so concurrent claims take different rows
// without waiting for one another, and a row an execution writer holds is
// skipped; a candidate changed by a transaction that committed meanwhile is
// re-checked against its branch's WHERE by the server before it is locked.
// Execution writers lock their execution's row (lockExecutionRowSQL) before
// they read it, so a claim skips a row a writer decides on, and a writer
// that comes after a claim waits for it and reads what it committed.
// claimWaitSQL is the same statement
// with plain FOR UPDATE: after a pass that skipped everything, it waits for
// the rows others hold, so a claim answers none only when nothing was
// claimable or the candidate it waited for stopped being claimable.
const claimSQL = claimSQLHead + `FOR UPDATE SKIP LOCKED` + claimSQLMid + `FOR UPDATE SKIP LOCKED` + claimSQLMid2 + `FOR UPDATE SKIP LOCKED` + claimSQLTail

const claimWaitSQL = claimSQLHead + `FOR UPDATE` + claimSQLMid + `FOR UPDATE` + claimSQLMid2 + `FOR UPDATE` + claimSQLTail

// The parts of claimSQL around its locking clauses.
const (
	claimSQLHead = `WITH n AS (SELECT ` + nowMsExpr + ` AS now_ms),
r AS (SELECT execution_id, suspended_at_ms, coalesce(reason, 'signal') AS reason FROM ff_executions
      WHERE state = 'resumed'
      ORDER BY suspended_at_ms, execution_id LIMIT 1 `
	claimSQLMid = `),
t AS (SELECT execution_id, suspended_at_ms, 'timeout' AS reason FROM ff_executions
      WHERE state = 'suspended' AND timeout_at_ms IS NOT NULL AND timeout_at_ms < (SELECT now_ms FROM n)
        AND (SELECT timeout_at_ms FROM ff_executions WHERE state = 'suspended' AND timeout_at_ms IS NOT NULL
             ORDER BY timeout_at_ms LIMIT 1) < (SELECT now_ms FROM n)
      ORDER BY suspended_at_ms, execution_id, timeout_at_ms LIMIT 1 `
	claimSQLMid2 = `),
l AS (SELECT execution_id, suspended_at_ms, reason FROM ff_executions
      WHERE state = 'claimed' AND lease_expires_at_ms < (SELECT now_ms FROM n)
        AND (SELECT lease_expires_at_ms FROM ff_executions WHERE state = 'claimed' AND lease_expires_at_ms IS NOT NULL
             ORDER BY lease_expires_at_ms LIMIT 1) < (SELECT now_ms FROM n)
      ORDER BY suspended_at_ms, execution_id, lease_expires_at_ms LIMIT 1 `
	claimSQLTail = `),
pick AS (SELECT execution_id, reason FROM (SELECT * FROM r UNION ALL SELECT * FROM t UNION ALL SELECT * FROM l) c
         ORDER BY suspended_at_ms, execution_id LIMIT 1),
untag AS (DELETE FROM ff_suspension_tags WHERE execution_id = (SELECT execution_id FROM pick)),
c AS (UPDATE ff_executions e
      SET state = 'claimed', reason = (SELECT reason FROM pick), lease_id = $1, lease_expires_at_ms = (SELECT now_ms FROM n) + $2
      WHERE e.execution_id = (SELECT execution_id FROM pick)
      RETURNING e.execution_id, e.suspension_id, e.reason, e.lease_expires_at_ms)
SELECT c.execution_id, c.suspension_id, c.reason, c.lease_expires_at_ms, s.*
FROM c, LATERAL (` + signalArraysSQL + ` WHERE suspension_id = c.suspension_id) s`
)

// claimBatchSQL is claimSQL for up to $3 executions at once
// (claim_resumed_executions, docs/spec.md §8.8), in one statement at one
// reading of the clock: each branch walks its partial index in claim order
// and locks up to $3 candidates FOR UPDATE SKIP LOCKED (the timed-out and
// expired-lease branches behind the same gates as claimSQL's); the oldest
// $3 of them by (suspended_at_ms, execution_id) are taken, the i-th with
// lease $1[i] for $2[i] ms (candidates locked but not taken stay as they are, locked
// until COMMIT), delisted from list_suspended by tag, and answered one row
// each, with its suspension's signals, in claim order. The taken ids go
// through arrays read once (p), so the update and the delete look each up
// by primary key whatever the statistics, as claimSQL's scalar subqueries
// do. No row: nothing claimable that no other transaction holds.
const claimBatchSQL = `WITH n AS (SELECT ` + nowMsExpr + ` AS now_ms),
r AS (SELECT execution_id, suspended_at_ms, coalesce(reason, 'signal') AS reason FROM ff_executions
      WHERE state = 'resumed'
      ORDER BY suspended_at_ms, execution_id LIMIT $3 FOR UPDATE SKIP LOCKED),
t AS (SELECT execution_id, suspended_at_ms, 'timeout' AS reason FROM ff_executions
      WHERE state = 'suspended' AND timeout_at_ms IS NOT NULL AND timeout_at_ms < (SELECT now_ms FROM n)
        AND (SELECT timeout_at_ms FROM ff_executions WHERE state = 'suspended' AND timeout_at_ms IS NOT NULL
             ORDER BY timeout_at_ms LIMIT 1) < (SELECT now_ms FROM n)
      ORDER BY suspended_at_ms, execution_id, timeout_at_ms LIMIT $3 FOR UPDATE SKIP LOCKED),
l AS (SELECT execution_id, suspended_at_ms, reason FROM ff_executions
      WHERE state = 'claimed' AND lease_expires_at_ms < (SELECT now_ms FROM n)
        AND (SELECT lease_expires_at_ms FROM ff_executions WHERE state = 'claimed' AND lease_expires_at_ms IS NOT NULL
             ORDER BY lease_expires_at_ms LIMIT 1) < (SELECT now_ms FROM n)
      ORDER BY suspended_at_ms, execution_id, lease_expires_at_ms LIMIT $3 FOR UPDATE SKIP LOCKED),
p AS (SELECT coalesce(array_agg(execution_id ORDER BY suspended_at_ms, execution_id), '{}') AS ids,
             coalesce(array_agg(reason ORDER BY suspended_at_ms, execution_id), '{}') AS reasons
      FROM (SELECT * FROM (SELECT * FROM r UNION ALL SELECT * FROM t UNION ALL SELECT * FROM l) u
            ORDER BY suspended_at_ms, execution_id LIMIT $3) c),
untag AS (DELETE FROM ff_suspension_tags WHERE execution_id = ANY ((SELECT ids FROM p)::text[])),
c AS (UPDATE ff_executions e
      SET state = 'claimed',
          reason = (SELECT reasons[array_position(ids, e.execution_id)] FROM p),
          lease_id = ($1::text[])[(SELECT array_position(ids, e.execution_id) FROM p)],
          lease_expires_at_ms = (SELECT now_ms FROM n) + ($2::bigint[])[(SELECT array_position(ids, e.execution_id) FROM p)]
      WHERE e.execution_id = ANY ((SELECT ids FROM p)::text[])
      RETURNING e.execution_id, e.suspension_id, e.reason, e.lease_id, e.lease_expires_at_ms)
SELECT c.execution_id, c.suspension_id, c.reason, c.lease_id, c.lease_expires_at_ms, s.*
FROM c, LATERAL (` + signalArraysSQL + ` WHERE suspension_id = c.suspension_id) s
ORDER BY array_position((SELECT ids FROM p), c.execution_id)`

// signalArraysSQL reads signals (its caller's WHERE selects a
// suspension's) in delivery order as one row of parallel arrays, empty
// without signals (signalArrays scans it): one read of the index on
// (suspension_id, ordinal), and one row however many signals.
const signalArraysSQL = `SELECT coalesce(array_agg(signal_id ORDER BY ordinal), '{}') AS signal_ids,
       coalesce(array_agg(waitpoint_id ORDER BY ordinal), '{}') AS waitpoint_ids,
       coalesce(array_agg(waitpoint_key ORDER BY ordinal), '{}') AS waitpoint_keys,
       coalesce(array_agg(name ORDER BY ordinal), '{}') AS names,
       coalesce(array_agg(payload ORDER BY ordinal), '{}') AS payloads,
       coalesce(array_agg(idempotency_key ORDER BY ordinal), '{}') AS idempotency_keys,
       coalesce(array_agg(delivered_at_ms ORDER BY ordinal), '{}') AS delivered_at_ms
FROM ff_signals`

// suspensionSignalsSQL lists the signals of suspension $1 in delivery
// order (signalArraysSQL).
const suspensionSignalsSQL = signalArraysSQL + ` WHERE suspension_id = $1`

// leaseSQL reads the clock, and the state, lease, reason and latest
// suspension of an execution (NULLs: unknown), in one statement.
const leaseSQL = `SELECT n.now_ms, e.execution_id IS NOT NULL, e.state, e.lease_id, e.reason, e.suspension_id
FROM (SELECT ` + nowMsExpr + ` AS now_ms) n
LEFT JOIN ff_executions e ON e.execution_id = $1`

// forgetExecutionSQL deletes an execution and everything recorded for it
// (pending waitpoints and their signals included), in one statement.
const forgetExecutionSQL = `WITH s AS (DELETE FROM ff_signals WHERE execution_id = $1),
w AS (DELETE FROM ff_waitpoints WHERE execution_id = $1),
r AS (DELETE FROM ff_suspend_requests WHERE execution_id = $1),
t AS (DELETE FROM ff_suspension_tags WHERE execution_id = $1)
DELETE FROM ff_executions WHERE execution_id = $1`

// completeSQL is complete_execution in one statement: when execution $1
// is claimed under lease $2 (driver.CheckLeaseHolder), it deletes it and
// everything recorded for it, as forgetExecutionSQL does. It answers
// (deleted, remembered). Each delete finds its rows through the
// execution_id of k (NULL when the lease does not hold: then nothing is
// deleted), one index range each. x reads the row by primary key alone:
// with the state in its WHERE, the planner may walk a partial index on
// state instead (ff_executions_leases_by_age, whose leading column is not
// the id).
const completeSQL = `WITH x AS (SELECT execution_id, state = 'claimed' AND lease_id = $2 AS holds FROM ff_executions WHERE execution_id = $1),
k AS (SELECT execution_id FROM x WHERE holds),
s AS (DELETE FROM ff_signals WHERE execution_id = (SELECT execution_id FROM k)),
w AS (DELETE FROM ff_waitpoints WHERE execution_id = (SELECT execution_id FROM k)),
r AS (DELETE FROM ff_suspend_requests WHERE execution_id = (SELECT execution_id FROM k)),
t AS (DELETE FROM ff_suspension_tags WHERE execution_id = (SELECT execution_id FROM k)),
d AS (DELETE FROM ff_executions WHERE execution_id = (SELECT execution_id FROM k) RETURNING 1)
SELECT EXISTS (SELECT 1 FROM d), EXISTS (SELECT 1 FROM x)`

// nullIfEmpty maps the contract's "empty means none" to SQL NULL.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deliveryState is what deliverLoadSQL returns.
type deliveryState struct {
	nowMs                      int64
	initialized, known, found  bool
	rec                        driver.KidRecord
	key                        *string
	createdAtMs                *int64
	suspensionID               *string
	waitpointSignals           *int
	open                       bool
	timeoutAtMs                *int64
	condition                  *string
	waitpoints, signals, fired *int
	payloadBytes               *int64
	nextSeq                    *int64
	tagged                     bool
	// A pending waitpoint no suspend used (suspensionID nil): its expiry,
	// and [signals, payload bytes] of the execution's live pending
	// waitpoints.
	pendingExpiresAtMs *int64
	pendingPool        []int64
}

// DeliverSignal records a signal on a waitpoint exactly once per
// (waitpoint_id, idempotency_key) and resumes the execution when its
// condition holds (driver.ConditionHolds: any, all, or a count), closing
// every waitpoint of the suspension in the same transaction. A signal to a
// pending waitpoint no suspend used yet is kept on it and resumes nothing
// (docs/spec.md §8.1). Checks run in the order of docs/spec.md §5. One
// transaction under the execution's locks, so of concurrent deliveries
// that would each satisfy the condition exactly one resumes, and a cancel
// either comes first (waitpoint_closed) or finds the execution resumed
// (not_suspended). Two round trips: deliverLoadSQL with the locks, then
// the record with COMMIT. Concurrent deliveries to distinct executions
// share one transaction (group commit, deliver_group.go): each decides
// exactly as it would alone and answers after the group's COMMIT; a
// delivery that finds no group to join runs at once, alone
// (deliverAlone).
func (b *Backend) DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	if err := b.usable(); err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	out, err := b.deliveries.call(ctx, deliverCall{args: args, token: t, ring: b.keyring.Load()})
	return out, interpretError(err)
}

// deliverCall is one deliver_signal call: its arguments, its parsed
// token, and the keyring loaded when it was made.
type deliverCall struct {
	args  contracts.DeliverSignalArgs
	token contracts.Token
	ring  *kek.Keyring
}

// loadArgs are deliverLoadSQL's arguments for c.
func (c deliverCall) loadArgs() []any {
	return []any{c.token.Kid, c.args.WaitpointID, c.args.ExecutionID}
}

// dest are the destinations of deliverLoadSQL's row for a delivery whose
// token names kid.
func (d *deliveryState) dest(kid string) []any {
	d.rec.Kid = kid
	return []any{&d.nowMs, &d.initialized, &d.known, (*[]byte)(&d.rec.Secret), &d.rec.ExpiresAtMs, &d.rec.Revoked,
		&d.found, &d.key, &d.createdAtMs, &d.suspensionID, &d.waitpointSignals,
		&d.open, &d.timeoutAtMs, &d.condition, &d.waitpoints, &d.signals, &d.fired, &d.payloadBytes, &d.nextSeq,
		&d.tagged, &d.pendingExpiresAtMs, &d.pendingPool}
}

// deliverAlone is deliver_signal in a transaction of its own under the
// execution's locks (inExecTx): deliverLoadSQL with the locks, then the
// statement decideDelivery chose, with COMMIT (and the claimable
// notification when it resumes the execution).
func (b *Backend) deliverAlone(ctx context.Context, c deliverCall) (contracts.DeliverSignalOutcome, error) {
	var out contracts.DeliverSignalOutcome
	err := b.inExecTx(ctx, c.args.ExecutionID, func(tx *pipeTx) error {
		var d deliveryState
		if err := tx.QueryRow(ctx, deliverLoadSQL, c.loadArgs()...).Scan(d.dest(c.token.Kid)...); err != nil {
			return err
		}
		s := decideDelivery(c, &d)
		if s.sql == "" {
			return s.refusal
		}
		if s.resumes {
			if err := notifyClaimable(ctx, tx); err != nil {
				return err
			}
		}
		tx.commitWithNext()
		err := tx.QueryRow(ctx, s.sql, s.args...).Scan(s.dest()...)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		out, err = s.outcome(err == nil)
		return err
	})
	return out, interpretError(err)
}

// deliverStep is what deliver_signal decided on what deliverLoadSQL read:
// a refusal answered without a statement (sql empty), or the one
// statement that ends the delivery, with COMMIT: the record of an
// accepted signal (recordSignalSQL, recordPendingSQL), or, before a
// refusal of check 4 or 5, the read of the signal already recorded under
// the delivery's idempotency key (recordedSignalSQL), since check 3, the
// duplicate, comes first.
type deliverStep struct {
	refusal   error
	sql       string
	args      []any
	resumes   bool // the record resumes the execution: notify
	duplicate bool // sql reads the duplicate: no row answers refusal
	// The statement's row.
	id       string
	accepted bool
}

// dest are the destinations of the statement's row.
func (s *deliverStep) dest() []any {
	if s.duplicate {
		return []any{&s.id}
	}
	return []any{&s.id, &s.accepted}
}

// outcome answers the delivery once the statement's row, if found, was
// scanned into dest.
func (s *deliverStep) outcome(found bool) (contracts.DeliverSignalOutcome, error) {
	switch {
	case s.sql == "":
		return contracts.DeliverSignalOutcome{}, s.refusal
	case !found && s.duplicate:
		return contracts.DeliverSignalOutcome{}, s.refusal
	case !found: // a record answers a row, the signal or its duplicate
		return contracts.DeliverSignalOutcome{}, pgx.ErrNoRows
	case s.duplicate || !s.accepted:
		return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: s.id}, nil
	}
	return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: s.id, Resumed: s.resumes}, nil
}

// decideDelivery runs the checks of deliver_signal (docs/spec.md §5) on
// what deliverLoadSQL read for c: the same decision alone and in a group.
func decideDelivery(c deliverCall, d *deliveryState) deliverStep {
	if err := authorize(c.ring, c.token, c.args, *d); err != nil {
		return deliverStep{refusal: err}
	}
	if d.suspensionID == nil {
		return recordPending(c.args, d)
	}
	return recordSignal(c.args, d)
}

// authorize runs checks 1 and 2 of deliver_signal on what deliverLoadSQL
// read (contracts.AuthorizeToken), opening the kid's secret with ring when
// the check gets as far as the MAC.
func authorize(ring *kek.Keyring, t contracts.Token, args contracts.DeliverSignalArgs, d deliveryState) error {
	var rec *driver.KidRecord
	if d.known {
		var err error
		if rec, err = driver.OpenForCheck(ring, keyPartition, d.initialized, &d.rec, d.nowMs); err != nil {
			return err
		}
	}
	var w *driver.WaitpointRef
	if d.found { // deliverLoadSQL found it among the execution's waitpoints
		w = &driver.WaitpointRef{ExecutionID: args.ExecutionID, WaitpointID: args.WaitpointID, WaitpointKey: *d.key, CreatedAtMs: *d.createdAtMs}
	}
	return driver.AuthorizeToken(t, args.ExecutionID, d.initialized, rec, w, d.nowMs)
}

// recordSignal runs checks 4 and 5 of deliver_signal (check 3, the
// duplicate, is decided by the statement it returns). When the waitpoint
// accepts a signal (open, not timed out, within the budget its counters
// give), one statement records it (recordSignalSQL), with the claimable
// notification after the commit when it resumes the execution.
func recordSignal(args contracts.DeliverSignalArgs, d *deliveryState) deliverStep {
	var used driver.SignalBudget
	if d.open { // else the counters are another suspension's, and unused
		used = driver.SignalBudget{WaitpointSignals: *d.waitpointSignals, SuspensionSignals: *d.signals, PayloadBytes: *d.payloadBytes}
	}
	if refusal := driver.CheckDeliverable(!d.open, d.timeoutAtMs, used, args, d.nowMs); refusal != nil {
		return duplicateOr(args, refusal)
	}
	w := driver.WaitpointRef{ExecutionID: args.ExecutionID, WaitpointID: args.WaitpointID, WaitpointKey: *d.key, CreatedAtMs: *d.createdAtMs}
	sig := driver.NewSignal(w, args, d.nowMs)
	var payload []byte
	if len(sig.Payload) > 0 {
		payload = sig.Payload
	}
	first := 0
	if *d.waitpointSignals == 0 {
		first = 1
	}
	resumes := driver.ConditionHolds(*d.condition, *d.fired+first, *d.waitpoints)
	return deliverStep{sql: recordSignalSQL, resumes: resumes, args: []any{sig.SignalID, args.ExecutionID, *d.suspensionID, args.WaitpointID,
		sig.WaitpointKey, *d.nextSeq + 1, sig.Name, payload, nullIfEmpty(sig.IdempotencyKey), sig.DeliveredAtMs, first, resumes,
		*d.signals, int64(len(payload)), d.tagged}}
}

// recordPending runs checks 4 and 5 of deliver_signal for a pending
// waitpoint no suspend used yet (docs/spec.md §8.1): past its expiry it is
// closed, else the budgets are its own count and those of the execution's
// live pending waitpoints (driver.CheckPendingDeliverable); an accepted
// signal is kept on it (recordPendingSQL), and resumes nothing.
func recordPending(args contracts.DeliverSignalArgs, d *deliveryState) deliverStep {
	p := driver.PendingWaitpoint{
		ID: args.WaitpointID, ExecutionID: args.ExecutionID, Key: *d.key, CreatedAtMs: *d.createdAtMs,
		ExpiresAtMs: *d.pendingExpiresAtMs, Signals: *d.waitpointSignals,
	}
	var pool driver.SignalBudget
	if len(d.pendingPool) == 2 {
		pool = driver.SignalBudget{SuspensionSignals: int(d.pendingPool[0]), PayloadBytes: d.pendingPool[1]}
	}
	if refusal := driver.CheckPendingDeliverable(p, pool, args, d.nowMs); refusal != nil {
		return duplicateOr(args, refusal)
	}
	w := driver.WaitpointRef{ExecutionID: args.ExecutionID, WaitpointID: args.WaitpointID, WaitpointKey: *d.key, CreatedAtMs: *d.createdAtMs}
	sig := driver.NewSignal(w, args, d.nowMs)
	var payload []byte
	if len(sig.Payload) > 0 {
		payload = sig.Payload
	}
	return deliverStep{sql: recordPendingSQL, args: []any{sig.SignalID, args.ExecutionID, args.WaitpointID, sig.WaitpointKey,
		*d.nextSeq + 1, sig.Name, payload, nullIfEmpty(sig.IdempotencyKey), sig.DeliveredAtMs, int64(len(payload))}}
}

// duplicateOr answers duplicate when the delivery's idempotency key is
// recorded on the waitpoint (recordedSignalSQL finds it), else refusal:
// check 3 of deliver_signal comes before check 4, whose refusal this is.
func duplicateOr(args contracts.DeliverSignalArgs, refusal error) deliverStep {
	if args.IdempotencyKey == "" {
		return deliverStep{refusal: refusal}
	}
	return deliverStep{refusal: refusal, sql: recordedSignalSQL, args: []any{args.WaitpointID, args.IdempotencyKey}, duplicate: true}
}

// ObserveSignals returns one page of the signals of the execution's latest
// suspension in delivery order: at most args.Limit from the cursor's
// position (driver.ObserveStart), and next_cursor when more follow
// (driver.PageSignals). A cursor of another suspension than the latest
// gives an empty last page. One statement, reading limit+1 entries of an
// index range.
func (b *Backend) ObserveSignals(ctx context.Context, args contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	if err := b.usable(); err != nil {
		return contracts.ObserveSignalsResult{}, err
	}
	limit := args.Limit
	if limit < 1 { // the Engine fills the default; direct callers may not
		limit = contracts.DefaultObserveLimit
	}
	var (
		cursorSuspension *string
		from             int64
	)
	if args.Cursor != "" {
		c, err := contracts.DecodeSignalCursor(args.Cursor)
		if err != nil {
			return contracts.ObserveSignalsResult{}, err
		}
		cursorSuspension, from = &c.SuspensionID, c.Position
	}
	rows, err := b.pool.Query(ctx, observeSQL, args.ExecutionID, cursorSuspension, from, limit+1)
	if err != nil {
		return contracts.ObserveSignalsResult{}, interpretError(err)
	}
	var (
		suspensionID string
		sigs         []contracts.Signal
		seen         bool
	)
	for rows.Next() {
		seen = true
		var sig nullableSignal
		if err := rows.Scan(&suspensionID, &sig.id, &sig.waitpointID, &sig.key, &sig.name, &sig.payload, &sig.idem, &sig.at); err != nil {
			rows.Close()
			return contracts.ObserveSignalsResult{}, interpretError(err)
		}
		if sig.id != nil {
			sigs = append(sigs, sig.signal())
		}
	}
	if err := rows.Err(); err != nil {
		return contracts.ObserveSignalsResult{}, interpretError(err)
	}
	if !seen {
		return contracts.ObserveSignalsResult{}, driver.ExecutionNotFound(args.ExecutionID)
	}
	start, ok := driver.ObserveStart(args, suspensionID)
	if !ok {
		sigs = nil // observeSQL selected none; the cursor is stale
	}
	return driver.PageSignals(args.ExecutionID, suspensionID, sigs, start, limit), nil
}

// nullableSignal is a signal row of a LEFT JOIN.
type nullableSignal struct {
	id, waitpointID, key, name, idem *string
	payload                          []byte
	at                               *int64
}

func (s nullableSignal) signal() contracts.Signal {
	sig := contracts.Signal{SignalID: *s.id, WaitpointID: *s.waitpointID, WaitpointKey: *s.key, Name: *s.name, DeliveredAtMs: *s.at}
	if s.payload != nil {
		sig.Payload = json.RawMessage(s.payload)
	}
	if s.idem != nil {
		sig.IdempotencyKey = *s.idem
	}
	return sig
}

// ListSuspended pages through executions in state suspended, ordered by
// (suspended_at_ms, execution_id), strictly after the cursor, each with its
// suspension's tags; with args.Tag, only those whose suspension carries it,
// read through the tag index (docs/spec.md §8.6). One statement, in a
// read transaction under listSettingsSQL, pipelined: one round trip.
func (b *Backend) ListSuspended(ctx context.Context, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	if err := b.usable(); err != nil {
		return contracts.ListSuspendedResult{}, err
	}
	after := contracts.Cursor{SuspendedAtMs: -1}
	if args.Cursor != "" {
		c, err := contracts.DecodeCursor(args.Cursor)
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		after = c
	}
	sql, params := listSuspendedSQL, []any{after.SuspendedAtMs, after.ExecutionID, args.Limit + 1}
	if args.Tag != "" {
		sql, params = listByTagSQL, append(params, args.Tag)
	}
	var list []contracts.SuspendedExecution
	var batch pgx.Batch
	batch.Queue(beginReadCommittedSQL)
	batch.Queue(listSettingsSQL)
	batch.Queue(sql, params...).Query(func(rows pgx.Rows) error {
		var err error
		list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (contracts.SuspendedExecution, error) {
			var e contracts.SuspendedExecution
			err := r.Scan(&e.ExecutionID, &e.SuspensionID, &e.SuspendedAtMs, &e.TimeoutAtMs, &e.Waitpoints, &e.Tags)
			return e, err
		})
		return err
	})
	batch.Queue("COMMIT") // a connection left in the transaction by an error is closed by the pool
	if err := b.pool.SendBatch(ctx, &batch).Close(); err != nil {
		return contracts.ListSuspendedResult{}, interpretError(err)
	}
	return driver.PageSuspended(list, args.Limit), nil
}

// listSettingsSQL sets, for a list_suspended transaction only (SET LOCAL:
// no session state, so behind a transaction pooler too), the generic plan
// of its prepared statement, and the claim's pricing of sorts, sequential
// scans and JIT (claimSettingsSQL), under which that plan is the walk of
// the partial index in list order whatever the statistics. The server
// would otherwise plan every call again once the statistics are fresh:
// for a generic plan it must assume LIMIT $3 takes a tenth of the rows,
// which prices it far above any custom plan, so it keeps choosing custom
// plans, each one planned anew (most of a page's cost at 100,000
// suspended executions).
const listSettingsSQL = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)`

// ClaimResumedExecution leases the oldest claimable execution: resumed,
// suspended past its timeout, or claimed with an expired lease. Claims run
// at READ COMMITTED without table lock (claimSQL), so concurrent claims of
// all processes each get another execution without queueing. Concurrent
// claims of this Backend share one transaction (group commit,
// claim_group.go); a claim that finds no group to join runs at once, alone
// (claimAlone).
func (b *Backend) ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	if err := b.usable(); err != nil {
		return contracts.ClaimOutcome{}, err
	}
	out, err := b.claims.call(ctx, args)
	if err != nil {
		return contracts.ClaimOutcome{}, interpretError(err)
	}
	return out, nil
}

// claimAlone is claim_resumed_execution in a transaction of its own,
// pipelined (pipeTx): BEGIN, the settings, the claim and COMMIT in one
// round trip (and claimWaitSQL in a transaction of its own, after a pass
// that skipped everything).
func (b *Backend) claimAlone(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	var out contracts.ClaimOutcome
	err := b.inPipeTx(ctx, claimOpening, func(tx *pipeTx) error {
		var err error
		tx.commitWithNext()
		out, err = claimOne(ctx, tx, args.LeaseMs, func() { tx.reopen(claimOpening()) })
		return err
	})
	return out, err
}

// ClaimResumedExecutions claims up to args.Max executions, oldest first,
// each as ClaimResumedExecution would (docs/spec.md §8.8), in one
// transaction: all of them or, on an error, none. One statement
// (claimBatchSQL) takes them, pipelined with BEGIN and COMMIT: one round
// trip. When it took none because every candidate was held by another
// transaction, a claim of one that waits for them follows (claimWaitSQL,
// as ClaimResumedExecution), so that the call answers [] only when nothing
// was claimable; a batch that took some does not wait for the held ones,
// which the next call finds.
func (b *Backend) ClaimResumedExecutions(ctx context.Context, args contracts.ClaimBatchArgs) (contracts.ClaimBatchOutcome, error) {
	var out contracts.ClaimBatchOutcome
	leases := make([]string, max(args.Max, 1))
	leaseMs := make([]int64, len(leases))
	for i := range leases {
		leases[i] = driver.NewID()
		leaseMs[i] = args.LeaseMs
	}
	err := b.inPipeTx(ctx, claimOpening, func(tx *pipeTx) error {
		out = contracts.ClaimBatchOutcome{Claims: []contracts.ClaimOutcome{}}
		tx.commitWithNext()
		err := tx.QueryRows(ctx, func(rows pgx.Rows) error {
			return scanClaims(rows, &out.Claims)
		}, claimBatchSQL, leases, leaseMs, args.Max)
		if err != nil || len(out.Claims) > 0 {
			return err
		}
		tx.reopen(claimOpening())
		c, err := claimWaiting(ctx, tx, leases[0], args.LeaseMs)
		if err == nil && c.Outcome == contracts.OutcomeClaimed {
			out.Claims = append(out.Claims, c)
		}
		return err
	})
	if err != nil {
		return contracts.ClaimBatchOutcome{}, interpretError(err)
	}
	return out, nil
}

// scanClaims appends the claims of claimBatchSQL's rows to claims.
func scanClaims(rows pgx.Rows, claims *[]contracts.ClaimOutcome) error {
	for rows.Next() {
		c := contracts.ClaimOutcome{Outcome: contracts.OutcomeClaimed}
		var a signalArrays
		dest := append([]any{&c.ExecutionID, &c.SuspensionID, &c.Reason, &c.LeaseID, &c.LeaseExpiresAtMs}, a.dest()...)
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		c.Signals = a.signals()
		*claims = append(*claims, c)
	}
	return rows.Err()
}

// claimWaiting leases the oldest claimable execution, waiting for the
// candidates other transactions hold (claimWaitSQL), with lease leaseID;
// outcome none when nothing is claimable.
func claimWaiting(ctx context.Context, tx dbtx, leaseID string, leaseMs int64) (contracts.ClaimOutcome, error) {
	c := contracts.ClaimOutcome{Outcome: contracts.OutcomeClaimed, LeaseID: leaseID}
	var a signalArrays
	dest := append([]any{&c.ExecutionID, &c.SuspensionID, &c.Reason, &c.LeaseExpiresAtMs}, a.dest()...)
	err := tx.QueryRow(ctx, claimWaitSQL, c.LeaseID, leaseMs).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, nil
	}
	if err != nil {
		return contracts.ClaimOutcome{}, err
	}
	c.Signals = a.signals()
	return c, nil
}

// claimOne leases the oldest claimable execution in tx, with its signals
// (claimSQL, then claimWaitSQL when it skipped everything); outcome none
// when nothing is claimable. beforeWait, if not nil, runs before
// claimWaitSQL (a pipelined claim commits with it).
func claimOne(ctx context.Context, tx dbtx, leaseMs int64, beforeWait func()) (contracts.ClaimOutcome, error) {
	c := contracts.ClaimOutcome{Outcome: contracts.OutcomeClaimed, LeaseID: driver.NewID()}
	var a signalArrays
	dest := append([]any{&c.ExecutionID, &c.SuspensionID, &c.Reason, &c.LeaseExpiresAtMs}, a.dest()...)
	err := tx.QueryRow(ctx, claimSQL, c.LeaseID, leaseMs).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		if beforeWait != nil {
			beforeWait()
		}
		err = tx.QueryRow(ctx, claimWaitSQL, c.LeaseID, leaseMs).Scan(dest...)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, nil
	}
	if err != nil {
		return contracts.ClaimOutcome{}, err
	}
	c.Signals = a.signals()
	return c, nil
}

// suspensionSignals lists a suspension's signals in delivery order.
func suspensionSignals(ctx context.Context, tx dbtx, suspensionID string) ([]contracts.Signal, error) {
	var a signalArrays
	if err := tx.QueryRow(ctx, suspensionSignalsSQL, suspensionID).Scan(a.dest()...); err != nil {
		return nil, err
	}
	return a.signals(), nil
}

// signalArrays is what signalArraysSQL reads.
type signalArrays struct {
	ids, waitpointIDs, keys, names []string
	payloads                       [][]byte
	idems                          []*string
	ats                            []int64
}

func (a *signalArrays) dest() []any {
	return []any{&a.ids, &a.waitpointIDs, &a.keys, &a.names, &a.payloads, &a.idems, &a.ats}
}

// signals are the signals a holds, in its order; never nil.
func (a *signalArrays) signals() []contracts.Signal {
	sigs := make([]contracts.Signal, len(a.ids))
	for i := range a.ids {
		sigs[i] = contracts.Signal{SignalID: a.ids[i], WaitpointID: a.waitpointIDs[i], WaitpointKey: a.keys[i], Name: a.names[i], DeliveredAtMs: a.ats[i]}
		if a.payloads[i] != nil {
			sigs[i].Payload = json.RawMessage(a.payloads[i])
		}
		if a.idems[i] != nil {
			sigs[i].IdempotencyKey = *a.idems[i]
		}
	}
	return sigs
}

// CompleteExecution forgets a claimed execution and everything recorded for
// it, pending waitpoints included. An expired lease that nobody re-claimed
// still completes. Concurrent completes share one transaction (group
// commit, complete_group.go): each decides exactly as it would alone,
// under the execution's locks, and answers after the group's COMMIT; a
// complete that finds no group to join runs at once, alone, in one round
// trip (completeAlone).
func (b *Backend) CompleteExecution(ctx context.Context, args contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	if err := b.usable(); err != nil {
		return contracts.CompleteOutcome{}, err
	}
	if _, err := b.completes.call(ctx, args); err != nil {
		return contracts.CompleteOutcome{}, interpretError(err)
	}
	return contracts.CompleteOutcome{Outcome: contracts.OutcomeCompleted, ExecutionID: args.ExecutionID}, nil
}
