-- Version 2 of the waitpoint lifecycle (docs/spec.md §8.1, §8.2, §8.4–§8.6).
-- Stores at 0004 upgrade in place: columns and tables are added, rows
-- written before keep their meaning (no tags, no token fingerprint: get_waitpoint
-- shows token_fingerprint null for them).

-- Executions remembered in state none (state ''): made by create_waitpoint
-- before any suspend (no suspension yet: the suspension columns are NULL),
-- or kept after a suspend that answered already_satisfied. Count conditions
-- are stored as "count:n" (contracts.CountCondition); cancel_suspension
-- leaves reason 'cancelled', kept across claims. tags are those of the
-- latest suspension, shown in list_suspended rows.
ALTER TABLE ff_executions
    DROP CONSTRAINT ff_executions_state_check,
    ADD CONSTRAINT ff_executions_state_check CHECK (state IN ('', 'suspended', 'resumed', 'claimed')),
    DROP CONSTRAINT ff_executions_condition_check,
    ADD CONSTRAINT ff_executions_condition_check CHECK (condition IN ('any', 'all') OR condition ~ '^count:[1-9][0-9]*$'),
    DROP CONSTRAINT ff_executions_reason_check,
    ADD CONSTRAINT ff_executions_reason_check CHECK (reason IN ('signal', 'timeout', 'cancelled')),
    ALTER COLUMN suspension_id DROP NOT NULL,
    ALTER COLUMN suspended_at_ms DROP NOT NULL,
    ALTER COLUMN condition DROP NOT NULL,
    ALTER COLUMN waitpoint_count DROP NOT NULL,
    ADD CONSTRAINT ff_executions_suspension_check CHECK (suspension_id IS NOT NULL OR state = ''),
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

-- Pending waitpoints (create_waitpoint) have expires_at_ms and no
-- suspension until a suspend uses them; expires_at_ms stays once used, so
-- that "every pending waitpoint of the execution expired" reads one index.
-- timeout_at_ms is the timeout of the waitpoint's suspension (get_waitpoint
-- shows it for waitpoints of earlier suspensions too); payload_bytes counts
-- the payloads recorded on the waitpoint (a pending waitpoint's bytes join
-- its suspension's budget, docs/spec.md §8.3); token_fingerprint is
-- driver.TokenFingerprint of the token last handed out, never the token.
ALTER TABLE ff_waitpoints
    ALTER COLUMN suspension_id DROP NOT NULL,
    ADD COLUMN expires_at_ms bigint NULL,
    ADD COLUMN timeout_at_ms bigint NULL,
    ADD COLUMN payload_bytes bigint NOT NULL DEFAULT 0,
    ADD COLUMN token_fingerprint text NULL,
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT ff_waitpoints_pending_check CHECK (suspension_id IS NOT NULL OR expires_at_ms IS NOT NULL);
CREATE INDEX ff_waitpoints_pending ON ff_waitpoints (execution_id, expires_at_ms) WHERE expires_at_ms IS NOT NULL;

-- The counters and timeouts of waitpoints written before: the payload bytes
-- of their signals; the timeout of the latest suspension from its
-- execution, of an earlier one from its idempotency record when it has one
-- (else it stays unknown: NULL).
UPDATE ff_waitpoints w SET payload_bytes = t.bytes
FROM (SELECT waitpoint_id, sum(octet_length(payload)) AS bytes
      FROM ff_signals WHERE payload IS NOT NULL GROUP BY waitpoint_id) t
WHERE t.waitpoint_id = w.waitpoint_id;

UPDATE ff_waitpoints w SET timeout_at_ms = e.timeout_at_ms
FROM ff_executions e
WHERE e.suspension_id = w.suspension_id AND e.timeout_at_ms IS NOT NULL;

UPDATE ff_waitpoints w SET timeout_at_ms = (r.o ->> 'timeout_at_ms')::bigint
FROM (SELECT convert_from(outcome, 'UTF8')::jsonb AS o FROM ff_suspend_requests) r
WHERE r.o ->> 'suspension_id' = w.suspension_id AND r.o ->> 'timeout_at_ms' IS NOT NULL AND w.timeout_at_ms IS NULL;

-- Signals delivered to a pending waitpoint no suspend used yet are kept
-- without a suspension (and so without an ordinal) and join the suspension
-- that uses it, in delivery order (seq). The partial index finds them.
ALTER TABLE ff_signals
    ALTER COLUMN suspension_id DROP NOT NULL,
    ALTER COLUMN ordinal DROP NOT NULL,
    ADD CONSTRAINT ff_signals_buffered_check CHECK ((suspension_id IS NULL) = (ordinal IS NULL));
CREATE INDEX ff_signals_buffered ON ff_signals (execution_id, seq) WHERE suspension_id IS NULL;

-- list_suspended by tag (docs/spec.md §8.6): one row per tag of each
-- suspended execution's suspension, present exactly while the execution is
-- in state suspended (suspend inserts them; the resuming delivery, cancel,
-- claim and complete delete them), so that a filtered page is one range of
-- ff_suspension_tags_page in list order, reading matching rows only.
CREATE TABLE ff_suspension_tags (
    execution_id    text COLLATE "C" NOT NULL,
    tag             text COLLATE "C" NOT NULL,
    suspended_at_ms bigint NOT NULL,
    PRIMARY KEY (execution_id, tag)
);
CREATE INDEX ff_suspension_tags_page ON ff_suspension_tags (tag, suspended_at_ms, execution_id);
