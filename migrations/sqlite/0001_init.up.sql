-- FlowFabric-Go SQLite schema, version 1.
--
-- One keystore partition (P = 1). Every write runs in a BEGIN IMMEDIATE
-- transaction, so writers serialize on the database's write lock; the
-- constraints below are a second line of defence, not the mechanism.

-- keystore: every remembered kid. expires_at_ms is NULL for the current kid
-- and set for a verifying kid. The partial unique index allows at most one
-- current kid.
CREATE TABLE keystore (
    kid             TEXT    NOT NULL PRIMARY KEY,
    secret          BLOB    NOT NULL,
    installed_at_ms INTEGER NOT NULL,
    expires_at_ms   INTEGER
) STRICT;

CREATE UNIQUE INDEX keystore_one_current ON keystore ((expires_at_ms IS NULL))
    WHERE expires_at_ms IS NULL;

-- executions: the suspension state of each remembered execution (state none
-- is the absence of a row). suspension_id, condition, suspended_at_ms,
-- timeout_at_ms and waitpoint_count describe the latest suspension;
-- signal_count counts its signals (the 10,000 limit); signal_seq orders every
-- signal of the execution; reason is set once the suspension resumed by a
-- signal or was claimed after its timeout; lease_* are set while claimed.
CREATE TABLE executions (
    execution_id        TEXT    NOT NULL PRIMARY KEY,
    state               TEXT    NOT NULL CHECK (state IN ('suspended', 'resumed', 'claimed')),
    suspension_id       TEXT    NOT NULL,
    condition           TEXT    NOT NULL CHECK (condition IN ('any', 'all')),
    suspended_at_ms     INTEGER NOT NULL,
    timeout_at_ms       INTEGER,
    waitpoint_count     INTEGER NOT NULL,
    signal_count        INTEGER NOT NULL DEFAULT 0,
    signal_seq          INTEGER NOT NULL DEFAULT 0,
    reason              TEXT    CHECK (reason IN ('signal', 'timeout')),
    lease_id            TEXT,
    lease_expires_at_ms INTEGER
) STRICT;

-- list_suspended pages and claim of resumed executions walk this index in
-- (suspended_at_ms, execution_id) order.
CREATE INDEX executions_by_state ON executions (state, suspended_at_ms, execution_id);
-- claim of timed-out suspensions.
CREATE INDEX executions_by_timeout ON executions (state, timeout_at_ms)
    WHERE timeout_at_ms IS NOT NULL;
-- claim of expired leases.
CREATE INDEX executions_by_lease ON executions (state, lease_expires_at_ms)
    WHERE lease_expires_at_ms IS NOT NULL;

-- waitpoints: every waitpoint of every remembered suspension. A waitpoint is
-- open until its suspension resumes or is claimed after its timeout.
CREATE TABLE waitpoints (
    waitpoint_id  TEXT    NOT NULL PRIMARY KEY,
    execution_id  TEXT    NOT NULL,
    suspension_id TEXT    NOT NULL,
    waitpoint_key TEXT    NOT NULL,
    position      INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    closed        INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)),
    signal_count  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (suspension_id, waitpoint_key)
) STRICT;

CREATE INDEX waitpoints_by_execution ON waitpoints (execution_id);

-- signals: every recorded signal, kept until complete_execution. sequence
-- (from executions.signal_seq) fixes delivery order within a millisecond.
-- The partial unique index is the deliver_signal idempotency record: one
-- signal per (waitpoint_id, idempotency_key).
CREATE TABLE signals (
    signal_id       TEXT    NOT NULL PRIMARY KEY,
    execution_id    TEXT    NOT NULL,
    suspension_id   TEXT    NOT NULL,
    waitpoint_id    TEXT    NOT NULL,
    waitpoint_key   TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    payload         BLOB,
    idempotency_key TEXT,
    delivered_at_ms INTEGER NOT NULL,
    sequence        INTEGER NOT NULL,
    UNIQUE (execution_id, sequence)
) STRICT;

CREATE UNIQUE INDEX signals_idempotency ON signals (waitpoint_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX signals_by_suspension ON signals (suspension_id, sequence);

-- suspend_idempotency: the first outcome of suspend per (execution_id,
-- idempotency_key), stored as the JSON envelope for byte-identical replay,
-- with the arguments' fingerprint to recognise a mismatching replay.
CREATE TABLE suspend_idempotency (
    execution_id    TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    outcome         BLOB NOT NULL,
    PRIMARY KEY (execution_id, idempotency_key)
) STRICT, WITHOUT ROWID;
