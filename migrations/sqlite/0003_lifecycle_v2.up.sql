-- FlowFabric-Go SQLite schema, version 3: version 2 of the waitpoint
-- lifecycle (docs/spec.md §8.1, §8.2, §8.4–§8.6).
--
-- What changes:
--   * executions may be remembered in state 'none' (pending waitpoints, or a
--     suspension that answered already_satisfied), with or without a
--     suspension; conditions may be "count:n"; a claim reason may be
--     'cancelled'; the latest suspension's tags and the latest pending
--     expiry are kept on the row.
--   * waitpoints may be pending: made by create_waitpoint (expires_at_ms set),
--     with no suspension until a suspend uses them. Every waitpoint keeps its
--     suspension's timeout_at_ms (for get_waitpoint), its payload bytes, the
--     fingerprint of the token last handed out for it (never the token) and
--     its tags.
--   * signals delivered to a pending waitpoint are kept without a
--     suspension, and join the suspension that uses the waitpoint; position
--     is a signal's place in its suspension's delivery order (observe pages
--     are range reads of it).
--   * suspension_tags indexes list_suspended by tag.
--
-- SQLite cannot relax NOT NULL or CHECK constraints in place, so the three
-- tables are rebuilt (create, copy, drop, rename), all inside the migration's
-- one transaction: an interrupted upgrade leaves version 2 as it was. Rows
-- written before this migration get NULL tags and a NULL token fingerprint
-- (get_waitpoint shows null); waitpoints of a remembered suspension other
-- than the latest get a NULL timeout_at_ms, which version 2 did not keep.

-- executions ---------------------------------------------------------------
-- suspension_id, condition, suspended_at_ms, timeout_at_ms, waitpoint_count,
-- signal_count, payload_bytes and tags describe the latest suspension (NULL
-- and 0 before the first); signal_seq orders every signal of the execution;
-- pending_expires_at_ms is the latest expires_at_ms of the pending waitpoints
-- the execution made (docs/spec.md §8.1, ForgetsExpiredPending); reason is
-- the claim reason, or 'cancelled' once cancelled; lease_* are set while
-- claimed (and kept by an already_satisfied suspend).
CREATE TABLE executions_v3 (
    execution_id          TEXT    NOT NULL PRIMARY KEY,
    state                 TEXT    NOT NULL CHECK (state IN ('none', 'suspended', 'resumed', 'claimed')),
    suspension_id         TEXT,
    condition             TEXT    CHECK (condition IN ('any', 'all') OR condition GLOB 'count:[1-9]*'),
    suspended_at_ms       INTEGER,
    timeout_at_ms         INTEGER,
    waitpoint_count       INTEGER NOT NULL DEFAULT 0,
    signal_count          INTEGER NOT NULL DEFAULT 0,
    payload_bytes         INTEGER NOT NULL DEFAULT 0,
    signal_seq            INTEGER NOT NULL DEFAULT 0,
    tags                  TEXT,
    pending_expires_at_ms INTEGER,
    reason                TEXT    CHECK (reason IN ('signal', 'timeout', 'cancelled')),
    lease_id              TEXT,
    lease_expires_at_ms   INTEGER,
    CHECK (state = 'none' OR (suspension_id IS NOT NULL AND condition IS NOT NULL AND suspended_at_ms IS NOT NULL))
) STRICT;

INSERT INTO executions_v3 (execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms,
    waitpoint_count, signal_count, payload_bytes, signal_seq, reason, lease_id, lease_expires_at_ms)
SELECT execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms,
    waitpoint_count, signal_count, payload_bytes, signal_seq, reason, lease_id, lease_expires_at_ms
FROM executions;

DROP TABLE executions;
ALTER TABLE executions_v3 RENAME TO executions;

CREATE INDEX executions_by_state ON executions (state, suspended_at_ms, execution_id);
CREATE INDEX executions_by_timeout ON executions (state, timeout_at_ms)
    WHERE timeout_at_ms IS NOT NULL;
CREATE INDEX executions_by_lease ON executions (state, lease_expires_at_ms)
    WHERE lease_expires_at_ms IS NOT NULL;

-- waitpoints ---------------------------------------------------------------
-- A waitpoint with expires_at_ms was made by create_waitpoint; while its
-- suspension_id (and position) is NULL it is pending: unused, live until
-- expires_at_ms. Once a suspension uses it, it belongs to that suspension
-- like the ones suspend opens: closed with it, timing out at timeout_at_ms.
CREATE TABLE waitpoints_v3 (
    waitpoint_id      TEXT    NOT NULL PRIMARY KEY,
    execution_id      TEXT    NOT NULL,
    suspension_id     TEXT,
    waitpoint_key     TEXT    NOT NULL,
    position          INTEGER,
    created_at_ms     INTEGER NOT NULL,
    expires_at_ms     INTEGER,
    timeout_at_ms     INTEGER,
    closed            INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)),
    signal_count      INTEGER NOT NULL DEFAULT 0,
    payload_bytes     INTEGER NOT NULL DEFAULT 0,
    token_fingerprint TEXT,
    tags              TEXT,
    UNIQUE (suspension_id, waitpoint_key),
    CHECK ((suspension_id IS NULL) = (position IS NULL)),
    CHECK (suspension_id IS NOT NULL OR expires_at_ms IS NOT NULL)
) STRICT;

INSERT INTO waitpoints_v3 (waitpoint_id, execution_id, suspension_id, waitpoint_key, position,
    created_at_ms, timeout_at_ms, closed, signal_count)
SELECT w.waitpoint_id, w.execution_id, w.suspension_id, w.waitpoint_key, w.position,
    w.created_at_ms, e.timeout_at_ms, w.closed, w.signal_count
FROM waitpoints AS w
LEFT JOIN executions AS e ON e.execution_id = w.execution_id AND e.suspension_id = w.suspension_id;

DROP TABLE waitpoints;
ALTER TABLE waitpoints_v3 RENAME TO waitpoints;

CREATE INDEX waitpoints_by_execution ON waitpoints (execution_id);
-- The live pending waitpoints of an execution (at most 16): create_waitpoint
-- counts them, a delivery to one sums their counters.
CREATE INDEX waitpoints_pending ON waitpoints (execution_id, expires_at_ms)
    WHERE suspension_id IS NULL;

-- signals ------------------------------------------------------------------
-- suspension_id and position are NULL while a signal waits on a pending
-- waitpoint; the suspend that uses the waitpoint sets them. Signals of
-- version 2 were consecutive in sequence within their suspension, so their
-- position is their distance from its first.
CREATE TABLE signals_v3 (
    signal_id       TEXT    NOT NULL PRIMARY KEY,
    execution_id    TEXT    NOT NULL,
    suspension_id   TEXT,
    waitpoint_id    TEXT    NOT NULL,
    waitpoint_key   TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    payload         BLOB,
    idempotency_key TEXT,
    delivered_at_ms INTEGER NOT NULL,
    sequence        INTEGER NOT NULL,
    position        INTEGER,
    UNIQUE (execution_id, sequence),
    CHECK ((suspension_id IS NULL) = (position IS NULL))
) STRICT;

INSERT INTO signals_v3 (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key, name,
    payload, idempotency_key, delivered_at_ms, sequence, position)
SELECT s.signal_id, s.execution_id, s.suspension_id, s.waitpoint_id, s.waitpoint_key, s.name,
    s.payload, s.idempotency_key, s.delivered_at_ms, s.sequence,
    s.sequence - (SELECT min(f.sequence) FROM signals AS f WHERE f.suspension_id = s.suspension_id)
FROM signals AS s;

DROP TABLE signals;
ALTER TABLE signals_v3 RENAME TO signals;

CREATE UNIQUE INDEX signals_idempotency ON signals (waitpoint_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- observe_signals pages and claims read a suspension's signals in order.
CREATE UNIQUE INDEX signals_by_position ON signals (suspension_id, position);
-- The signals waiting on pending waitpoints, which a suspend moves.
CREATE INDEX signals_buffered ON signals (waitpoint_id, sequence)
    WHERE suspension_id IS NULL;

-- suspension_tags ----------------------------------------------------------
-- One row per tag of the suspension of each execution in state suspended,
-- and no other: suspend writes them, and whatever takes the execution out of
-- state suspended (resume, cancel, claim, complete) deletes them. A
-- list_suspended page filtered by tag is one range read of the primary key
-- in the order of docs/spec.md §5.4, reading matching rows only.
CREATE TABLE suspension_tags (
    tag             TEXT    NOT NULL,
    suspended_at_ms INTEGER NOT NULL,
    execution_id    TEXT    NOT NULL,
    PRIMARY KEY (tag, suspended_at_ms, execution_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX suspension_tags_by_execution ON suspension_tags (execution_id);
