-- FlowFabric-Go SQLite schema, version 6: ids the backend generates stored
-- as 16 bytes.
--
-- Every suspension_id, waitpoint_id, signal_id and lease_id is made by the
-- backend (driver.NewID): a canonical UUID, 36 characters of lowercase hex
-- and hyphens. Version 5 stored them as TEXT, each waitpoint's and
-- suspension's id twice (row and index): about 40 % of the bytes a
-- suspended execution on two waitpoints takes. Version 6 stores a canonical
-- UUID as its 16 bytes (a BLOB) and any other value as the TEXT it is, in
-- columns typed ANY; the backend binds and reads ids by the same rule
-- (backend/sqlite/ids.go), so that no caller sees the difference. A BLOB
-- never equals a TEXT: an id a caller made up matches no stored UUID, as it
-- matched none before. execution_id, which applications choose, stays TEXT,
-- and so does the JSON of suspend_idempotency's outcomes.
--
-- The rule of a canonical UUID is the GLOB below (lowercase hex only, as
-- driver.NewID writes them); such a text becomes unhex() of its 32 digits,
-- which reads back as exactly that text.
--
-- SQLite cannot change a column's type in place, so executions, waitpoints
-- and signals are rebuilt (create, copy, drop, rename, indexes again), all
-- inside the migration's one transaction: an interrupted upgrade leaves
-- version 5 as it was. The file runs with secure_delete: the dropped
-- tables' pages are zeroed and kept as free pages, which the new rows
-- reuse (VACUUM gives them back to the file system). Each table keeps its
-- columns in their order, its constraints and its indexes (with their
-- names); nothing else changes.

-- executions ---------------------------------------------------------------
CREATE TABLE executions_v6 (
    execution_id          TEXT    NOT NULL PRIMARY KEY,
    state                 TEXT    NOT NULL CHECK (state IN ('none', 'suspended', 'resumed', 'claimed')),
    suspension_id         ANY,
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
    lease_id              ANY,
    lease_expires_at_ms   INTEGER,
    overdue               INTEGER NOT NULL DEFAULT 0 CHECK (overdue IN (0, 1)),
    CHECK (state = 'none' OR (suspension_id IS NOT NULL AND condition IS NOT NULL AND suspended_at_ms IS NOT NULL))
) STRICT;

INSERT INTO executions_v6 (execution_id, state, suspension_id, condition, suspended_at_ms, timeout_at_ms,
    waitpoint_count, signal_count, payload_bytes, signal_seq, tags, pending_expires_at_ms, reason,
    lease_id, lease_expires_at_ms, overdue)
SELECT execution_id, state,
    CASE WHEN suspension_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
        THEN unhex(replace(suspension_id, '-', '')) ELSE suspension_id END,
    condition, suspended_at_ms, timeout_at_ms,
    waitpoint_count, signal_count, payload_bytes, signal_seq, tags, pending_expires_at_ms, reason,
    CASE WHEN lease_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
        THEN unhex(replace(lease_id, '-', '')) ELSE lease_id END,
    lease_expires_at_ms, overdue
FROM executions;

DROP TABLE executions;
ALTER TABLE executions_v6 RENAME TO executions;

CREATE INDEX executions_by_state ON executions (state, suspended_at_ms, execution_id);
CREATE INDEX executions_by_timeout ON executions (state, overdue, timeout_at_ms)
    WHERE timeout_at_ms IS NOT NULL;
CREATE INDEX executions_by_lease ON executions (state, overdue, lease_expires_at_ms)
    WHERE lease_expires_at_ms IS NOT NULL;
CREATE INDEX executions_overdue ON executions (suspended_at_ms, execution_id)
    WHERE overdue = 1;

-- waitpoints ---------------------------------------------------------------
CREATE TABLE waitpoints_v6 (
    waitpoint_id      ANY     NOT NULL PRIMARY KEY,
    execution_id      TEXT    NOT NULL,
    suspension_id     ANY,
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

INSERT INTO waitpoints_v6 (waitpoint_id, execution_id, suspension_id, waitpoint_key, position, created_at_ms,
    expires_at_ms, timeout_at_ms, closed, signal_count, payload_bytes, token_fingerprint, tags)
SELECT
    CASE WHEN waitpoint_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
        THEN unhex(replace(waitpoint_id, '-', '')) ELSE waitpoint_id END,
    execution_id,
    CASE WHEN suspension_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
        THEN unhex(replace(suspension_id, '-', '')) ELSE suspension_id END,
    waitpoint_key, position, created_at_ms,
    expires_at_ms, timeout_at_ms, closed, signal_count, payload_bytes, token_fingerprint, tags
FROM waitpoints;

DROP TABLE waitpoints;
ALTER TABLE waitpoints_v6 RENAME TO waitpoints;

CREATE INDEX waitpoints_by_execution ON waitpoints (execution_id);
CREATE INDEX waitpoints_pending ON waitpoints (execution_id, expires_at_ms)
    WHERE suspension_id IS NULL;

-- signals ------------------------------------------------------------------
CREATE TABLE signals_v6 (
    signal_id       ANY     NOT NULL PRIMARY KEY,
    execution_id    TEXT    NOT NULL,
    suspension_id   ANY,
    waitpoint_id    ANY     NOT NULL,
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

INSERT INTO signals_v6 (signal_id, execution_id, suspension_id, waitpoint_id, waitpoint_key, name,
    payload, idempotency_key, delivered_at_ms, sequence, position)
SELECT
    CASE WHEN signal_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
        THEN unhex(replace(signal_id, '-', '')) ELSE signal_id END,
    execution_id,
    CASE WHEN suspension_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
        THEN unhex(replace(suspension_id, '-', '')) ELSE suspension_id END,
    CASE WHEN waitpoint_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
        THEN unhex(replace(waitpoint_id, '-', '')) ELSE waitpoint_id END,
    waitpoint_key, name, payload, idempotency_key, delivered_at_ms, sequence, position
FROM signals;

DROP TABLE signals;
ALTER TABLE signals_v6 RENAME TO signals;

CREATE UNIQUE INDEX signals_idempotency ON signals (waitpoint_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX signals_by_position ON signals (suspension_id, position);
CREATE INDEX signals_buffered ON signals (waitpoint_id, sequence)
    WHERE suspension_id IS NULL;
